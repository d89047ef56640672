#!/usr/bin/python3
"""Generates fixtures/core/static_lstm.json with PyTorch itself: the eager flow on nn.LSTM
(QuantStub, nn.LSTM, DeQuantStub; the engine's default qconfig or default_qconfig; prepare, which
swaps in the quantizable LSTM; one calibration batch; convert to torch.ao.nn.quantized.LSTM) for
a few configurations, each run in its own process (onednn's quantized::linear keeps state
between calls: scripts/onednn_static_lstm_history.py). Recorded per case: the converted LSTM's
state_dict (keys in order, its _metadata versions, every value), the quantized input the LSTM
received, and its quantized output, h_n and c_n. tests/test_static_lstm.cc loads each
state_dict into the harness's integer and LibTorch LSTMs and compares every integer.

Run with Debian's PyTorch:  /usr/bin/python3 scripts/gen_static_lstm_fixture.py [OUT]
"""
import json
import subprocess
import sys

CASES = [
    # name, engine, qconfig, input_size, hidden, layers, bidirectional, batch_first, bias, seq, batch
    ("qnnpack-one-layer", "qnnpack", "engine", 3, 4, 1, False, False, True, 5, 2),
    ("qnnpack-two-layers-bi-bf", "qnnpack", "default_qconfig", 4, 4, 2, True, True, True, 4, 3),
    ("qnnpack-no-bias", "qnnpack", "engine", 2, 5, 1, False, False, False, 6, 1),
    ("onednn-one-layer", "onednn", "engine", 3, 6, 1, False, False, True, 5, 2),
    ("onednn-wide-hidden", "onednn", "default_qconfig", 5, 67, 1, False, True, True, 3, 2),
    # A lone cell: nnqa.LSTMCell.from_float, prepare, calibration, convert (layers 0: a cell).
    ("qnnpack-cell", "qnnpack", "engine", 4, 6, 0, False, False, True, 1, 3),
    ("onednn-cell", "onednn", "default_qconfig", 3, 5, 0, False, False, True, 1, 2),
]

CHILD = r'''
import json, sys, torch, torch.nn as nn, torch.ao.quantization as tq
name, engine, qconfig, features, hidden, layers, bidirectional, batch_first, bias, seq, batch = json.loads(sys.argv[1])
torch.backends.quantized.engine = engine
torch.manual_seed(sum(map(ord, name)))
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = tq.QuantStub()
        self.lstm = nn.LSTM(features, hidden, max(layers, 1), bias=bias, batch_first=batch_first, bidirectional=bidirectional)
        self.dequant = tq.DeQuantStub()
    def forward(self, x):
        y, (h, c) = self.lstm(self.quant(x))
        return self.dequant(y), self.dequant(h), self.dequant(c)
qc = tq.get_default_qconfig(engine) if qconfig == "engine" else tq.default_qconfig
if layers == 0:  # a lone quantizable cell
    float_cell = nn.LSTMCell(features, hidden, bias=bias)
    float_cell.qconfig = qc
    observed = torch.ao.nn.quantizable.LSTMCell.from_float(float_cell)
    observed = tq.prepare(observed)
    stub = qc.activation()
    calibration = torch.randn(batch, features) * 2
    stub(calibration)
    scale, zero_point = stub.calculate_qparams()
    # calibrated on states along a sequence, not only the zero state
    observed(torch.quantize_per_tensor(calibration, float(scale), int(zero_point), torch.quint8).dequantize(),
             (torch.randn(batch, hidden) * 0.5, torch.randn(batch, hidden)))
    lstm = tq.convert(observed)
    qx = torch.quantize_per_tensor(torch.randn(batch, features) * 2, float(scale), int(zero_point), torch.quint8)
    h, c = lstm(qx)
    y = h
else:
    model = Model().eval()
    model.qconfig = qc
    prepared = tq.prepare(model)
    shape = (batch, seq, features) if batch_first else (seq, batch, features)
    prepared(torch.randn(*shape) * 2)
    converted = tq.convert(prepared)
    x = torch.randn(*shape) * 2
    qx = converted.quant(x)
    lstm = converted.lstm
    y, (h, c) = lstm(qx)
def tensor(t):
    if t is None: return None
    if t.is_quantized:
        return {"sizes": list(t.shape), "values": t.int_repr().flatten().tolist(),
                "scale": float(t.q_scale()).hex(), "zero_point": int(t.q_zero_point())} if t.qscheme() == torch.per_tensor_affine else {
                "sizes": list(t.shape), "values": t.int_repr().flatten().tolist(),
                "scales": [float(s).hex() for s in t.q_per_channel_scales().tolist()],
                "zero_points": t.q_per_channel_zero_points().tolist(), "axis": int(t.q_per_channel_axis())}
    if t.dtype == torch.int64:
        return {"sizes": list(t.shape), "ints": t.flatten().tolist()}
    return {"sizes": list(t.shape), "floats": [float(v).hex() for v in t.detach().flatten().tolist()]}
state = lstm.state_dict()
entries = []
for key, value in state.items():
    if isinstance(value, tuple):
        entries.append({"key": key, "tuple": [tensor(v) for v in value]})
    elif isinstance(value, torch.dtype):
        entries.append({"key": key, "dtype": str(value)})
    else:
        entries.append({"key": key, "tensor": tensor(value)})
print(json.dumps({"name": name, "engine": engine, "qconfig": qconfig, "input_size": features, "hidden_size": hidden,
                  "num_layers": layers, "bidirectional": bidirectional, "batch_first": batch_first, "bias": bias,
                  "versions": {k: v["version"] for k, v in state._metadata.items()},
                  "state_dict": entries, "input": tensor(qx), "output": tensor(y), "h_n": tensor(h), "c_n": tensor(c),
                  "repr": repr(lstm)}))
'''

# The int8 path oneDNN takes here (the harness's engine profiles): exact int32 sums with VNNI,
# saturating int16 pairs on AVX2 (unless ONEDNN_MAX_CPU_ISA holds it to AVX2).
import os
flags = open("/proc/cpuinfo").read()
vnni = ("avx512_vnni" in flags or "avx_vnni" in flags) and os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() != "AVX2"
int8_path = "vnni" if vnni else "avx2"

cases = []
for case in CASES:
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(case)], check=True, capture_output=True, text=True)
    cases.append(json.loads(out.stdout))
    cases[-1]["int8_path"] = int8_path if cases[-1]["engine"] == "onednn" else ""
import torch
with open(sys.argv[1] if len(sys.argv) > 1 else "fixtures/core/static_lstm.json", "w") as f:
    json.dump({"torch_version": torch.__version__, "generator": "scripts/gen_static_lstm_fixture.py", "cases": cases}, f,
              indent=1)
    f.write("\n")
