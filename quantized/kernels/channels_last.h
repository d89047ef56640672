#pragma once
// Layout changes around the convolution's channels-last GEMM (quantized/static/conv.cc): a
// quantized tensor's integer values (int32, channel-major as QTensor keeps them) to u8
// channels-last rows, and the GEMM's int32 rows back to channel-major. Pure data movement:
// the values are not changed, only where they sit; the SIMD paths are the same moves as the
// scalar loops, block by block.
#include <cstdint>

namespace qconform::kernels {

// planes: `channels` planes of `plane` int32 values each (one image, channel-major);
// out[i * channels + c] = planes[c * plane + i] narrowed to u8. Returns the smallest and largest
// value seen (the caller refuses values outside [0, 255]; what was narrowed then is unused).
struct ValueRange {
  int32_t smallest, largest;
};
ValueRange to_u8_channels_last(const int32_t* planes, int64_t channels, int64_t plane, uint8_t* out);

// The way back: planes[c * plane + i] = nhwc[i * channels + c], widened (an 8-bit tensor
// held channels-last, read into QTensor's channel-major order).
void from_u8_channels_last(const uint8_t* nhwc, int64_t channels, int64_t plane, int32_t* planes);

// The transpose of `count` rows of `width` int32: out[j * stride + r] = rows[r * width + j] for
// r < count, j < width. The convolution's GEMM rows (positions x channels) go back to
// channel-major this way, each channel's `count` positions into a plane `stride` long; and a
// whole (C, HW) plane set goes to HW x C (NHWC order) and back.
void transpose_int32(const int32_t* rows, int64_t count, int64_t width, int32_t* out, int64_t stride);

// `count` rows of `width` int32 values in [0, 255] (requantized outputs) as bytes:
// out[r * stride + j] = rows[r * width + j]. The convolution's GEMM rows go into a u8
// channels-last output this way, each position's channels at its place.
void narrow_to_u8(const int32_t* rows, int64_t count, int64_t width, uint8_t* out, int64_t stride);

}  // namespace qconform::kernels
