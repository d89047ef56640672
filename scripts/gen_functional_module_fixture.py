#!/usr/bin/python3
"""Generates fixtures/core/functional_module.json with PyTorch itself: the seed's
test_functional_module (test_quantize_eager_ptq.py) in both branches on one fixed input, x_i =
((37 i) mod 100) / 100 for i < 10 as a (10, 1) tensor, through quantize_per_tensor(x, 0.01, 30)
and back: PTQ (get_default_qconfig('qnnpack'), prepare) and QAT (get_default_qat_qconfig('fbgemm'),
prepare_qat on the model in training mode), one calibration call, convert; recorded: each
QFunctional's scale and zero point, and the converted model's quint8 output on the quantized
input (qnnpack engine). tests/test_eager_seeds.cc runs both branches over the harness's flow
and compares.

Run with Debian's PyTorch:  /usr/bin/python3 scripts/gen_functional_module_fixture.py [OUT]
"""
import json
import sys

import torch
import torch.ao.quantization as tq

torch.backends.quantized.engine = "qnnpack"


class ModelWithFunctionals(torch.nn.Module):  # torch/testing/_internal/common_quantization.py's
    def __init__(self):
        super().__init__()
        self.mycat = torch.ao.nn.quantized.FloatFunctional()
        self.myadd = torch.ao.nn.quantized.FloatFunctional()
        self.myadd_relu = torch.ao.nn.quantized.FloatFunctional()

    def forward(self, x):
        y = self.mycat.cat([x, x, x])
        z = self.myadd.add(y, y)
        w = self.myadd_relu.add_relu(z, z)
        return w


x = torch.tensor([((37 * i) % 100) / 100 for i in range(10)], dtype=torch.float).reshape(10, 1)
xq = torch.quantize_per_tensor(x, 0.01, 30, torch.quint8)
branches = {}
for name, train_mode in (("ptq", False), ("qat", True)):
    model = ModelWithFunctionals()
    if train_mode:
        model.qconfig = tq.get_default_qat_qconfig("fbgemm")
        model = tq.prepare_qat(model)
    else:
        model.qconfig = tq.get_default_qconfig("qnnpack")
        model = tq.prepare(model)
    observers = {n: type(getattr(model, n).activation_post_process).__name__ for n in ("mycat", "myadd", "myadd_relu")}
    model(xq.dequantize())
    model = tq.convert(model)
    y = model(xq)
    branches[name] = {
        "observers": observers,
        "qparams": {n: [float(getattr(model, n).scale).hex(), int(getattr(model, n).zero_point)]
                    for n in ("mycat", "myadd", "myadd_relu")},
        "output": {"sizes": list(y.shape), "scale": float(y.q_scale()).hex(), "zero_point": int(y.q_zero_point()),
                   "values": y.int_repr().flatten().tolist()},
    }
with open(sys.argv[1] if len(sys.argv) > 1 else "fixtures/core/functional_module.json", "w") as f:
    json.dump({"torch_version": torch.__version__, "generator": "scripts/gen_functional_module_fixture.py",
               "branches": branches}, f, indent=1)
    f.write("\n")
