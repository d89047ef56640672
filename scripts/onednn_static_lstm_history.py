#!/usr/bin/python3
"""PyTorch 1.13's onednn quantized::linear reuses an earlier call's zero-point compensation.

Part 1, the defect in two calls (each variant in a fresh process): quantized::linear on onednn
caches, per shape, the zero-point compensation (input zero point x row sums of the weight) of
the first call with a nonzero input zero point, and applies it to later calls of the same
shapes, whatever their weight or zero point. A statically quantized LSTM meets this inside one
forward when two of its Linears share a shape (input_size == hidden_size, stacked
unidirectional layers, the two directions): the harness classes those cases as a LibTorch
defect (oracles/kinds/static_lstm.cc). Measured on an AMD EPYC (Zen 4, avx512_vnni): the
hidden Linear of an LSTM cell gives [17, 2, 74, 25] alone and [18, 2, 81, 27] after one call
of the input Linear (another weight, zero point 59).

Part 2, the same cache across models: builds 300 small quantized LSTMs (the eager flow: QuantStub, nn.LSTM, default_qconfig, prepare,
one calibration batch, convert) in one process and runs each once, then does the same in a
process where ideep's primitive cache holds one entry (LRU_CACHE_CAPACITY=1), and counts the
models whose outputs differ. Measured on an AMD EPYC (Zen 4, avx512_vnni): 55 of 300. With
the cache at one entry every model gives what a fresh process gives, which is what the harness's
integer LSTM reproduces bit for bit; the agreement oracle therefore judges LibTorch's onednn
LSTM on a fresh-process rerun whenever it disagrees (oracles/kinds/static_lstm.cc).
Run: /usr/bin/python3 scripts/onednn_static_lstm_history.py
"""
import os
import subprocess
import sys
import tempfile

TWO_CALLS = r'''
import sys, torch
torch.backends.quantized.engine = "onednn"
def q(values, scale, zero_point, dtype=torch.uint8):
    return torch._make_per_tensor_quantized_tensor(torch.tensor(values, dtype=dtype), scale, zero_point)
w_ih = q([[89], [-113], [-47], [-128]], 0.007919089869, 0, torch.int8)
w_hh = q([[-96], [-128], [25], [-79]], 0.01061827037, 0, torch.int8)
input_linear = torch.ops.quantized.linear_prepack(w_ih, None)
hidden_linear = torch.ops.quantized.linear_prepack(w_hh, None)
if sys.argv[1] == "after_input_linear":
    torch.ops.quantized.linear(q([[0]], 0.01360267494, 59), input_linear, 0.01373440307, 68)
y = torch.ops.quantized.linear(q([[125]], 0.001163973589, 65), hidden_linear, 0.001575821778, 62)
print(sys.argv[1], y.int_repr().tolist()[0])
'''
for variant in ("alone", "after_input_linear"):
    subprocess.run([sys.executable, "-c", TWO_CALLS, variant], check=True)

CHILD = r'''
import sys, torch, torch.nn as nn, torch.ao.quantization as tq
torch.backends.quantized.engine = "onednn"
outputs = []
for seed in range(300):
    torch.manual_seed(seed)
    hidden, features = 1 + seed % 3, 1 + seed % 2
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant, self.lstm, self.dequant = tq.QuantStub(), nn.LSTM(features, hidden, 1, bias=False), tq.DeQuantStub()
        def forward(self, x):
            y, _ = self.lstm(self.quant(x))
            return self.dequant(y)
    model = Model().eval()
    model.qconfig = tq.default_qconfig
    prepared = tq.prepare(model)
    x = torch.randn(8, 1, features)
    prepared(x)
    outputs.append(tq.convert(prepared)(x))
torch.save(outputs, sys.argv[1])
'''

with tempfile.TemporaryDirectory() as tmp:
    paths = []
    for name, capacity in (("long_run", None), ("history_free", "1")):
        env = dict(os.environ)
        env.pop("LRU_CACHE_CAPACITY", None)
        if capacity:
            env["LRU_CACHE_CAPACITY"] = capacity
        path = os.path.join(tmp, name + ".pt")
        subprocess.run([sys.executable, "-c", CHILD, path], env=env, check=True)
        paths.append(path)
    import torch
    a, b = (torch.load(p) for p in paths)
    print("models whose outputs differ:", sum(not torch.equal(x, y) for x, y in zip(a, b)), "of", len(a))
