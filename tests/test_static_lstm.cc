// The statically quantized LSTM against PyTorch itself and against its own specification:
//   - fixtures/core/static_lstm.json (scripts/gen_static_lstm_fixture.py: PyTorch 1.13's eager
//     flow on nn.LSTM, converted to torch.ao.nn.quantized.LSTM, and lone quantizable cells
//     converted by hand, each case in a fresh process):
//     its state_dict loads into the integer LSTM, which then gives PyTorch's output, h_n and
//     c_n integer for integer, and saves the same keys, versions and values back;
//   - the seed's individually observed parts (lstm_utils.py): observers per part, the same
//     configuration driving reference, integer and LibTorch, the reference within the bound
//     propagated through every point, the integer equal to LibTorch;
//   - the eager flow: prepare swaps nn.LSTM for the quantizable LSTM, convert for the quantized;
//   - bad input named, and what PyTorch 1.13's module cannot save refused.
#define BOOST_TEST_MODULE test_static_lstm
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/float/static_lstm.h"
#include "core/float/stubs.h"
#include "core/qconfig.h"
#include "core/quantize.h"
#include "oracles/eager.h"
#include "oracles/kinds/registry.h"
#include "quantized/libtorch/static_lstm.h"
#include "quantized/static/lstm.h"
#include "reference/static_lstm.h"
#include "tests/support.h"

using namespace qconform;
using nlohmann::json;

namespace {

const std::string kFixture = std::string(QCONFORM_SOURCE_DIR) + "/fixtures/core/static_lstm.json";

const json& fixture() {
  static const json data = [] {
    std::ifstream in(kFixture);
    if (!in) throw std::runtime_error("cannot open " + kFixture + " (scripts/gen_static_lstm_fixture.py writes it)");
    return json::parse(in);
  }();
  return data;
}

float hex_float(const json& v) { return std::strtof(v.get<std::string>().c_str(), nullptr); }

QTensor quantized(const json& t, DType dtype) {
  QTensor q;
  q.sizes = t["sizes"].get<std::vector<int64_t>>();
  q.values = t["values"].get<std::vector<int32_t>>();
  if (t.contains("scale")) {
    q.qparams = QuantParams::per_tensor(dtype, hex_float(t["scale"]), t["zero_point"].get<int64_t>());
  } else {
    std::vector<double> scales;
    for (const json& s : t["scales"]) scales.push_back(hex_float(s));
    q.qparams = QuantParams::per_channel(dtype, scales, t["zero_points"].get<std::vector<int64_t>>(),
                                         t["axis"].get<int64_t>());
  }
  return q;
}

StateValue value_of(const json& t, DType dtype = DType::QUInt8) {
  if (t.is_null()) return NoneValue{};
  if (t.contains("values")) return quantized(t, dtype);
  const std::vector<int64_t> sizes = t["sizes"].get<std::vector<int64_t>>();
  if (t.contains("ints")) return IntTensor{sizes, t["ints"].get<std::vector<int64_t>>(), false};
  std::vector<float> floats;
  for (const json& v : t["floats"]) floats.push_back(hex_float(v));
  return Tensor(sizes, floats);
}

StateDict pytorch_state_dict(const json& c) {
  StateDict state;
  for (const json& e : c["state_dict"]) {
    const std::string key = e["key"];
    if (e.contains("dtype")) {
      BOOST_REQUIRE(e["dtype"] == "torch.qint8");
      state.set(key, DType::QInt8);
    } else if (e.contains("tuple")) {
      state.set(key, StateTuple{value_of(e["tuple"][0], DType::QInt8), value_of(e["tuple"][1])});
    } else {
      state.set(key, value_of(e["tensor"]));
    }
  }
  for (const auto& [prefix, version] : c["versions"].items()) state.versions[prefix] = version.get<int64_t>();
  return state;
}

RnnOptions options_of(const json& c) {
  RnnOptions o;
  o.input_size = c["input_size"];
  o.hidden_size = c["hidden_size"];
  o.cell = c["num_layers"] == 0;  // a lone quantizable cell (nnqa.LSTMCell, converted)
  o.num_layers = o.cell ? 1 : c["num_layers"].get<int64_t>();
  o.bidirectional = c["bidirectional"];
  o.batch_first = c["batch_first"];
  o.bias = c["bias"];
  return o;
}

EngineProfile engine_of(const json& c) {
  const std::string path = c["int8_path"];
  return engine_profile_from_string(c["engine"].get<std::string>() + (path.empty() ? "" : ":" + path));
}

void check_equal(const QTensor& ours, const json& theirs, const std::string& what) {
  const QTensor expected = quantized(theirs, DType::QUInt8);
  BOOST_TEST((ours.sizes == expected.sizes), what << " shape");
  BOOST_TEST((ours.qparams == expected.qparams), what << " qparams " << ours.qparams.to_string() << " vs "
                                                    << expected.qparams.to_string());
  int64_t differing = 0;
  for (size_t i = 0; i < std::min(ours.values.size(), expected.values.size()); ++i)
    differing += ours.values[i] != expected.values[i];
  BOOST_TEST(differing == 0, what << ": " << differing << " of " << expected.values.size() << " integers differ");
}

void check_against_pytorch(Module& lstm, const json& c, const std::string& label) {
  const ModuleOutput out = lstm(ModuleInput{quantized(c["input"], DType::QUInt8), std::nullopt});
  BOOST_REQUIRE(out.quantized_hidden);
  check_equal(std::get<QTensor>(out.output), c["output"], label + " output");
  check_equal(out.quantized_hidden->h, c["h_n"], label + " h_n");
  check_equal(out.quantized_hidden->c, c["c_n"], label + " c_n");
}

// A float nn.LSTM with PyTorch's initialisation and a static qconfig, calibrated on `x`.
std::unique_ptr<ObservedLSTM> calibrated(const RnnOptions& o, const LstmPartObservers& parts, const Tensor& x,
                                         uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  const float k = 1.0f / std::sqrt(static_cast<float>(o.hidden_size));
  const auto init = [&](const Shape& shape) {
    Tensor t(shape);
    for (float& v : t.data) v = unit(rng) * k;
    return t;
  };
  std::vector<RnnParameters> parameters;
  for (int64_t set = 0; set < o.parameter_sets(); ++set)
    parameters.push_back({init({o.gate_size(), o.layer_input_size(set / o.directions())}),
                          init({o.gate_size(), o.hidden_size}), init({o.gate_size()}), init({o.gate_size()})});
  FloatRNN lstm(o, parameters);
  lstm.qconfig = get_default_qconfig(Engine::QNNPACK);
  auto observed = prepare_static_lstm(lstm, parts);
  (*observed)(ModuleInput{x, std::nullopt});
  return observed;
}

Tensor randn(const Shape& shape, uint64_t seed, float gain = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  Tensor t(shape);
  for (float& v : t.data) v = normal(rng) * gain;
  return t;
}

}  // namespace

BOOST_AUTO_TEST_CASE(fixture_was_written_by_pytorch_1_13) {
  BOOST_TEST(fixture()["torch_version"].get<std::string>().rfind("1.13", 0) == 0);
  BOOST_TEST(fixture()["cases"].size() >= 5u);
}

BOOST_AUTO_TEST_CASE(pytorchs_converted_lstm_loads_and_the_integer_lstm_gives_its_integers) {
  for (const json& c : fixture()["cases"]) {
    BOOST_TEST_CONTEXT("case " << c["name"].get<std::string>()) {
      const RnnOptions o = options_of(c);
      const StateDict theirs = pytorch_state_dict(c);
      QuantizedStaticLSTM integer(o, parse_static_lstm_state_dict(o, theirs, "QuantizedLSTM"), engine_of(c));
      check_against_pytorch(integer, c, "integer");
      // Saved back: PyTorch's keys in PyTorch's order, its _metadata versions, its values.
      const StateDict ours = integer.state_dict();
      BOOST_TEST((ours.keys() == theirs.keys()));
      BOOST_TEST((ours.versions == theirs.versions));
      BOOST_TEST((ours == theirs));
      BOOST_TEST(c["repr"].get<std::string>().rfind(integer.name() + "(", 0) == 0);
      // LibTorch's ops in this process, where no earlier call's cache can reach them: qnnpack.
      if (c["engine"] == "qnnpack") {
        auto libtorch = make_libtorch_static_lstm(o, parse_static_lstm_state_dict(o, theirs, "QuantizedLSTM"),
                                                  Engine::QNNPACK);
        check_against_pytorch(*libtorch, c, "libtorch");
        BOOST_TEST((libtorch->state_dict() == theirs));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(the_reference_of_pytorchs_lstm_is_within_the_propagated_bound) {
  const ModuleKind& kind = module_kind("static.LSTM");
  for (const json& c : fixture()["cases"]) {
    BOOST_TEST_CONTEXT("case " << c["name"].get<std::string>()) {
      const RnnOptions o = options_of(c);
      const std::vector<StaticLstmCell> cells = parse_static_lstm_state_dict(o, pytorch_state_dict(c), "QuantizedLSTM");
      ReferenceStaticLSTM reference(o, cells);
      QuantizedStaticLSTM integer(o, cells, engine_of(c));
      const ModuleInput input{quantized(c["input"], DType::QUInt8), std::nullopt};
      RecurrentBoundModel model;
      model.engine = engine_of(c).engine;
      const std::vector<double> bounds = kind.recurrent_bounds(reference, input, model);
      const ModuleOutput a = reference(input), b = integer(input);
      std::vector<int32_t> x = std::get<QTensor>(a.output).values, y = std::get<QTensor>(b.output).values;
      for (const auto* part : {&a.quantized_hidden->h, &a.quantized_hidden->c})
        x.insert(x.end(), part->values.begin(), part->values.end());
      for (const auto* part : {&b.quantized_hidden->h, &b.quantized_hidden->c})
        y.insert(y.end(), part->values.begin(), part->values.end());
      BOOST_REQUIRE(x.size() == bounds.size());
      int64_t beyond = 0;
      for (size_t i = 0; i < x.size(); ++i) beyond += std::abs(x[i] - y[i]) > bounds[i];
      BOOST_TEST(beyond == 0);
    }
  }
}

// lstm_utils.py's _get_lstm_with_individually_observed_parts: each part's observer replaced,
// sigmoid and tanh ones among them. The same observed LSTM converts to all three forms.
BOOST_AUTO_TEST_CASE(individually_observed_parts_drive_every_implementation) {
  RnnOptions o;
  o.input_size = 3;
  o.hidden_size = 5;
  o.num_layers = 2;
  const Tensor x = randn({6, 2, 3}, 7, 1.5f);
  ObserverOptions eight_bits;  // the seed's own choices are constructors; these differ from the qconfig's
  LstmPartObservers parts;
  parts.linear_output = min_max_observer(eight_bits);
  parts.cell_state = moving_average_min_max_observer(eight_bits);
  parts.hidden_state = min_max_observer(eight_bits);
  parts.sigmoid = fixed_qparams_observer(1.0f / 512.0f, 0);   // finer than the op's 1/256
  parts.tanh = fixed_qparams_observer(1.0f / 128.0f, 128);    // coarser than the op's 2/256
  auto observed = calibrated(o, parts, x, 11);
  const StaticLstmCellQParams q = observed->cell_qparams(1);
  BOOST_TEST(q[LstmPoint::InputGate].scale() == 1.0 / 512.0);
  BOOST_TEST(q[LstmPoint::CellGate].scale() == 1.0 / 128.0);
  BOOST_TEST(q[LstmPoint::TanhCell].scale() == 2.0 / 256.0);  // tanh(c') is not the seed's tanh part
  BOOST_TEST(q[LstmPoint::Gates].quant_max == 255);

  auto input_observer = get_default_qconfig(Engine::QNNPACK).activation();
  input_observer->observe(x);
  const ModuleInput input{quantize(x, as_tensor_qparams(input_observer->calculate_qparams())), std::nullopt};
  auto reference = ReferenceStaticLSTM::from_observed(*observed);
  auto integer = QuantizedStaticLSTM::from_observed(*observed, Engine::QNNPACK);
  auto libtorch = libtorch_static_lstm_from_observed(*observed, Engine::QNNPACK);
  const ModuleOutput r = (*reference)(input), i = (*integer)(input), l = (*libtorch)(input);
  BOOST_TEST((std::get<QTensor>(i.output) == std::get<QTensor>(l.output)));
  BOOST_TEST((i.quantized_hidden->c == l.quantized_hidden->c));
  // Within the bound, which adds the integer side's rounding to the op's own grid first.
  RecurrentBoundModel model;
  const std::vector<double> bounds = module_kind("static.LSTM").recurrent_bounds(*reference, input, model);
  const auto& a = std::get<QTensor>(r.output).values;
  const auto& b = std::get<QTensor>(i.output).values;
  for (size_t k = 0; k < a.size(); ++k) BOOST_TEST(std::abs(a[k] - b[k]) <= bounds[k], "output element " << k);

  // Observers equal to PyTorch 1.13's fixed qparams change nothing.
  LstmPartObservers pytorchs = parts;
  pytorchs.sigmoid = fixed_qparams_observer(1.0f / 256.0f, 0);
  pytorchs.tanh = fixed_qparams_observer(2.0f / 256.0f, 128);
  auto same = calibrated(o, pytorchs, x, 11);
  LstmPartObservers unset = parts;
  unset.sigmoid.reset();
  unset.tanh.reset();
  auto plain = calibrated(o, unset, x, 11);
  const ModuleOutput s = (*QuantizedStaticLSTM::from_observed(*same, Engine::QNNPACK))(input);
  const ModuleOutput p = (*QuantizedStaticLSTM::from_observed(*plain, Engine::QNNPACK))(input);
  BOOST_TEST((std::get<QTensor>(s.output) == std::get<QTensor>(p.output)));
  // torch.ao.nn.quantized.LSTM has no place for sigmoid or tanh qparams: saving refuses.
  testing::expect_error([&] { integer->state_dict(); }, "holds no sigmoid or tanh qparams");
  try {  // the reference keeps every point's qparams
    reference->state_dict();
  } catch (const Error& e) {
    BOOST_ERROR("the reference's state_dict: " << e.what());
  }
}

BOOST_AUTO_TEST_CASE(the_eager_flow_swaps_the_quantizable_and_then_the_quantized_lstm) {
  RnnOptions o;
  o.input_size = 4;
  o.hidden_size = 3;
  o.bidirectional = true;
  std::vector<RnnParameters> parameters;
  for (int64_t set = 0; set < 2; ++set)
    parameters.push_back({randn({12, 4}, 20 + set, 0.4f), randn({12, 3}, 30 + set, 0.4f), randn({12}, 40 + set, 0.1f),
                          randn({12}, 50 + set, 0.1f)});
  auto model = quant_wrapper(std::make_unique<FloatRNN>(o, parameters));
  model->qconfig = get_default_qconfig(Engine::QNNPACK);
  prepare(*model);
  BOOST_TEST(model->child("module").name() == "QuantizableLSTM");
  BOOST_TEST(!model->child("module").observer_hook_id.has_value());  // no_observer_set
  const Tensor x = randn({5, 2, 4}, 3);
  (*model)(ModuleInput{x, std::nullopt});
  // The same calibration on the prepared module alone, converted directly.
  const auto& observed = dynamic_cast<const ObservedLSTM&>(model->child("module"));
  auto direct = QuantizedStaticLSTM::from_observed(observed, Engine::QNNPACK);
  const QuantParams input_qparams = as_tensor_qparams(model->child("quant").activation_post_process->calculate_qparams());
  const ModuleOutput expected = (*direct)(ModuleInput{quantize(x, input_qparams), std::nullopt});
  convert(*model, {Implementation::Quantized, Engine::QNNPACK});
  BOOST_TEST(model->child("module").name() == "QuantizedLSTM");
  BOOST_TEST(model->child("quant").name() == "Quantize");
  const ModuleOutput converted =
      model->child("module")(ModuleInput{quantize(x, input_qparams), std::nullopt});
  BOOST_TEST((std::get<QTensor>(converted.output) == std::get<QTensor>(expected.output)));
}

BOOST_AUTO_TEST_CASE(bad_input_is_named) {
  RnnOptions o;
  o.input_size = 3;
  o.hidden_size = 2;
  const Tensor x = randn({4, 1, 3}, 5);
  auto observed = calibrated(o, {}, x, 3);
  const QTensor q = quantize(x, QuantParams::per_tensor(DType::QUInt8, 0.05, 128));
  std::vector<std::unique_ptr<Module>> modules;
  modules.push_back(ReferenceStaticLSTM::from_observed(*observed));
  modules.push_back(QuantizedStaticLSTM::from_observed(*observed, Engine::QNNPACK));
  modules.push_back(libtorch_static_lstm_from_observed(*observed, Engine::QNNPACK));
  for (auto& m : modules) {
    testing::expect_error([&] { (*m)(ModuleInput{x, std::nullopt}); }, "expects a quantized (quint8) input tensor");
    const QTensor wide = quantize(randn({4, 1, 5}, 6), q.qparams);
    testing::expect_error([&] { (*m)(ModuleInput{wide, std::nullopt}); },
                          "input.size(-1) must be equal to input_size. Expected 3, got 5");
    testing::expect_error([&] { (*m)(ModuleInput{q, HiddenState{Tensor({1, 1, 2}), Tensor({1, 1, 2})}}); },
                          "an initial state is not supported");
  }
  // A float LSTM that was never prepared is not what a static conversion takes.
  FloatRNN plain(o, observed->parameters());
  testing::expect_error([&] { convert_from_float(module_kind("static.LSTM"), plain, {Implementation::Quantized, Engine::QNNPACK}); },
                        "convert the quantizable LSTM (or cell) made of nn.LSTM");
  // A state_dict from another LSTM: the key that is missing is named.
  QuantizedStaticLSTM integer(o, static_lstm_cells(*observed), Engine::QNNPACK);
  StateDict state = integer.state_dict();
  StateDict truncated;
  for (const auto& [key, value] : state.entries())
    if (key != "layers.0.layer_fw.cell.gates.scale") truncated.set(key, value);
  testing::expect_error([&] { integer.load_state_dict(truncated); }, "layers.0.layer_fw.cell.gates.scale");
}
