#!/usr/bin/python3
"""A defect of PyTorch 1.13's onednn quantized::conv3d on oneDNN's VNNI path (Debian's
LibTorch 1.13.1 with libdnnl 2.6.3), reproduced with plain PyTorch.

A grouped 3-d convolution with one input channel per group, eight output channels in all
and a kernel of eight positions (2x2x2, 1x2x4, 1x1x8, ...) ignores the input zero point
when that is not 0: its answer is the same for every non-zero zero point and is not the
convolution's (most outputs off by tens to hundreds of quanta). The same call on oneDNN's
AVX2 path (ONEDNN_MAX_CPU_ISA=AVX2), with a zero point of 0, or with another channel count
or kernel size, is right. The engine table records it (core/engines.cc,
libtorch_conv_defects) and the agreement oracle classes such answers `engine-defect`
instead of comparing them.

  /usr/bin/python3 scripts/onednn_vnni_conv3d_defect.py
  ONEDNN_MAX_CPU_ISA=AVX2 /usr/bin/python3 scripts/onednn_vnni_conv3d_defect.py

Prints, per configuration, how many outputs differ from the exact integer convolution
requantized as oneDNN does (scripts/onednn_static_epilogue.py); exits 1 where any do.
"""
import ctypes
import sys

import numpy as np
import torch

torch.backends.quantized.engine = 'onednn'
f32 = np.float32


def differing(groups, in_per_group, out_per_group, kernel, x_zero_point, rng):
    c, oc = groups * in_per_group, groups * out_per_group
    xq = rng.integers(0, 256, size=(1, c, 5, 5, 9))
    wq = rng.integers(-127, 128, size=(oc, in_per_group) + kernel)
    x = torch._make_per_tensor_quantized_tensor(torch.tensor(xq, dtype=torch.uint8), 0.02, x_zero_point)
    w = torch._make_per_tensor_quantized_tensor(torch.tensor(wq, dtype=torch.int8), 0.01, 0)
    packed = torch.ops.quantized.conv3d_prepack(w, None, [1] * 3, [0] * 3, [1] * 3, groups)
    y = torch.ops.quantized.conv3d(x, packed, 0.5, 128).int_repr().numpy()
    acc = torch.nn.functional.conv3d(torch.tensor((xq - x_zero_point).astype(np.float64)),
                                     torch.tensor(wq.astype(np.float64)), None, 1, 0, 1, groups).numpy()
    m = f32(f32(1 / 0.5) / (f32(1 / 0.02) * f32(1 / 0.01)))
    expected = np.clip(np.rint(acc.astype(f32) * m + f32(128)), 0, 255)
    return int((expected != y).sum()), y.size


def main():
    dnnl = ctypes.CDLL('libdnnl.so.2')
    dnnl.dnnl_cpu_isa2str.restype = ctypes.c_char_p
    print('oneDNN ISA:', dnnl.dnnl_cpu_isa2str(dnnl.dnnl_get_effective_cpu_isa()).decode())
    rng = np.random.default_rng(0)
    defective = 0
    for groups, in_per_group, out_per_group, kernel, zero_point in [
            (8, 1, 1, (2, 2, 2), 128), (4, 1, 2, (2, 2, 2), 128), (2, 1, 4, (2, 2, 2), 3), (8, 1, 1, (1, 2, 4), 77),
            (8, 1, 1, (1, 1, 8), 128),
            # right on every path: zero point 0, other counts and kernels
            (8, 1, 1, (2, 2, 2), 0), (16, 1, 1, (2, 2, 2), 128), (8, 2, 1, (2, 2, 2), 128), (8, 1, 1, (2, 2, 3), 128),
            (1, 1, 8, (2, 2, 2), 128)]:
        bad, total = differing(groups, in_per_group, out_per_group, kernel, zero_point, rng)
        defective += bad > 0
        print(f'groups={groups} in/group={in_per_group} out={groups * out_per_group} kernel={kernel} '
              f'x_zero_point={zero_point}: {bad} of {total} outputs wrong')
    sys.exit(1 if defective else 0)


if __name__ == '__main__':
    main()
