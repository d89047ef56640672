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

// The ops the table describes, named by the LibTorch operator that implements them.
enum class EngineOp { DynamicLinear, StaticLinear, StaticConv };
// "quantized::linear_dynamic", "quantized::linear", "quantized::conv{1,2,3}d"
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
};
std::string to_string(Requantization rule);

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
  // Without VNNI, u8 x s8 products are summed in pairs into int16 by vpmaddubsw and
  // saturate when activations use all 8 bits; reduce_range (7 bits) avoids it.
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
};

// The engine's refusal of a transposed convolution's output_padding, if it refuses it.
std::optional<std::string> output_padding_rejection(const EngineOpRule& rule, const std::vector<int64_t>& output_padding);

// Whether a convolution on this engine sums int16 pairs (see grouped_conv_pairs_channel_multiple).
bool conv_sums_int16_pairs(const EngineOpRule& rule, bool transposed, int64_t groups, int64_t in_per_group,
                           int64_t out_per_group);

const std::vector<EngineOpRule>& engine_table();
const EngineOpRule& engine_rule(Engine engine, EngineOp op);

// The engine's rejection (message and step) for these weight qparams on this op, or
// nullopt if the engine accepts them. This is the only place rejection decisions are made.
std::optional<Rejection> weight_rejection(Engine engine, EngineOp op, const QuantParams& weight);

// Human-readable table (for `qconform engines`) and its JSON form.
std::string engine_table_text();

}  // namespace qconform
