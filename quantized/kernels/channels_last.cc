#include "quantized/kernels/channels_last.h"

#include <immintrin.h>

#include <algorithm>

#include "quantized/kernels/dynamic_gemm.h"

namespace qconform::kernels {
namespace {

// The SIMD paths run where the exact kernels' AVX2 paths do (exact_kernel_path: the CPU has
// AVX2 and QCONFORM_KERNEL_ISA does not hold the process to the portable loops).
bool use_avx2() {
  static const bool avx2 = exact_kernel_path() != KernelPath::Portable;
  return avx2;
}

void to_u8_scalar(const int32_t* planes, int64_t channels, int64_t plane, int64_t c0, int64_t c1, int64_t i0,
                  int64_t i1, uint8_t* out, ValueRange& range) {
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t c = c0; c < c1; ++c) {
      const int32_t v = planes[c * plane + i];
      range.smallest = std::min(range.smallest, v);
      range.largest = std::max(range.largest, v);
      out[i * channels + c] = static_cast<uint8_t>(v);
    }
}

// The 16 x 16 byte transpose in four interleaving steps (bytes, pairs, quads, eights):
// out[p] byte c = in[c] byte p.
__attribute__((target("avx2"), always_inline)) inline void transpose_bytes(const __m128i in[16], __m128i out[16]) {
  __m128i t[16], u[16], w[16];
  for (int k = 0; k < 8; ++k) {  // byte pairs: rows (2k, 2k+1) at columns 0-7, 8-15
    t[k] = _mm_unpacklo_epi8(in[2 * k], in[2 * k + 1]);
    t[8 + k] = _mm_unpackhi_epi8(in[2 * k], in[2 * k + 1]);
  }
  for (int h = 0; h < 2; ++h)  // quads: rows 4m..4m+3 at columns 8h + 0-3, 8h + 4-7
    for (int m = 0; m < 4; ++m) {
      u[8 * h + m] = _mm_unpacklo_epi16(t[8 * h + 2 * m], t[8 * h + 2 * m + 1]);
      u[8 * h + 4 + m] = _mm_unpackhi_epi16(t[8 * h + 2 * m], t[8 * h + 2 * m + 1]);
    }
  for (int q = 0; q < 4; ++q)  // eights: rows 8n..8n+7 at columns 4q + (0, 1) and 4q + (2, 3)
    for (int n = 0; n < 2; ++n) {
      w[4 * q + n] = _mm_unpacklo_epi32(u[4 * q + 2 * n], u[4 * q + 2 * n + 1]);
      w[4 * q + 2 + n] = _mm_unpackhi_epi32(u[4 * q + 2 * n], u[4 * q + 2 * n + 1]);
    }
  for (int q = 0; q < 4; ++q) {  // sixteen rows per column
    out[4 * q] = _mm_unpacklo_epi64(w[4 * q], w[4 * q + 1]);
    out[4 * q + 1] = _mm_unpackhi_epi64(w[4 * q], w[4 * q + 1]);
    out[4 * q + 2] = _mm_unpacklo_epi64(w[4 * q + 2], w[4 * q + 3]);
    out[4 * q + 3] = _mm_unpackhi_epi64(w[4 * q + 2], w[4 * q + 3]);
  }
}

// 16 channels x 16 positions per block: each channel's 16 values narrowed to 16 bytes (two
// saturating packs; values outside [0, 255] are seen by the min/max and refused by the
// caller), then the 16 x 16 bytes transposed, leaving each position's 16 channels in one
// register: position[p].
__attribute__((target("avx2"), always_inline)) inline void narrow_and_transpose(const int32_t* planes, int64_t plane,
                                                                                int64_t count, __m128i& smallest,
                                                                                __m128i& largest, __m128i position[16]) {
  __m128i r[16];
  for (int c = 0; c < 16; ++c) {
    if (c >= count) {  // fewer channels than 16: zero rows, whose bytes the caller does not keep
      r[c] = _mm_setzero_si128();
      continue;
    }
    const int32_t* from = planes + c * plane;
    __m128i v[4];
    for (int q = 0; q < 4; ++q) {
      v[q] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + 4 * q));
      smallest = _mm_min_epi32(smallest, v[q]);
      largest = _mm_max_epi32(largest, v[q]);
    }
    r[c] = _mm_packus_epi16(_mm_packs_epi32(v[0], v[1]), _mm_packs_epi32(v[2], v[3]));
  }
  transpose_bytes(r, position);
}

__attribute__((target("avx2"))) void to_u8_avx2(const int32_t* planes, int64_t channels, int64_t plane,
                                                 uint8_t* out, ValueRange& range) {
  const int64_t full_channels = channels / 16 * 16, full_positions = plane / 16 * 16;
  __m128i smallest = _mm_set1_epi32(range.smallest), largest = _mm_set1_epi32(range.largest);
  __m128i position[16];
  for (int64_t c0 = 0; c0 < full_channels; c0 += 16)
    for (int64_t i0 = 0; i0 < full_positions; i0 += 16) {
      narrow_and_transpose(planes + c0 * plane + i0, plane, 16, smallest, largest, position);
      for (int p = 0; p < 16; ++p)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (i0 + p) * channels + c0), position[p]);
    }
  // Fewer than 16 channels (an image's 3 at a network's stem): a position's 16-byte store
  // also covers the next positions' bytes, which their own stores then overwrite, in order;
  // a block whose last store would pass the end of `out` is left to the scalar loop.
  int64_t few_channels_end = 0;
  if (channels < 16)
    for (int64_t i0 = 0; i0 < full_positions && (i0 + 15) * channels + 16 <= plane * channels; i0 += 16) {
      narrow_and_transpose(planes + i0, plane, channels, smallest, largest, position);
      for (int p = 0; p < 16; ++p)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (i0 + p) * channels), position[p]);
      few_channels_end = i0 + 16;
    }
  alignas(16) int32_t lanes[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(lanes), smallest);
  range.smallest = *std::min_element(lanes, lanes + 4);
  _mm_store_si128(reinterpret_cast<__m128i*>(lanes), largest);
  range.largest = *std::max_element(lanes, lanes + 4);
  // The edges: channels past the last whole 16 at every position (past the positions done
  // above when there are fewer than 16), positions past the last whole 16 for the other channels.
  to_u8_scalar(planes, channels, plane, full_channels, channels, few_channels_end, plane, out, range);
  to_u8_scalar(planes, channels, plane, 0, full_channels, full_positions, plane, out, range);
}

// The way back: 16 positions' 16 channel bytes transposed to 16 channels' 16 positions, each
// widened to int32 and stored in its plane. The edges (channels past the last whole 16,
// positions past the last whole 16) by the index formula.
__attribute__((target("avx2"))) void from_u8_avx2(const uint8_t* nhwc, int64_t channels, int64_t plane,
                                                   int32_t* planes) {
  const int64_t full_channels = channels / 16 * 16, full_positions = plane / 16 * 16;
  __m128i rows[16], columns[16];
  for (int64_t i0 = 0; i0 < full_positions; i0 += 16)
    for (int64_t c0 = 0; c0 < full_channels; c0 += 16) {
      for (int p = 0; p < 16; ++p)
        rows[p] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(nhwc + (i0 + p) * channels + c0));
      transpose_bytes(rows, columns);
      for (int c = 0; c < 16; ++c) {
        int32_t* to = planes + (c0 + c) * plane + i0;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(to), _mm256_cvtepu8_epi32(columns[c]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(to + 8), _mm256_cvtepu8_epi32(_mm_srli_si128(columns[c], 8)));
      }
    }
  for (int64_t i = 0; i < plane; ++i)
    for (int64_t c = i < full_positions ? full_channels : 0; c < channels; ++c)
      planes[c * plane + i] = nhwc[i * channels + c];
}

// 8 x 8 int32 blocks: rows (positions) to columns (channels) by the usual three interleaving
// steps (32-bit, 64-bit, 128-bit halves).
__attribute__((target("avx2"))) void transpose_int32_avx2(const int32_t* rows, int64_t count, int64_t width,
                                                            int32_t* out, int64_t stride) {
  const int64_t full_rows = count / 8 * 8, full_width = width / 8 * 8;
  for (int64_t r0 = 0; r0 < full_rows; r0 += 8)
    for (int64_t j0 = 0; j0 < full_width; j0 += 8) {
      __m256i a[8], b[8], c[8];
      for (int r = 0; r < 8; ++r) a[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows + (r0 + r) * width + j0));
      for (int k = 0; k < 4; ++k) {
        b[2 * k] = _mm256_unpacklo_epi32(a[2 * k], a[2 * k + 1]);
        b[2 * k + 1] = _mm256_unpackhi_epi32(a[2 * k], a[2 * k + 1]);
      }
      for (int k = 0; k < 2; ++k) {
        c[4 * k] = _mm256_unpacklo_epi64(b[4 * k], b[4 * k + 2]);
        c[4 * k + 1] = _mm256_unpackhi_epi64(b[4 * k], b[4 * k + 2]);
        c[4 * k + 2] = _mm256_unpacklo_epi64(b[4 * k + 1], b[4 * k + 3]);
        c[4 * k + 3] = _mm256_unpackhi_epi64(b[4 * k + 1], b[4 * k + 3]);
      }
      for (int j = 0; j < 4; ++j) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + (j0 + j) * stride + r0),
                            _mm256_permute2x128_si256(c[j], c[4 + j], 0x20));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + (j0 + 4 + j) * stride + r0),
                            _mm256_permute2x128_si256(c[j], c[4 + j], 0x31));
      }
    }
  for (int64_t j = full_width; j < width; ++j)
    for (int64_t r = 0; r < count; ++r) out[j * stride + r] = rows[r * width + j];
  for (int64_t j = 0; j < full_width; ++j)
    for (int64_t r = full_rows; r < count; ++r) out[j * stride + r] = rows[r * width + j];
}

// 16 values at a time by two packs (the values are in [0, 255], where packing changes none).
__attribute__((target("avx2"))) void narrow_to_u8_avx2(const int32_t* rows, int64_t count, int64_t width,
                                                        uint8_t* out, int64_t stride) {
  for (int64_t r = 0; r < count; ++r) {
    const int32_t* from = rows + r * width;
    uint8_t* to = out + r * stride;
    int64_t j = 0;
    for (; j + 16 <= width; j += 16) {
      __m128i v[4];
      for (int q = 0; q < 4; ++q) v[q] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + j + 4 * q));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(to + j),
                       _mm_packus_epi16(_mm_packs_epi32(v[0], v[1]), _mm_packs_epi32(v[2], v[3])));
    }
    for (; j < width; ++j) to[j] = static_cast<uint8_t>(from[j]);
  }
}

}  // namespace

ValueRange to_u8_channels_last(const int32_t* planes, int64_t channels, int64_t plane, uint8_t* out) {
  ValueRange range{0, 0};
  if (use_avx2()) to_u8_avx2(planes, channels, plane, out, range);
  else to_u8_scalar(planes, channels, plane, 0, channels, 0, plane, out, range);
  return range;
}

void from_u8_channels_last(const uint8_t* nhwc, int64_t channels, int64_t plane, int32_t* planes) {
  if (use_avx2()) {
    from_u8_avx2(nhwc, channels, plane, planes);
    return;
  }
  for (int64_t i = 0; i < plane; ++i)
    for (int64_t c = 0; c < channels; ++c) planes[c * plane + i] = nhwc[i * channels + c];
}

void transpose_int32(const int32_t* rows, int64_t count, int64_t width, int32_t* out, int64_t stride) {
  if (use_avx2()) {
    transpose_int32_avx2(rows, count, width, out, stride);
    return;
  }
  for (int64_t j = 0; j < width; ++j)
    for (int64_t r = 0; r < count; ++r) out[j * stride + r] = rows[r * width + j];
}

void narrow_to_u8(const int32_t* rows, int64_t count, int64_t width, uint8_t* out, int64_t stride) {
  if (use_avx2()) {
    narrow_to_u8_avx2(rows, count, width, out, stride);
    return;
  }
  for (int64_t r = 0; r < count; ++r)
    for (int64_t j = 0; j < width; ++j) out[r * stride + j] = static_cast<uint8_t>(rows[r * width + j]);
}

}  // namespace qconform::kernels
