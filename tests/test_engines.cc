// The engine table against the engines themselves: for dynamic Linear, every weight
// configuration below is accepted or rejected by the table exactly as LibTorch's qnnpack
// and onednn accept or reject it live, with the same message (rejection parity).
#define BOOST_TEST_MODULE engines
#include <boost/test/unit_test.hpp>

#include "core/engines.h"
#include "core/quantize.h"
#include "quantized/libtorch/dynamic_linear.h"
#include "quantized/libtorch/engine.h"
#include "oracles/checks.h"
#include "quantized/dynamic/linear.h"
#include "tests/support.h"

using namespace qconform;

namespace {

struct WeightCase {
  std::string name;
  QuantParams qparams;
};

std::vector<WeightCase> weight_cases() {
  return {
      {"qint8 per-tensor, zero point 0", QuantParams::per_tensor(DType::QInt8, 0.02, 0)},
      {"qint8 per-tensor, zero point 3", QuantParams::per_tensor(DType::QInt8, 0.02, 3)},
      {"qint8 per-channel, zero points 0", QuantParams::per_channel(DType::QInt8, {0.01, 0.02, 0.03, 0.04}, {0, 0, 0, 0}, 0)},
      {"qint8 per-channel, zero point 1 at index 1", QuantParams::per_channel(DType::QInt8, {0.01, 0.02, 0.03, 0.04}, {0, 1, -2, 0}, 0)},
      {"quint8 per-tensor, zero point 3", QuantParams::per_tensor(DType::QUInt8, 0.02, 3)},
      {"float16", QuantParams::float16()},
  };
}

}  // namespace

BOOST_AUTO_TEST_CASE(debian_libtorch_has_qnnpack_and_onednn) {
  BOOST_CHECK(libtorch_has_engine(Engine::QNNPACK));
  BOOST_CHECK(libtorch_has_engine(Engine::ONEDNN));
  BOOST_CHECK(!libtorch_has_engine(Engine::FBGEMM));
}

std::string outcome(const std::function<std::unique_ptr<Module>()>& build, const Tensor& input) {
  return build_and_call(build, ModuleInput{input, std::nullopt});
}

BOOST_AUTO_TEST_CASE(dynamic_linear_rejections_match_libtorch_live) {
  const Tensor float_weight(Shape{4, 6}, {0.1f, -0.2f, 0.3f, 0.05f, -0.5f, 0.7f, 0.2f, 0.2f, -0.1f, 0.0f, 0.4f, -0.3f,
                                         0.6f, -0.6f, 0.1f, 0.1f, 0.2f, -0.2f, 0.3f, 0.0f, -0.1f, 0.5f, 0.25f, -0.05f});
  const Tensor bias(Shape{4}, {0.1f, 0.2f, 0.3f, 0.4f});
  const Tensor input(Shape{2, 6}, {1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6});
  int accepted = 0, rejected = 0;
  for (Engine engine : libtorch_engines()) {
    for (const auto& c : weight_cases()) {
      BOOST_TEST_CONTEXT(to_string(engine) << ": " << c.name) {
        const QTensor weight = quantize(float_weight, c.qparams);
        const auto rejection = weight_rejection(engine, EngineOp::DynamicLinear, c.qparams);
        const std::string table = rejection ? to_string(rejection->step) + ": " + rejection->message : "accepted";
        const std::string live = outcome([&] { return make_libtorch_dynamic_linear(weight, bias, engine); }, input);
        BOOST_CHECK_EQUAL(table, live);
        if (c.qparams.dtype != DType::Float16) {  // fp16 integer path: issue 5
          const std::string ours = outcome(
              [&]() -> std::unique_ptr<Module> { return std::make_unique<DynamicQuantizedLinear>(weight, bias, engine); }, input);
          BOOST_CHECK_EQUAL(ours, live);
        }
        (rejection ? rejected : accepted) += 1;
      }
    }
  }
  // Both outcomes must occur, or the comparison proves nothing.
  BOOST_CHECK_GT(accepted, 0);
  BOOST_CHECK_GT(rejected, 0);
}

BOOST_AUTO_TEST_CASE(both_engines_reject_fp16_and_accept_per_channel) {
  for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
    BOOST_TEST_CONTEXT(to_string(engine)) {
      const EngineOpRule& rule = engine_rule(engine, EngineOp::DynamicLinear);
      BOOST_CHECK(!rule.accepts_fp16_weights);
      BOOST_CHECK(rule.accepts_per_channel_weights);
      BOOST_CHECK(rule.verified_live);
    }
  }
  BOOST_CHECK(engine_rule(Engine::FBGEMM, EngineOp::DynamicLinear).accepts_fp16_weights);
}

BOOST_AUTO_TEST_CASE(the_printed_table_has_every_engine) {
  const std::string text = engine_table_text();
  for (Engine e : all_engines()) BOOST_CHECK(text.find(to_string(e)) != std::string::npos);
  BOOST_CHECK(text.find("quantized::linear_prepack_fp16 is currently not supported by QNNPACK") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(empty_output_shapes_match_libtorch_live) {
  const QTensor weight = quantize(Tensor(Shape{3, 4}, std::vector<float>(12, 0.5f)),
                                  QuantParams::per_tensor(DType::QInt8, 0.01, 0));
  const Tensor empty_input(Shape{2, 0, 4});
  for (Engine engine : libtorch_engines()) {
    BOOST_TEST_CONTEXT(to_string(engine)) {
      const Tensor live = (*make_libtorch_dynamic_linear(weight, std::nullopt, engine))(empty_input);
      const Shape expected = engine_rule(engine, EngineOp::DynamicLinear).flattens_empty_output ? Shape{0, 3}
                                                                                                : Shape{2, 0, 3};
      BOOST_CHECK(live.sizes == expected);
      DynamicQuantizedLinear ours(weight, std::nullopt, engine);
      BOOST_CHECK(ours(empty_input).sizes == expected);
    }
  }
}
