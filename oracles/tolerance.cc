#include "oracles/tolerance.h"

#include "oracles/plugin.h"

#include <cfloat>
#include <cmath>
#include <limits>
#include <sstream>

#include "core/error.h"

namespace qconform {
namespace {

std::vector<ToleranceRow> make_table() {
  const SidePattern reference{Implementation::Reference, std::nullopt};
  const SidePattern quantized_any{Implementation::Quantized, std::nullopt};
  const SidePattern libtorch_any{Implementation::LibTorch, std::nullopt};
  return {
      {"dynamic.qnnpack.integer-vs-libtorch", Family::Dynamic, Structure::Reduction,
       {Implementation::Quantized, Engine::QNNPACK}, {Implementation::LibTorch, Engine::QNNPACK},
       true, BoundKind::Exact, 0,
       "Same activation qparams (ChooseQuantizationParams in double), same integers, and "
       "qnnpack's q8gemm_dq epilogue float(acc) * (w_scale * x_scale) + bias with separate "
       "multiply and add: every step is specified, so the outputs are bit-identical."},
      {"dynamic.onednn.integer-vs-libtorch", Family::Dynamic, Structure::Reduction,
       {Implementation::Quantized, Engine::ONEDNN}, {Implementation::LibTorch, Engine::ONEDNN},
       true, BoundKind::EpilogueRoundings, 4,
       "Same integers (7-bit activations under reduce_range: 2 * 127 * 128 < 2^15, so "
       "vpmaddubsw cannot saturate), but oneDNN applies the scales itself from 1 / x_scale "
       "and w_scale. Its path and ours round at most 7 times, each by at most half an ulp of "
       "a value bounded by M: |a - b| <= 3.5 eps M, rounded up to 4."},
      {"dynamic.reference-vs-integer", Family::Dynamic, Structure::Reduction, reference, quantized_any, false,
       BoundKind::ActivationRounding, 0,
       "The reference keeps activations in float; the integer path rounds each to the "
       "nearest multiple of s_x: error <= s_x / 2, plus the float roundings before nearbyint "
       "(x * (1 / s_x), and oneDNN's + zero point), each at most half an ulp of a value below "
       "512 quanta, 2^-14 s_x together. Weights are identical on both sides, so the "
       "difference is sum_k |w_k| s_x (1/2 + 2^-14) plus float rounding of two K-term sums, "
       "(K + 4) eps M."},
      {"dynamic.reference-vs-libtorch", Family::Dynamic, Structure::Reduction, reference, libtorch_any, false,
       BoundKind::ActivationRounding, 0,
       "As reference-vs-integer: LibTorch's kernels quantize activations the same way."},
      {"static.integer-vs-libtorch", Family::Static, Structure::Reduction, quantized_any, libtorch_any, true,
       BoundKind::Exact, 0,
       "Both sides take the same quint8 input and qint8 weights, sum the same integers (with "
       "oneDNN's saturating int16 pair sums where the engine table says so) and requantize "
       "with the engine's rule step for step (qnnpack: int32 bias, one float multiplier; "
       "oneDNN: float scale, float bias, reciprocal output scale, zero point before rounding), "
       "all measured against LibTorch: the quint8 outputs are identical. Exception: outputs "
       "of a transposed convolution that no input reaches, which LibTorch's onednn leaves "
       "unspecified (engine table): no bound there, classed engine-unspecified."},
      {"static.reference-vs-integer", Family::Static, Structure::Reduction, reference, quantized_any, false,
       BoundKind::OutputQuanta, 0,
       "The reference dequantizes the same integers and sums in float; the integer side sums "
       "exactly and requantizes. The two real results differ by the float rounding of the "
       "K-term sum and the epilogue ((K + 4) eps M), by half a quantum of x_scale * w_scale "
       "where the engine rounds the bias to int32 (qnnpack), and by what int16 pair sums "
       "lose where they saturate (oneDNN with 8-bit inputs, computed exactly per element); "
       "rounding each to the output grid adds at most one quantum. Where bias / (x_scale * "
       "w_scale) plus the accumulator leaves int32, qnnpack (and so the harness) clamps and "
       "wraps as PyTorch 1.13 does: no bound, classed accumulator-overflow."},
      {"static.reference-vs-libtorch", Family::Static, Structure::Reduction, reference, libtorch_any, false,
       BoundKind::OutputQuanta, 0,
       "As static reference-vs-integer: LibTorch's kernels compute the same integers (but for "
       "the transposed outputs onednn leaves unspecified: no bound, engine-unspecified)."},
      {"static.elementwise.integer-vs-libtorch", Family::Static, Structure::Elementwise, quantized_any, libtorch_any,
       true, BoundKind::Exact, 0,
       "Both sides run the same arithmetic on the same quint8 operands: ATen's own kernels (integer "
       "ops on the integers; the others dequantize, evaluate the op in float and quantize, with the "
       "vector forms (FMA dequantize, Sleef's exp and tanh) on the same elements as ATen's vectorised "
       "loop and the scalar forms on the rest), or QNNPACK's fixed-point add step for step: "
       "identical outputs."},
      {"static.elementwise.reference-vs-integer", Family::Static, Structure::Elementwise, reference, quantized_any,
       false, BoundKind::OutputQuanta, 0,
       "The reference dequantizes the same integers and evaluates PyTorch's definition in "
       "float; the integer side's dequantize can differ by one rounding (FMA) and its exp or "
       "tanh by an ulp or two, so the real results differ by a few float roundings of values "
       "bounded by M (activations: L |x| + |f(x)|, L the op's Lipschitz constant; add: |a| + "
       "|b| + |a + b|; mul: |a b|; cat: 2 |x|): 4 eps M; plus what the integer form gives up by "
       "design, per element (QNNPACK add's 22-bit multipliers; add_scalar's scalar rounded to "
       "the input's grid, up to half an input quantum); rounding each to the output grid adds "
       "at most one quantum."},
      {"static.elementwise.reference-vs-libtorch", Family::Static, Structure::Elementwise, reference, libtorch_any,
       false, BoundKind::OutputQuanta, 0, "As static elementwise reference-vs-integer: LibTorch computes the same."},
      {"static.elementwise-float.integer-vs-libtorch", Family::Static, Structure::ElementwiseFloat, quantized_any,
       libtorch_any, true, BoundKind::Exact, 0,
       "Both sides dequantize the same integers as ATen does: float(q - z) times the scale in float, one "
       "rounding: identical floats."},
      {"static.elementwise-float.reference-vs-integer", Family::Static, Structure::ElementwiseFloat, reference,
       quantized_any, false, BoundKind::EpilogueRoundings, 2,
       "The reference evaluates PyTorch's definition (q - z) * scale in double and rounds once to float; ATen "
       "rounds the scale to float first, then the product: at most three half-ulp roundings of M = |x|, "
       "1.5 eps M, rounded up to 2."},
      {"static.elementwise-float.reference-vs-libtorch", Family::Static, Structure::ElementwiseFloat, reference,
       libtorch_any, false, BoundKind::EpilogueRoundings, 2, "As elementwise-float reference-vs-integer."},
      {"static.softmax.integer-vs-libtorch", Family::Static, Structure::Softmax, quantized_any, libtorch_any, true,
       BoundKind::OutputQuanta, 0,
       "QNNPACK's soft-argmax (qnnpack, output qparams 1/256 and 0) is integer arithmetic after one table, "
       "modelled step for step (test_softmax holds it bit-exact). ATen's float path (dequantize, at::softmax, "
       "quantize) is not: its reductions run in vector lanes whose order, and whose split between vector "
       "(Sleef) and scalar (libm) exp, depend on the build and on how its threads chunk the rows. Both sides "
       "compute each probability within a few float roundings of M = 1 over a row of K: (K + 4) eps M, plus "
       "one quantum where the roundings straddle a level (measured: docs/numerics.md, Softmax)."},
      {"static.softmax.reference-vs-integer", Family::Static, Structure::Softmax, reference, quantized_any, false,
       BoundKind::OutputQuanta, 0,
       "The reference takes nn.Softmax in float on the dequantized row; the integer side's float path "
       "differs by float roundings of probabilities (M = 1): (K + 4) eps M; QNNPACK's table rounds each "
       "entry to an integer of scale q (its sum by C of them): at most 128 (C + 1) / q quanta, computed per "
       "case; rounding to the grid (QNNPACK rounds halves up) adds one quantum."},
      {"static.softmax.reference-vs-libtorch", Family::Static, Structure::Softmax, reference, libtorch_any, false,
       BoundKind::OutputQuanta, 0, "As static softmax reference-vs-integer."},
      {"static.float-reduction.integer-vs-libtorch", Family::Static, Structure::FloatReduction, quantized_any,
       libtorch_any, true, BoundKind::OutputQuanta, 0,
       "quantized::matmul dequantizes both operands, multiplies in float and quantizes (its fallback; Debian's "
       "LibTorch has no ruy): the same integers as the harness's but for the float sums, which LibTorch's BLAS "
       "orders its own way. Both sums lie within (K + 4) eps M of the exact one, M = sum |a b|; rounding them "
       "to the grid can then part by one quantum where a level lies between them (measured: 300 random "
       "cases bit-exact, docs/numerics.md, QFunctional ops)."},
      {"static.float-reduction.reference-vs-integer", Family::Static, Structure::FloatReduction, reference,
       quantized_any, false, BoundKind::OutputQuanta, 0,
       "The reference multiplies the same dequantized values in float: as integer-vs-libtorch, one quantum "
       "and (K + 4) eps M."},
      {"static.float-reduction.reference-vs-libtorch", Family::Static, Structure::FloatReduction, reference,
       libtorch_any, false, BoundKind::OutputQuanta, 0, "As static float-reduction reference-vs-integer."},
      {"static.normalization.integer-vs-libtorch", Family::Static, Structure::Normalization, quantized_any,
       libtorch_any, true, BoundKind::Exact, 0,
       "Both sides run ATen's kernels step for step: BatchNorm's per-channel alpha and beta in its float/double mix; "
       "the other normalizations' exact integer sums, float mean and variance, per-element affine step; each with "
       "the FMAs ATen's AVX2 and AVX-512 builds contract to (separate roundings in its default build), rounded to "
       "even: identical outputs."},
      {"static.normalization.reference-vs-integer", Family::Static, Structure::Normalization, reference, quantized_any,
       false, BoundKind::OutputQuanta, 0,
       "BatchNorm: the reference evaluates nn.BatchNorm in float on the dequantized input (alpha = w / sqrt(var + "
       "eps), beta = b - mean alpha, x alpha + beta); the integer side folds the scales into alpha and beta first. "
       "Each side takes K = 4 float roundings of terms bounded by M = |alpha x| + |mean alpha| + |b| + |y| (the "
       "cancellation in b - mean alpha is where they part most): (K + 4) eps M. LayerNorm, GroupNorm, InstanceNorm: "
       "the reference takes the group's statistics in double; the integer side's are float, its variance E[q^2] - "
       "m^2 over integers up to 255 (off by 3 eps (E[q^2] + m^2) quanta squared) and its mean off by eps |m|: per "
       "element |t g| dvar s^2 / (2 (var s^2 + eps)) + |g| 2 eps |m| s / std by design, plus (K + 4) eps M with "
       "M = |t g| + |b| + |y|, t the normalized value. Rounding to the output grid adds one quantum."},
      {"static.normalization.reference-vs-libtorch", Family::Static, Structure::Normalization, reference,
       libtorch_any, false, BoundKind::OutputQuanta, 0, "As static normalization reference-vs-integer."},
      {"weight-only.integer-vs-libtorch", Family::WeightOnly, Structure::Reduction, quantized_any, libtorch_any,
       true, BoundKind::Exact, 0,
       "Both sides pack the same per-row integers, scales and biases (half-rounded for quint4x2) and sum each bag "
       "with the same double fma per element in the same order: identical floats."},
      {"weight-only.reference-vs-integer", Family::WeightOnly, Structure::Reduction, reference, quantized_any, false,
       BoundKind::EpilogueRoundings, 6,
       "The reference sums (q - z) s per row in float (F.embedding_bag on the fake-quantized weight); the integer "
       "side sums s q + b with b = -(z s), through float w s and w b: a few roundings per term of terms bounded by "
       "M = sum_k |w_k| (|s_k q_k| + |z_k s_k|) + |y|: 6 eps M; plus, for quint4x2, the scale and bias rounded to "
       "half (sum_k |w_k| (|q_k| ds_k + db_k), ds and db half an ulp of half, subnormals included) as a design "
       "term."},
      {"weight-only.reference-vs-libtorch", Family::WeightOnly, Structure::Reduction, reference, libtorch_any, false,
       BoundKind::EpilogueRoundings, 6, "As weight-only reference-vs-integer."},
      {"static.pooling.integer-vs-libtorch", Family::Static, Structure::Pooling, quantized_any, libtorch_any, true,
       BoundKind::Exact, 0,
       "Both sides take the same quint8 input through the kernel ATen dispatches to (QNNPACK's max or average "
       "pooling on the qnnpack engine where it applies, ATen's NCHW or NHWC kernels otherwise, chosen by the same "
       "rules) and compute its integer sum and float rounding step for step: identical outputs."},
      {"static.pooling.reference-vs-integer", Family::Static, Structure::Pooling, reference, quantized_any, false,
       BoundKind::OutputQuanta, 0,
       "The output keeps the input's grid. Max pooling takes the same integer on both sides (exact). An average "
       "is, in output quanta, the mean of the window's (q - z): the reference sums K dequantized values in float "
       "and divides, the kernels sum the integers exactly and multiply by a float reciprocal of the divisor, so the "
       "two real means differ by float roundings of values bounded by M = sum |x| / divisor: (K + 4) eps M; "
       "rounding each to the grid adds at most one quantum (ties). Where the engine defines the average otherwise "
       "(qnnpack: count_include_pad=False and divisor_override ignored) there is no comparison: engine-deviation."},
      {"static.pooling.reference-vs-libtorch", Family::Static, Structure::Pooling, reference, libtorch_any, false,
       BoundKind::OutputQuanta, 0, "As static pooling reference-vs-integer: LibTorch computes the same."},
      {"dynamic.recurrent.integer-vs-libtorch", Family::Dynamic, Structure::Recurrent, quantized_any,
       libtorch_any, true, BoundKind::Propagated, 2.45,
       "Same gate projections as the Linear rows (identical integers while the inputs are "
       "identical), but the gates differ in the last ulps. ATen's vectorised loop evaluates "
       "sigmoid as 1/(1+exp(-x)) with Sleef's 1-ulp exp and tanh with Sleef's 1-ulp tanh, 16 at "
       "a time, the C library's for the rest of a row (glibc tanhf: 2 ulp): within 2 ulp. Our "
       "integer implementation's cells take faster forms (issue 9): libmvec's expf for sigmoid "
       "and Eigen's rational tanh, measured over every float within 2.27 and 2.45 eps |f|: 2.45 "
       "per side. Once h differs by an ulp, the next step's dynamic qparams and roundings can "
       "differ, so from there on both sides' activation rounding (s/2 each) enters, and the "
       "bound is propagated through every step with the gates' Lipschitz constants "
       "(oracles/recurrent_bounds.h)."},
      {"dynamic.recurrent.reference-vs-integer", Family::Dynamic, Structure::Recurrent, reference,
       quantized_any, false, BoundKind::Propagated, 2.45,
       "The reference runs the recurrence in float with the same fake-quantized weights; the "
       "integer side rounds every projection's activations (input and hidden, s/2 each, "
       "s chosen per call) and, on engines that sum u8 x s8 pairs in int16 with 8-bit "
       "activations (onednn cells), may lose what saturates. Both terms are derived per call "
       "and propagated through gates and steps (oracles/recurrent_bounds.h); sigmoid and tanh "
       "are bounded at 2.45 ulp per side (the integer side's gates, as in integer-vs-libtorch)."},
      {"dynamic.recurrent.reference-vs-libtorch", Family::Dynamic, Structure::Recurrent, reference,
       libtorch_any, false, BoundKind::Propagated, 2,
       "As recurrent reference-vs-integer: LibTorch's modules make the same projection calls. "
       "Both sides evaluate the gates as ATen does: 2 ulp per side."},
      {"static.recurrent.integer-vs-libtorch", Family::Static, Structure::Recurrent, quantized_any, libtorch_any,
       true, BoundKind::Exact, 0,
       "The static LSTM is a chain of quantized ops, each modelled step for step against LibTorch on its engine "
       "and path (quantized::linear, QNNPACK's or ATen's add, ATen's mul, QNNPACK's tables or ATen's kernels for "
       "sigmoid and tanh, per row of a gate chunk), and the sequence around them moves or requantizes integers "
       "as quantized_cat_impl does: identical integers in, identical integers out, every step."},
      {"static.recurrent.reference-vs-integer", Family::Static, Structure::Recurrent, reference, quantized_any, false,
       BoundKind::Propagated, 0,
       "The reference quantizes every point from a float computation on the same integers; the integer side "
       "computes each op its engine's way. At each point both real results lie within D of a centre computed in "
       "double (their own float or fixed-point errors, QNNPACK's multipliers and int32 bias, oneDNN's saturating "
       "pairs, and how far the operands already differ, through the op's slope), so their quantizations lie "
       "between the quantizations of both ends: that distance is the point's bound, often 0. Propagated through "
       "every point of every step, both directions and layers, and the requantizing stacks "
       "(oracles/kinds/static_lstm.cc)."},
      {"static.recurrent.reference-vs-libtorch", Family::Static, Structure::Recurrent, reference, libtorch_any,
       false, BoundKind::Propagated, 0,
       "As static recurrent reference-vs-integer: LibTorch computes the same integers."},
  };
}

}  // namespace

bool SidePattern::matches(const Side& side) const {
  if (implementation == Implementation::Plugin) return side.implementation == Implementation::Plugin && side.plugin == plugin;
  return implementation == side.implementation && (!engine || (side.engine && *engine == side.engine->engine));
}

std::string SidePattern::label() const {
  if (implementation == Implementation::Plugin) return plugin;
  return to_string(implementation) + (engine ? "[" + to_string(*engine) + "]" : "");
}

std::string to_string(BoundKind kind) {
  switch (kind) {
    case BoundKind::Exact: return "exact";
    case BoundKind::EpilogueRoundings: return "epilogue-roundings";
    case BoundKind::ActivationRounding: return "activation-rounding";
    case BoundKind::Propagated: return "propagated";
    case BoundKind::OutputQuanta: return "output-quanta";
  }
  return "?";
}

std::string Side::label() const {
  if (implementation == Implementation::Plugin) return plugin;
  return to_string(implementation) + (engine ? "[" + engine->label() + "]" : "");
}

const std::vector<ToleranceRow>& tolerance_table() {
  static const std::vector<ToleranceRow> table = make_table();
  return table;
}

const ToleranceRow& tolerance_for(Family family, Structure structure, const Side& a, const Side& b) {
  for (const Plugin& plugin : plugins())
    for (const auto& row : plugin.tolerance_rows) {
      if (row.family != family || row.structure != structure) continue;
      if ((row.a.matches(a) && row.b.matches(b)) || (row.a.matches(b) && row.b.matches(a))) return row;
    }
  // A plug-in's pair without a row of its own: the row of the integer side it declares its
  // numerics like.
  const auto as_integer = [](const Side& s) {
    if (s.implementation != Implementation::Plugin) return s;
    const Plugin* plugin = find_plugin(s.plugin);
    if (!plugin) throw Error("no plug-in named '" + s.plugin + "' is registered");
    return Side{Implementation::Quantized, plugin->numerics_like};
  };
  if (a.implementation == Implementation::Plugin || b.implementation == Implementation::Plugin)
    return tolerance_for(family, structure, as_integer(a), as_integer(b));
  for (const auto& row : tolerance_table()) {
    if (row.family != family || row.structure != structure) continue;
    if (row.same_engine && (!a.engine || !b.engine || a.engine->engine != b.engine->engine)) continue;
    if ((row.a.matches(a) && row.b.matches(b)) || (row.a.matches(b) && row.b.matches(a)))
      return row;
  }
  throw Error("tolerance table has no row for " + to_string(family) + " " + to_string(structure) + " " + a.label() + " vs " +
              b.label() + " (oracles/tolerance.cc)");
}

std::vector<double> element_bounds(const ToleranceRow& row, const BoundInputs& in) {
  const auto& sensitivity = *in.sensitivity;
  std::vector<double> bounds(sensitivity.size(), 0.0);
  const double eps = FLT_EPSILON;
  const double half_quantum = in.activation_scale / 2;
  for (size_t i = 0; i < sensitivity.size(); ++i) {
    const double magnitude = sensitivity[i].magnitude + half_quantum * sensitivity[i].weight_l1;
    switch (row.kind) {
      case BoundKind::Exact:
        bounds[i] = row.unbounded_where_bias_overflows && sensitivity[i].int32_bias_overflow
                        ? std::numeric_limits<double>::infinity()
                        : 0.0;
        break;
      case BoundKind::EpilogueRoundings:
        bounds[i] = row.roundings * eps * magnitude + sensitivity[i].design_quanta;  // design: absolute here
        break;
      case BoundKind::Propagated:
        throw Error("element_bounds: propagated bounds come from the kind's recurrent_bounds");
      case BoundKind::OutputQuanta: {
        const auto& e = sensitivity[i];
        bounds[i] = in.bias_quantized && e.int32_bias_overflow
                        ? std::numeric_limits<double>::infinity()
                        : 1.0 + (static_cast<double>(e.terms + 4) * eps * e.magnitude +
                                 (in.bias_quantized ? e.bias_rounding : 0.0)) / e.output_scale +
                              (in.saturating ? e.saturation_loss : 0.0) + e.design_quanta;
        break;
      }
      case BoundKind::ActivationRounding:
        bounds[i] = in.activation_scale * (0.5 + std::ldexp(1.0, -14)) * sensitivity[i].weight_l1 +
                    static_cast<double>(sensitivity[i].terms + 4) * eps * magnitude;
        break;
    }
  }
  // What the engine leaves unspecified has no bound (engine table).
  if (in.unreached_unspecified)
    for (size_t i = 0; i < sensitivity.size(); ++i)
      if (sensitivity[i].unreached) bounds[i] = std::numeric_limits<double>::infinity();
  return bounds;
}

std::string tolerance_table_text() {
  std::ostringstream out;
  for (const auto& row : tolerance_table()) {
    out << row.id << "  [" << to_string(row.family) << ", " << to_string(row.structure) << "] " << row.a.label() << " vs "
        << row.b.label() << (row.same_engine ? " (same engine)" : "") << ": "
        << to_string(row.kind);
    if (row.kind == BoundKind::EpilogueRoundings) out << " r=" << row.roundings;
    if (row.kind == BoundKind::Propagated) out << " ulps=" << row.roundings;
    out << "\n    " << row.reason << "\n";
  }
  return out.str();
}

}  // namespace qconform
