#pragma once
// torch.ao.nn.quantized.reference.Conv{1,2,3}d, "QuantizedConv{n}d(Reference)": the
// specification every integer convolution is measured against.
//
//   forward(x) = conv(x, dequantize(quantize(W, weight_qparams))) + b        (float math)
//
// relu afterwards for the fused ConvReLU{n}d (PyTorch converts nni.ConvReLU{n}d to the same
// reference conv followed by its ReLU).
#include <memory>
#include <optional>

#include "core/float/conv.h"
#include "core/module.h"

namespace qconform {

class ReferenceConv : public Module {
 public:
  ReferenceConv(ConvOptions options, Tensor weight, std::optional<Tensor> bias, QuantParams weight_qparams);

  // convert(..., is_reference=True): the weight observer of the float module's qconfig
  // (default_qconfig's when it has none) chooses weight_qparams.
  static std::unique_ptr<ReferenceConv> from_float(const FloatConv& float_conv);

  std::string name() const override { return "Quantized" + options_.float_name(false) + "(Reference)"; }
  std::string extra_repr() const override { return conv_extra_repr(options_); }
  Implementation implementation() const override { return Implementation::Reference; }
  // weight, bias, then the weight_qparams keys of every reference module.
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;

  const ConvOptions& options() const { return options_; }
  const Tensor& weight() const { return weight_; }
  const std::optional<Tensor>& bias() const { return bias_; }
  const QuantParams& weight_qparams() const { return weight_qparams_; }
  Tensor get_weight() const { return weight_dequantized_; }  // fake-quantized, used by forward
  QTensor get_quantized_weight() const;                      // what from_reference hands on
  bool fused_relu = false;

 protected:
  ModuleOutput forward(const ModuleInput& input) override;

 private:
  ConvOptions options_;
  Tensor weight_;
  std::optional<Tensor> bias_;
  QuantParams weight_qparams_;
  Tensor weight_dequantized_;
};

}  // namespace qconform
