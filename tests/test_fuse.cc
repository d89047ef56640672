// fuse_modules against PyTorch itself: fixtures/core/fuse.json was written by
// scripts/gen_fuse_fixture.py running torch 1.13's fuse_modules over 150 random
// Conv/ConvTranspose/Linear + BatchNorm (+ ReLU) sequences (tiny, huge and zero variances,
// BatchNorms of one feature, missing biases, affine=False) and 19 refusals. Every fused
// weight and bias must be the same float32 bits; every refusal the same message, with the
// tree left as it was. Then the hooks as fuse_known_modules moves them, and a
// fused-then-quantized Conv+BN+ReLU through the eager flow on each engine.
#define BOOST_TEST_MODULE fuse
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/float/activation.h"
#include "core/float/batchnorm.h"
#include "core/float/conv.h"
#include "core/float/linear.h"
#include "core/qconfig.h"
#include "core/quantize.h"
#include "oracles/agreement.h"
#include "oracles/fuse.h"
#include "oracles/kinds/registry.h"
#include "tests/support.h"

using namespace qconform;
using nlohmann::json;

namespace {

const std::string kFixture = std::string(QCONFORM_SOURCE_DIR) + "/fixtures/core/fuse.json";

const json& fixture() {
  static const json data = [] {
    std::ifstream in(kFixture);
    if (!in) throw std::runtime_error("cannot open " + kFixture + " (scripts/gen_fuse_fixture.py writes it)");
    return json::parse(in);
  }();
  return data;
}

std::vector<float> hex_floats(const json& values) {
  std::vector<float> out;
  for (const auto& v : values) out.push_back(std::strtof(v.get<std::string>().c_str(), nullptr));
  return out;
}

std::optional<Tensor> optional_vector(const json& values) {
  if (values.is_null()) return std::nullopt;
  std::vector<float> v = hex_floats(values);
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor({n}, std::move(v));
}

// The float module a fixture entry describes, with its training flag.
std::unique_ptr<Module> build(const json& d) {
  const std::string type = d["type"];
  std::unique_ptr<Module> m;
  if (type.rfind("Conv", 0) == 0) {
    ConvOptions o;
    o.transposed = type.rfind("ConvTranspose", 0) == 0;
    o.spatial_dims = type[type.size() - 2] - '0';
    o.in_channels = d["in_channels"];
    o.out_channels = d["out_channels"];
    o.kernel_size = d["kernel_size"].get<std::vector<int64_t>>();
    o.stride = o.dilation = std::vector<int64_t>(o.spatial_dims, 1);
    o.padding = std::vector<int64_t>(o.spatial_dims, 0);
    o.groups = d["groups"];
    o.bias = !d["bias"].is_null();
    m = std::make_unique<FloatConv>(o, Tensor(d["weight_shape"].get<Shape>(), hex_floats(d["weight"])),
                                    optional_vector(d["bias"]));
  } else if (type == "Linear") {
    m = std::make_unique<FloatLinear>(Tensor(d["weight_shape"].get<Shape>(), hex_floats(d["weight"])),
                                      optional_vector(d["bias"]));
  } else if (type.rfind("BatchNorm", 0) == 0) {
    BatchNormOptions o;
    o.spatial_dims = type[type.size() - 2] - '0';
    o.num_features = d["num_features"];
    o.eps = d["eps"];
    o.affine = d["affine"];
    BatchNormState s;
    if (o.affine) {
      s.weight = optional_vector(d["weight"]);
      s.bias = optional_vector(d["bias"]);
    }
    s.running_mean = optional_vector(d["running_mean"]);
    s.running_var = optional_vector(d["running_var"]);
    m = std::make_unique<FloatBatchNorm>(o, s);
  } else if (type == "ReLU") {
    m = std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::ReLU});
  } else if (type == "ReLU6") {
    m = std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::ReLU6});
  } else {
    throw std::runtime_error("test_fuse: no builder for " + type);
  }
  m->training = d["training"];
  return m;
}

std::unique_ptr<Sequential> sequential_of(const json& modules) {
  Sequential::Children children;
  for (size_t i = 0; i < modules.size(); ++i) children.emplace_back(std::to_string(i), build(modules[i]));
  return std::make_unique<Sequential>(std::move(children));
}

std::vector<std::string> indices(size_t n) {
  std::vector<std::string> paths;
  for (size_t i = 0; i < n; ++i) paths.push_back(std::to_string(i));
  return paths;
}

// Bit-for-bit equality, naming the first differing element.
void expect_bits(const std::vector<float>& actual, const std::vector<float>& expected, const std::string& what) {
  BOOST_TEST_REQUIRE(actual.size() == expected.size(), what << ": " << actual.size() << " vs " << expected.size());
  for (size_t i = 0; i < actual.size(); ++i)
    if (std::memcmp(&actual[i], &expected[i], sizeof(float)) != 0) {
      BOOST_ERROR(what << " element " << i << ": " << actual[i] << " vs PyTorch's " << expected[i]);
      return;
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(fixture_was_written_by_pytorch_1_13) {
  BOOST_TEST(fixture()["torch_version"].get<std::string>().rfind("1.13", 0) == 0);
  BOOST_TEST(fixture()["cases"].size() >= 150u);
}

BOOST_AUTO_TEST_CASE(every_fold_matches_pytorch_bit_for_bit) {
  int index = 0;
  for (const json& c : fixture()["cases"]) {
    const std::string label = "case " + std::to_string(index++) + " (" + c["fused_type"].get<std::string>() +
                              ", variances " + c["var_style"].get<std::string>() + ")";
    auto model = sequential_of(c["modules"]);
    fuse_modules(*model, {indices(c["modules"].size())});
    const Module& fused = model->child("0");
    BOOST_TEST(fused.name() == c["fused_type"].get<std::string>(), label);
    for (size_t i = 1; i < c["modules"].size(); ++i)
      BOOST_TEST(model->child(std::to_string(i)).name() == "Identity", label);
    const Tensor* weight = nullptr;
    const std::optional<Tensor>* bias = nullptr;
    if (const auto* conv = dynamic_cast<const FloatConv*>(&fused)) {
      weight = &conv->weight();
      bias = &conv->bias();
    } else if (const auto* linear = dynamic_cast<const FloatLinear*>(&fused)) {
      weight = &linear->weight();
      bias = &linear->bias();
    }
    BOOST_TEST_REQUIRE(weight != nullptr, label);
    BOOST_TEST((weight->sizes == c["weight_shape"].get<Shape>()), label);
    expect_bits(weight->data, hex_floats(c["weight"]), label + " weight");
    BOOST_TEST_REQUIRE(bias->has_value(), label);
    expect_bits((*bias)->data, hex_floats(c["bias"]), label + " bias");
  }
}

BOOST_AUTO_TEST_CASE(every_refusal_carries_pytorchs_message_and_changes_nothing) {
  for (const json& r : fixture()["refusals"]) {
    auto model = sequential_of(r["modules"]);
    const StateDict before = model->state_dict();
    std::vector<std::string> names;
    for (const auto& [name, child] : model->children()) names.push_back(child->name());
    try {
      fuse_modules(*model, {r["paths"].get<std::vector<std::string>>()});
      BOOST_ERROR("fuse_modules accepted what PyTorch refuses with: " << r["error"]);
    } catch (const Error& e) {
      BOOST_TEST(std::string(e.what()) == r["error"].get<std::string>());
    }
    BOOST_TEST((model->state_dict() == before), r["error"]);
    for (size_t i = 0; i < names.size(); ++i) BOOST_TEST(model->child(std::to_string(i)).name() == names[i]);
  }
}

namespace {

std::unique_ptr<Sequential> conv_bn_relu(bool relu, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  const auto randn = [&](Shape shape) {
    Tensor t(std::move(shape));
    for (float& v : t.data) v = normal(rng);
    return t;
  };
  ConvOptions o;
  o.in_channels = 3;
  o.out_channels = 4;
  o.kernel_size = {3, 3};
  o.stride = {1, 1};
  o.padding = {1, 1};
  o.dilation = {1, 1};
  BatchNormOptions b;
  b.num_features = 4;
  BatchNormState s;
  s.weight = randn({4});
  s.bias = randn({4});
  s.running_mean = randn({4});
  s.running_var = Tensor({4}, {0.5f, 1.5f, 2.0f, 0.25f});
  Sequential::Children c;
  c.emplace_back("conv", std::make_unique<FloatConv>(o, randn({4, 3, 3, 3}), randn({4})));
  c.emplace_back("bn", std::make_unique<FloatBatchNorm>(b, s));
  if (relu) c.emplace_back("relu", std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::ReLU}));
  return std::make_unique<Sequential>(std::move(c));
}

}  // namespace

BOOST_AUTO_TEST_CASE(hooks_move_as_fuse_known_modules_moves_them) {
  int pre_calls = 0, post_calls = 0;
  const auto count_pre = [&](Module&, const ModuleInput&) -> std::optional<ModuleInput> {
    ++pre_calls;
    return std::nullopt;
  };
  const auto count_post = [&](Module&, const ModuleInput&, const ModuleOutput&) -> std::optional<ModuleOutput> {
    ++post_calls;
    return std::nullopt;
  };
  const Tensor x({1, 3, 4, 4}, std::vector<float>(48, 0.5f));
  {  // a fold deep-copies the conv: its pre-hook is on the copy and moved there again (twice)
    auto model = conv_bn_relu(false, 1);
    model->child("conv").register_forward_pre_hook(count_pre);
    model->child("bn").register_forward_hook(count_post);
    fuse_modules(*model, {{"conv", "bn"}});
    (*model)(x);
    BOOST_TEST(pre_calls == 2);
    BOOST_TEST(post_calls == 1);
  }
  pre_calls = post_calls = 0;
  {  // Conv + ReLU keeps the conv itself: the pre-hook moves, once
    Sequential::Children c;
    auto model = conv_bn_relu(true, 2);
    model->child("conv").register_forward_pre_hook(count_pre);
    model->child("relu").register_forward_hook(count_post);
    fuse_modules(*model, {{"conv", "relu"}});
    BOOST_TEST(model->child("conv").name() == "ConvReLU2d");
    model->child("conv")(x);
    BOOST_TEST(pre_calls == 1);
    BOOST_TEST(post_calls == 1);
  }
  {  // a BatchNorm's own hooks are lost with it, as in PyTorch
    auto model = conv_bn_relu(true, 3);
    model->child("bn").register_forward_hook(count_post);
    fuse_modules(*model, {{"conv", "bn", "relu"}});
    BOOST_TEST(model->child("conv").forward_hook_count() == 0u);
  }
  {  // two hooks to move: PyTorch fails while moving them; nothing changes
    auto model = conv_bn_relu(false, 4);
    model->child("conv").register_forward_pre_hook(count_pre);
    model->child("conv").register_forward_pre_hook(count_pre);
    testing::expect_error([&] { fuse_modules(*model, {{"conv", "bn"}}); }, "OrderedDict mutated during iteration");
    BOOST_TEST(model->child("bn").name() == "BatchNorm2d");
    BOOST_TEST(model->child("conv").forward_pre_hook_count() == 2u);
  }
  {  // a forward hook PyTorch would leave inside the fused container, before its ReLU
    auto model = conv_bn_relu(true, 5);
    model->child("conv").register_forward_hook(count_post);
    testing::expect_error([&] { fuse_modules(*model, {{"conv", "bn", "relu"}}); }, "sees the output before the ReLU");
    BOOST_TEST(model->child("conv").name() == "Conv2d");
  }
}

BOOST_AUTO_TEST_CASE(a_later_list_that_fails_leaves_the_earlier_ones_undone) {
  auto model = conv_bn_relu(true, 6);
  const StateDict before = model->state_dict();
  testing::expect_error([&] { fuse_modules(*model, {{"conv", "bn"}, {"relu", "nothing"}}); },
                        "'Sequential' object has no attribute 'nothing'");
  BOOST_TEST(model->child("conv").name() == "Conv2d");
  BOOST_TEST((model->state_dict() == before));
}

// A fused-then-quantized Conv+BN+ReLU: the fused tree converts to QuantizedConvReLU2d, whose
// integer output equals LibTorch's on each engine bit for bit, and the reference's within
// the bound the static.ConvReLU2d row derives.
BOOST_AUTO_TEST_CASE(fused_conv_bn_relu_quantizes_to_conv_relu_equal_to_libtorch) {
  const ModuleKind& kind = module_kind("static.ConvReLU2d");
  std::mt19937_64 rng(11);
  std::normal_distribution<float> normal;
  std::vector<Tensor> calibration;
  for (int i = 0; i < 4; ++i) {
    Tensor t({2, 3, 6, 6});
    for (float& v : t.data) v = normal(rng);
    calibration.push_back(t);
  }
  for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
    auto model = quant_wrapper(conv_bn_relu(true, 7));
    auto& inner = dynamic_cast<Sequential&>(model->child("module"));
    // The float model before fusion, to see that the fold keeps its function.
    std::vector<Tensor> unfused;
    for (const Tensor& x : calibration) unfused.push_back(std::get<Tensor>((*model)(ModuleInput{x, std::nullopt}).output));
    fuse_modules(inner, {{"conv", "bn", "relu"}});
    BOOST_TEST(inner.child("conv").name() == "ConvReLU2d");
    BOOST_TEST(inner.child("bn").name() == "Identity");
    for (size_t i = 0; i < calibration.size(); ++i) {
      const Tensor fused = std::get<Tensor>((*model)(ModuleInput{calibration[i], std::nullopt}).output);
      for (int64_t k = 0; k < fused.numel(); ++k)
        BOOST_TEST(std::abs(fused.data[k] - unfused[i].data[k]) <= 1e-4f * (1.0f + std::abs(unfused[i].data[k])));
    }
    model->qconfig = get_default_qconfig(engine);
    prepare(*model);
    for (const Tensor& x : calibration) (*model)(ModuleInput{x, std::nullopt});
    const Module& observed = inner.child("conv");
    const QuantParams input_qparams = model->child("quant").activation_post_process->calculate_qparams();
    const EngineProfile profile = engine;
    auto reference = kind.find(Implementation::Reference)->from_float(observed, profile);
    auto integer = kind.find(Implementation::Quantized)->from_float(observed, profile);
    auto libtorch = kind.find(Implementation::LibTorch)->from_float(observed, profile);
    BOOST_TEST(integer->name() == "QuantizedConvReLU2d");
    for (const Tensor& x : calibration) {
      const ModuleInput input{quantize(x, input_qparams), std::nullopt};
      const FlatOutput a = flatten_output((*integer)(input));
      const FlatOutput b = flatten_output((*libtorch)(input));
      BOOST_TEST((a.values == b.values), "integer vs LibTorch on " << to_string(engine));
      const FlatOutput r = flatten_output((*reference)(input));
      const Pair pair = parse_pair("reference,quantized[" + to_string(engine) + "]");
      CaseResult result;
      OutputJudge(kind, pair, *reference, input, r.values.size()).compare(r, a, result);
      BOOST_TEST(result.passed, result.failure << " (max " << result.max_bound_fraction << " of the bound)");
    }
    // And the eager convert of the whole tree lands on the same module.
    convert(*model, {Implementation::Quantized, engine});
    BOOST_TEST(inner.child("conv").name() == "QuantizedConvReLU2d");
    BOOST_TEST(inner.child("bn").name() == "Identity");
  }
}
