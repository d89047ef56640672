// The seeds' eager-mode tests (test_quantize_eager_ptq.py in PyTorch 1.13): of activations and
// functionals (test_leaky_relu, test_relu, test_activations, test_functional_module,
// test_activations_in_non_leaf_module_list), of normalization and fusion (test_resnet_base,
// test_normalization), and of the flow itself (test_single_layer static and dynamic,
// test_two_layers, test_nested1-3, test_skip_quant, test_manual, test_type_match_rule,
// test_dequant_stub, test_save_load_state_dict, test_quantwrapper_attaches_qconfig_to_dequant),
// and of embeddings (test_quantized_embedding, test_quantized_embedding_bag,
// test_embedding_bag_dynamic, test_embedding_ops_dynamic),
// reproduced over the harness's eager flow with
// their assertions: which modules prepare observes (checkObservers, facts of PyTorch 1.13's
// qconfig propagation list), which module types convert leaves (PyTorch's class names), that
// no qconfig remains (checkNoQconfig). Beyond the seeds, each converted model runs, and its
// integer and LibTorch conversions give identical outputs.
//
// Where the seeds run on fbgemm (not in Debian's LibTorch), they run here on qnnpack and onednn
// with each engine's default qconfig. PyTorch's quantize(model, ...) copies the model first;
// the harness's trees are not copyable, so its in-place form runs (oracles/eager.h).
// checkScriptable has no counterpart (TorchScript is LibTorch's business). test_functional_
// module runs both its branches (PTQ and QAT through prepare_qat) on a fixed input against
// PyTorch's own run of them (fixtures/core/functional_module.json).
#define BOOST_TEST_MODULE test_eager_seeds
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/float/activation.h"
#include "core/float/batchnorm.h"
#include "core/float/embedding.h"
#include "core/float/normalization.h"
#include "core/float/stubs.h"
#include "core/float/conv.h"
#include "core/float/functional.h"
#include "core/float/linear.h"
#include "core/float/pooling.h"
#include "core/qconfig.h"
#include "core/quantize.h"
#include "oracles/eager.h"
#include "oracles/fuse.h"
#include <filesystem>
#include "tests/support.h"

using namespace qconform;

namespace {

Tensor uniform(const Shape& shape, uint64_t seed) {  // torch.rand
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  Tensor t(shape);
  for (float& v : t.data) v = u(rng);
  return t;
}

std::unique_ptr<Sequential> stubbed(std::vector<std::pair<std::string, std::unique_ptr<Module>>> middle,
                                    const std::string& name) {
  Sequential::Children children;
  children.emplace_back("quant", std::make_unique<QuantStub>());
  for (auto& [n, m] : middle) children.emplace_back(n, std::move(m));
  children.emplace_back("dequant", std::make_unique<DeQuantStub>());
  return std::make_unique<Sequential>(std::move(children), name);
}

// checkNoQconfig over the tree: convert leaves no qconfig and no observer anywhere.
void check_no_qconfig(const Module& m) {
  BOOST_TEST(!m.qconfig.has_value(), m.name() << " still has a qconfig");
  BOOST_TEST(!m.activation_post_process, m.name() << " still has an observer");
  if (const auto* container = dynamic_cast<const Sequential*>(&m))
    for (const auto& [name, child] : container->children()) check_no_qconfig(*child);
}

Tensor run(Module& model, const Tensor& x) { return std::get<Tensor>(model(ModuleInput{x, std::nullopt}).output); }

// _test_activation_op_impl: quant, the activation, dequant; default_qconfig; prepare;
// checkObservers; convert; the activation's converted type.
void activation_op_test(const std::function<std::unique_ptr<Module>()>& make_activation, bool observed,
                        const std::string& converted_name) {
  const Tensor x = uniform({4, 7}, 11);
  std::vector<Tensor> outputs;
  for (const ConversionTarget target : {ConversionTarget{Implementation::Quantized, Engine::QNNPACK},
                                        ConversionTarget{Implementation::LibTorch, Engine::QNNPACK},
                                        ConversionTarget{Implementation::Quantized, Engine::ONEDNN},
                                        ConversionTarget{Implementation::LibTorch, Engine::ONEDNN}}) {
    std::vector<std::pair<std::string, std::unique_ptr<Module>>> middle;
    middle.emplace_back("activation_op", make_activation());
    auto m = stubbed(std::move(middle), "M");
    m->qconfig = default_qconfig();
    prepare(*m);
    // checkObservers: the stub and the mapped activations are observed, DeQuantStub never,
    // the float-module activations (not in the propagation list) not.
    BOOST_TEST(static_cast<bool>(m->child("quant").activation_post_process));
    BOOST_TEST(static_cast<bool>(m->child("activation_op").activation_post_process) == observed);
    BOOST_TEST(!m->child("dequant").activation_post_process);
    run(*m, x);  // calibration
    convert(*m, target);
    BOOST_TEST(m->child("activation_op").name() == converted_name);
    BOOST_TEST(m->child("quant").name() == "Quantize");
    BOOST_TEST(m->child("dequant").name() == "DeQuantize");
    check_no_qconfig(*m);
    outputs.push_back(run(*m, x));
  }
  BOOST_TEST((outputs[0] == outputs[1]), "integer and LibTorch outputs on qnnpack");
  BOOST_TEST((outputs[2] == outputs[3]), "integer and LibTorch outputs on onednn");
}

// ModelWithFunctionals: y = mycat.cat([x, x, x]); z = myadd.add(y, y); w = myadd_relu.add_relu(z, z).
class ModelWithFunctionals : public Sequential {
 public:
  ModelWithFunctionals() : Sequential(children(), "ModelWithFunctionals") {}

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    ModuleInput cat{input.input, std::nullopt, {input.input, input.input}};
    const Value y = child("mycat")(cat).output;
    const Value z = child("myadd")(ModuleInput{y, std::nullopt, {y}}).output;
    return child("myadd_relu")(ModuleInput{z, std::nullopt, {z}});
  }

 private:
  static Children children() {
    Children c;
    c.emplace_back("mycat", std::make_unique<FloatFunctionalOp>(FunctionalOptions{FunctionalOp::Cat, 0.0, 0}));
    c.emplace_back("myadd", std::make_unique<FloatFunctionalOp>(FunctionalOptions{FunctionalOp::Add}));
    c.emplace_back("myadd_relu", std::make_unique<FloatFunctionalOp>(FunctionalOptions{FunctionalOp::AddRelu}));
    return c;
  }
};

// torch.flatten(x, 1) of a float or quantized tensor.
Value flatten_from_1(const Value& v) {
  const auto flat = [](Shape s) { return Shape{s.at(0), numel_of(s) / std::max<int64_t>(s.at(0), 1)}; };
  if (const auto* q = std::get_if<QTensor>(&v)) return QTensor{flat(q->sizes), q->values, q->qparams};
  const Tensor& t = std::get<Tensor>(v);
  return Tensor(flat(t.sizes), t.data);
}

// ResNetBase (common_quantization.py): conv1 (Conv2d(3, 3, 1), no bias), bn1, relu1, relu2,
// downsample (nn.Identity), myop (FloatFunctional), avgpool (AdaptiveAvgPool2d((1, 1))), fc
// (Linear(3, 1)); forward: relu1(bn1(conv1(x))), myop.add(out, downsample(x)), relu2, avgpool,
// flatten, fc. fuse_model() fuses ['conv1', 'bn1', 'relu1'].
class ResNetBase : public Sequential {
 public:
  explicit ResNetBase(uint64_t seed) : Sequential(children(seed), "ResNetBase") {}
  void fuse_model() { fuse_modules(*this, {{"conv1", "bn1", "relu1"}}); }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const Value x = input.input;
    Value out = child("conv1")(ModuleInput{x, std::nullopt}).output;
    out = child("bn1")(ModuleInput{out, std::nullopt}).output;
    out = child("relu1")(ModuleInput{out, std::nullopt}).output;
    const Value identity = child("downsample")(ModuleInput{x, std::nullopt}).output;
    out = child("myop")(ModuleInput{out, std::nullopt, {identity}}).output;
    out = child("relu2")(ModuleInput{out, std::nullopt}).output;
    out = child("avgpool")(ModuleInput{out, std::nullopt}).output;
    return child("fc")(ModuleInput{flatten_from_1(out), std::nullopt});
  }

 private:
  static Children children(uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 0.5f);
    const auto randn = [&](const Shape& s) {
      Tensor t(s);
      for (float& v : t.data) v = normal(rng);
      return t;
    };
    ConvOptions o;
    o.in_channels = o.out_channels = 3;
    o.kernel_size = {1, 1};
    o.stride = {1, 1};
    o.padding = {0, 0};
    o.dilation = {1, 1};
    o.bias = false;
    BatchNormOptions b;
    b.num_features = 3;
    // Statistics as training would leave them (a fresh BatchNorm2d's would fold to nothing).
    BatchNormState stats{randn({3}), randn({3}), randn({3}), Tensor({3}, {0.8f, 1.3f, 0.4f}), 10};
    PoolingOptions pool;
    pool.op = PoolingOp::AdaptiveAvgPool2d;
    pool.output_size = {1, 1, true};
    Children c;
    c.emplace_back("conv1", std::make_unique<FloatConv>(o, randn({3, 3, 1, 1}), std::nullopt));
    c.emplace_back("bn1", std::make_unique<FloatBatchNorm>(b, stats));
    c.emplace_back("relu1", std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::ReLU}));
    c.emplace_back("relu2", std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::ReLU}));
    c.emplace_back("downsample", std::make_unique<Identity>());
    c.emplace_back("myop", std::make_unique<FloatFunctionalOp>(FunctionalOptions{FunctionalOp::Add}));
    c.emplace_back("avgpool", std::make_unique<FloatPooling>(pool));
    c.emplace_back("fc", std::make_unique<FloatLinear>(randn({1, 3}), randn({1})));
    return c;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(test_resnet_base) {
  std::vector<Tensor> img_data_2d{uniform({2, 3, 10, 10}, 21), uniform({2, 3, 10, 10}, 22)};
  for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
    std::vector<Tensor> outputs;
    for (Implementation implementation : {Implementation::Quantized, Implementation::LibTorch}) {
      auto resnet = std::make_unique<ResNetBase>(5);
      const Tensor before_fusion = run(*resnet, img_data_2d[0]);
      resnet->fuse_model();
      BOOST_TEST(resnet->child("conv1").name() == "ConvReLU2d");
      BOOST_TEST(resnet->child("bn1").name() == "Identity");
      BOOST_TEST(resnet->child("relu1").name() == "Identity");
      // The fold keeps the float model's function, to float rounding.
      const Tensor after_fusion = run(*resnet, img_data_2d[0]);
      for (int64_t i = 0; i < after_fusion.numel(); ++i)
        BOOST_TEST(std::abs(after_fusion.data[i] - before_fusion.data[i]) <= 1e-5f * (1 + std::abs(before_fusion.data[i])));
      auto model = quant_wrapper(std::move(resnet));
      model->qconfig = get_default_qconfig(engine);
      prepare(*model);
      const auto& inner = dynamic_cast<const Sequential&>(model->child("module"));
      // checkObservers: the mapped modules; relu2, avgpool and the Identities are in no mapping.
      for (const char* name : {"conv1", "myop", "fc"})
        BOOST_TEST(static_cast<bool>(inner.child(name).activation_post_process), name << " has no observer");
      for (const char* name : {"bn1", "relu1", "relu2", "downsample", "avgpool"})
        BOOST_TEST(!inner.child(name).activation_post_process, name);
      for (const Tensor& x : img_data_2d) run(*model, x);  // test_only_eval_fn
      convert(*model, {implementation, engine});
      const auto& converted = dynamic_cast<const Sequential&>(model->child("module"));
      BOOST_TEST(converted.child("conv1").name() == "QuantizedConvReLU2d");  // nniq.ConvReLU2d
      BOOST_TEST(converted.child("myop").name() == "QFunctional");
      BOOST_TEST(converted.child("avgpool").name() == "AdaptiveAvgPool2d");
      BOOST_TEST(converted.child("fc").name() == "QuantizedLinear");  // nnq.Linear
      check_no_qconfig(*model);
      for (const Tensor& x : img_data_2d) outputs.push_back(run(*model, x));
    }
    BOOST_TEST((outputs[0] == outputs[2] && outputs[1] == outputs[3]), to_string(engine));
    BOOST_TEST((outputs[0].sizes == Shape{2, 1}));
  }
}

BOOST_AUTO_TEST_CASE(test_leaky_relu) {
  activation_op_test(
      [] {
        ActivationOptions o{ActivationOp::LeakyReLU};
        o.negative_slope = 0.1;
        return std::make_unique<FloatActivation>(o);
      },
      true, "QuantizedLeakyReLU");  // nnq.LeakyReLU
}

BOOST_AUTO_TEST_CASE(test_relu) {
  // nn.ReLU is in no mapping: no observer, and convert leaves nn.ReLU (the harness's integer
  // form of a float module on a quantized tensor keeps its name).
  activation_op_test([] { return std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::ReLU}); }, false,
                     "ReLU");
}

// ActivationsTestModel: quant, hardswish, elu, dequant, with get_default_qconfig("fbgemm")
// (the observers of fbgemm's qconfig; the engines Debian's LibTorch has run the modules).
BOOST_AUTO_TEST_CASE(test_activations) {
  std::vector<Tensor> calib_data{uniform({2, 5}, 1), uniform({2, 5}, 2)};
  for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
    std::vector<Tensor> outputs;
    for (Implementation implementation : {Implementation::Quantized, Implementation::LibTorch}) {
      std::vector<std::pair<std::string, std::unique_ptr<Module>>> middle;
      middle.emplace_back("hardswish", std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::Hardswish}));
      middle.emplace_back("elu", std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::ELU}));
      auto model = stubbed(std::move(middle), "ActivationsTestModel");
      model->qconfig = get_default_qconfig(Engine::FBGEMM);
      prepare(*model);
      for (const char* name : {"quant", "hardswish", "elu"})
        BOOST_TEST(static_cast<bool>(model->child(name).activation_post_process), name << " has no observer");
      for (const Tensor& x : calib_data) run(*model, x);  // test_only_eval_fn
      convert(*model, {implementation, engine});
      BOOST_TEST(model->child("hardswish").name() == "QuantizedHardswish");  // nnq.Hardswish
      BOOST_TEST(model->child("elu").name() == "QuantizedELU");              // nnq.ELU
      // checkNoPrepModules(model.hardswish): no observer left in it; checkNoQconfig.
      BOOST_TEST(!model->child("hardswish").activation_post_process);
      check_no_qconfig(*model);
      for (const Tensor& x : calib_data) outputs.push_back(run(*model, x));
    }
    BOOST_TEST((outputs[0] == outputs[2] && outputs[1] == outputs[3]), to_string(engine));
  }
}

// ModelWithFunctionals with get_default_qconfig('qnnpack'): prepare observes every
// FloatFunctional, convert swaps each for QFunctional, no qconfig remains.
// Both branches of the seed (train_mode False and True) on the input PyTorch ran them on
// (scripts/gen_functional_module_fixture.py): the observers prepare or prepare_qat attach, the
// QFunctional qparams convert takes from them, and the converted model's integers, all
// PyTorch's. The QAT branch's fake quantizes change what each op sees in calibration.
BOOST_AUTO_TEST_CASE(test_functional_module_both_branches_as_pytorch) {
  std::ifstream in(std::string(QCONFORM_SOURCE_DIR) + "/fixtures/core/functional_module.json");
  BOOST_REQUIRE(in);
  const nlohmann::json fixture = nlohmann::json::parse(in);
  Tensor x({10, 1});
  for (int64_t i = 0; i < 10; ++i) x.data[i] = static_cast<float>((37 * i) % 100) / 100.0f;
  const QTensor xq = quantize(x, QuantParams::per_tensor(DType::QUInt8, 0.01, 30));
  const auto hex = [](const nlohmann::json& v) { return std::strtod(v.get<std::string>().c_str(), nullptr); };
  for (const bool train_mode : {false, true}) {
    BOOST_TEST_CONTEXT((train_mode ? "QAT" : "PTQ")) {
      const nlohmann::json& expected = fixture["branches"][train_mode ? "qat" : "ptq"];
      for (Implementation implementation : {Implementation::Quantized, Implementation::LibTorch}) {
        ModelWithFunctionals model;
        if (train_mode) {
          model.training = true;  // a new torch.nn.Module is in training mode
          model.qconfig = get_default_qat_qconfig(Engine::FBGEMM);
          prepare_qat(model);
        } else {
          model.qconfig = get_default_qconfig(Engine::QNNPACK);
          prepare(model);
        }
        for (const char* name : {"mycat", "myadd", "myadd_relu"})  // checkObservers
          BOOST_TEST(model.child(name).activation_post_process->name() == expected["observers"][name].get<std::string>());
        run(model, dequantize(xq));  // calibration
        convert(model, {implementation, Engine::QNNPACK});
        for (const char* name : {"mycat", "myadd", "myadd_relu"}) {
          BOOST_TEST(model.child(name).name() == "QFunctional");
          const StateDict state = model.child(name).state_dict();
          BOOST_TEST(state.at("scale").as<Tensor>("scale").data[0] == static_cast<float>(hex(expected["qparams"][name][0])),
                     name);
          BOOST_TEST(state.at("zero_point").as<IntTensor>("zero_point").values[0] ==
                         expected["qparams"][name][1].get<int64_t>(),
                     name);
        }
        check_no_qconfig(model);
        const QTensor y = std::get<QTensor>(model(ModuleInput{xq, std::nullopt}).output);
        BOOST_TEST((y.values == expected["output"]["values"].get<std::vector<int32_t>>()));
        BOOST_TEST(y.qparams.scale() == hex(expected["output"]["scale"]));
      }
    }
  }
  // prepare_qat asserts training mode, and refuses a module it would swap for a QAT module.
  ModelWithFunctionals eval_model;
  eval_model.qconfig = get_default_qat_qconfig(Engine::FBGEMM);
  testing::expect_error([&] { prepare_qat(eval_model); }, "prepare_qat only works on models in training mode");
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> middle;
  middle.emplace_back("fc", std::make_unique<FloatLinear>(uniform({2, 3}, 1), std::nullopt));
  auto with_linear = stubbed(std::move(middle), "Model");
  with_linear->training = true;
  with_linear->qconfig = get_default_qat_qconfig(Engine::QNNPACK);
  testing::expect_error([&] { prepare_qat(*with_linear); }, "prepare_qat: fc (Linear) would become torch.ao.nn.qat.Linear");
  BOOST_TEST(!with_linear->child("quant").activation_post_process);  // nothing half-done
}

BOOST_AUTO_TEST_CASE(test_functional_module) {
  const Tensor x = uniform({10, 1}, 3);
  const QTensor xq = quantize(x, QuantParams::per_tensor(DType::QUInt8, 0.01, 30));
  std::vector<QTensor> outputs;
  for (Implementation implementation : {Implementation::Quantized, Implementation::LibTorch}) {
    ModelWithFunctionals model;
    model.qconfig = get_default_qconfig(Engine::QNNPACK);
    prepare(model);
    for (const char* name : {"mycat", "myadd", "myadd_relu"})
      BOOST_TEST(static_cast<bool>(model.child(name).activation_post_process), name << " has no observer");
    run(model, dequantize(xq));  // calibration
    convert(model, {implementation, Engine::QNNPACK});
    for (const char* name : {"mycat", "myadd", "myadd_relu"}) BOOST_TEST(model.child(name).name() == "QFunctional");
    check_no_qconfig(model);
    // The converted model has no stubs: it takes the quantized input itself.
    outputs.push_back(std::get<QTensor>(model(ModuleInput{xq, std::nullopt}).output));
  }
  BOOST_TEST((outputs[0] == outputs[1]));
  BOOST_TEST((outputs[0].sizes == Shape{30, 1}));
}

// prepare's observer_non_leaf_module_list observes the float-module activations with the
// qconfig's own observer (here FixedQParamsObserver, not a fake quantize).
BOOST_AUTO_TEST_CASE(test_activations_in_non_leaf_module_list) {
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> middle;
  middle.emplace_back("sigmoid", std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::Sigmoid}));
  middle.emplace_back("hardsigmoid", std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::Hardsigmoid}));
  middle.emplace_back("softmax", std::make_unique<FloatSoftmax>());
  middle.emplace_back("tanh", std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::Tanh}));
  auto m = stubbed(std::move(middle), "MyModel");
  m->qconfig = QConfig{"FixedQParamsObserver(scale=123.0)", fixed_qparams_observer(123.0f, 0), default_weight_observer()};
  prepare(*m, {"Sigmoid", "Hardsigmoid", "Softmax", "Tanh"});
  for (const char* name : {"sigmoid", "hardsigmoid", "softmax", "tanh"}) {
    const auto& observer = m->child(name).activation_post_process;
    BOOST_TEST(static_cast<bool>(observer), name << " has no observer");
    if (observer) BOOST_TEST(observer->name() == "FixedQParamsObserver");
  }
  // Without the list, PyTorch observes none of them (they are in no mapping).
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> plain;
  plain.emplace_back("sigmoid", std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::Sigmoid}));
  plain.emplace_back("softmax", std::make_unique<FloatSoftmax>());
  auto n = stubbed(std::move(plain), "MyModel");
  n->qconfig = default_qconfig();
  prepare(*n);
  BOOST_TEST(!n->child("sigmoid").activation_post_process);
  BOOST_TEST(!n->child("softmax").activation_post_process);
}

// --- test_normalization -------------------------------------------------------------------

namespace {

// x.unsqueeze(-1) and x.repeat(1, 1, k) on a 2-d input, float or quantized (the reshapes
// NormalizationTestModel's forward makes between its modules).
Value unsqueeze_last(const Value& v) {
  if (const auto* q = std::get_if<QTensor>(&v)) {
    QTensor out = *q;
    out.sizes.push_back(1);
    return out;
  }
  Tensor out = std::get<Tensor>(v);
  out.sizes.push_back(1);
  return out;
}

Value repeat_last(const Value& v, int64_t times) {  // (N, C, 1) -> (N, C, times)
  const auto repeat = [times](const auto& values) {
    std::decay_t<decltype(values)> out;
    for (const auto& x : values)
      for (int64_t k = 0; k < times; ++k) out.push_back(x);
    return out;
  };
  if (const auto* q = std::get_if<QTensor>(&v)) {
    QTensor out = *q;
    out.sizes.back() = times;
    out.values = repeat(q->values);
    return out;
  }
  const Tensor& t = std::get<Tensor>(v);
  Tensor out = t;
  out.sizes.back() = times;
  out.data = repeat(t.data);
  return out;
}

std::unique_ptr<FloatLinear> seeded_linear(int64_t in, int64_t out, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.4f);
  Tensor w({out, in}), b({out});
  for (float& v : w.data) v = normal(rng);
  for (float& v : b.data) v = normal(rng);
  return std::make_unique<FloatLinear>(w, b);
}

std::unique_ptr<FloatNormalization> norm(NormOp op, int64_t dims = 2) {
  NormalizationOptions o;
  o.op = op;
  o.num_channels = 8;
  o.spatial_dims = dims;
  if (op == NormOp::LayerNorm) o.normalized_shape = {8};
  if (op == NormOp::GroupNorm) o.num_groups = 2;
  o.affine = op != NormOp::InstanceNorm;  // torch.nn's defaults
  return std::make_unique<FloatNormalization>(o);
}

// NormalizationTestModel (common_quantization.py): quant, fc1 = Linear(5, 8), layer_norm =
// LayerNorm(8), group_norm = GroupNorm(2, 8), instance_norm{1,2,3}d = InstanceNorm{n}d(8);
// forward: quant, fc1, layer_norm, group_norm(x.unsqueeze(-1).repeat(1, 1, 3)),
// instance_norm1d, instance_norm2d(x.unsqueeze(-1)), instance_norm3d(x.unsqueeze(-1)).
class NormalizationTestModel : public Sequential {
 public:
  NormalizationTestModel() : Sequential(children(), "NormalizationTestModel") {}

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const auto call = [this](const char* name, const Value& v) { return child(name)(ModuleInput{v, std::nullopt}).output; };
    Value x = call("quant", input.input);
    x = call("fc1", x);
    x = call("layer_norm", x);
    x = call("group_norm", repeat_last(unsqueeze_last(x), 3));
    x = call("instance_norm1d", x);
    x = call("instance_norm2d", unsqueeze_last(x));
    x = call("instance_norm3d", unsqueeze_last(x));
    return {x, std::nullopt};
  }

 private:
  static Children children() {
    Children c;
    c.emplace_back("quant", std::make_unique<QuantStub>());
    c.emplace_back("fc1", seeded_linear(5, 8, 3));
    c.emplace_back("layer_norm", norm(NormOp::LayerNorm));
    c.emplace_back("group_norm", norm(NormOp::GroupNorm));
    c.emplace_back("instance_norm1d", norm(NormOp::InstanceNorm, 1));
    c.emplace_back("instance_norm2d", norm(NormOp::InstanceNorm, 2));
    c.emplace_back("instance_norm3d", norm(NormOp::InstanceNorm, 3));
    return c;
  }
};

std::vector<Tensor> calib_data() { return {uniform({2, 5}, 31), uniform({2, 5}, 32)}; }

QTensor run_quantized(Module& model, const Tensor& x) {
  return std::get<QTensor>(model(ModuleInput{x, std::nullopt}).output);
}

}  // namespace

BOOST_AUTO_TEST_CASE(test_normalization) {
  for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
    std::vector<QTensor> outputs;
    for (Implementation implementation : {Implementation::Quantized, Implementation::LibTorch}) {
      NormalizationTestModel model;
      model.qconfig = get_default_qconfig(engine);
      prepare(model);
      for (const char* name : {"quant", "fc1", "layer_norm", "group_norm", "instance_norm1d", "instance_norm2d",
                               "instance_norm3d"})
        BOOST_TEST(static_cast<bool>(model.child(name).activation_post_process), name << " has no observer");
      for (const Tensor& x : calib_data()) model(ModuleInput{x, std::nullopt});  // test_only_eval_fn
      convert(model, {implementation, engine});
      BOOST_TEST(model.child("layer_norm").name() == "QuantizedLayerNorm");
      BOOST_TEST(model.child("group_norm").name() == "QuantizedGroupNorm");
      BOOST_TEST(model.child("instance_norm1d").name() == "QuantizedInstanceNorm1d");
      BOOST_TEST(model.child("instance_norm2d").name() == "QuantizedInstanceNorm2d");
      BOOST_TEST(model.child("instance_norm3d").name() == "QuantizedInstanceNorm3d");
      check_no_qconfig(model);
      for (const Tensor& x : calib_data()) outputs.push_back(run_quantized(model, x));
    }
    BOOST_TEST((outputs[0] == outputs[2] && outputs[1] == outputs[3]), "integer vs LibTorch on " << to_string(engine));
    BOOST_TEST((outputs[0].sizes == Shape{2, 8, 3, 1, 1}));
  }
}

// --- the flow: single and two layers, nesting, skipping, manual stubs ----------------------

namespace {

std::unique_ptr<Sequential> sequential(Sequential::Children c, const std::string& name) {
  return std::make_unique<Sequential>(std::move(c), name);
}

std::unique_ptr<Sequential> linear_relu_model(uint64_t seed) {  // LinearReluModel
  Sequential::Children c;
  c.emplace_back("fc", seeded_linear(5, 5, seed));
  c.emplace_back("relu", std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::ReLU}));
  return sequential(std::move(c), "LinearReluModel");
}

std::unique_ptr<Sequential> two_layer_linear_model(uint64_t seed) {  // TwoLayerLinearModel
  Sequential::Children c;
  c.emplace_back("fc1", seeded_linear(5, 8, seed));
  c.emplace_back("fc2", seeded_linear(8, 5, seed + 1));
  return sequential(std::move(c), "TwoLayerLinearModel");
}

// NestedModel's tree: sub1 (LinearReluModel), sub2 (TwoLayerLinearModel), fc3 (Linear(5, 5)).
std::unique_ptr<Sequential> nested_model(uint64_t seed, const std::string& name) {
  Sequential::Children c;
  c.emplace_back("sub1", linear_relu_model(seed));
  c.emplace_back("sub2", two_layer_linear_model(seed + 1));
  c.emplace_back("fc3", seeded_linear(5, 5, seed + 3));
  return sequential(std::move(c), name);
}

// Puts a QuantWrapper around `parent`'s child `name` (self.x = QuantWrapper(self.x)).
Sequential& wrap(Sequential& parent, const std::string& name) {
  std::unique_ptr<Module> module = parent.replace(name, std::make_unique<Identity>());
  parent.replace(name, quant_wrapper(std::move(module)));
  return dynamic_cast<Sequential&>(parent.child(name));
}

Sequential& sub(Module& m, const std::string& name) { return dynamic_cast<Sequential&>(dynamic_cast<Sequential&>(m).child(name)); }

// checkHasPrepModules / checkNoPrepModules: a QuantWrapper's quant, module and dequant.
bool has_prep_modules(const Module& m) {
  const auto* s = dynamic_cast<const Sequential*>(&m);
  if (!s) return false;
  std::set<std::string> names;
  for (const auto& [name, child] : s->children()) names.insert(name);
  return names.count("quant") && names.count("module") && names.count("dequant");
}

// checkWrappedQuantizedLinear: nnq.Quantize, nnq.Linear, nnq.DeQuantize.
void check_wrapped_quantized_linear(const Module& m, const std::string& where) {
  BOOST_TEST_REQUIRE(has_prep_modules(m), where);
  const auto& w = dynamic_cast<const Sequential&>(m);
  BOOST_TEST(w.child("quant").name() == "Quantize", where);
  BOOST_TEST(w.child("module").name() == "QuantizedLinear", where);
  BOOST_TEST(w.child("dequant").name() == "DeQuantize", where);
}

// Each static flow model on both engines and both integer implementations: the checks in
// `check`, then identical outputs of the integer and LibTorch conversions.
void flow_on_engines(const std::function<std::unique_ptr<Sequential>(Engine)>& make,
                     const std::function<void(Sequential&)>& check_prepared,
                     const std::function<void(Sequential&)>& check_converted, bool use_quantize = false) {
  for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
    std::vector<Tensor> outputs;
    for (Implementation implementation : {Implementation::Quantized, Implementation::LibTorch}) {
      auto model = make(engine);
      const auto calibrate = [](Sequential& m) {
        for (const Tensor& x : calib_data()) run(m, x);
      };
      if (use_quantize) {
        quantize(*model, calibrate, {implementation, engine});
      } else {
        prepare(*model);
        check_prepared(*model);
        calibrate(*model);
        convert(*model, {implementation, engine});
      }
      check_converted(*model);
      check_no_qconfig(*model);
      for (const Tensor& x : calib_data()) outputs.push_back(run(*model, x));
    }
    BOOST_TEST((outputs[0] == outputs[2] && outputs[1] == outputs[3]), "integer vs LibTorch on " << to_string(engine));
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(test_single_layer) {
  const auto make = [](Engine engine) {  // AnnotatedSingleLayerLinearModel
    Sequential::Children c;
    c.emplace_back("fc1", seeded_linear(5, 5, 41));
    auto model = sequential(std::move(c), "AnnotatedSingleLayerLinearModel");
    model->qconfig = get_default_qconfig(engine);
    wrap(*model, "fc1");
    return model;
  };
  const auto prepared = [](Sequential& m) {
    BOOST_TEST(!has_prep_modules(m));
    BOOST_TEST(has_prep_modules(m.child("fc1")));
    BOOST_TEST(static_cast<bool>(sub(m, "fc1").child("module").activation_post_process));
  };
  const auto converted = [](Sequential& m) {
    BOOST_TEST(!has_prep_modules(m));
    check_wrapped_quantized_linear(m.child("fc1"), "fc1");
  };
  flow_on_engines(make, prepared, converted);
  flow_on_engines(make, prepared, converted, /*use_quantize=*/true);  // quantize(..., inplace=True)
}

BOOST_AUTO_TEST_CASE(test_two_layers) {
  const auto make = [](Engine engine) {  // AnnotatedTwoLayerLinearModel
    auto model = two_layer_linear_model(51);
    wrap(*model, "fc2").qconfig = get_default_qconfig(engine);
    return model;
  };
  flow_on_engines(
      make,
      [](Sequential& m) {
        BOOST_TEST(!has_prep_modules(m.child("fc1")));
        BOOST_TEST(has_prep_modules(m.child("fc2")));
        BOOST_TEST(!m.child("fc1").activation_post_process);
      },
      [](Sequential& m) {
        BOOST_TEST(m.child("fc1").name() == "Linear");
        check_wrapped_quantized_linear(m.child("fc2"), "fc2");
      });
}

BOOST_AUTO_TEST_CASE(test_nested1) {
  const auto make = [](Engine) {  // AnnotatedNestedModel (default_qconfig off fbgemm)
    auto model = nested_model(61, "AnnotatedNestedModel");
    wrap(*model, "fc3").qconfig = default_qconfig();
    wrap(sub(*model, "sub2"), "fc1").qconfig = default_qconfig();
    return model;
  };
  const auto prep = [](Sequential& m) {
    BOOST_TEST(!has_prep_modules(m));
    BOOST_TEST(!has_prep_modules(m.child("sub1")));
    BOOST_TEST(!has_prep_modules(sub(m, "sub2")));
    BOOST_TEST(has_prep_modules(sub(m, "sub2").child("fc1")));
    BOOST_TEST(!has_prep_modules(sub(m, "sub2").child("fc2")));
    BOOST_TEST(has_prep_modules(m.child("fc3")));
  };
  flow_on_engines(make, prep, [&](Sequential& m) {
    prep(m);
    BOOST_TEST(sub(m, "sub1").child("fc").name() == "Linear");
    check_wrapped_quantized_linear(m.child("fc3"), "fc3");
    check_wrapped_quantized_linear(sub(m, "sub2").child("fc1"), "sub2.fc1");
    BOOST_TEST(sub(m, "sub2").child("fc2").name() == "Linear");
  });
}

BOOST_AUTO_TEST_CASE(test_nested2) {
  const auto make = [](Engine) {  // AnnotatedSubNestedModel
    auto model = nested_model(71, "AnnotatedSubNestedModel");
    wrap(*model, "sub2").qconfig = default_qconfig();
    wrap(*model, "fc3").qconfig = default_qconfig();
    return model;
  };
  const auto prep = [](Sequential& m) {
    BOOST_TEST(!has_prep_modules(m.child("sub1")));
    BOOST_TEST(has_prep_modules(m.child("sub2")));
    BOOST_TEST(!has_prep_modules(sub(sub(m, "sub2"), "module").child("fc1")));
    BOOST_TEST(has_prep_modules(m.child("fc3")));
  };
  flow_on_engines(make, prep, [&](Sequential& m) {
    prep(m);
    BOOST_TEST(sub(m, "sub1").child("fc").name() == "Linear");
    BOOST_TEST(sub(m, "sub1").child("relu").name() == "ReLU");
    BOOST_TEST(sub(sub(m, "sub2"), "module").child("fc1").name() == "QuantizedLinear");
    BOOST_TEST(sub(sub(m, "sub2"), "module").child("fc2").name() == "QuantizedLinear");
    check_wrapped_quantized_linear(m.child("fc3"), "fc3");
  });
}

BOOST_AUTO_TEST_CASE(test_nested3) {
  const auto make = [](Engine) {  // AnnotatedCustomConfigNestedModel
    auto model = nested_model(81, "AnnotatedCustomConfigNestedModel");
    wrap(*model, "fc3").qconfig = default_qconfig();
    Sequential& sub2 = sub(*model, "sub2");
    sub2.qconfig = default_qconfig();
    // The child's own qconfig wins over its parent's: the seed's custom one (quint8,
    // per-tensor affine activations; the default weight observer).
    QConfig custom = default_qconfig();
    custom.name = "custom_qconfig";
    sub2.child("fc1").qconfig = custom;
    wrap(sub2, "fc1");
    wrap(sub2, "fc2");
    return model;
  };
  const auto prep = [](Sequential& m) {
    BOOST_TEST(!has_prep_modules(m.child("sub1")));
    BOOST_TEST(!has_prep_modules(sub(m, "sub2")));
    BOOST_TEST(has_prep_modules(sub(m, "sub2").child("fc1")));
    BOOST_TEST(has_prep_modules(sub(m, "sub2").child("fc2")));
    BOOST_TEST(has_prep_modules(m.child("fc3")));
  };
  flow_on_engines(
      make,
      [&](Sequential& m) {
        prep(m);
        BOOST_TEST(sub(sub(m, "sub2"), "fc1").child("module").qconfig->name == "custom_qconfig");
      },
      [&](Sequential& m) {
        prep(m);
        check_wrapped_quantized_linear(sub(m, "sub2").child("fc1"), "sub2.fc1");
        check_wrapped_quantized_linear(sub(m, "sub2").child("fc2"), "sub2.fc2");
        check_wrapped_quantized_linear(m.child("fc3"), "fc3");
      });
}

BOOST_AUTO_TEST_CASE(test_skip_quant) {
  const auto make = [](Engine engine) {  // AnnotatedSkipQuantModel
    Sequential::Children inner;
    inner.emplace_back("fc1", seeded_linear(5, 8, 91));
    inner.emplace_back("relu1", std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::ReLU}));
    inner.emplace_back("fc2", seeded_linear(8, 5, 92));
    inner.emplace_back("relu2", std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::ReLU}));
    Sequential::Children c;
    c.emplace_back("sub", quant_wrapper(sequential(std::move(inner), "InnerModule")));
    c.emplace_back("fc", seeded_linear(5, 5, 93));
    auto model = sequential(std::move(c), "AnnotatedSkipQuantModel");
    model->qconfig = get_default_qconfig(engine);
    model->child("fc").qconfig_explicitly_none = true;  // don't quantize this fc
    return model;
  };
  flow_on_engines(
      make, [](Sequential& m) { BOOST_TEST(!m.child("fc").activation_post_process); },
      [](Sequential& m) {
        BOOST_TEST(m.child("fc").name() == "Linear");
        BOOST_TEST(sub(m, "sub").child("quant").name() == "Quantize");    // checkQuantDequant
        BOOST_TEST(sub(m, "sub").child("dequant").name() == "DeQuantize");
        Sequential& inner = sub(sub(m, "sub"), "module");
        BOOST_TEST(inner.child("fc1").name() == "QuantizedLinear");
        BOOST_TEST(inner.child("fc2").name() == "QuantizedLinear");
        BOOST_TEST(inner.child("relu1").name() == "ReLU");
        BOOST_TEST(inner.child("relu2").name() == "ReLU");
      });
}

// And with the inner module's Linear + ReLU pairs fused first (InnerModule.fuse_modules):
// the fused pairs convert to QuantizedLinearReLU, the ReLUs become Identity.
BOOST_AUTO_TEST_CASE(test_skip_quant_with_fused_inner_module) {
  for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
    Sequential::Children inner;
    inner.emplace_back("fc1", seeded_linear(5, 8, 94));
    inner.emplace_back("relu1", std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::ReLU}));
    inner.emplace_back("fc2", seeded_linear(8, 5, 95));
    inner.emplace_back("relu2", std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::ReLU}));
    auto inner_module = sequential(std::move(inner), "InnerModule");
    fuse_modules(*inner_module, {{"fc1", "relu1"}, {"fc2", "relu2"}});
    BOOST_TEST(inner_module->child("fc1").name() == "LinearReLU");
    BOOST_TEST(inner_module->child("relu2").name() == "Identity");
    auto model = quant_wrapper(std::move(inner_module));
    model->qconfig = get_default_qconfig(engine);
    prepare(*model);
    for (const Tensor& x : calib_data()) run(*model, x);
    convert(*model, {Implementation::Quantized, engine});
    BOOST_TEST(sub(*model, "module").child("fc1").name() == "QuantizedLinearReLU");
    BOOST_TEST(sub(*model, "module").child("fc2").name() == "QuantizedLinearReLU");
    BOOST_TEST(sub(*model, "module").child("relu1").name() == "Identity");
  }
}

BOOST_AUTO_TEST_CASE(test_manual) {
  const auto make = [](Engine engine) {  // QuantStubModel, its qconfig the engine's default
    Sequential::Children c;
    c.emplace_back("quant", std::make_unique<QuantStub>());
    c.emplace_back("fc", seeded_linear(5, 5, 101));
    c.emplace_back("dequant", std::make_unique<DeQuantStub>());
    auto model = sequential(std::move(c), "QuantStubModel");
    model->qconfig = get_default_qconfig(engine);
    return model;
  };
  const auto converted = [](Sequential& m) { BOOST_TEST(m.child("fc").name() == "QuantizedLinear"); };
  flow_on_engines(make, [](Sequential& m) { BOOST_TEST(static_cast<bool>(m.child("fc").activation_post_process)); },
                  converted);
  flow_on_engines(make, [](Sequential&) {}, converted, /*use_quantize=*/true);
}

BOOST_AUTO_TEST_CASE(test_dequant_stub) {
  for (bool dequant_qconfig_none : {false, true}) {
    Sequential::Children c;
    c.emplace_back("quant", std::make_unique<QuantStub>());
    c.emplace_back("fc", seeded_linear(5, 5, 111));
    c.emplace_back("dequant", std::make_unique<DeQuantStub>());
    Sequential m(std::move(c), "QuantStubModel");
    m.qconfig = get_default_qconfig(Engine::QNNPACK);
    if (dequant_qconfig_none) m.child("dequant").qconfig_explicitly_none = true;
    prepare(m);
    BOOST_TEST(static_cast<bool>(m.child("quant").activation_post_process));
    BOOST_TEST(!m.child("dequant").activation_post_process);
    convert(m, {Implementation::Quantized, Engine::QNNPACK});  // uncalibrated, as in the seed
    BOOST_TEST(m.child("quant").name() == "Quantize");
    BOOST_TEST(m.child("fc").name() == "QuantizedLinear");
    BOOST_TEST(m.child("dequant").name() == (dequant_qconfig_none ? "DeQuantStub" : "DeQuantize"));
  }
}

BOOST_AUTO_TEST_CASE(test_quantwrapper_attaches_qconfig_to_dequant) {
  ConvOptions o;
  o.in_channels = o.out_channels = 1;
  o.kernel_size = {1, 1};
  o.stride = {1, 1};
  o.padding = {0, 0};
  o.dilation = {1, 1};
  auto conv = std::make_unique<FloatConv>(o, Tensor({1, 1, 1, 1}, {0.5f}), Tensor({1}, {0.1f}));
  conv->qconfig = default_qconfig();
  Sequential::Children c;
  c.emplace_back("0", quant_wrapper(std::move(conv)));
  Sequential m(std::move(c));
  prepare(m);
  convert(m, {Implementation::Quantized, Engine::QNNPACK});
  BOOST_TEST(sub(m, "0").child("dequant").name() == "DeQuantize");
}

BOOST_AUTO_TEST_CASE(test_save_load_state_dict) {
  for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
    for (Implementation implementation : {Implementation::Quantized, Implementation::LibTorch}) {
      auto model = quant_wrapper(two_layer_linear_model(121));
      model->qconfig = get_default_qconfig(engine);
      prepare(*model);
      for (const Tensor& x : calib_data()) run(*model, x);
      convert(*model, {implementation, engine});
      const Tensor x = uniform({2, 5}, 122);
      const Tensor ref = run(*model, x);
      const StateDict quant_state_dict = model->state_dict();
      // Another model of other weights, converted without calibration, then loaded.
      auto other = quant_wrapper(two_layer_linear_model(123));
      other->qconfig = get_default_qconfig(engine);
      prepare(*other);
      convert(*other, {implementation, engine});
      const StateDict new_state_dict = other->state_dict();
      const std::vector<std::string> new_keys = new_state_dict.keys(), quant_keys = quant_state_dict.keys();
      BOOST_TEST((std::set<std::string>(new_keys.begin(), new_keys.end()) ==
                  std::set<std::string>(quant_keys.begin(), quant_keys.end())));
      const std::string path =
          (std::filesystem::temp_directory_path() / ("qconform-seed-save-load-" + to_string(engine) + ".qsd")).string();
      save_state_dict(quant_state_dict, path);  // through a file, as torch.save would
      other->load_state_dict(load_state_dict_file(path));
      std::filesystem::remove(path);
      BOOST_TEST((run(*other, x) == ref), to_string(implementation) << " on " << to_string(engine));
    }
  }
}

// --- dynamic: test_single_layer (dynamic) and test_type_match_rule ------------------------

namespace {

// qnnpack's dynamic Linear is bit-identical between the integer model and LibTorch; onednn
// applies its scales in its own order (tolerance row dynamic.onednn.integer-vs-libtorch: a few
// float roundings per layer), so the chained models agree there to float rounding.
void check_dynamic_agreement(Engine engine, const std::vector<Tensor>& outputs) {
  for (size_t k = 0; k < 2; ++k) {
    const Tensor &a = outputs[k], &b = outputs[k + 2];
    BOOST_TEST_REQUIRE((a.sizes == b.sizes));
    for (int64_t i = 0; i < a.numel(); ++i) {
      const float bound = engine == Engine::QNNPACK ? 0.0f : 1e-5f * (1.0f + std::abs(a.data[i]));
      BOOST_TEST(std::abs(a.data[i] - b.data[i]) <= bound, to_string(engine) << " element " << i << ": " << a.data[i]
                                                                              << " vs LibTorch's " << b.data[i]);
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(test_single_layer_dynamic) {
  for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
    std::vector<Tensor> outputs;
    for (Implementation implementation : {Implementation::Quantized, Implementation::LibTorch}) {
      Sequential::Children c;
      c.emplace_back("fc1", seeded_linear(5, 5, 131));
      Sequential model(std::move(c), "SingleLayerLinearDynamicModel");
      quantize_dynamic(model, {implementation, engine}, DType::QInt8, {"Linear"});
      BOOST_TEST(model.child("fc1").name() == "DynamicQuantizedLinear");  // checkDynamicQuantizedLinear
      check_no_qconfig(model);
      for (const Tensor& x : calib_data()) outputs.push_back(run(model, x));
    }
    check_dynamic_agreement(engine, outputs);
  }
}

BOOST_AUTO_TEST_CASE(test_type_match_rule) {
  // qconfig_dict {'fc3': None, 'sub2.fc1': None, nn.Linear: qconfig}: names win over the type.
  for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN}) {
    std::vector<Tensor> outputs;
    for (Implementation implementation : {Implementation::Quantized, Implementation::LibTorch}) {
      auto nested = nested_model(141, "NestedModel");
      Sequential& model = *nested;
      model.child("fc3").qconfig_explicitly_none = true;
      sub(model, "sub2").child("fc1").qconfig_explicitly_none = true;
      quantize_dynamic(model, {implementation, engine}, DType::QInt8, {"Linear"});
      BOOST_TEST(sub(model, "sub1").child("fc").name() == "DynamicQuantizedLinear");
      BOOST_TEST(model.child("fc3").name() == "Linear");
      BOOST_TEST(sub(model, "sub2").child("fc1").name() == "Linear");
      BOOST_TEST(sub(model, "sub2").child("fc2").name() == "DynamicQuantizedLinear");
      check_no_qconfig(model);
      for (const Tensor& x : calib_data()) outputs.push_back(run(model, x));
    }
    check_dynamic_agreement(engine, outputs);
  }
}

// The seeds' float16 variants of test_single_layer (dynamic) and test_type_match_rule. Debian's
// LibTorch has no fbgemm, the one engine with fp16 dynamic Linear in PyTorch 1.13: qnnpack and
// onednn refuse it at prepack, LibTorch and the integer side in the same words, and the
// integer model of fbgemm's fp16 GEMM runs (fp16 weights, float activations: within fp16
// rounding of the float model).
BOOST_AUTO_TEST_CASE(float16_dynamic_variants) {
  const auto make = [] {
    auto model = nested_model(151, "NestedModel");
    model->child("fc3").qconfig_explicitly_none = true;
    sub(*model, "sub2").child("fc1").qconfig_explicitly_none = true;
    return model;
  };
  for (Engine engine : {Engine::QNNPACK, Engine::ONEDNN})
    for (Implementation implementation : {Implementation::Quantized, Implementation::LibTorch}) {
      auto model = make();
      testing::expect_error(
          [&] { quantize_dynamic(*model, {implementation, engine}, DType::Float16, {"Linear"}); },
          "quantized::linear_prepack_fp16 is currently not supported by " +
              std::string(engine == Engine::QNNPACK ? "QNNPACK" : "ONEDNN"));
    }
  auto float_model = make();
  auto model = make();
  quantize_dynamic(*model, {Implementation::Quantized, Engine::FBGEMM}, DType::Float16, {"Linear"});
  BOOST_TEST(sub(*model, "sub1").child("fc").name() == "DynamicQuantizedLinear");
  BOOST_TEST(sub(*model, "sub2").child("fc2").name() == "DynamicQuantizedLinear");
  BOOST_TEST(model->child("fc3").name() == "Linear");
  BOOST_TEST(sub(*model, "sub2").child("fc1").name() == "Linear");
  const StateDict state = sub(*model, "sub1").child("fc").state_dict();
  BOOST_TEST((state.at("_packed_params.dtype").as<DType>("dtype") == DType::Float16));
  check_no_qconfig(*model);
  for (const Tensor& x : calib_data()) {
    const Tensor y = run(*model, x), reference = run(*float_model, x);
    for (int64_t i = 0; i < y.numel(); ++i)
      BOOST_TEST(std::abs(y.data[i] - reference.data[i]) <= 4e-3f * (1.0f + std::abs(reference.data[i])));
  }
}

// --- embeddings: test_quantized_embedding, test_quantized_embedding_bag,
//     test_embedding_bag_dynamic, test_embedding_ops_dynamic -------------------------------

namespace {

const IntTensor kSeedIndices{{32}, {9, 6, 5, 7, 8, 8, 9, 2, 8, 6, 6, 9, 1, 6, 8, 8,
                                    3, 2, 3, 6, 3, 6, 5, 7, 0, 8, 4, 6, 5, 8, 2, 3}, false};
const IntTensor kSeedOffsets{{6}, {0, 19, 20, 28, 28, 32}, false};

std::unique_ptr<FloatEmbedding> embedding(bool bag, bool include_last_offset, uint64_t seed) {
  EmbeddingOptions o;
  o.num_embeddings = 10;
  o.embedding_dim = 12;
  o.bag = bag;
  o.include_last_offset = include_last_offset;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  Tensor w({10, 12});
  for (float& v : w.data) v = normal(rng);
  return std::make_unique<FloatEmbedding>(o, w);
}

// EmbeddingWithStaticLinear: emb (EmbeddingBag(10, 12), float_qparams), quant, fc
// (Linear(4, 2)), dequant; forward(indices, offsets, linear_in) = cat([dequant(fc(quant(x))),
// emb(indices, offsets)], dim=1).
class EmbeddingWithStaticLinear : public Sequential {
 public:
  EmbeddingWithStaticLinear() : Sequential(children(), "EmbeddingWithStaticLinear") {
    child("emb").qconfig = float_qparams_weight_only_qconfig();
    qconfig = default_qconfig();
  }

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const Tensor emb = std::get<Tensor>(child("emb")(ModuleInput{input.input, std::nullopt, {input.others.at(0)}}).output);
    Value x = child("quant")(ModuleInput{input.others.at(1), std::nullopt}).output;
    x = child("fc")(ModuleInput{x, std::nullopt}).output;
    const Tensor fc = std::get<Tensor>(child("dequant")(ModuleInput{x, std::nullopt}).output);
    Tensor out({fc.size(0), fc.size(1) + emb.size(1)});
    for (int64_t r = 0; r < fc.size(0); ++r) {
      std::copy_n(fc.data.begin() + r * fc.size(1), fc.size(1), out.data.begin() + r * out.size(1));
      std::copy_n(emb.data.begin() + r * emb.size(1), emb.size(1), out.data.begin() + r * out.size(1) + fc.size(1));
    }
    return {out, std::nullopt};
  }

 private:
  static Children children() {
    Children c;
    c.emplace_back("emb", embedding(true, false, 161));
    c.emplace_back("quant", std::make_unique<QuantStub>());
    c.emplace_back("fc", seeded_linear(4, 2, 162));
    c.emplace_back("dequant", std::make_unique<DeQuantStub>());
    return c;
  }
};

// The models of the dynamic tests: emb and fc side by side; forward(indices, [offsets,]
// linear_in) returns emb's output (the seeds return both; fc's runs in the test on its own).
class EmbeddingWithLinear : public Sequential {
 public:
  explicit EmbeddingWithLinear(bool bag)
      : Sequential(children(bag), bag ? "EmbeddingBagWithLinear" : "EmbeddingWithLinear"), bag_(bag) {}

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    std::vector<Value> emb_operands;
    if (bag_) emb_operands.push_back(input.others.at(0));
    child("fc")(ModuleInput{input.others.back(), std::nullopt});
    return child("emb")(ModuleInput{input.input, std::nullopt, emb_operands});
  }

 private:
  static Children children(bool bag) {
    Children c;
    c.emplace_back("emb", embedding(bag, /*include_last_offset=*/bag, 171));
    c.emplace_back("fc", seeded_linear(5, 5, 172));
    return c;
  }
  bool bag_;
};

Tensor run_with(Module& m, const IntTensor& indices, std::vector<Value> others) {
  return std::get<Tensor>(m(ModuleInput{indices, std::nullopt, std::move(others)}).output);
}

}  // namespace

BOOST_AUTO_TEST_CASE(test_quantized_embedding) {
  for (const QConfig& qconfig : {float_qparams_weight_only_qconfig(), float_qparams_weight_only_qconfig_4bit()}) {
    std::vector<Tensor> outputs;
    for (Implementation implementation : {Implementation::Quantized, Implementation::LibTorch}) {
      Sequential::Children c;
      c.emplace_back("emb", embedding(false, false, 151));
      Sequential model(std::move(c), "EmbeddingModule");
      model.qconfig = qconfig;
      prepare(model);
      convert(model, {implementation, Engine::QNNPACK});
      BOOST_TEST(model.child("emb").repr().find("QuantizedEmbedding") != std::string::npos);
      BOOST_TEST(model.child("emb").name() == "QuantizedEmbedding");
      BOOST_TEST((model.child("emb").state_dict().at("_packed_params.dtype").as<DType>("dtype") ==
                  qconfig.weight_dtype()));
      check_no_qconfig(model);
      outputs.push_back(run_with(model, kSeedIndices, {}));
    }
    BOOST_TEST((outputs[0] == outputs[1]), qconfig.name);
    BOOST_TEST((outputs[0].sizes == Shape{32, 12}));
  }
  const IntTensor idx{{8}, {1, 2, 4, 5, 4, 3, 2, 9}, false};
  const IntTensor offsets{{2}, {0, 4}, false};
  std::vector<Tensor> outputs;
  for (Implementation implementation : {Implementation::Quantized, Implementation::LibTorch}) {
    EmbeddingWithStaticLinear model;
    prepare(model);
    convert(model, {implementation, Engine::QNNPACK});  // uncalibrated, as the seed
    BOOST_TEST(model.child("emb").name() == "QuantizedEmbeddingBag");
    BOOST_TEST(model.child("fc").name() == "QuantizedLinear");  // checkQuantizedLinear
    outputs.push_back(run_with(model, idx, {offsets, uniform({2, 4}, 163)}));
  }
  BOOST_TEST((outputs[0] == outputs[1]));
  BOOST_TEST((outputs[0].sizes == Shape{2, 14}));
}

BOOST_AUTO_TEST_CASE(test_quantized_embedding_bag) {
  std::mt19937_64 rng(181);
  std::uniform_real_distribution<float> weight(0.01f, 0.5f);
  Tensor per_sample_weights({32});
  for (float& v : per_sample_weights.data) v = weight(rng);
  for (DType dtype : {DType::QUInt8, DType::QUInt4x2}) {
    ObserverOptions o;
    o.dtype = dtype;
    o.qscheme = QScheme::PerChannelAffineFloatQParams;
    const QConfig float_qparams_qconfig{"float_qparams_qconfig", default_dynamic_quant_observer(),
                                        per_channel_min_max_observer(o)};
    std::vector<Tensor> outputs;
    for (Implementation implementation : {Implementation::Quantized, Implementation::LibTorch}) {
      Sequential::Children c;
      c.emplace_back("emb", embedding(true, true, 182));
      Sequential model(std::move(c), "EmbeddingBagModule");
      model.qconfig = float_qparams_qconfig;
      prepare(model);
      convert(model, {implementation, Engine::ONEDNN});
      BOOST_TEST(model.child("emb").name() == "QuantizedEmbeddingBag");
      BOOST_TEST((model.child("emb").state_dict().at("_packed_params.dtype").as<DType>("dtype") == dtype));
      outputs.push_back(run_with(model, kSeedIndices, {kSeedOffsets, per_sample_weights}));
    }
    BOOST_TEST((outputs[0] == outputs[1]), to_string(dtype));
    BOOST_TEST((outputs[0].sizes == Shape{5, 12}));  // include_last_offset: 6 offsets, 5 bags

    EmbeddingWithLinear model2(/*bag=*/true);
    model2.child("emb").qconfig = float_qparams_qconfig;
    prepare(model2);
    convert(model2, {Implementation::Quantized, Engine::ONEDNN});
    BOOST_TEST(model2.child("emb").name() == "QuantizedEmbeddingBag");
    BOOST_TEST(model2.child("fc").name() == "Linear");  // checkLinear: no qconfig, not converted
  }
}

BOOST_AUTO_TEST_CASE(test_embedding_bag_dynamic_and_test_embedding_ops_dynamic) {
  for (bool bag : {true, false}) {
    std::vector<Tensor> outputs;
    for (Implementation implementation : {Implementation::Quantized, Implementation::LibTorch}) {
      EmbeddingWithLinear model(bag);
      quantize_dynamic(model, {implementation, Engine::QNNPACK},
                       {{bag ? "EmbeddingBag" : "Embedding", float_qparams_weight_only_qconfig()},
                        {"Linear", default_dynamic_qconfig()}});
      BOOST_TEST(model.child("emb").repr().find(bag ? "QuantizedEmbeddingBag" : "QuantizedEmbedding") !=
                 std::string::npos);
      BOOST_TEST(model.child("fc").repr().find("DynamicQuantizedLinear") != std::string::npos);
      const Tensor linear_in = uniform({5, 5}, 191);
      outputs.push_back(bag ? run_with(model, kSeedIndices, {kSeedOffsets, linear_in})
                            : run_with(model, kSeedIndices, {linear_in}));
    }
    BOOST_TEST((outputs[0] == outputs[1]), (bag ? "EmbeddingBag" : "Embedding"));
  }
}
