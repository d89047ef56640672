// libFuzzer target: the model record reader (core/model_record.h model_record_from_json), what
// `qconform check` reads from a model directory made elsewhere. Any input must give a record or
// a qconform::Error naming what is wrong; anything else is a finding. Run: scripts/fuzz model_record
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/model_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const qconform::ModelRecord record =
        qconform::model_record_from_json(std::string(reinterpret_cast<const char*>(data), size), "fuzz input");
    (void)record.fully_covered();
    (void)record.uncovered_types();
    for (const auto& layer : record.layers) (void)layer.label();
  } catch (const qconform::Error&) {
  }
  return 0;
}
