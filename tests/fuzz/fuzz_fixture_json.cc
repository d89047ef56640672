// libFuzzer target: the fixture JSON reader (core/fixture.h fixture_from_json), what
// `qconform check` reads from a store of fixtures made elsewhere. Any input must either give a
// fixture or a qconform::Error naming what is wrong; anything else (another exception, a crash,
// a sanitizer report, a leak) is a finding. Run: scripts/fuzz fixture_json
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/fixture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    qconform::fixture_from_json(std::string(reinterpret_cast<const char*>(data), size), "fuzz input");
  } catch (const qconform::Error&) {
  }
  return 0;
}
