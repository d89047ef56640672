// libFuzzer target: the TorchScript import of `qconform fixture add` (oracles/torchscript_module.h):
// an archive's bytes loaded by LibTorch (torch::jit::load: its zip reader, unpickler and the
// compiler of the archive's code/), then every module in it of a registered kind read as
// `fixture add` reads it (kind, configuration, packed weights and qparams) and rebuilt by the
// kind's reference, which checks what was read. Any input must give specs or a qconform::Error
// naming what is wrong; any other exception escaping, a crash or a sanitizer report is a
// finding. Entries' CRCs are fixed first (zip_crc.h). Run: scripts/fuzz torchscript
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "oracles/kinds/registry.h"
#include "oracles/torchscript_module.h"
#include "tests/fuzz/zip_crc.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  qconform::fuzz::fix_stored_crcs(bytes);
  const std::string origin = "fuzz input";
  try {
    const torch::jit::Module root = qconform::load_archive_bytes(bytes, origin, qconform::libtorch_default_engine());
    const qconform::Archive archive{origin};
    for (const torch::jit::Module& m : root.modules()) {
      if (!qconform::registered_kind(qconform::python_type(m))) continue;
      const qconform::ModuleSpec spec = qconform::read_module(archive, m);
      try {
        qconform::module_kind(spec.kind).reference_from_spec(spec);
      } catch (const qconform::Error& e) {
        archive.fail(e.what());
      }
    }
  } catch (const qconform::Error&) {
  }
  return 0;
}
