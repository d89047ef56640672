// The static activations: the integer model of ATen's kernels against LibTorch on inputs
// where the model's details decide the answer, and the modules' PyTorch names, reprs,
// state_dicts and output qparams.
//
// A random case rarely shows whether an element took ATen's vector or its scalar forms (one
// rounding of the dequantized input, an ulp of exp), so the model is held to LibTorch where
// it matters: qparams and an input level whose two forms give different integers are
// searched for, and a tensor of that level alone, straddling ATen's vector block, must
// come back from LibTorch with the vector form's integer on the block and the scalar
// form's on the tail, as the model says.
#define BOOST_TEST_MODULE test_activation
#include <boost/test/unit_test.hpp>

#include <random>

#include "core/cpu.h"
#include "quantized/kernels/elementwise.h"
#include "quantized/libtorch/static_activation.h"
#include "quantized/static/activation.h"
#include "tests/support.h"

using namespace qconform;

namespace {

std::vector<int32_t> model(const ActivationOptions& o, const QTensor& x, const QuantParams& out,
                           kernels::AtenVectorLoop loop) {
  std::vector<int32_t> y(x.values.size());
  kernels::static_activation(o, x.values.data(), static_cast<int64_t>(x.values.size()),
                             {x.qparams.scale(), static_cast<int32_t>(x.qparams.zero_point())},
                             {out.scale(), static_cast<int32_t>(out.zero_point())}, loop, y.data());
  return y;
}

}  // namespace

BOOST_AUTO_TEST_CASE(libtorch_takes_the_vector_forms_on_its_blocks_and_the_scalar_forms_on_the_tail) {
  const kernels::AtenVectorLoop loop = kernels::AtenVectorLoop::of();
  const int64_t block = loop.block;
  std::mt19937_64 rng(20261206);
  std::uniform_real_distribution<double> scale(0.001, 0.2);
  std::uniform_int_distribution<int32_t> level(0, 255);
  QTensor ramp{Shape{256}, std::vector<int32_t>(256), QuantParams::per_tensor(DType::QUInt8, 1.0, 0)};
  for (int32_t q = 0; q < 256; ++q) ramp.values[q] = q;
  for (ActivationOp op : {ActivationOp::LeakyReLU, ActivationOp::Hardswish, ActivationOp::ELU, ActivationOp::Sigmoid,
                          ActivationOp::Hardsigmoid, ActivationOp::Tanh}) {
    ActivationOptions o{op};
    o.negative_slope = 0.1;
    int found = 0, tries = 0;
    for (; found < 3 && tries < (loop.simd || op == ActivationOp::Sigmoid ? 200000 : 5000); ++tries) {
      ramp.qparams = QuantParams::per_tensor(DType::QUInt8, scale(rng), level(rng));
      const std::optional<QuantParams> observed =
          output_qparams_rule(op) == OutputQParamsRule::Observed
              ? std::optional<QuantParams>(QuantParams::per_tensor(DType::QUInt8, scale(rng), level(rng)))
              : std::nullopt;
      QuantizedActivation integer(o, observed, Engine::ONEDNN);
      const QuantParams out = integer.output_qparams(ramp.qparams);
      // Every element in the vector forms (a block of one), and every element scalar.
      const std::vector<int32_t> vector_forms = model(o, ramp, out, {1, loop.simd}),
                                 scalar_forms = model(o, ramp, out, kernels::AtenVectorLoop::scalar_only());
      for (int32_t q = 0; q < 256 && found < 3; ++q) {
        if (vector_forms[q] == scalar_forms[q]) continue;
        ++found;
        const int64_t n = 2 * block + 1 + static_cast<int64_t>(rng() % block);
        const QTensor x{Shape{1, n}, std::vector<int32_t>(n, q), ramp.qparams};
        std::vector<int32_t> expected(n, scalar_forms[q]);
        std::fill(expected.begin(), expected.begin() + n / block * block, vector_forms[q]);
        BOOST_TEST((std::get<QTensor>(integer(ModuleInput{x, std::nullopt}).output).values == expected));
        auto libtorch = make_libtorch_static_activation(o, observed, Engine::ONEDNN);
        const QTensor theirs = std::get<QTensor>((*libtorch)(ModuleInput{x, std::nullopt}).output);
        BOOST_TEST(theirs.values == expected,
                   o.float_name() << ": level " << q << " of " << ramp.qparams.to_string() << " -> " << out.to_string()
                                  << ", n = " << n << ": the vector forms give " << vector_forms[q]
                                  << ", the scalar forms " << scalar_forms[q] << "; LibTorch gave " << theirs.values.front()
                                  << " first and " << theirs.values.back() << " last");
      }
    }
    BOOST_TEST_MESSAGE(o.float_name() << ": " << found << " levels whose two forms differ, found in " << tries
                                      << " random qparams");
    // ATen's plain C++ vectors (its default build) differ from its scalar forms only where
    // the scalar form computes in double (sigmoid); its SIMD vectors in every float op.
    if (loop.simd || op == ActivationOp::Sigmoid)
      BOOST_TEST(found > 0, o.float_name() << ": no level told the forms apart in " << tries << " qparams");
  }
}

// PyTorch's names, reprs and state as eager convert leaves each module (quantization/
// quantize.py's mappings; nnq/modules/activation.py).
BOOST_AUTO_TEST_CASE(converted_modules_have_pytorchs_names_reprs_and_state) {
  const QuantParams observed = QuantParams::per_tensor(DType::QUInt8, 0.05, 7);
  struct Expected {
    ActivationOp op;
    const char* name;
    const char* repr;
    std::vector<std::string> keys;
  };
  for (const Expected& e : {Expected{ActivationOp::ReLU, "ReLU", "ReLU()", {}},
                            Expected{ActivationOp::ReLU6, "QuantizedReLU6", "QuantizedReLU6()", {}},
                            Expected{ActivationOp::LeakyReLU, "QuantizedLeakyReLU",
                                     "QuantizedLeakyReLU(negative_slope=0.01)", {"scale", "zero_point"}},
                            Expected{ActivationOp::Hardswish, "QuantizedHardswish", "QuantizedHardswish()", {}},
                            Expected{ActivationOp::ELU, "QuantizedELU", "QuantizedELU(alpha=1.0)", {}},
                            Expected{ActivationOp::Sigmoid, "Sigmoid", "Sigmoid()", {}},
                            Expected{ActivationOp::Hardsigmoid, "Hardsigmoid", "Hardsigmoid()", {}},
                            Expected{ActivationOp::Tanh, "Tanh", "Tanh()", {}},
                            Expected{ActivationOp::Dropout, "QuantizedDropout", "QuantizedDropout(p=0.5, inplace=False)",
                                     {}}}) {
    const bool observes = output_qparams_rule(e.op) == OutputQParamsRule::Observed;
    QuantizedActivation integer(ActivationOptions{e.op}, observes ? std::optional<QuantParams>(observed) : std::nullopt,
                                Engine::QNNPACK);
    BOOST_TEST(integer.name() == e.name);
    BOOST_TEST(integer.repr() == e.repr);
    BOOST_TEST(integer.state_dict().keys() == e.keys, e.name);
    auto libtorch = make_libtorch_static_activation(ActivationOptions{e.op},
                                                    observes ? std::optional<QuantParams>(observed) : std::nullopt,
                                                    Engine::QNNPACK);
    BOOST_TEST(libtorch->repr() == e.repr);
    BOOST_TEST((libtorch->state_dict() == integer.state_dict()), e.name);
  }
  // nnq.LeakyReLU's buffers: torch.tensor(scale) (float32) and torch.tensor(zero_point) (int64).
  QuantizedActivation leaky(ActivationOptions{ActivationOp::LeakyReLU}, observed, Engine::QNNPACK);
  const StateDict state = leaky.state_dict();
  BOOST_TEST(state.at("scale").as<Tensor>("scale").sizes.empty());
  BOOST_TEST(state.at("scale").as<Tensor>("scale").data.at(0) == 0.05f);
  BOOST_TEST(state.at("zero_point").as<IntTensor>("zero_point").values.at(0) == 7);
}

// Output qparams: the input's (integer ops), the op's (ATen's fixed ones), or the observed.
BOOST_AUTO_TEST_CASE(output_qparams_follow_the_input_the_op_or_the_observer_as_libtorchs) {
  QTensor x{Shape{2, 3}, {0, 50, 100, 150, 200, 255}, QuantParams::per_tensor(DType::QUInt8, 0.04, 100)};
  const QuantParams observed = QuantParams::per_tensor(DType::QUInt8, 0.03, 20);
  for (ActivationOp op : {ActivationOp::ReLU, ActivationOp::ReLU6, ActivationOp::LeakyReLU, ActivationOp::Hardswish,
                          ActivationOp::ELU, ActivationOp::Sigmoid, ActivationOp::Hardsigmoid, ActivationOp::Tanh,
                          ActivationOp::Dropout}) {
    const bool observes = output_qparams_rule(op) == OutputQParamsRule::Observed;
    const std::optional<QuantParams> o = observes ? std::optional<QuantParams>(observed) : std::nullopt;
    for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
      QuantizedActivation integer(ActivationOptions{op}, o, engine);
      const QTensor ours = std::get<QTensor>(integer(ModuleInput{x, std::nullopt}).output);
      const QTensor theirs =
          std::get<QTensor>((*make_libtorch_static_activation(ActivationOptions{op}, o, engine))(ModuleInput{x, std::nullopt})
                                .output);
      BOOST_TEST((ours.qparams == theirs.qparams), ActivationOptions{op}.float_name() << " on " << to_string(engine)
                                                                                     << ": " << ours.qparams.to_string()
                                                                                     << " vs " << theirs.qparams.to_string());
      BOOST_TEST(ours.values == theirs.values, ActivationOptions{op}.float_name() << " on " << to_string(engine));
    }
  }
  testing::expect_error([] { QuantizedActivation(ActivationOptions{ActivationOp::Hardswish}, std::nullopt, Engine::QNNPACK); },
                        "QuantizedHardswish: needs the output scale and zero point");
  testing::expect_error([&] { QuantizedActivation(ActivationOptions{ActivationOp::Sigmoid}, observed, Engine::QNNPACK); },
                        "Sigmoid: takes no output qparams (its output follows the op)");
}

// On the qnnpack engine LibTorch sends Sigmoid, Tanh, Hardsigmoid and Hardswish to QNNPACK's
// lookup tables: where a table's level and ATen's kernel part (a rounding apart, found by
// search over all 256 levels of random qparams), LibTorch's qnnpack gives the table's and its
// onednn ATen's.
BOOST_AUTO_TEST_CASE(qnnpack_takes_its_lookup_tables_for_four_activations) {
  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> exponent(-4.0, 0.5);
  std::uniform_int_distribution<int32_t> level(0, 255);
  QTensor x{Shape{256}, std::vector<int32_t>(256), QuantParams::per_tensor(DType::QUInt8, 1.0, 0)};
  for (int32_t q = 0; q < 256; ++q) x.values[q] = q;
  for (ActivationOp op : {ActivationOp::Sigmoid, ActivationOp::Tanh, ActivationOp::Hardsigmoid, ActivationOp::Hardswish}) {
    const ActivationOptions o{op};
    int parted = 0, tries = 0;
    for (; parted < 3 && tries < 40000; ++tries) {
      x.qparams = QuantParams::per_tensor(DType::QUInt8, std::pow(10.0, exponent(rng)), level(rng));
      const std::optional<QuantParams> observed =
          op == ActivationOp::Hardswish
              ? std::optional<QuantParams>(QuantParams::per_tensor(DType::QUInt8, 0.01 + 0.2 * (rng() % 1000) / 1000.0,
                                                                   level(rng)))
              : std::nullopt;
      QuantizedActivation on_qnnpack(o, observed, Engine::QNNPACK), on_onednn(o, observed, Engine::ONEDNN);
      const QTensor table = std::get<QTensor>(on_qnnpack(ModuleInput{x, std::nullopt}).output);
      const QTensor kernel = std::get<QTensor>(on_onednn(ModuleInput{x, std::nullopt}).output);
      if (table.values == kernel.values) continue;
      ++parted;
      const QTensor theirs_qnnpack = std::get<QTensor>(
          (*make_libtorch_static_activation(o, observed, Engine::QNNPACK))(ModuleInput{x, std::nullopt}).output);
      const QTensor theirs_onednn = std::get<QTensor>(
          (*make_libtorch_static_activation(o, observed, Engine::ONEDNN))(ModuleInput{x, std::nullopt}).output);
      BOOST_TEST(theirs_qnnpack.values == table.values, o.float_name() << " on qnnpack, " << x.qparams.to_string());
      BOOST_TEST(theirs_onednn.values == kernel.values, o.float_name() << " on onednn, " << x.qparams.to_string());
    }
    BOOST_TEST_MESSAGE(o.float_name() << ": " << parted << " qparams where table and kernel part, in " << tries);
    // ATen's plain C++ build (ATEN_CPU_CAPABILITY=default) computes sigmoid and hardsigmoid
    // much as the tables do: there the search may find nothing to tell apart.
    if (kernels::AtenVectorLoop::of().simd) BOOST_TEST(parted > 0, o.float_name());
  }
}
