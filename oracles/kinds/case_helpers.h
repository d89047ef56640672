#pragma once
// What several module families' registrations share (oracles/kinds/*.cc): random tensors and
// biases in the case's input style, the linear and static-case builders, the static
// reduction's sensitivity, and the typed readers of a fixture's ModuleSpec. One copy each;
// a family file keeps only what is its own.
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <boost/random/normal_distribution.hpp>

#include "core/fixture.h"
#include "core/float/linear.h"
#include "core/float/rnn.h"
#include "core/module_kind.h"

namespace qconform {

class ReferenceLinear;

namespace kinds {

// --- random cases ---------------------------------------------------------------------------

// The cases' normal draws: Boost's ziggurat sampler takes a fraction of the time of
// std::normal_distribution's polar method (a case's tensors were a third of its cost), and
// draws the same numbers from a seed on every standard library.
using NormalDistribution = boost::random::normal_distribution<float>;

// Input values in `style`, shaped `sizes` (registry.h InputStyle: ties are placed exactly
// on the dynamic qparams' half quanta).
Tensor random_input(const Shape& sizes, InputStyle style, std::mt19937_64& rng);
// rows x cols N(0, 1) weights times a random magnitude (per row too when `vary_rows`).
Tensor random_weight(int64_t rows, int64_t cols, bool vary_rows, std::mt19937_64& rng);
// N(0, 1) times `magnitude`.
Tensor random_tensor(const Shape& sizes, float magnitude, std::mt19937_64& rng);
// A N(0, 1) bias of `size` when the case's "bias" parameter is set.
std::optional<Tensor> random_bias(const CaseConfig& config, int64_t size, std::mt19937_64& rng);
// The float Linear (or LinearReLU) of a case: in_features, out_features, bias, per_channel.
std::unique_ptr<FloatLinear> random_float_linear(const CaseConfig& config, bool relu, std::mt19937_64& rng);
bool has_parameter(const CaseConfig& config, const std::string& name);
// A recurrent module's parameters as PyTorch initialises them, U(-k, k) with k = 1/sqrt(hidden),
// times a gain from 1/10 to 3 (per row too when `vary_rows`, for per-channel cases): trained
// recurrent weights stay near this scale, which keeps the recurrence from amplifying every
// difference step after step. Per set w_ih, w_hh, then b_ih, b_hh when options.bias.
std::vector<RnnParameters> random_rnn_parameters(const RnnOptions& options, bool vary_rows, std::mt19937_64& rng);
// The qconfig of a static case: MinMax activations on 8 bits (full_range) or 7
// (default_qconfig), per-tensor or (per_channel) per-channel symmetric qint8 weights.
QConfig static_case_qconfig(const CaseConfig& config);
// A static case as prepare + one calibration batch leave it (the qconfig from the case's
// full_range and per_channel parameters), its input quantized by the input observer.
// `output_observer`: another observer for the output than the qconfig's (a FixedQParams one).
Case calibrated_static_case(std::unique_ptr<Module> module, const CaseConfig& config, const Tensor& x,
                            const ObserverFactory* output_observer = nullptr);
// The same for a call of several operands (QFunctional's ops), each quantized by its own
// input observer; the output observer sees the float module's output only where
// `observe_output` (FloatFunctional's add_scalar and mul_scalar never feed it).
Case calibrated_operands_case(std::unique_ptr<Module> module, const CaseConfig& config,
                              const std::vector<Tensor>& operands, bool observe_output);

// --- refusal cases (ModuleKind::refusal_cases) ------------------------------------------------

// The same integers under other qparams: per-channel quint8 along dimension 1 (one scale and
// zero point per channel), or qint8 per-tensor (shifted into its range).
QTensor as_per_channel(const QTensor& q);
QTensor as_qint8(const QTensor& q);
// The tensor with one more column (last dimension) or without its first dimension.
QTensor with_extra_column(const QTensor& q);
QTensor without_first_dimension(const QTensor& q);

// --- bounds ---------------------------------------------------------------------------------

// Adds sum_k |w_nk| to weight_l1 and sum_k |w_nk x_rk| + |b_n| to magnitude of every output
// element (row r, channel n) of x W^T + b, result[r * out + n]; each sum in k's order.
void add_linear_terms(const Tensor& w, const Tensor& x, const std::optional<Tensor>& bias,
                      std::vector<OutputSensitivity>& result);
// The engines with an integer implementation of a static op (engine table: requantization
// modelled).
std::vector<Engine> static_engines(EngineOp op);
// One static reduction block's sensitivity, rows x out, in output quanta (static_common.cc
// says what each argument is); `saturation_loss` null: Linear's adjacent K pairs.
std::vector<OutputSensitivity> static_block_sensitivity(const Tensor& x, const std::vector<int32_t>& xq,
                                                        const QuantParams& x_qparams, const Tensor& w,
                                                        const QTensor& wq, int64_t channel_offset,
                                                        const std::optional<Tensor>& bias, double out_scale,
                                                        const std::vector<int64_t>* saturation_loss = nullptr);

// --- fixtures -------------------------------------------------------------------------------

QTensor spec_weight(const ModuleSpec& spec, const std::string& name);
std::optional<Tensor> spec_bias(const ModuleSpec& spec, const std::string& name);
// A static module's output qparams (nnq modules' `scale` and `zero_point` attributes).
QuantParams spec_output_qparams(const ModuleSpec& spec);
// A spec of `kind` holding the output qparams as a fixture does ("scale", "zero_point"), for
// ModuleKind::spec_from_reference to fill in.
ModuleSpec output_qparams_spec(const QuantParams& output);
// Error unless a weight's shape is what the constructor arguments imply.
void check_spec_shape(const ModuleSpec& spec, const std::string& name, const Shape& actual, const Shape& expected);
// A Linear's weight from a fixture, against in_features and out_features.
QTensor spec_linear_weight(const ModuleSpec& spec);
std::unique_ptr<ReferenceLinear> spec_reference_linear(const ModuleSpec& spec, bool relu);

}  // namespace kinds
}  // namespace qconform
