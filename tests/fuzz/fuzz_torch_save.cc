// libFuzzer target: the torch.save'd inputs and expected outputs `qconform fixture add` reads
// (oracles/torchscript_module.h load_pickle): LibTorch's zip reader and unpickler
// (torch::jit::pickle_load), then every tensor of what it gives converted as the import converts
// forward's arguments and outputs (quantized tensors with their qparams, float tensors, index
// tensors). Any input must give values or a qconform::Error naming what is wrong; any other
// exception escaping, a crash or a sanitizer report is a finding. Entries' CRCs are fixed first
// (zip_crc.h). Run: scripts/fuzz torch_save
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "oracles/torchscript_module.h"
#include "tests/fuzz/zip_crc.h"

namespace {

void convert(const std::string& origin, const c10::IValue& v, int depth) {
  if (depth > 32) throw qconform::Error(origin + ": values nested too deeply");
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    if (t.is_quantized()) {
      const qconform::QTensor q = qconform::libtorch::from_aten_quantized(t);
      qconform::validate(q.qparams, q.sizes);
    } else if (t.is_floating_point()) {
      qconform::float_tensor(origin, t, "a value");
    } else {
      qconform::integer_tensor(origin, t, "a value");
    }
  } else if (v.isTuple()) {
    for (const c10::IValue& e : v.toTupleRef().elements()) convert(origin, e, depth + 1);
  } else if (v.isList()) {
    for (const c10::IValue& e : v.toListRef()) convert(origin, e, depth + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  qconform::fuzz::fix_stored_crcs(bytes);
  const std::string origin = "fuzz input";
  try {
    convert(origin, qconform::load_pickle_bytes(bytes, origin), 0);
  } catch (const qconform::Error&) {
  }
  return 0;
}
