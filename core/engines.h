#pragma once
// Engine profiles as data: for each (engine, op), what weights the engine accepts, how it
// treats activations, and the exact message it rejects with. The integer implementation,
// the rejection checks, the CLI (`qconform engines`) and the report read this one table;
// nothing else may encode an engine difference.
//
// Rows for qnnpack and onednn are checked against Debian's LibTorch live
// (tests/test_engines.cc); fbgemm and x86 are not built into that LibTorch, so their rows
// come from reading PyTorch 1.13's sources and say so (`verified_live = false`).
#include <optional>
#include <string>
#include <vector>

#include "core/qparams.h"

namespace qconform {

enum class Engine { FBGEMM, X86, QNNPACK, ONEDNN };

const std::vector<Engine>& all_engines();
std::string to_string(Engine engine);          // "fbgemm", "x86", "qnnpack", "onednn"
Engine engine_from_string(const std::string&);  // throws Error listing the engines

// The int8 multiply-accumulate instruction an engine's kernels dispatch to on a CPU. It
// decides how u8 x s8 products are summed, so one engine has two int8 numerics
// (docs/numerics.md, "Two int8 paths"; measured on oneDNN, read from fbgemm's sources):
enum class Int8Path {
  // vpmaddubsw: two adjacent u8 x s8 products summed into int16 with saturation, then
  // widened to int32 (AVX2; AVX-512 without VNNI runs the same instruction on zmm).
  Avx2,
  // vpdpbusd: four u8 x s8 products summed exactly into int32 (AVX-512 VNNI, AVX-VNNI).
  Vnni,
};
std::string to_string(Int8Path path);             // "avx2", "vnni"
Int8Path int8_path_from_string(const std::string&);  // throws Error naming the two

// The paths an engine's kernels have: avx2 and vnni for onednn, fbgemm and x86; none for
// qnnpack, whose x86 kernels (SSE2, exact int16 multiplies) are the same everywhere.
const std::vector<Int8Path>& int8_paths(Engine engine);
// The path the engine takes on this host: oneDNN's own answer (core/cpu.h; honours
// ONEDNN_MAX_CPU_ISA); for fbgemm and x86 the rule of fbgemm's fbgemmInstructionSet()
// (AVX-512 VNNI kernels where the CPU has AVX512_VNNI; its AVX2 and AVX-512 kernels
// otherwise, both vpmaddubsw); nullopt for an engine without paths.
std::optional<Int8Path> host_int8_path(Engine engine);

// An engine profile: whose numerics an integer module follows, or which LibTorch engine
// runs. It names its int8 path where the engine has two: "onednn:avx2", "onednn:vnni";
// "qnnpack" has none.
struct EngineProfile {
  Engine engine = Engine::QNNPACK;
  std::optional<Int8Path> int8_path;  // set exactly when the engine has int8 paths

  // The engine on this host's path (host_int8_path). Implicit on purpose: an engine named
  // alone means what it computes here, which is what PyTorch's engine setting means.
  EngineProfile(Engine engine);  // NOLINT(google-explicit-constructor)
  // An explicit path; Error for an engine that has no such path.
  EngineProfile(Engine engine, Int8Path path);

  std::string label() const;  // "onednn:vnni", "qnnpack"
  bool operator==(const EngineProfile& other) const {
    return engine == other.engine && int8_path == other.int8_path;
  }
  bool operator!=(const EngineProfile& other) const { return !(*this == other); }
};
// "onednn" (this host's path), "onednn:avx2", "qnnpack"; Error names what is wrong.
EngineProfile engine_profile_from_string(const std::string& text);
// Every profile of an engine: one per path, or the engine alone.
std::vector<EngineProfile> engine_profiles(Engine engine);

// The ops the table describes, named by the LibTorch operator that implements them.
// StaticElementwise: the static activations and Dropout (relu, relu6, leaky_relu,
// hardswish, elu, sigmoid, hardsigmoid, tanh on quint8 tensors).
// StaticPooling: max_pool2d, avg_pool2d and adaptive_avg_pool2d on quint8 tensors.
// StaticFunctional: QFunctional's add, add_relu, mul, add_scalar, mul_scalar and cat.
// StaticNormalization: batch_norm{2d,3d}[_relu], layer_norm, group_norm, instance_norm on
// quint8 tensors.
// WeightOnlyEmbedding: embedding_byte / embedding_4bit / embedding_bag_byte / embedding_bag_4bit.
enum class EngineOp {
  DynamicLinear,
  StaticLinear,
  StaticConv,
  StaticElementwise,
  StaticPooling,
  StaticFunctional,
  StaticNormalization,
  WeightOnlyEmbedding,
  StaticLSTM
};
// "quantized::linear_dynamic", "quantized::linear", "quantized::conv{1,2,3}d",
// "quantized activations", "quantized pooling", "QFunctional ops", "quantized normalization",
// "quantized embeddings", "quantized LSTM"
std::string to_string(EngineOp op);

// When an engine refuses a configuration: while prepacking the weight (module
// construction) or only at the first forward call (qnnpack checks the weight dtype there).
enum class RejectionStep { Prepack, Forward };
std::string to_string(RejectionStep step);

struct Rejection {
  std::string message;
  RejectionStep step;
};

// How an engine turns float activations into u8 for a dynamic op.
enum class ActivationQuantization {
  // at::quantize_per_tensor: nearbyint(x * (1.0f / float(scale))) + zero_point   (2)
  RoundThenShift,
  // oneDNN's reorder: nearbyint(x * float(1.0 / scale) + zero_point)            (2')
  ShiftThenRound,
};
std::string to_string(ActivationQuantization rule);

// How a static op turns its int32 accumulator into the quint8 output (see
// quantized/kernels/static_gemm.h for the formulas, each measured against LibTorch).
enum class Requantization {
  NotModelled,   // no integer implementation for this engine (not verifiable here)
  Fp32Multiplier,  // qnnpack: bias in int32, one float multiplier, round, add zero point
  FloatEpilogue,   // oneDNN: float(acc) * scale + float bias, times 1 / out_scale, + zero point, round
  AtenKernels,     // ATen's own quantized kernels (quantized/kernels/elementwise.h)
  PoolingKernels,  // ATen's or QNNPACK's pooling kernels, by engine and configuration
                   // (quantized/kernels/pooling.h)
  FunctionalKernels,  // ATen's QFunctional kernels, QNNPACK's fixed-point add on qnnpack
                      // (quantized/kernels/functional.h)
};
std::string to_string(Requantization rule);

// A forward convolution LibTorch's kernel computes wrongly on some of oneDNN's instruction
// sets (measured; the script named in `description` reproduces it with plain PyTorch). Its
// answers there are not compared: the agreement oracle classes them engine-defect.
struct LibTorchConvDefect {
  std::string onednn_isa_prefix;  // the oneDNN ISAs (core/cpu.h names) it shows on: "avx512_core"
  int64_t spatial_dims;
  int64_t in_per_group;           // with more than one group
  int64_t out_channels;
  int64_t kernel_volume;
  bool needs_nonzero_input_zero_point;
  std::string description;
};

struct EngineOpRule {
  Engine engine;
  EngineOp op;
  bool verified_live;               // checked against LibTorch on this machine

  // Weights.
  bool accepts_qint8_weights;
  std::string non_qint8_weight_rejection;   // message for quint8 weights; empty: accepted
  RejectionStep non_qint8_weight_rejection_step;
  bool accepts_per_channel_weights;
  bool requires_zero_weight_zero_point;     // onednn: symmetric weights only
  std::string nonzero_weight_zero_point_rejection;  // "{zp}" and "{index}" are filled in
  bool accepts_fp16_weights;
  std::string fp16_rejection;

  // Activations, quantized per call to quint8.
  ActivationQuantization activation_quantization;
  bool honors_reduce_range;  // qnnpack ignores it (and warns)
  // On the engine's avx2 path (Int8Path::Avx2), u8 x s8 products are summed in pairs into
  // int16 by vpmaddubsw and saturate when activations use all 8 bits; reduce_range (7 bits)
  // avoids it. Its vnni path sums exactly.
  bool pairwise_int16_saturation;
  // Whether the saturating accumulation (1') of quantized/kernels/dynamic_gemm.h has been
  // measured against the engine itself; only then does the integer implementation emulate it.
  bool pairwise_int16_saturation_verified;
  // onednn returns an empty output before restoring the input's leading dimensions: an
  // empty [d0, 0, K] input gives [0, N], not [d0, 0, N] (observed live).
  bool flattens_empty_output;

  std::string notes;  // what else a user should know, for the printed table

  // Static ops only.
  Requantization requantization = Requantization::NotModelled;
  // Convolutions only: the engine's unpack (and so the module's state_dict) of a 3-d
  // convolution fails with this message when non-empty (qnnpack), and a convolution
  // prepacked without bias unpacks a zero bias (qnnpack).
  std::string conv3d_unpack_rejection = "";
  bool unpacks_missing_bias_as_zeros = false;
  // Transposed 3-d convolution not implemented by the engine (non-empty: why).
  std::string conv_transpose3d_rejection = "";
  // Convolutions on an engine with pairwise_int16_saturation: its kernels pair adjacent input
  // channels of a group at one kernel position (channels-last, an odd count padded with a
  // zero weight) and skip the kernel positions that meet no input value (padding, a
  // transposed convolution's inserted gaps). A grouped (not transposed) convolution sums
  // that way only when each group's input and output channel counts are multiples of this
  // (0: always); otherwise it accumulates exactly. Measured on onednn (docs/numerics.md).
  int64_t grouped_conv_pairs_channel_multiple = 0;
  // A transposed convolution with a non-zero output_padding is refused at prepack, before
  // the weights are checked, with this message (non-empty; onednn).
  std::string transposed_output_padding_rejection = "";
  // LibTorch's transposed convolution leaves the output positions no input value reaches
  // (a stride beyond the dilated kernel) unspecified: they are compared nowhere (why here).
  std::string transposed_uncovered_outputs_unspecified = "";
  // Configurations LibTorch's own kernels compute wrongly on some CPUs (below).
  std::vector<LibTorchConvDefect> libtorch_conv_defects = {};
  // Messages (or their beginnings) with which the engine refuses, at the call, operands
  // PyTorch's float module computes (QNNPACK's add: scale ratios outside [2^-14, 2^8)); such a
  // refusal is the engine's, not a disagreement with the reference.
  std::vector<std::string> forward_refusals = {};
  // LibTorch's answers on this engine can change with earlier calls in the same process
  // (ideep's primitive cache; gone with LRU_CACHE_CAPACITY=1): a LibTorch defect. Oracles
  // that compare LibTorch with itself (a reloaded or re-converted module) do not compare
  // such answers; the agreement oracle judges them on a fresh-process rerun.
  bool libtorch_history_dependent = false;
};

// The facts of a convolution call a LibTorchConvDefect is matched on.
struct ConvCallFacts {
  bool transposed;
  int64_t spatial_dims, groups, in_per_group, out_channels, kernel_volume, input_zero_point;
};
// LibTorch's defect for this call when its oneDNN dispatches to `onednn_isa`, if any.
std::optional<std::string> libtorch_conv_defect(const EngineOpRule& rule, const std::string& onednn_isa,
                                                const ConvCallFacts& call);

// The engine's refusal of a transposed convolution's output_padding, if it refuses it.
std::optional<std::string> output_padding_rejection(const EngineOpRule& rule, const std::vector<int64_t>& output_padding);

// Whether the op's numerics on the engine depend on its int8 path (it sums int16 pairs on
// the avx2 path, and that was measured): only then do the two paths get separate checks.
bool depends_on_int8_path(const EngineOpRule& rule);
// Whether the op on this profile sums u8 x s8 pairs in int16 with saturation: its avx2 path,
// where the row says the engine does and that was measured. The one place that decides it.
bool sums_int16_pairs(const EngineOpRule& rule, const EngineProfile& profile);
// Whether a convolution on this profile sums int16 pairs (see grouped_conv_pairs_channel_multiple).
bool conv_sums_int16_pairs(const EngineOpRule& rule, const EngineProfile& profile, bool transposed, int64_t groups,
                           int64_t in_per_group, int64_t out_per_group);

const std::vector<EngineOpRule>& engine_table();
const EngineOpRule& engine_rule(Engine engine, EngineOp op);

// The engine's rejection (message and step) for these weight qparams on this op, or
// nullopt if the engine accepts them. This is the only place rejection decisions are made.
std::optional<Rejection> weight_rejection(Engine engine, EngineOp op, const QuantParams& weight);

// Human-readable table (for `qconform engines`), with the int8 path each engine takes here.
std::string engine_table_text();

}  // namespace qconform
