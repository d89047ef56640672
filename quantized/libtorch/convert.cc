#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "quantized/kernels/channels_last.h"
#include "quantized/libtorch/aten_bridge.h"

#include <ATen/quantized/Quantizer.h>
#include <ATen/core/function.h>
#include <ATen/core/class_type.h>
#include <c10/util/Logging.h>

namespace qconform::libtorch {
namespace {

// LibTorch symbolizes a C++ backtrace into every c10::Error it constructs (c10::get_backtrace:
// backtrace_symbols, a dladdr lookup per frame), and the harness keeps only an error's first
// line (call_op, call_method, first_line below), while its rejection oracles make LibTorch
// refuse on purpose in every case. Those backtraces were 10 % of `qconform conform`'s main
// thread on dynamic.Linear (perf; Intel Xeon, 2026-12-07, docs/benchmarks.md). So none is
// collected, unless TORCH_SHOW_CPP_STACKTRACES asks for them, PyTorch's own switch for showing
// them (for a debugger or an uncaught c10::Error).
const bool backtraces_collected = [] {
  const char* show = std::getenv("TORCH_SHOW_CPP_STACKTRACES");
  const bool wanted = show && *show && std::strcmp(show, "0") != 0;
  if (!wanted) c10::SetStackTraceFetcher([] { return std::string(); });
  return wanted;
}();

at::ScalarType int_repr_type(DType dtype) {
  switch (dtype) {
    case DType::QUInt8: return at::kByte;
    case DType::QInt8: return at::kChar;
    case DType::QInt32: return at::kInt;
    default: throw Error("no LibTorch int representation for " + to_string(dtype));
  }
}

at::ScalarType quantized_type(DType dtype) {
  switch (dtype) {
    case DType::QUInt8: return at::kQUInt8;
    case DType::QInt8: return at::kQInt8;
    case DType::QInt32: return at::kQInt32;
    default: throw Error("no LibTorch quantized dtype for " + to_string(dtype));
  }
}

bool is_channels_last_4d(const at::Tensor& t) {
  return t.dim() == 4 && !t.is_contiguous() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

// An 8-bit quantized tensor's integers in QTensor's row-major order, read from its bytes: a
// contiguous one widened as it lies, a channels-last one transposed image by image (HW rows
// of C values become C planes of HW; quint8 in one pass of byte transposes, qint8 widened
// first). Returns false for any other layout, which takes int_repr's general path. Model
// replays convert every layer's input this way.
template <typename Byte>
bool read_8bit_values(const at::Tensor& q, std::vector<int32_t>& values) {
  const bool channels_last = is_channels_last_4d(q);
  if (!q.is_contiguous() && !channels_last) return false;
  const Byte* bytes = static_cast<const Byte*>(q.data_ptr());
  const int64_t n = q.numel();
  values.resize(static_cast<size_t>(n));
  if (!channels_last) {
    for (int64_t i = 0; i < n; ++i) values[i] = bytes[i];
    return true;
  }
  const int64_t images = q.size(0), channels = q.size(1), plane = q.size(2) * q.size(3);
  if constexpr (std::is_same_v<Byte, uint8_t>) {
    for (int64_t b = 0; b < images; ++b)
      kernels::from_u8_channels_last(bytes + b * channels * plane, channels, plane, values.data() + b * channels * plane);
    return true;
  }
  std::vector<int32_t> rows(static_cast<size_t>(channels * plane));
  for (int64_t b = 0; b < images; ++b) {
    const Byte* image = bytes + b * channels * plane;
    for (int64_t i = 0; i < channels * plane; ++i) rows[i] = image[i];
    kernels::transpose_int32(rows.data(), plane, channels, values.data() + b * channels * plane, plane);
  }
  return true;
}

}  // namespace

std::string first_line(const std::string& message) {
  // The first line that says something (a TorchScript compiler error starts with an empty one).
  const size_t start = std::min(message.find_first_not_of(" \n"), message.size());
  std::string line = message.substr(start, message.find('\n', start) - start);
  // Assertion prefixes that name LibTorch's source lines, not what is wrong:
  // "[enforce fail at File.cpp:322] cond. <message>" and
  // "cond INTERNAL ASSERT FAILED at \"file\":315, please report a bug to PyTorch. <message>".
  if (line.rfind("[enforce fail at ", 0) == 0) {
    const auto end = line.find("] ");
    const auto condition_end = end == std::string::npos ? end : line.find(". ", end);
    if (condition_end != std::string::npos) line = line.substr(condition_end + 2);
  }
  const std::string report = "please report a bug to PyTorch. ";
  if (line.find(" INTERNAL ASSERT FAILED at ") != std::string::npos && line.find(report) != std::string::npos)
    line = line.substr(line.find(report) + report.size());
  return line;
}

at::Tensor to_aten(const Tensor& t) {
  return at::from_blob(const_cast<float*>(t.data.data()), t.sizes, at::kFloat).clone();
}

Tensor from_aten(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kFloat).contiguous();
  Tensor out(c.sizes().vec());
  // An empty tensor's data pointer may be null, which memcpy may not be given (UBSan).
  if (!out.data.empty()) std::memcpy(out.data.data(), c.data_ptr<float>(), out.data.size() * sizeof(float));
  return out;
}

at::Tensor to_aten(const QTensor& q) { return to_aten(q, q.channels_last); }

at::Tensor to_aten(const QTensor& q, bool channels_last) {
  const QuantParams& qp = q.qparams;
  if (qp.dtype == DType::QUInt8 && !qp.per_channel() && channels_last && q.sizes.size() == 4) {
    // Straight into a channels-last quantized tensor, image by image (what the general path
    // below does through ATen's strided copy); values outside quint8's range take that path.
    at::Tensor out = empty_channels_last(U8ChannelsLast{q.sizes, qp.scale(), qp.zero_point()});
    uint8_t* bytes = static_cast<uint8_t*>(out.data_ptr());
    const int64_t channels = q.sizes[1], plane = q.sizes[2] * q.sizes[3];
    bool in_range = true;
    for (int64_t b = 0; b < q.sizes[0] && in_range; ++b) {
      const kernels::ValueRange range = kernels::to_u8_channels_last(
          q.values.data() + b * channels * plane, channels, plane, bytes + b * channels * plane);
      in_range = range.smallest >= 0 && range.largest <= 255;
    }
    if (in_range) return out;
  }
  at::Tensor ints = at::from_blob(const_cast<int32_t*>(q.values.data()), q.sizes, at::kInt)
                        .to(int_repr_type(qp.dtype), /*non_blocking=*/false, /*copy=*/true);
  if (!qp.per_channel()) {
    const at::Tensor out = at::_make_per_tensor_quantized_tensor(ints, qp.scale(), qp.zero_point());
    return channels_last && q.sizes.size() == 4 ? out.contiguous(at::MemoryFormat::ChannelsLast) : out;
  }
  at::Tensor scales = at::tensor(qp.scales, at::kDouble);
  std::vector<int64_t> zps(qp.zero_points.begin(), qp.zero_points.end());
  at::Tensor zero_points = at::tensor(zps, at::kLong);
  at::Tensor out = at::_make_per_channel_quantized_tensor(ints, scales, zero_points, qp.axis);
  TORCH_CHECK(out.scalar_type() == quantized_type(qp.dtype));
  return channels_last && q.sizes.size() == 4 ? out.contiguous(at::MemoryFormat::ChannelsLast) : out;
}

QTensor from_aten_quantized(const at::Tensor& q) {
  QTensor out;
  out.sizes = q.sizes().vec();
  out.channels_last = is_channels_last_4d(q);
  const bool read = (q.scalar_type() == at::kQUInt8 && read_8bit_values<uint8_t>(q, out.values)) ||
                    (q.scalar_type() == at::kQInt8 && read_8bit_values<int8_t>(q, out.values));
  if (!read) {
    const at::Tensor ints = q.int_repr().to(at::kInt).contiguous();
    if (q.scalar_type() == at::kQUInt4x2) {
      // Two values per byte along the last dimension: element j in bits 4 (j % 2) of byte j / 2.
      const int64_t cols = out.sizes.empty() ? 1 : out.sizes.back();
      const int64_t bytes_per_row = (cols + 1) / 2, rows = numel_of(out.sizes) / std::max<int64_t>(cols, 1);
      const int32_t* packed = ints.data_ptr<int32_t>();
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < cols; ++j)
          out.values.push_back((packed[r * bytes_per_row + j / 2] >> (4 * (j % 2))) & 15);
    } else {
      out.values.assign(ints.data_ptr<int32_t>(), ints.data_ptr<int32_t>() + ints.numel());
    }
  }
  QuantParams& qp = out.qparams;
  switch (q.scalar_type()) {
    case at::kQUInt8: qp.dtype = DType::QUInt8; break;
    case at::kQUInt4x2: qp.dtype = DType::QUInt4x2; break;
    case at::kQInt8: qp.dtype = DType::QInt8; break;
    case at::kQInt32: qp.dtype = DType::QInt32; break;
    default: throw Error("unsupported LibTorch quantized dtype " + std::string(c10::toString(q.scalar_type())));
  }
  qp.quant_min = dtype_min(qp.dtype);
  qp.quant_max = dtype_max(qp.dtype);
  if (q.qscheme() == at::kPerTensorAffine) {
    qp.qscheme = QScheme::PerTensorAffine;
    qp.scales = {q.q_scale()};
    qp.zero_points = {static_cast<double>(q.q_zero_point())};
  } else if (q.qscheme() == at::kPerChannelAffineFloatQParams) {
    const at::Tensor s = q.q_per_channel_scales().to(at::kFloat).contiguous();
    const at::Tensor z = q.q_per_channel_zero_points().to(at::kFloat).contiguous();
    qp = QuantParams::per_channel_float_qparams(
        qp.dtype, std::vector<float>(s.data_ptr<float>(), s.data_ptr<float>() + s.numel()),
        std::vector<float>(z.data_ptr<float>(), z.data_ptr<float>() + z.numel()), q.q_per_channel_axis());
  } else if (q.qscheme() == at::kPerChannelAffine) {
    qp.qscheme = QScheme::PerChannelAffine;
    const at::Tensor s = q.q_per_channel_scales().to(at::kDouble).contiguous();
    const at::Tensor z = q.q_per_channel_zero_points().to(at::kLong).contiguous();
    qp.scales.assign(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
    for (int64_t i = 0; i < z.numel(); ++i) qp.zero_points.push_back(static_cast<double>(z.data_ptr<int64_t>()[i]));
    qp.axis = q.q_per_channel_axis();
  } else {
    throw Error("unsupported LibTorch qscheme " + std::string(c10::toString(q.qscheme())));
  }
  return out;
}

std::optional<U8ChannelsLast> channels_last_bytes(const at::Tensor& q) {
  if (!q.defined() || q.scalar_type() != at::kQUInt8 || q.qscheme() != at::kPerTensorAffine || !is_channels_last_4d(q))
    return std::nullopt;
  return U8ChannelsLast{q.sizes().vec(), q.q_scale(), q.q_zero_point(), static_cast<const uint8_t*>(q.data_ptr())};
}

at::Tensor empty_channels_last(const U8ChannelsLast& like) {
  return at::_empty_affine_quantized(like.sizes, at::TensorOptions().dtype(at::kQUInt8), like.scale, like.zero_point,
                                     at::MemoryFormat::ChannelsLast);
}

at::Tensor wrap_channels_last(const U8ChannelsLast& x) {
  const Shape& n = x.sizes;  // (N, C, H, W), laid out N, H, W, C
  at::Tensor t = at::from_blob_quantized_per_tensor_affine(
      const_cast<uint8_t*>(x.bytes), n, {n[1] * n[2] * n[3], 1, n[3] * n[1], n[1]}, [](void*) {},
      static_cast<float>(x.scale), x.zero_point, at::TensorOptions().dtype(at::kQUInt8));
  // from_blob takes the scale as a float: the exact double goes in its quantizer.
  at::set_quantizer_(t, at::make_per_tensor_affine_quantizer(x.scale, x.zero_point, at::kQUInt8));
  return t;
}

std::vector<c10::IValue> call_op(const char* name, const char* overload, std::vector<c10::IValue> args) {
  const auto op = c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
  torch::jit::Stack stack(std::move(args));
  try {
    op.callBoxed(&stack);
  } catch (const c10::Error& e) {
    throw Error(first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {  // c10's checked conversions, std::vector::at inside kernels
    throw Error(first_line(e.what()));
  }
  return stack;
}

std::vector<c10::IValue> call_method(const c10::IValue& object, const char* method, std::vector<c10::IValue> args) {
  torch::jit::Function& function = object.toObject()->type()->getMethod(method);
  torch::jit::Stack stack;
  stack.push_back(object);
  for (auto& arg : args) stack.push_back(std::move(arg));
  try {
    function.run(stack);
  } catch (const c10::Error& e) {
    throw Error(first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {  // c10's checked conversions, std::vector::at inside kernels
    throw Error(first_line(e.what()));
  }
  return stack;
}

}  // namespace qconform::libtorch
