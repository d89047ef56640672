#pragma once
// Writing files so that no reader ever sees one half-written, whatever stops the writer (an
// error, a full disk, SIGKILL): the bytes go to an unnamed file in PATH's directory
// (O_TMPFILE), which gets a name only when complete — a hidden one beside PATH, renamed over
// PATH at once. Where the filesystem has no O_TMPFILE, a hidden named temporary is written
// instead (a kill then may leave that hidden file behind; PATH is never partial). Throws
// qconform::Error naming the path and the system's reason ("No space left on device").
#include <string>

namespace qconform {

void write_file_atomically(const std::string& path, const std::string& bytes, const std::string& what);

// A name of the form ".NAME.partial-PID..." in DIR, for a temporary that becomes NAME: hidden
// from store listings, and traceable to the process that wrote it.
std::string hidden_temporary_name(const std::string& directory, const std::string& name);

// Removes from DIR the hidden temporaries (files or directories) of writers no longer
// running: what a killed process left. Returns how many.
int remove_stale_temporaries(const std::string& directory);

}  // namespace qconform
