// libFuzzer target: the state_dict file reader (core/state_dict.h), what the state_dict oracle and
// a user's saved modules read back. Any input must either give a StateDict or a qconform::Error
// naming what is wrong; anything else is a finding. Run: scripts/fuzz state_dict
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/state_dict.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    qconform::parse_state_dict_bytes(std::vector<char>(data, data + size), "fuzz input");
  } catch (const qconform::Error&) {
  }
  return 0;
}
