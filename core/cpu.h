#pragma once
// What the CPU running the harness offers, asked once. The vectorised paths (activation
// quantization, min/max, the dynamic GEMM) are compiled with target attributes and take
// their AVX2 form only where this says so, whatever the build's own flags.
//
// And which int8 instructions the engines' own kernels dispatch to here: oneDNN is asked
// directly (dnnl_get_effective_cpu_isa, the library Debian's LibTorch links, so the answer
// is the one LibTorch's onednn kernels act on, ONEDNN_MAX_CPU_ISA included); fbgemm's choice
// is read off the CPU as fbgemm makes it (core/engines.h, host_int8_path).
#include <optional>
#include <string>

namespace qconform {

inline bool cpu_has_avx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2;
}

// vpdpbusd on zmm (AVX512_VNNI, with the AVX512F/BW it extends).
bool cpu_has_avx512_vnni();
// vpdpbusd on ymm with the VEX encoding (AVX-VNNI).
bool cpu_has_avx_vnni();

// QCONFORM_KERNEL_ISA: the widest SIMD the integer implementation may use in this process
// ("portable", "avx2", "avx_vnni" or "avx512_vnni"), to time or test a smaller host's paths
// here; nullopt when unset or empty. Error (core/error.h) for any other value. Read once.
std::optional<std::string> kernel_isa_cap();

// AVX-512 for the integer implementation's float steps (AVX512F and DQ, Eigen's 16-lane
// packets: the LSTM cell), unless kernel_isa_cap() holds the process below avx512_vnni.
bool avx512_float_allowed();

// The instruction set oneDNN dispatches to in this process: dnnl_get_effective_cpu_isa(),
// which honours ONEDNN_MAX_CPU_ISA (read once, at oneDNN's first use).
struct OnednnIsa {
  std::string name;  // oneDNN's own name without its prefix: "avx2", "avx512_core_bf16", ...
  bool vnni;         // its int8 kernels sum with vpdpbusd (avx512_core_vnni and up, avx2_vnni)
};
const OnednnIsa& onednn_isa();

// The instruction set ATen's own CPU kernels dispatch to (DispatchStub), read as PyTorch 1.13
// decides it: ATEN_CPU_CAPABILITY ("default", "avx2", "avx512") when set, else AVX2 where
// the CPU has AVX2 and FMA. AVX-512 only when asked for (1.13 keeps it opt-in, pytorch#80252;
// measured: quantized add's vector block is 64 elements by default on an AVX-512 host and
// 128 with ATEN_CPU_CAPABILITY=avx512).
enum class AtenCapability { Default, Avx2, Avx512 };
AtenCapability aten_cpu_capability();
std::string to_string(AtenCapability capability);  // "default", "avx2", "avx512"

// ATen's intra-op thread count in this process, for the few kernels whose float sums follow
// how at::parallel_for splits the work (the channels-last GroupNorm on large feature maps).
// The LibTorch layer records at::get_num_threads() whenever it runs a module; before that,
// OMP_NUM_THREADS when set, else 1.
int aten_intra_op_threads();
void record_aten_intra_op_threads(int threads);

}  // namespace qconform
