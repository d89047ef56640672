// static.LSTM: torch.ao.nn.quantized.LSTM as PyTorch 1.13's eager flow makes it (nn.LSTM with
// a static qconfig, prepared into the quantizable LSTM, calibrated, converted): random cases,
// the bound propagated through every quantized point of every step, and fixture readers.
//
// The bound. Every point of a cell quantizes a value y computed from quantized operands
// (core/float/static_lstm.h). Carry, per element of every quantized value, a bound E (real
// units) on how far the other side's dequantized value can lie from the reference's. At a
// point, both sides' y lie within D of y_c (computed in double from the reference's operands):
//   D = (how far the operands may differ, through the op) + (each side's own float or
//       fixed-point error computing y) + (what an engine loses by design)
// and both outputs are then quantizations of values in [y_c - D, y_c + D]; quantization is
// monotone, so
//   E_out = dequantize(quantize(y_c + D')) - dequantize(quantize(y_c - D')),
// D' = D + 4 eps |y_c| + 2^-15 s (either side's float step onto the grid: the multiply by 1/s,
// and a zero point added in float, oneDNN's epilogue and QNNPACK's tanh table), zero whenever no
// rounding boundary (and no clamp) lies within D' of y_c. Per op:
//   Linear  y = sum_k w_k x_k + b     D = sum_k |w_k| E_k + 2 (K + 4) eps M + s_x s_w / 2 (qnnpack's
//                                         int32 bias) + int16 pair saturation (onednn's avx2 path,
//                                         its largest over the inputs' possible integers); infinite
//                                         where qnnpack's int32 bias may overflow (an input scale
//                                         of eps: a calibration that saw one value)
//   add     y = a + b                 D = E_a + E_b + 8 eps (|a| + |b| + |y|) + QNNPACK's multiplier
//                                         error (22-bit multipliers, on qnnpack)
//   mul     y = a b                   D = |a| E_b + |b| E_a + E_a E_b + 8 eps (|a b| + |y|)
//   sigmoid, tanh                     D = L (E_a + 2 eps |a|) + 8 eps |y|, L the largest slope on
//                                         [a - E_a, a + E_a]; where the point holds other qparams than
//                                         the op's (the seed's observers), the integer side rounds to the
//                                         op's first: + half its quantum
//   requantization (stack, cat)       D = E
// with M = sum_k |w_k| (|x_k| + E_k) + |b|. The bound of an output element is E_out in quanta.
#include "oracles/kinds/families.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "core/error.h"
#include "core/float/static_lstm.h"
#include "core/quantize.h"
#include "oracles/kinds/case_helpers.h"
#include "quantized/kernels/functional.h"
#include "quantized/libtorch/static_lstm.h"
#include "quantized/static/lstm.h"
#include "reference/static_lstm.h"

namespace qconform::kinds {
namespace {

constexpr double kEps = 1.1920928955078125e-07;

Case make_static_lstm_case(const CaseConfig& config, bool cell) {
  std::mt19937_64 rng(config.data_seed);
  RnnOptions o;
  o.mode = RnnMode::LSTM;
  o.cell = cell;
  o.input_size = config.get("input_size");
  o.hidden_size = config.get("wide") ? 64 + config.get("hidden_size") % 8 : config.get("hidden_size");
  if (!cell) {
    o.num_layers = config.get("num_layers");
    o.bidirectional = config.get("bidirectional") != 0;
    o.batch_first = config.get("batch_first") != 0;
  }
  o.bias = config.get("bias") != 0;
  const bool per_channel = config.get("per_channel") != 0;
  std::vector<RnnParameters> parameters = random_rnn_parameters(o, per_channel, rng);
  const int64_t T = cell ? 1 : config.get("seq_len"), B = config.get("batch");
  const Tensor x = random_input(cell ? Shape{B, o.input_size}
                                     : o.batch_first ? Shape{B, T, o.input_size} : Shape{T, B, o.input_size},
                                config.style, rng);
  FloatRNN lstm(o, std::move(parameters));
  lstm.qconfig = static_case_qconfig(config);
  // prepare (the custom-module swap), then one calibration batch; the QuantStub before it
  // observes the input.
  std::unique_ptr<ObservedLSTM> observed = prepare_static_lstm(lstm);
  auto input_observer = lstm.qconfig->activation();
  input_observer->observe(x);
  // A cell is calibrated on the states it meets along a sequence, not only the zero state
  // (whose f * c observes 0: an eps scale QNNPACK's add refuses against its neighbours').
  std::optional<HiddenState> state;
  if (cell) state = HiddenState{random_tensor({B, o.hidden_size}, 0.5f, rng), random_tensor({B, o.hidden_size}, 1.0f, rng)};
  (*observed)(ModuleInput{x, state});
  const QTensor xq = quantize(x, as_tensor_qparams(input_observer->calculate_qparams()));
  return {std::move(observed), ModuleInput{xq, std::nullopt}};
}

// The module a static conversion starts from: what prepare and calibration leave.
const ObservedLSTM& observed_lstm(const Module& m) {
  const auto* observed = dynamic_cast<const ObservedLSTM*>(&m);
  if (!observed)
    throw Error("static.LSTM and static.LSTMCell convert the quantizable LSTM (or cell) made of nn.LSTM (or "
                "nn.LSTMCell) and calibrated, not " + m.name());
  return *observed;
}

// --- the bound ---------------------------------------------------------------------------------

// A quantized value of the reference with, per element, the bound E (real units) on the
// other side's distance from it.
struct Bounded {
  QTensor q;
  std::vector<double> e;
};

double dequantized(int64_t q, const QuantParams& p) { return (static_cast<double>(q) - p.zero_point()) * p.scale(); }

// E_out for y_c +- D on the grid of `p`: the distance between the quantizations of both ends.
double spread(double y, double d, const QuantParams& p) {
  // The quantizations of both ends, in double: monotone and saturating at the range's ends.
  // Either side's float step onto the grid moves a value a little more: x * (1.0f / s) by
  // 2 eps |x|, and a zero point added in float (oneDNN's epilogue, QNNPACK's tanh table's 128)
  // by half an ulp of 256 quanta, 2^-16 s.
  const double widened = d + 4 * kEps * std::abs(y) + std::ldexp(p.scale(), -15);
  const auto level = [&](double v) {
    const double q = std::nearbyint(v / p.scale()) + static_cast<double>(p.zero_point());
    return static_cast<int64_t>(std::clamp(q, static_cast<double>(p.quant_min), static_cast<double>(p.quant_max)));
  };
  if (!std::isfinite(widened)) return dequantized(p.quant_max, p) - dequantized(p.quant_min, p);
  return dequantized(level(y + widened), p) - dequantized(level(y - widened), p);
}

struct BoundOps {
  const ReferenceStaticLSTM* reference;
  Engine engine;
  bool saturating;  // an integer side sums u8 x s8 pairs in int16 (onednn's avx2 path)

  Bounded zeros(int64_t rows, int64_t cols) const { return {QuantizedSequenceOps{}.zeros(rows, cols), std::vector<double>(rows * cols, 0.0)}; }
  Bounded step(const Bounded& x, int64_t t) const {
    const int64_t n = x.q.sizes[1] * x.q.sizes[2];
    return {QuantizedSequenceOps{}.step(x.q, t), std::vector<double>(x.e.begin() + t * n, x.e.begin() + (t + 1) * n)};
  }
  // Requantizing a value within E of the reference's.
  Bounded requantize(const Bounded& v, const QuantParams& p) const {
    if (v.q.qparams == p) return v;
    Bounded out{requantized(v.q, p), std::vector<double>(v.e.size())};
    for (size_t i = 0; i < v.e.size(); ++i) {
      const double y = dequantized(v.q.values[i], v.q.qparams);
      // Both sides requantize equal integers alike: no error where there was none.
      out.e[i] = v.e[i] == 0 ? 0.0 : spread(y, v.e[i], p);
    }
    return out;
  }
  Bounded stack(const std::vector<Bounded>& parts) const {
    Bounded out{QTensor{parts.at(0).q.sizes, {}, parts[0].q.qparams}, {}};
    out.q.sizes.insert(out.q.sizes.begin(), static_cast<int64_t>(parts.size()));
    for (const Bounded& part : parts) {
      const Bounded same = requantize(part, out.q.qparams);
      out.q.values.insert(out.q.values.end(), same.q.values.begin(), same.q.values.end());
      out.e.insert(out.e.end(), same.e.begin(), same.e.end());
    }
    return out;
  }
  Bounded cat_features(const Bounded& a, const Bounded& b) const {
    const Bounded b_same = requantize(b, a.q.qparams);
    Bounded out{QuantizedSequenceOps{}.cat_features(a.q, b.q), {}};
    const int64_t fa = a.q.sizes.back(), fb = b.q.sizes.back(), rows = a.q.numel() / fa;
    for (int64_t r = 0; r < rows; ++r) {
      out.e.insert(out.e.end(), a.e.begin() + r * fa, a.e.begin() + (r + 1) * fa);
      out.e.insert(out.e.end(), b_same.e.begin() + r * fb, b_same.e.begin() + (r + 1) * fb);
    }
    return out;
  }
  Bounded flatten_layers(const Bounded& s) const { return {QuantizedSequenceOps{}.flatten_layers(s.q), s.e}; }

  // A Linear point's bound: y = x W^T + b on (B, K) -> (B, N) (the integers: the reference's).
  Bounded linear(const Bounded& x, const QTensor& w, const std::optional<Tensor>& bias, const QuantParams& out) const {
    const int64_t B = x.q.sizes[0], K = x.q.sizes[1], N = w.sizes[0];
    const Tensor wf = dequantize(w);
    const QuantParams& xp = x.q.qparams;
    std::vector<double> xd(B * K);  // x dequantized once, not once per output channel
    for (int64_t i = 0; i < B * K; ++i) xd[i] = dequantized(x.q.values[i], xp);
    Bounded y{QTensor{{B, N}, std::vector<int32_t>(B * N), out}, std::vector<double>(B * N)};
    for (int64_t b = 0; b < B; ++b)
      for (int64_t n = 0; n < N; ++n) {
        double sum = bias ? bias->data[n] : 0.0, magnitude = bias ? std::abs(bias->data[n]) : 0.0, spread_in = 0;
        double saturation = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double wk = wf.data[n * K + k], xk = xd[b * K + k];
          const double ek = x.e[b * K + k];
          sum += wk * xk;
          magnitude += std::abs(wk) * (std::abs(xk) + ek);
          spread_in += std::abs(wk) * ek;
        }
        if (saturating)  // u8 x s8 pairs (k, k + 1), each u8 anywhere its bound allows
          for (int64_t k = 0; k < K; k += 2) {
            double lo = 0, hi = 0;
            for (int64_t j = k; j < std::min(k + 2, K); ++j) {
              const double delta = std::ceil(x.e[b * K + j] / xp.scale() - 1e-9);
              const double q_lo = std::max<double>(xp.quant_min, x.q.values[b * K + j] - delta);
              const double q_hi = std::min<double>(xp.quant_max, x.q.values[b * K + j] + delta);
              const double wq = w.values[n * K + j];
              lo += std::min(wq * q_lo, wq * q_hi);
              hi += std::max(wq * q_lo, wq * q_hi);
            }
            saturation += std::max({0.0, hi - 32767.0, -32768.0 - lo}) * xp.scale() * w.qparams.scale(n);
          }
        const double unit = xp.scale() * w.qparams.scale(n);  // one accumulator step
        const double bias_rounding = engine == Engine::QNNPACK ? unit / 2 : 0.0;
        // qnnpack's int32 bias, bias / unit, plus the accumulator can leave int32, and then
        // clamps and wraps as PyTorch 1.13 does (the static Linear rows): no bound but the range.
        const bool overflow = engine == Engine::QNNPACK && bias && (std::abs(bias->data[n]) / unit + 255.0 * 128.0 * K >= 2147483647.0);
        const double d = overflow ? std::numeric_limits<double>::infinity()
                                  : spread_in + 2 * (K + 4) * kEps * magnitude + bias_rounding + saturation + 1e-30;
        y.e[b * N + n] = spread(sum, d, out);
      }
    return y;
  }

  // An elementwise point of one or two operands.
  Bounded point(LstmPoint p, const QuantParams& out, const Bounded& a, const Bounded* b) const {
    Bounded y{QTensor{a.q.sizes, std::vector<int32_t>(a.q.values.size()), out}, std::vector<double>(a.e.size())};
    std::optional<kernels::QnnpackAddParams> qnnpack_add;
    const bool add = p == LstmPoint::Gates || p == LstmPoint::CellState;
    if (add && engine == Engine::QNNPACK) {
      try {
        qnnpack_add = kernels::qnnpack_add_params(a.q.qparams.scale(), b->q.qparams.scale(), out.scale());
      } catch (const Error&) {  // QNNPACK refuses these scales: both sides refuse the call alike
      }
    }
    for (size_t i = 0; i < y.e.size(); ++i) {
      const double av = dequantized(a.q.values[i], a.q.qparams), ea = a.e[i];
      const double bv = b ? dequantized(b->q.values[i], b->q.qparams) : 0.0, eb = b ? b->e[i] : 0.0;
      double value = 0, d = 0;
      switch (p) {
        case LstmPoint::Gates:
        case LstmPoint::CellState: {
          value = av + bv;
          d = ea + eb + 8 * kEps * (std::abs(av) + std::abs(bv) + std::abs(value));
          if (qnnpack_add) {  // what 22-bit multipliers lose, with the operands anywhere in their bounds
            const double unit = std::ldexp(1.0, static_cast<int>(qnnpack_add->shift));
            const double qa = std::abs(av) / a.q.qparams.scale() + ea / a.q.qparams.scale();
            const double qb = std::abs(bv) / b->q.qparams.scale() + eb / b->q.qparams.scale();
            d += (std::abs(qnnpack_add->a_multiplier - a.q.qparams.scale() / out.scale() * unit) * qa +
                  std::abs(qnnpack_add->b_multiplier - b->q.qparams.scale() / out.scale() * unit) * qb) /
                 unit * out.scale();
          }
          break;
        }
        case LstmPoint::FgateCx:
        case LstmPoint::IgateCgate:
        case LstmPoint::Hidden:
          value = av * bv;
          d = std::abs(av) * eb + std::abs(bv) * ea + ea * eb + 8 * kEps * (std::abs(value) * 2);
          break;
        default: {
          const bool tanh = p == LstmPoint::CellGate || p == LstmPoint::TanhCell;
          const double lo = av - ea - 2 * kEps * std::abs(av), hi = av + ea + 2 * kEps * std::abs(av);
          const double nearest = lo > 0 ? lo : hi < 0 ? hi : 0.0;  // the slope is largest nearest 0
          const double s = tanh ? std::tanh(nearest) : 1.0 / (1.0 + std::exp(-nearest));
          const double slope = tanh ? 1 - s * s : s * (1 - s);
          value = tanh ? std::tanh(av) : 1.0 / (1.0 + std::exp(-av));
          const QuantParams own = fixed_lstm_qparams(tanh ? LstmPoint::CellGate : LstmPoint::InputGate);
          d = slope * (ea + 2 * kEps * std::abs(av)) + 8 * kEps * std::abs(value);
          if (!(out == own)) d += own.scale() / 2;
        }
      }
      y.e[i] = spread(value, d, out);
    }
    return y;
  }

  std::pair<Bounded, Bounded> cell(int64_t set, const Bounded& x, const Bounded& h, const Bounded& c) const {
    const StaticLstmCell& cell = reference->cells().at(set);
    const StaticLstmCellQParams& q = cell.qparams;
    const int64_t B = x.q.sizes[0], H = reference->options().hidden_size;
    // The reference's own integers at every point (its cell, step by step), with the bounds.
    const auto with_reference = [](Bounded bound, QTensor q) {
      bound.q = std::move(q);
      return bound;
    };
    const Bounded ig = with_reference(linear(x, cell.w_ih, cell.b_ih, q[LstmPoint::IGates]),
                                      reference->linear_point(set, LstmPoint::IGates, x.q));
    const Bounded hg = with_reference(linear(h, cell.w_hh, cell.b_hh, q[LstmPoint::HGates]),
                                      reference->linear_point(set, LstmPoint::HGates, h.q));
    const auto quantized_point = [&](LstmPoint p, const std::vector<const Bounded*>& operands) {
      std::vector<Tensor> values;
      for (const Bounded* o : operands) values.push_back(dequantize(o->q));
      return with_reference(point(p, q[p], *operands[0], operands.size() > 1 ? operands[1] : nullptr),
                            quantize(ReferenceStaticLSTM::point_value(p, values), q[p]));
    };
    const Bounded gates = quantized_point(LstmPoint::Gates, {&ig, &hg});
    const auto chunk = [&](int64_t k) {
      Bounded out{QTensor{{B, H}, {}, gates.q.qparams}, {}};
      for (int64_t b = 0; b < B; ++b) {
        const auto from = b * 4 * H + k * H;
        out.q.values.insert(out.q.values.end(), gates.q.values.begin() + from, gates.q.values.begin() + from + H);
        out.e.insert(out.e.end(), gates.e.begin() + from, gates.e.begin() + from + H);
      }
      return out;
    };
    const Bounded c0 = chunk(0), c1 = chunk(1), c2 = chunk(2), c3 = chunk(3);
    const Bounded in = quantized_point(LstmPoint::InputGate, {&c0});
    const Bounded forget = quantized_point(LstmPoint::ForgetGate, {&c1});
    const Bounded cell_gate = quantized_point(LstmPoint::CellGate, {&c2});
    const Bounded out = quantized_point(LstmPoint::OutputGate, {&c3});
    const Bounded fc = quantized_point(LstmPoint::FgateCx, {&forget, &c});
    const Bounded igc = quantized_point(LstmPoint::IgateCgate, {&in, &cell_gate});
    const Bounded cy = quantized_point(LstmPoint::CellState, {&fc, &igc});
    const Bounded tanh_cy = quantized_point(LstmPoint::TanhCell, {&cy});
    return {quantized_point(LstmPoint::Hidden, {&out, &tanh_cy}), cy};
  }
};

std::vector<double> static_lstm_bounds(const ReferenceStaticLSTM& reference, const ModuleInput& input,
                                       const RecurrentBoundModel& model) {
  const RnnOptions& o = reference.options();
  BoundOps ops{&reference, model.engine, model.saturating_sides > 0};
  std::vector<double> bounds;
  if (o.cell) {  // h' (the output), then h' and c'
    const QTensor& x = expect_static_lstm_input(input, o, reference.name());
    const Bounded zeros = ops.zeros(x.sizes[0], o.hidden_size);
    const auto [h, c] = ops.cell(0, Bounded{x, std::vector<double>(x.values.size(), 0.0)}, zeros, zeros);
    for (const Bounded* part : {&h, &h, &c})
      for (double e : part->e) bounds.push_back(e / part->q.qparams.scale() + 1e-6);
    return bounds;
  }
  const QTensor x = to_time_major(expect_static_lstm_input(input, o, reference.name()), o.batch_first);
  const StaticLstmRun<Bounded> run =
      run_static_lstm(o, ops, Bounded{x, std::vector<double>(x.values.size(), 0.0)}, x.sizes[0], x.sizes[1]);
  const auto append = [&](const Bounded& v, bool time_major_output) {
    Bounded laid_out = v;
    if (time_major_output && o.batch_first) {  // the error of each element moves with it
      QTensor index{v.q.sizes, std::vector<int32_t>(v.e.size()), v.q.qparams};
      for (size_t i = 0; i < index.values.size(); ++i) index.values[i] = static_cast<int32_t>(i);
      const QTensor moved = from_time_major(index, true);
      for (size_t i = 0; i < moved.values.size(); ++i) laid_out.e[i] = v.e[moved.values[i]];
    }
    for (double e : laid_out.e) bounds.push_back(e / v.q.qparams.scale() + 1e-6);
  };
  append(run.output, true);
  append(run.h_n, false);
  append(run.c_n, false);
  return bounds;
}

// Every output element's count (output, h_n, c_n), for the rows that need no bound terms.
std::vector<OutputSensitivity> static_lstm_elements(const Module& reference, const ModuleInput& input) {
  const RnnOptions& o = dynamic_cast<const ReferenceStaticLSTM&>(reference).options();
  const QTensor& x = expect_static_lstm_input(input, o, reference.name());
  if (o.cell) return std::vector<OutputSensitivity>(3 * x.sizes[0] * o.hidden_size);
  const int64_t T = o.batch_first ? x.sizes[1] : x.sizes[0], B = o.batch_first ? x.sizes[0] : x.sizes[1];
  const int64_t H = o.hidden_size, D = o.directions();
  return std::vector<OutputSensitivity>(T * B * D * H + 2 * o.parameter_sets() * B * H);
}

// --- fixtures ---------------------------------------------------------------------------------

RnnOptions spec_options(const ModuleSpec& spec) {
  RnnOptions o;
  o.input_size = spec.integer("input_size");
  o.hidden_size = spec.integer("hidden_size");
  o.num_layers = spec.integer("num_layers");
  o.bias = spec.flag("bias");
  o.batch_first = spec.flag("batch_first");
  o.bidirectional = spec.flag("bidirectional");
  o.validate();
  return o;
}

// The cells a fixture's archive held (oracles/fixture_import.cc read_static_lstm). qnnpack
// unpacks a Linear without bias with zeros: for a bias=False LSTM those are no bias.
std::vector<StaticLstmCell> spec_cells(const ModuleSpec& spec, const RnnOptions& o) {
  std::vector<StaticLstmCell> cells;
  for (int64_t set = 0; set < o.parameter_sets(); ++set) {
    const std::string prefix = static_lstm_cell_prefix(o, set);
    StaticLstmCell cell;
    const auto bias = [&](const std::string& name) {
      std::optional<Tensor> b = spec_bias(spec, prefix + name + ".bias");
      if (!o.bias && b && std::all_of(b->data.begin(), b->data.end(), [](float v) { return v == 0.0f; })) b.reset();
      return b;
    };
    cell.w_ih = spec_weight(spec, prefix + "igates.weight");
    cell.w_hh = spec_weight(spec, prefix + "hgates.weight");
    cell.b_ih = bias("igates");
    cell.b_hh = bias("hgates");
    for (LstmPoint point : {LstmPoint::IGates, LstmPoint::HGates, LstmPoint::Gates, LstmPoint::FgateCx,
                            LstmPoint::IgateCgate, LstmPoint::CellState, LstmPoint::Hidden}) {
      const std::string at = prefix + to_string(point);
      try {
        cell.qparams[point] =
            QuantParams::per_tensor(DType::QUInt8, spec.number(at + ".scale"), spec.integer(at + ".zero_point"));
      } catch (const Error& e) {
        throw Error(spec.kind + " fixture: " + at + " (scale, zero_point): " + e.what());
      }
    }
    cells.push_back(std::move(cell));
  }
  check_static_lstm_cells(o, cells, spec.kind + " fixture");
  return cells;
}

}  // namespace

ModuleKind static_lstm_kind(bool cell) {
  ModuleKind kind;
  kind.key = cell ? "static.LSTMCell" : "static.LSTM";
  kind.float_name = cell ? "LSTMCell" : "LSTM";
  kind.family = Family::Static;
  kind.engine_op = EngineOp::StaticLSTM;
  kind.structure = Structure::Recurrent;
  const std::vector<Engine> engines = static_engines(EngineOp::StaticLSTM);
  kind.implementations.push_back({Implementation::Reference,
                                  cell ? "QuantizedLSTMCell(Reference)" : "QuantizedLSTM(Reference)", {},
                                  [](const Module& m, const EngineProfile&) -> std::unique_ptr<Module> {
                                    return ReferenceStaticLSTM::from_observed(observed_lstm(m));
                                  },
                                  nullptr});
  kind.implementations.push_back(
      {Implementation::Quantized, cell ? "QuantizableLSTMCell" : "QuantizedLSTM", engines,
       [](const Module& m, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedStaticLSTM::from_observed(observed_lstm(m), e);
       },
       [](const Module& r, const EngineProfile& e) -> std::unique_ptr<Module> {
         return QuantizedStaticLSTM::from_reference(dynamic_cast<const ReferenceStaticLSTM&>(r), e);
       }});
  kind.implementations.push_back(
      {Implementation::LibTorch, cell ? "QuantizableLSTMCell" : "QuantizedLSTM", engines,
       [](const Module& m, const EngineProfile& e) {
         return libtorch_static_lstm_from_observed(observed_lstm(m), e);
       },
       [](const Module& r, const EngineProfile& e) {
         return libtorch_static_lstm_from_reference(dynamic_cast<const ReferenceStaticLSTM&>(r), e);
       },
       [](const Module& m, const EngineProfile& e) {
         return libtorch_static_lstm_from_observed(observed_lstm(m), e, /*fresh_prepack=*/true);
       }});
  if (!cell)
    kind.case_parameters = {
        {"seq_len", 1, 8, "time steps"},
        {"num_layers", 1, 2, "stacked layers"},
        {"bidirectional", 0, 1, "1: both directions"},
        {"batch_first", 0, 1, "1: input (batch, seq, feature)"},
    };
  const std::vector<CaseParameter> shared{
      {"batch", 1, 3, "sequences (rows of a cell's input)"},
      {"input_size", 1, 12, "features of the input"},
      {"hidden_size", 1, 16, "features of the hidden state"},
      {"wide", 0, 1, "1: hidden_size 64 to 71 instead (ATen's vector blocks within a gate's row)"},
      {"bias", 0, 1, "1: the Linears have biases"},
      {"per_channel", 0, 1, "1: per-channel weights"},
      {"full_range", 0, 1, "1: activations observed on all 8 bits, else 7 (default_qconfig)"},
  };
  kind.case_parameters.insert(kind.case_parameters.end(), shared.begin(), shared.end());
  kind.make_case = [cell](const CaseConfig& config) { return make_static_lstm_case(config, cell); };
  kind.observed_at_prepare = false;       // no_observer_set: the quantizable LSTM observes its parts
  kind.reference_between_stubs = false;  // its reference takes and gives quantized tensors
  // PyTorch 1.13's custom-module config maps nn.LSTM only: a lone cell is made by
  // nnqa.LSTMCell.from_float, prepared and converted by hand; no eager flow swaps it in.
  kind.eager_mapped = !cell;
  // Across cases the same cache makes LibTorch's onednn LSTM answer differently inside long runs
  // (about 1 model in 5, scripts/onednn_static_lstm_history.py): every such case is judged on a
  // fresh process (0.3 s each here), not only the first five of a property.
  kind.fresh_process_reruns = 1000;
  kind.sensitivity = static_lstm_elements;
  // The output's elements at their step (a reverse direction's counted from the end, as it
  // runs); h_n and c_n have none.
  if (!cell) kind.sequence_steps = [](const Module& reference, const ModuleInput& input) {
    const RnnOptions& o = dynamic_cast<const ReferenceStaticLSTM&>(reference).options();
    const QTensor& x = expect_static_lstm_input(input, o, reference.name());
    const int64_t T = o.batch_first ? x.sizes[1] : x.sizes[0], B = o.batch_first ? x.sizes[0] : x.sizes[1];
    const int64_t H = o.hidden_size, D = o.directions();
    std::vector<int64_t> steps;
    for (int64_t i = 0; i < T * B * D * H; ++i) {
      const int64_t t = o.batch_first ? (i / (D * H)) % T : i / (B * D * H);
      steps.push_back((i % (D * H)) / H == 0 ? t : T - 1 - t);
    }
    steps.resize(steps.size() + 2 * o.parameter_sets() * B * H, -1);
    return steps;
  };
  kind.recurrent_bounds = [](const Module& reference, const ModuleInput& input, const RecurrentBoundModel& model) {
    return static_lstm_bounds(dynamic_cast<const ReferenceStaticLSTM&>(reference), input, model);
  };
  // PyTorch 1.13's onednn quantized::linear keeps the zero-point compensation (zp x row sums
  // of the weight) of the first call of a shape with a nonzero input zero point and applies it
  // to later calls of that shape, whatever their weight or zero point
  // (scripts/onednn_static_lstm_history.py). Within one forward of the LSTM, two Linears of one
  // shape meet whenever input_size == hidden_size, in every layer after the first of a
  // unidirectional LSTM (input D H = H), and between the two directions: LibTorch's answer is
  // then not PyTorch's definition.
  kind.libtorch_defect = [](const Module& reference, const ModuleInput&, Engine engine,
                            const std::string&) -> std::optional<std::string> {
    const RnnOptions& o = dynamic_cast<const ReferenceStaticLSTM&>(reference).options();
    if (engine != Engine::ONEDNN) return std::nullopt;
    if (o.bidirectional || o.num_layers > 1 || o.input_size == o.hidden_size)
      return "onednn's quantized::linear applies the zero-point compensation cached for an earlier call of the "
             "same shapes (two Linears of one shape in this LSTM: bidirectional, stacked, or input_size == "
             "hidden_size)";
    return std::nullopt;
  };
  if (!cell) {  // scripted torch.ao.nn.quantized.LSTM archives (a lone quantizable cell is not one)
    kind.reference_from_spec = [](const ModuleSpec& spec) -> std::unique_ptr<Module> {
      const RnnOptions o = spec_options(spec);
      return std::make_unique<ReferenceStaticLSTM>(o, spec_cells(spec, o));
    };
    kind.quantized_from_spec = [](const ModuleSpec& spec, const EngineProfile& engine) -> std::unique_ptr<Module> {
      const RnnOptions o = spec_options(spec);
      return std::make_unique<QuantizedStaticLSTM>(o, spec_cells(spec, o), engine);
    };
  }
  kind.weight_shape = [](const Module& reference) {
    return dynamic_cast<const ReferenceStaticLSTM&>(reference).cells().at(0).w_ih.sizes;
  };
  kind.with_weight_qparams = [](const Module& reference, const QuantParams& qparams) -> std::unique_ptr<Module> {
    const auto& lstm = dynamic_cast<const ReferenceStaticLSTM&>(reference);
    std::vector<StaticLstmCell> cells = lstm.cells();
    for (StaticLstmCell& cell : cells) {  // per-channel qparams along axis 0 fit both (gate rows)
      cell.w_ih = quantize(dequantize(cell.w_ih), qparams);
      cell.w_hh = quantize(dequantize(cell.w_hh), qparams);
    }
    return std::make_unique<ReferenceStaticLSTM>(lstm.options(), std::move(cells));
  };
  return kind;
}

}  // namespace qconform::kinds
