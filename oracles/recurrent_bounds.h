#pragma once
// Error bounds for the recurrent modules, derived per case by propagation.
//
// The reference recurrence is run once more with every value carried as (v, e): v the
// value in double precision, e a bound on how far the two compared implementations can
// differ there. The same runner as the implementations (core/float/rnn_runner.h) drives
// it, so the bound follows exactly their calls: projections of all time steps, hidden
// projections of the active rows, packed-sequence slicing, directions, layers.
//
// Rules (eps = 2^-23; each side rounds every float operation once, by at most half an ulp):
//   a +- b     e = e_a + e_b                          + eps (|v| + e)
//   a * b      e = |v_a| e_b + |v_b| e_a + e_a e_b     + eps (|v| + e)
//   sigmoid(a) e = L e_a + 2u (|v| + L e_a),  L = max sigmoid' on [v_a - e_a, v_a + e_a] (<= 1/4)
//   tanh(a)    e = L e_a + 2u (|v| + L e_a),  L = max tanh' there (<= 1)
//   relu(a)    e = e_a
// with u the per-side error of sigmoid and tanh in ulps (RecurrentBoundModel::function_ulps,
// see the tolerance table), and for a gate projection y_j = sum_k W_jk x_k + b_j of one call:
//   e_j = sum_k |W_jk| (e_k + q s (1/2 + 2^-14)) + (K + 4) eps M_j + saturation_j
// where s bounds either side's activation scale for the call (from the call's range widened
// by the largest e_k), q the number of sides that quantize (none for float16 weights; none
// when both sides are integer, follow one engine and see identical inputs, e_k = 0), M_j =
// sum_k |W_jk| (|x_k| + e_k + s/2) + |b_j|, and saturation_j the largest loss of int16 pair
// sums the saturating sides can suffer on the u8 values the inputs can take.
#include <vector>

#include "core/module_kind.h"

namespace qconform {

class ReferenceRNN;

// Bounds for every element of the module's output, h_n and c_n (flatten_output's order).
std::vector<double> recurrent_error_bounds(const ReferenceRNN& reference, const ModuleInput& input,
                                           const RecurrentBoundModel& model);

}  // namespace qconform
