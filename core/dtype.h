#pragma once
// Quantized dtypes and quantization schemes, named as PyTorch names them.
#include <cstdint>
#include <string>

namespace qconform {

enum class DType {
  QUInt8,    // torch.quint8:   0 .. 255
  QInt8,     // torch.qint8: -128 .. 127
  QInt32,    // torch.qint32: int32 range; narrowed with quant_min/quant_max (e.g. int16 emulation)
  QUInt4x2,  // torch.quint4x2: 0 .. 15, two values per byte in PyTorch's storage
  Float16,   // torch.float16: weight-only "quantization" by rounding to half
  Float32,   // torch.float32: not quantized (placeholder observers, float modules)
};

enum class QScheme {
  PerTensorAffine,
  PerTensorSymmetric,
  PerChannelAffine,
  PerChannelSymmetric,
  PerChannelAffineFloatQParams,
};

// "torch.quint8", "torch.per_channel_affine", ... as PyTorch prints them.
std::string to_string(DType dtype);
std::string to_string(QScheme qscheme);
DType dtype_from_string(const std::string& name);      // throws Error naming the value
QScheme qscheme_from_string(const std::string& name);  // throws Error naming the value

bool is_integer_quantized(DType dtype);  // quint8, qint8, qint32, quint4x2
bool is_per_channel(QScheme qscheme);
bool is_symmetric(QScheme qscheme);

// The full storage range of an integer dtype (PyTorch's defaults for quant_min/quant_max).
int64_t dtype_min(DType dtype);
int64_t dtype_max(DType dtype);

}  // namespace qconform
