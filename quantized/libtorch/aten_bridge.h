#pragma once
// Internal to the LibTorch implementation (quantized/libtorch/*.cc, and the TorchScript import
// of `fixture add`, oracles/fixture_import.cc): the only header of the
// harness that includes ATen. Converts between the harness's value types and at::Tensor,
// selects a quantized engine for a scope, and calls quantized operators by name through
// the dispatcher (boxed), so no private PyTorch header is needed.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include <optional>
#include <string>
#include <vector>

#include "core/engines.h"
#include "core/tensor.h"

namespace qconform::libtorch {

at::QEngine to_qengine(Engine engine);

// Sets at::globalContext()'s quantized engine for a scope and restores the previous one.
// LibTorch's engine is process-global: modules set it around every prepack and call.
// Error if LibTorch lacks the engine, or if the profile names an int8 path other than the
// one this process takes (the message says how to get that path).
class EngineGuard {
 public:
  explicit EngineGuard(const EngineProfile& profile);
  ~EngineGuard();
  EngineGuard(const EngineGuard&) = delete;
  EngineGuard& operator=(const EngineGuard&) = delete;

 private:
  at::QEngine previous_;
};

at::Tensor to_aten(const Tensor& t);          // copies
Tensor from_aten(const at::Tensor& t);         // float32 tensor, copies
at::Tensor to_aten(const QTensor& q);          // exact integers, same qparams
at::Tensor to_aten(const QTensor& q, bool channels_last);  // held in that memory format instead of q's
QTensor from_aten_quantized(const at::Tensor& q);
// A quint8 per-tensor 4-d tensor held channels-last, as its bytes lie (a view: `q` must
// outlive it); none for any other tensor.
std::optional<U8ChannelsLast> channels_last_bytes(const at::Tensor& q);
// A new quint8 channels-last tensor of `like`'s sizes, scale and zero point, for a module to
// write its bytes into.
at::Tensor empty_channels_last(const U8ChannelsLast& like);
// `x`'s bytes as a quint8 channels-last tensor, without a copy (they must outlive it; LibTorch's
// ops only read an input).
at::Tensor wrap_channels_last(const U8ChannelsLast& x);

// Calls a registered operator ("quantized::linear_prepack", overload "") with boxed
// arguments and returns the stack of results. c10::Error becomes qconform::Error with the
// operator's first message line.
std::vector<c10::IValue> call_op(const char* name, const char* overload, std::vector<c10::IValue> args);
// A method of a TorchScript custom-class object (a packed-params object's "unpack", as the
// Python modules call it); LibTorch's errors become Error with LibTorch's first line.
std::vector<c10::IValue> call_method(const c10::IValue& object, const char* method, std::vector<c10::IValue> args = {});

// The first line of a c10::Error's message, without LibTorch's C++ stack trace and without the
// prefixes of its assertion macros, which name its source lines ("[enforce fail at ...] cond. ",
// "cond INTERNAL ASSERT FAILED at ..., please report a bug to PyTorch. ").
std::string first_line(const std::string& message);

}  // namespace qconform::libtorch
