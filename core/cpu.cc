#include "core/cpu.h"

#include <cpuid.h>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include <atomic>
#include <cstdlib>

#include "core/error.h"

namespace qconform {

bool cpu_has_avx512_vnni() {
  static const bool vnni = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
                           __builtin_cpu_supports("avx512f");
  return vnni;
}

std::optional<std::string> kernel_isa_cap() {
  static const std::optional<std::string> cap = []() -> std::optional<std::string> {
    const char* text = std::getenv("QCONFORM_KERNEL_ISA");
    if (!text || !*text) return std::nullopt;
    const std::string asked = text;
    if (asked != "portable" && asked != "avx2" && asked != "avx_vnni" && asked != "avx512_vnni")
      throw Error("QCONFORM_KERNEL_ISA must be portable, avx2, avx_vnni or avx512_vnni, got '" + asked + "'");
    return asked;
  }();
  return cap;
}

bool avx512_float_allowed() {
  static const bool allowed = [] {
    const std::optional<std::string> cap = kernel_isa_cap();
    return (!cap || *cap == "avx512_vnni") && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  }();
  return allowed;
}

bool cpu_has_avx_vnni() {
  // CPUID leaf 7, subleaf 1, EAX bit 4 (AVX-VNNI), asked directly: clang 14's
  // __builtin_cpu_supports does not know "avxvnni".
  static const bool vnni = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) != 0 && (eax & (1u << 4)) != 0;
  }();
  return vnni;
}

namespace {

bool includes(dnnl_cpu_isa_t isa, dnnl_cpu_isa_t feature) {
  // oneDNN's ISA values are bit sets: each one contains the bits of those it extends.
  return (static_cast<unsigned>(isa) & static_cast<unsigned>(feature)) == static_cast<unsigned>(feature);
}

OnednnIsa ask_onednn() {
  const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
  std::string name = dnnl_cpu_isa2str(isa);
  const std::string prefix = "cpu_isa_";
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  return {name, includes(isa, dnnl_cpu_isa_avx512_core_vnni) || includes(isa, dnnl_cpu_isa_avx2_vnni)};
}

}  // namespace

const OnednnIsa& onednn_isa() {
  static const OnednnIsa isa = ask_onednn();
  return isa;
}

AtenCapability aten_cpu_capability() {
  static const AtenCapability capability = [] {
    if (const char* asked = std::getenv("ATEN_CPU_CAPABILITY")) {
      const std::string name = asked;
      if (name == "avx512") return AtenCapability::Avx512;
      if (name == "avx2") return AtenCapability::Avx2;
      if (name == "default") return AtenCapability::Default;
    }
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? AtenCapability::Avx2
                                                                           : AtenCapability::Default;
  }();
  return capability;
}

std::string to_string(AtenCapability capability) {
  switch (capability) {
    case AtenCapability::Default: return "default";
    case AtenCapability::Avx2: return "avx2";
    case AtenCapability::Avx512: return "avx512";
  }
  return "?";
}

namespace {
std::atomic<int> recorded_aten_threads{0};
}  // namespace

int aten_intra_op_threads() {
  if (const int recorded = recorded_aten_threads.load()) return recorded;
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    const int threads = std::atoi(env);
    if (threads > 0) return threads;
  }
  return 1;
}

void record_aten_intra_op_threads(int threads) {
  if (threads > 0) recorded_aten_threads.store(threads);
}

}  // namespace qconform
