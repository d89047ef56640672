// The seeds' eager-mode tests of activations and functionals (test_quantize_eager_ptq.py in
// PyTorch 1.13: test_leaky_relu, test_relu, test_activations, test_functional_module,
// test_activations_in_non_leaf_module_list), reproduced over the harness's eager flow with
// their assertions: which modules prepare observes (checkObservers, facts of PyTorch 1.13's
// qconfig propagation list), which module types convert leaves (PyTorch's class names), that
// no qconfig remains (checkNoQconfig). Beyond the seeds, each converted model runs, and its
// integer and LibTorch conversions give identical outputs.
//
// test_resnet_base runs here from where fuse_modules leaves it (conv1 with bn1 folded in and
// relu1 fused, a ConvReLU2d): the fusion itself belongs to the normalization and fusion issue.
// test_functional_module's QAT branch needs prepare_qat.
#define BOOST_TEST_MODULE test_eager_seeds
#include <boost/test/unit_test.hpp>

#include <random>

#include "core/float/activation.h"
#include "core/float/conv.h"
#include "core/float/functional.h"
#include "core/float/linear.h"
#include "core/float/pooling.h"
#include "core/qconfig.h"
#include "core/quantize.h"
#include "oracles/eager.h"
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

// ResNetBase (common_quantization.py) after fuse_modules(['conv1', 'bn1', 'relu1']):
// out = conv1(x) (ConvReLU2d), identity = downsample(x) (nn.Identity), out = myop.add(out,
// identity), relu2, avgpool (AdaptiveAvgPool2d((1, 1))), flatten, fc (Linear(3, 1)).
class ResNetBase : public Sequential {
 public:
  explicit ResNetBase(uint64_t seed) : Sequential(children(seed), "ResNetBase") {}

 protected:
  ModuleOutput forward(const ModuleInput& input) override {
    const Value x = input.input;
    Value out = child("conv1")(ModuleInput{x, std::nullopt}).output;
    out = child("myop")(ModuleInput{out, std::nullopt, {x}}).output;  // the identity branch
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
    auto conv1 = std::make_unique<FloatConv>(o, randn({3, 3, 1, 1}), randn({3}));  // bn1 folded in: a bias
    conv1->fused_relu = true;
    PoolingOptions pool;
    pool.op = PoolingOp::AdaptiveAvgPool2d;
    pool.output_size = {1, 1, true};
    Children c;
    c.emplace_back("conv1", std::move(conv1));
    c.emplace_back("relu2", std::make_unique<FloatActivation>(ActivationOptions{ActivationOp::ReLU}));
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
      auto model = quant_wrapper(std::make_unique<ResNetBase>(5));
      model->qconfig = get_default_qconfig(engine);
      prepare(*model);
      const auto& inner = dynamic_cast<const Sequential&>(model->child("module"));
      // checkObservers: the mapped modules; relu2 and avgpool are in no mapping.
      for (const char* name : {"conv1", "myop", "fc"})
        BOOST_TEST(static_cast<bool>(inner.child(name).activation_post_process), name << " has no observer");
      for (const char* name : {"relu2", "avgpool"}) BOOST_TEST(!inner.child(name).activation_post_process, name);
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
