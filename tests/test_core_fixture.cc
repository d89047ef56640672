// The core against PyTorch itself: fixtures/core/observers.json was written by
// scripts/gen_core_fixture.py running PyTorch 1.13 over 205 tensors (constant, all-zero,
// single-element, huge and tiny ranges, exact rounding ties, ...). For every observer
// configuration and tensor, the scale must be the same float, the zero point the same
// value, and the quantized integers the same; PyTorch's errors must be errors here too.
#define BOOST_TEST_MODULE core_fixture
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/observers.h"
#include "core/qconfig.h"
#include <cstring>
#include "core/quantize.h"

using namespace qconform;
using nlohmann::json;

namespace {

const std::string kFixture = std::string(QCONFORM_SOURCE_DIR) + "/fixtures/core/observers.json";

const json& fixture() {
  static const json data = [] {
    std::ifstream in(kFixture);
    if (!in) throw std::runtime_error("cannot open " + kFixture);
    return json::parse(in);
  }();
  return data;
}

float hex_float(const json& value) { return std::strtof(value.get<std::string>().c_str(), nullptr); }

std::vector<float> hex_floats(const json& values) {
  std::vector<float> out;
  for (const auto& v : values) out.push_back(hex_float(v));
  return out;
}

Tensor tensor_at(int64_t id, bool second_batch) {
  const json& t = fixture()["tensors"][id];
  return Tensor(t["shape"].get<Shape>(), hex_floats(t[second_batch ? "second_batch" : "values"]));
}

std::unique_ptr<Observer> make_observer(const std::string& name, const json& args) {
  if (name == "qconfig") {  // an engine's default config, one of its two parts
    const Engine engine = engine_from_string(args["engine"]);
    const QConfig config = args["function"] == "get_default_qconfig"
                               ? get_default_qconfig(engine)
                               : get_default_qat_qconfig(engine, args["version"].get<int>());
    return args["part"] == "activation" ? config.activation() : config.weight();
  }
  ObserverOptions o;
  if (args.contains("dtype")) o.dtype = dtype_from_string(args["dtype"]);
  if (args.contains("qscheme")) o.qscheme = qscheme_from_string(args["qscheme"]);
  if (args.contains("reduce_range")) o.reduce_range = args["reduce_range"];
  if (args.contains("quant_min")) o.quant_min = args["quant_min"].get<int64_t>();
  if (args.contains("quant_max")) o.quant_max = args["quant_max"].get<int64_t>();
  if (args.contains("eps")) o.eps = hex_float(args["eps"]);
  if (args.contains("averaging_constant")) o.averaging_constant = hex_float(args["averaging_constant"]);
  if (args.contains("ch_axis")) o.ch_axis = args["ch_axis"];
  if (name == "MinMaxObserver") return std::make_unique<MinMaxObserver>(o);
  if (name == "MovingAverageMinMaxObserver") return std::make_unique<MovingAverageMinMaxObserver>(o);
  if (name == "PerChannelMinMaxObserver") return std::make_unique<PerChannelMinMaxObserver>(o);
  if (name == "MovingAveragePerChannelMinMaxObserver")
    return std::make_unique<MovingAveragePerChannelMinMaxObserver>(o);
  if (name == "HistogramObserver") {
    const int64_t bins = args.value("bins", 2048);
    return std::make_unique<HistogramObserver>(o, bins);
  }
  if (name == "FixedQParamsObserver")
    return std::make_unique<FixedQParamsObserver>(hex_float(args["scale"]), args["zero_point"].get<int64_t>());
  throw std::runtime_error("fixture names an unknown observer " + name);
}

// Checks one fixture result; returns a description of the first difference, or "".
std::string check_result(const json& config, const json& result) {
  const std::string name = config["observer"];
  const int64_t id = result["tensor"];
  auto observer = make_observer(name, config["args"]);
  auto* fake_quant = dynamic_cast<FakeQuantize*>(observer.get());
  QuantParams qp;
  Tensor fq_out;
  try {
    // FakeQuantize objects are called (forward); plain observers observe.
    const auto step = [&](const Tensor& x) {
      if (fake_quant) fq_out = fake_quant->forward(x);
      else observer->observe(x);
    };
    step(tensor_at(id, false));
    if (config["batches"] == 2) step(tensor_at(id, true));
    qp = observer->calculate_qparams();
  } catch (const Error& e) {
    if (result.contains("error")) return "";
    return std::string("threw \"") + e.what() + "\" where PyTorch succeeded";
  }
  if (result.contains("error"))
    return "succeeded where PyTorch failed with \"" + result["error"].get<std::string>() + "\"";

  const std::vector<float> scales = hex_floats(result["scale"]);
  if (scales.size() != qp.scales.size())
    return std::to_string(qp.scales.size()) + " scales, PyTorch " + std::to_string(scales.size());
  for (size_t c = 0; c < scales.size(); ++c) {
    if (static_cast<double>(scales[c]) != qp.scales[c]) {
      std::ostringstream out;
      out.precision(9);
      out << "scale[" << c << "] " << qp.scales[c] << ", PyTorch " << scales[c];
      return out.str();
    }
    const double zp = result["zero_point"][c].get<double>();
    if (zp != qp.zero_points[c])
      return "zero_point[" + std::to_string(c) + "] " + std::to_string(qp.zero_points[c]) +
             ", PyTorch " + std::to_string(zp);
  }
  if (result.contains("fq_out")) {
    if (!fake_quant) return "PyTorch's object is a FakeQuantize, ours is " + observer->name();
    const QuantParams forward = fake_quant->forward_qparams();
    const std::vector<float> forward_scales = hex_floats(result["forward_scale"]);
    for (size_t c = 0; c < forward_scales.size(); ++c) {
      if (static_cast<double>(forward_scales[c]) != forward.scales.at(c) ||
          result["forward_zero_point"][c].get<double>() != forward.zero_points.at(c))
        return "forward qparams[" + std::to_string(c) + "] differ";
    }
    const std::vector<float> expected = hex_floats(result["fq_out"]);
    for (size_t i = 0; i < expected.size(); ++i)
      if (std::memcmp(&expected[i], &fq_out.data.at(i), sizeof(float)) != 0)
        return "fake-quantized output[" + std::to_string(i) + "] " + std::to_string(fq_out.data[i]) +
               ", PyTorch " + std::to_string(expected[i]);
  }
  if (result.contains("q")) {
    const QTensor q = quantize(tensor_at(id, false), as_tensor_qparams(qp));
    const auto expected = result["q"].get<std::vector<int32_t>>();
    for (size_t i = 0; i < expected.size(); ++i)
      if (q.values.at(i) != expected[i])
        return "q[" + std::to_string(i) + "] " + std::to_string(q.values[i]) + ", PyTorch " +
               std::to_string(expected[i]);
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_CASE(fixture_was_written_by_pytorch_1_13) {
  BOOST_CHECK_EQUAL(fixture()["format"], "qconform-core-fixture/1");
  BOOST_CHECK_EQUAL(fixture()["torch_version"].get<std::string>().rfind("1.13", 0), 0u);
  BOOST_CHECK_GE(fixture()["tensors"].size(), 200u);
}

BOOST_AUTO_TEST_CASE(every_observer_matches_pytorch_bit_for_bit) {
  int64_t checked = 0, errors_expected = 0, mismatches = 0;
  std::map<std::string, int64_t> per_observer;
  for (const json& config : fixture()["observers"]) {
    for (const json& result : config["results"]) {
      const std::string difference = check_result(config, result);
      ++checked;
      errors_expected += result.contains("error");
      if (difference.empty()) {
        ++per_observer[config["observer"].get<std::string>()];
        continue;
      }
      if (++mismatches <= 10)
        BOOST_ERROR(config["observer"].get<std::string>() << " " << config["args"].dump() << " on tensor "
                    << result["tensor"] << " ("
                    << fixture()["tensors"][result["tensor"].get<int>()]["kind"].get<std::string>()
                    << "): " << difference << "  [fixture " << kFixture << "]");
    }
  }
  BOOST_TEST_MESSAGE(checked << " results checked (" << errors_expected << " of them PyTorch errors), "
                             << mismatches << " differ");
  for (const auto& [name, count] : per_observer) BOOST_TEST_MESSAGE("  " << name << ": " << count << " identical");
  BOOST_CHECK_EQUAL(mismatches, 0);
  BOOST_CHECK_GT(checked, 5000);
}

BOOST_AUTO_TEST_CASE(dynamic_qparams_match_pytorch) {
  int64_t mismatches = 0;
  for (const json& entry : fixture()["dynamic"]) {
    const Tensor x = tensor_at(entry["tensor"], false);
    float lo, hi;
    tensor_min_max(x, &lo, &hi);
    const QuantParams qp = choose_dynamic_qparams(lo, hi, 0, 255, entry["reduce_range"]);
    const double scale = std::strtod(entry["scale"].get<std::string>().c_str(), nullptr);
    if (qp.scale() != scale || qp.zero_point() != entry["zero_point"].get<int64_t>()) {
      if (++mismatches <= 10)
        BOOST_ERROR("tensor " << entry["tensor"] << " reduce_range=" << entry["reduce_range"] << ": scale "
                              << qp.scale() << " zp " << qp.zero_point() << ", PyTorch " << scale << " "
                              << entry["zero_point"]);
    }
  }
  BOOST_CHECK_EQUAL(mismatches, 0);
}
