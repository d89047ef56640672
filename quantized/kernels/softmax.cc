#include "quantized/kernels/softmax.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/quantize.h"

namespace qconform::kernels {
namespace {

// The rows along `dim`: outer blocks, each with `inner` interleaved rows of `size` elements.
struct Rows {
  int64_t outer = 1, size = 1, inner = 1;
};

Rows rows_of(const Shape& shape, int64_t dim) {
  Rows r;
  for (int64_t k = 0; k < dim; ++k) r.outer *= shape[k];
  r.size = shape.empty() ? 1 : shape[dim];
  for (size_t k = static_cast<size_t>(dim) + 1; k < shape.size(); ++k) r.inner *= shape[k];
  return r;
}

}  // namespace

bool softmax_takes_qnnpack(const QuantParams& input, const QuantParams& output, int64_t rank) {
  return !input.per_channel() && input.dtype == DType::QUInt8 && rank > 0 && output.scale() == 0x1.0p-8 &&
         output.zero_point() == 0;
}

double qnnpack_softmax_table_scale(int64_t channels) {
  return std::fmin(4294967295.0 / static_cast<double>(channels), 8388607.0);
}

void qnnpack_softmax(const QTensor& x, int64_t dim, int32_t* y) {
  const Rows r = rows_of(x.sizes, dim);
  // 1. the table, in double, as QNNPACK builds it from the float input scale
  const double q = qnnpack_softmax_table_scale(r.size);
  const double s = static_cast<double>(static_cast<float>(x.qparams.scale()));
  uint32_t table[256];
  for (int32_t i = 0; i < 256; ++i) table[i] = static_cast<uint32_t>(std::lrint(q * std::exp(static_cast<double>(i - 255) * s)));
  for (int64_t o = 0; o < r.outer; ++o)
    for (int64_t i = 0; i < r.inner; ++i) {
      const int32_t* in = x.values.data() + o * r.size * r.inner + i;
      int32_t* out = y + o * r.size * r.inner + i;
      // 2. the row's maximum shifts the table; the sum of its entries
      int32_t m = 0;
      for (int64_t k = 0; k < r.size; ++k) m = std::max(m, in[k * r.inner]);
      uint32_t sum = 0;
      for (int64_t k = 0; k < r.size; ++k) sum += table[in[k * r.inner] + 255 - m];
      // 3. 256 e / S, rounded half up by the integer division, saturated
      for (int64_t k = 0; k < r.size; ++k) {
        const uint32_t e = table[in[k * r.inner] + 255 - m];
        const uint32_t quotient = ((e << 8) + (sum >> 1)) / sum;
        out[k * r.inner] = static_cast<int32_t>(std::min<uint32_t>(quotient, 255));
      }
    }
}

void aten_softmax(const QTensor& x, int64_t dim, const QuantParams& out, int32_t* y) {
  const Tensor values = dequantize(x);
  const Rows r = rows_of(x.sizes, dim);
  std::vector<float> probabilities(values.data.size());
  for (int64_t o = 0; o < r.outer; ++o)
    for (int64_t i = 0; i < r.inner; ++i) {
      const int64_t base = o * r.size * r.inner + i;
      float m = -INFINITY;
      for (int64_t k = 0; k < r.size; ++k) m = std::max(m, values.data[base + k * r.inner]);
      float sum = 0.0f;
      for (int64_t k = 0; k < r.size; ++k) {
        const float e = std::exp(values.data[base + k * r.inner] - m);
        probabilities[base + k * r.inner] = e;
        sum += e;
      }
      for (int64_t k = 0; k < r.size; ++k) probabilities[base + k * r.inner] /= sum;
    }
  const QTensor q = quantize(Tensor(x.sizes, std::move(probabilities)), out);
  std::copy(q.values.begin(), q.values.end(), y);
}

}  // namespace qconform::kernels
