#include "quantized/libtorch/engine.h"

#include <ATen/Parallel.h>
#include <torch/version.h>

#include <algorithm>
#include <iostream>

#include "core/cpu.h"
#include "core/error.h"
#include "quantized/libtorch/aten_bridge.h"

namespace qconform {

bool libtorch_has_engine(Engine engine) {
  const auto& supported = at::globalContext().supportedQEngines();
  return std::find(supported.begin(), supported.end(), libtorch::to_qengine(engine)) !=
         supported.end();
}

std::vector<Engine> libtorch_engines() {
  std::vector<Engine> out;
  for (Engine e : all_engines())
    if (libtorch_has_engine(e)) out.push_back(e);
  return out;
}

std::string libtorch_version() { return TORCH_VERSION; }

void set_libtorch_threads(int threads) {
  if (threads < 1) throw Error("thread count must be at least 1, got " + std::to_string(threads));
  at::set_num_threads(threads);
}

int libtorch_threads() { return at::get_num_threads(); }

namespace libtorch {

at::QEngine to_qengine(Engine engine) {
  switch (engine) {
    case Engine::FBGEMM: return at::QEngine::FBGEMM;
    case Engine::X86: return at::QEngine::X86;
    case Engine::QNNPACK: return at::QEngine::QNNPACK;
    case Engine::ONEDNN: return at::QEngine::ONEDNN;
  }
  return at::QEngine::NoQEngine;
}

namespace {

// LibTorch warns on every qnnpack dynamic call that it ignores reduce_range; the engine
// table records that fact, so this one warning is dropped and every other one is printed.
class KnownWarningFilter : public c10::WarningHandler {
 public:
  void process(const c10::SourceLocation&, const std::string& message, const bool) override {
    if (message.find("qnnpack incorrectly ignores reduce_range") != std::string::npos) return;
    std::cerr << "LibTorch warning: " << message << "\n";
  }
};

void install_warning_filter() {
  static KnownWarningFilter filter;
  static const bool installed = (c10::Warning::set_warning_handler(&filter), true);
  (void)installed;
}

}  // namespace

EngineGuard::EngineGuard(const EngineProfile& profile) : previous_(at::globalContext().qEngine()) {
  install_warning_filter();
  record_aten_intra_op_threads(at::get_num_threads());
  if (!libtorch_has_engine(profile.engine))
    throw Error("LibTorch " + libtorch_version() + " on this machine has no " + to_string(profile.engine) +
                " engine");
  // The int8 path is the process's, fixed at oneDNN's first use: it cannot be chosen here.
  const auto here = host_int8_path(profile.engine);
  if (profile.int8_path != here)
    throw Error("libtorch[" + profile.label() + "] cannot run in this process: LibTorch's " +
                to_string(profile.engine) + " takes the " + (here ? to_string(*here) : std::string("?")) +
                " path here (oneDNN dispatches to " + onednn_isa().name + "). " +
                (profile.int8_path == Int8Path::Avx2 && profile.engine == Engine::ONEDNN
                     ? "Run the command again with ONEDNN_MAX_CPU_ISA=AVX2 in its environment."
                     : "Only a CPU with that path runs it; replay a fixture recorded there instead."));
  at::globalContext().setQEngine(to_qengine(profile.engine));
}

EngineGuard::~EngineGuard() { at::globalContext().setQEngine(previous_); }

}  // namespace libtorch
}  // namespace qconform
