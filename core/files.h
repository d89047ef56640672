#pragma once
// Writing files so that a failure leaves nothing half-written: the bytes go to PATH.partial,
// which is renamed over PATH only when complete. Throws qconform::Error naming the path.
#include <string>

namespace qconform {

void write_file_atomically(const std::string& path, const std::string& bytes, const std::string& what);

}  // namespace qconform
