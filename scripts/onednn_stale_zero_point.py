#!/usr/bin/python3
"""PyTorch 1.13's onednn dynamic linear applies an earlier call's activation zero point.

A packed weight answers its first call through a primitive prepared for that input shape;
later calls with the same shape reuse it with the call's own qparams. A later call with
another shape goes through a second primitive, and there a call whose zero point is 0 can be
given the zero-point compensation (zp * sum_k w[n][k]) of an earlier call. The dynamic LSTM/GRU
meet this with packed sequences, whose hidden projections change batch size between steps.
The agreement oracle therefore recomputes LibTorch's answer with every GEMM call on a freshly
prepacked weight before holding a disagreement against the implementation
(quantized/libtorch/dynamic_rnn.h; docs/numerics.md). Run: /usr/bin/python3 scripts/onednn_stale_zero_point.py
"""
import torch
torch.backends.quantized.engine = 'onednn'
wq = torch.tensor([[-46, -71, 81], [-77, 0, -97], [10, 122, -87], [-6, 49, -125], [-35, 16, 105], [-48, -8, 50],
                   [-88, -5, 89], [94, -121, 113], [-45, 127, 84], [-5, 112, 66], [50, -103, -84], [98, 91, -72]])
w = torch._make_per_tensor_quantized_tensor(wq.to(torch.int8), 0.0011427864665165544, 0)
b = torch.zeros(12)
earlier = torch.tensor([[0.0, -0.76, 0.0], [0.0, 0.0, 0.0]])   # zero point 127 (all <= 0)
x = torch.tensor([[0.76, 0.0, 0.0], [0.0, 0.0, 0.0]])           # zero point 0
def answer(calls):
    packed = torch.ops.quantized.linear_prepack(w, b)
    for c in calls: torch.ops.quantized.linear_dynamic(c, packed, True)
    return torch.ops.quantized.linear_dynamic(x, packed, True)
fresh = answer([])
later = answer([torch.zeros(1, 3), earlier])
print("same answer:", torch.equal(fresh, later))
scale = 0.76 / 127
print("difference in accumulator units:", ((later - fresh) / (scale * w.q_scale())).round()[0].tolist())
print("-127 * row sums of w:          ", (-127 * wq.sum(1)).tolist())
import random
random.seed(0); torch.manual_seed(0); bad = 0
for t in range(200):
    wr = torch._make_per_tensor_quantized_tensor(torch.randint(-127, 128, (12, 3), dtype=torch.int8), 0.001, 0)
    p1 = torch.ops.quantized.linear_prepack(wr, b); f = torch.ops.quantized.linear_dynamic(x, p1, True)
    p2 = torch.ops.quantized.linear_prepack(wr, b)
    torch.ops.quantized.linear_dynamic(torch.zeros(1, 3), p2, True); torch.ops.quantized.linear_dynamic(earlier, p2, True)
    bad += not torch.equal(f, torch.ops.quantized.linear_dynamic(x, p2, True))
print("random weights affected:", bad, "of 200")
