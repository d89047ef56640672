#include "core/files.h"

#include <cstdio>
#include <fstream>

#include "core/error.h"

namespace qconform {

void write_file_atomically(const std::string& path, const std::string& bytes, const std::string& what) {
  const std::string temporary = path + ".partial";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::remove(temporary.c_str());
      throw Error(path + ": could not write the " + what);
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw Error(path + ": could not move the written " + what + " into place");
  }
}

}  // namespace qconform
