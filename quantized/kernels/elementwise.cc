#include "quantized/kernels/elementwise.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/quantize.h"

#if defined(__AVX2__)
#include <immintrin.h>
#include <sleef.h>
#endif

namespace qconform::kernels {

AtenVectorLoop AtenVectorLoop::of(AtenCapability capability) {
  switch (capability) {
    case AtenCapability::Default: return {64, false};  // 2 x Vectorized<quint8> of 32, plain C++
    case AtenCapability::Avx2: return {64, true};      // 2 x Vectorized<quint8> of 32
    case AtenCapability::Avx512: return {128, true};   // 2 x Vectorized<quint8> of 64
  }
  return scalar_only();
}

namespace {

// ATen's Vectorized<float> forms of exp and tanh: Sleef's 1-ulp functions. Each lane's
// result depends on that lane alone, so one element is computed in lane 0.
float vector_exp(float x) {
#if defined(__AVX2__)
  return _mm256_cvtss_f32(Sleef_expf8_u10(_mm256_set1_ps(x)));
#else
  return Sleef_expf_u10(x);
#endif
}

float vector_tanh(float x) {
#if defined(__AVX2__)
  return _mm256_cvtss_f32(Sleef_tanhf8_u10(_mm256_set1_ps(x)));
#else
  return Sleef_tanhf_u10(x);
#endif
}

// Which forms an element takes: ATen's SIMD vector forms, its plain C++ vector forms (the
// C library's functions, float arithmetic), or its scalar forms.
enum class Forms { Simd, PlainVector, Scalar };

float exp_in(Forms forms, float x) { return forms == Forms::Simd ? vector_exp(x) : std::exp(x); }
float tanh_in(Forms forms, float x) { return forms == Forms::Simd ? vector_tanh(x) : std::tanh(x); }

// Step 2 for one element.
float apply(const ActivationOptions& o, float x, Forms forms) {
  const bool vector = forms != Forms::Scalar;
  switch (o.op) {
    case ActivationOp::LeakyReLU: {
      const float negval = static_cast<float>(o.negative_slope);
      return vector ? x * (x > 0.0f ? 1.0f : negval) : (x > 0.0f ? x : x * negval);
    }
    case ActivationOp::Hardswish: return x * std::min(std::max(x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case ActivationOp::Hardsigmoid: return std::min(std::max(x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case ActivationOp::ELU: {
      // alpha (exp(x * input_scale) - 1) * scale for x <= 0, x * scale above; PyTorch's ELU
      // has input_scale = scale = 1, whose products are exact.
      const float alpha = static_cast<float>(o.alpha);
      if (vector) return x > 0.0f ? x : (exp_in(forms, x) - 1.0f) * alpha;
      return x >= 0.0f ? x : (std::exp(x) - 1.0f) * alpha;
    }
    case ActivationOp::Sigmoid:
      if (vector) return 1.0f / (1.0f + exp_in(forms, -x));
      return static_cast<float>(1.0f / (1.0 + std::exp(-x)));  // the sum and quotient in double
    case ActivationOp::Tanh: return tanh_in(forms, x);
    default: break;
  }
  throw Error("static_activation: " + o.float_name() + " is an integer op");
}

}  // namespace

void static_activation(const ActivationOptions& o, const int32_t* xq, int64_t n, AffineQParams in,
                       AffineQParams out, AtenVectorLoop loop, int32_t* y) {
  switch (o.op) {
    case ActivationOp::ReLU:
      for (int64_t i = 0; i < n; ++i) y[i] = std::max(xq[i], in.zero_point);
      return;
    case ActivationOp::ReLU6: {
      const int32_t six = static_cast<int32_t>(
          quantize_value(6.0f, 1.0f / static_cast<float>(in.scale), in.zero_point, 0, 255));
      for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(xq[i], in.zero_point), six);
      return;
    }
    case ActivationOp::Dropout: std::copy(xq, xq + n, y); return;
    default: break;
  }
  // Step 1's two forms; s * -z rounded once, as ATen premultiplies it.
  const float s = static_cast<float>(in.scale), z = static_cast<float>(in.zero_point);
  const float premultiplied = s * -z;
  const float inverse = 1.0f / static_cast<float>(out.scale);
  const int64_t vector_end = loop.block > 0 ? n / loop.block * loop.block : 0;
  const Forms vector_forms = loop.simd ? Forms::Simd : Forms::PlainVector;
  for (int64_t i = 0; i < n; ++i) {
    const Forms forms = i < vector_end ? vector_forms : Forms::Scalar;
    const float q = static_cast<float>(xq[i]);
    const float x = forms == Forms::Simd ? std::fma(q, s, premultiplied) : (q - z) * s;
    y[i] = static_cast<int32_t>(quantize_value(apply(o, x, forms), inverse, out.zero_point, 0, 255));
  }
}

bool uses_qnnpack_table(ActivationOp op) {
  return op == ActivationOp::Sigmoid || op == ActivationOp::Tanh || op == ActivationOp::Hardsigmoid ||
         op == ActivationOp::Hardswish;
}

void qnnpack_table_activation(const ActivationOptions& o, const int32_t* xq, int64_t n, AffineQParams in,
                              AffineQParams out, int32_t* y) {
  if (!uses_qnnpack_table(o.op)) throw Error("qnnpack_table_activation: QNNPACK has no table for " + o.float_name());
  const float s = static_cast<float>(in.scale);
  const float inverse_output = 1.0f / static_cast<float>(out.scale);
  const float output_zero_point = static_cast<float>(out.zero_point);
  int32_t table[256];
  for (int32_t i = 0; i < 256; ++i) {
    const float x = s * static_cast<float>(i - in.zero_point);
    float scaled = 0.0f;
    switch (o.op) {
      case ActivationOp::Sigmoid: scaled = 256.0f / (1.0f + std::exp(-x)); break;  // expf
      case ActivationOp::Tanh:  // tanh of the float x in double, the sum in double, then float
        scaled = static_cast<float>(128.0 * std::tanh(static_cast<double>(x)) + 128.0);
        break;
      case ActivationOp::Hardsigmoid:
      case ActivationOp::Hardswish: {
        float clipped = x + 3.0f;
        clipped = clipped > 0.0f ? clipped : 0.0f;
        clipped = clipped < 6.0f ? clipped : 6.0f;
        const float value = o.op == ActivationOp::Hardswish ? x * clipped / 6.0f : clipped / 6.0f;
        scaled = inverse_output * value + output_zero_point;
        break;
      }
      default: break;
    }
    scaled = std::min(std::max(scaled, 0.0f), 255.0f);
    table[i] = static_cast<int32_t>(std::lrintf(scaled));
  }
  for (int64_t k = 0; k < n; ++k) y[k] = table[xq[k]];
}

}  // namespace qconform::kernels
