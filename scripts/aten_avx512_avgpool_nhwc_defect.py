#!/usr/bin/python3
"""Reproduces, with plain PyTorch 1.13, a defect of ATen's AVX-512 NHWC average pooling
(`qavg_pool2d_nhwc_kernel`, reached only with ATEN_CPU_CAPABILITY=avx512, which 1.13 keeps
opt-in): on a (1, 20, 1, 1) quint8 input, channels 8-15 of the output repeat channels 0-3
instead of averaging their own inputs. The AVX2 and default builds are right.

Run:  ATEN_CPU_CAPABILITY=avx512 /usr/bin/python3 scripts/aten_avx512_avgpool_nhwc_defect.py
      /usr/bin/python3 scripts/aten_avx512_avgpool_nhwc_defect.py          (for comparison)
Found by `qconform conform` under ATEN_CPU_CAPABILITY=avx512 (static.AvgPool2d, integer vs
LibTorch); not yet characterized beyond this case, so not yet in the kind's libtorch_defect.
"""
import os

import torch

torch.manual_seed(3)
q = torch.randint(0, 256, (1, 20, 1, 1), dtype=torch.uint8)
x = torch._make_per_tensor_quantized_tensor(q, 0.1, 128)
y = torch.nn.functional.avg_pool2d(x, (1, 2), stride=3, padding=(0, 1), count_include_pad=False,
                                   divisor_override=5).int_repr().flatten().tolist()
# Each output averages one input element (the window's other tap is padding), divided by 5.
expected = [int(min(max(round((v - 128) / 5) + 128, 0), 255)) for v in q.flatten().tolist()]
print("ATEN_CPU_CAPABILITY =", os.environ.get("ATEN_CPU_CAPABILITY", "(unset: avx2 here)"))
print("LibTorch:", y)
print("expected:", expected)
print("channels that differ:", [c for c in range(20) if abs(y[c] - expected[c]) > 1])
