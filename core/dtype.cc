#include "core/dtype.h"

#include <array>
#include <limits>
#include <utility>

#include "core/error.h"

namespace qconform {
namespace {

constexpr std::array<std::pair<DType, const char*>, 6> kDTypeNames{{
    {DType::QUInt8, "torch.quint8"},
    {DType::QInt8, "torch.qint8"},
    {DType::QInt32, "torch.qint32"},
    {DType::QUInt4x2, "torch.quint4x2"},
    {DType::Float16, "torch.float16"},
    {DType::Float32, "torch.float32"},
}};

constexpr std::array<std::pair<QScheme, const char*>, 5> kQSchemeNames{{
    {QScheme::PerTensorAffine, "torch.per_tensor_affine"},
    {QScheme::PerTensorSymmetric, "torch.per_tensor_symmetric"},
    {QScheme::PerChannelAffine, "torch.per_channel_affine"},
    {QScheme::PerChannelSymmetric, "torch.per_channel_symmetric"},
    {QScheme::PerChannelAffineFloatQParams, "torch.per_channel_affine_float_qparams"},
}};

// Accepts both "torch.qint8" and "qint8".
bool names_match(const std::string& given, const char* canonical) {
  const std::string full(canonical);
  return given == full || given == full.substr(6);
}

}  // namespace

std::string to_string(DType dtype) {
  for (const auto& [value, name] : kDTypeNames)
    if (value == dtype) return name;
  return "torch.<unknown dtype>";
}

std::string to_string(QScheme qscheme) {
  for (const auto& [value, name] : kQSchemeNames)
    if (value == qscheme) return name;
  return "torch.<unknown qscheme>";
}

DType dtype_from_string(const std::string& name) {
  for (const auto& [value, canonical] : kDTypeNames)
    if (names_match(name, canonical)) return value;
  throw Error("unknown dtype '" + name + "' (expected one of torch.quint8, torch.qint8, " +
              "torch.qint32, torch.quint4x2, torch.float16, torch.float32)");
}

QScheme qscheme_from_string(const std::string& name) {
  for (const auto& [value, canonical] : kQSchemeNames)
    if (names_match(name, canonical)) return value;
  throw Error("unknown qscheme '" + name + "'");
}

bool is_integer_quantized(DType dtype) {
  return dtype == DType::QUInt8 || dtype == DType::QInt8 || dtype == DType::QInt32 ||
         dtype == DType::QUInt4x2;
}

bool is_per_channel(QScheme qscheme) {
  return qscheme == QScheme::PerChannelAffine || qscheme == QScheme::PerChannelSymmetric ||
         qscheme == QScheme::PerChannelAffineFloatQParams;
}

bool is_symmetric(QScheme qscheme) {
  return qscheme == QScheme::PerTensorSymmetric || qscheme == QScheme::PerChannelSymmetric;
}

int64_t dtype_min(DType dtype) {
  switch (dtype) {
    case DType::QUInt8: return 0;
    case DType::QInt8: return -128;
    case DType::QInt32: return std::numeric_limits<int32_t>::min();
    case DType::QUInt4x2: return 0;
    default: throw Error("dtype " + to_string(dtype) + " has no integer range");
  }
}

int64_t dtype_max(DType dtype) {
  switch (dtype) {
    case DType::QUInt8: return 255;
    case DType::QInt8: return 127;
    case DType::QInt32: return std::numeric_limits<int32_t>::max();
    case DType::QUInt4x2: return 15;
    default: throw Error("dtype " + to_string(dtype) + " has no integer range");
  }
}

}  // namespace qconform
