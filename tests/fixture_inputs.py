#!/usr/bin/python3
"""Writes the archives tests/fixture_cli.sh feeds to `qconform fixture add`: good ones made
by hand with nothing but torch (as a user would), and malformed ones, one per refusal."""
import sys
import warnings

import torch
import torch.nn as nn

warnings.filterwarnings("ignore")
out = sys.argv[1]
torch.manual_seed(0)
torch.backends.quantized.engine = "qnnpack"
P = lambda name: f"{out}/{name}"

# --- by hand: a dynamic LSTM, a dynamic GRUCell, a static Conv2d between QuantStub/DeQuantStub
lstm = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.LSTM(6, 5, num_layers=2)), dtype=torch.qint8)[0]
torch.jit.save(torch.jit.script(lstm), P("lstm.pt"))
torch.save((torch.randn(4, 3, 6), torch.randn(2, 3, 5), torch.randn(2, 3, 5)), P("lstm_inputs.pt"))
cell = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.GRUCell(6, 5)), dtype=torch.qint8)[0]
torch.jit.save(torch.jit.script(cell), P("grucell.pt"))
torch.save((torch.randn(3, 6), torch.randn(3, 5)), P("grucell_inputs.pt"))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x):
        return self.dequant(self.conv(self.quant(x)))


net = Net().eval()
net.qconfig = torch.ao.quantization.get_default_qconfig("qnnpack")
prepared = torch.ao.quantization.prepare(net)
prepared(torch.randn(2, 3, 6, 6))
torch.jit.save(torch.jit.script(torch.ao.quantization.convert(prepared)), P("conv.pt"))
torch.save(torch.randn(2, 3, 6, 6), P("conv_inputs.pt"))

# --- malformed, one per refusal
open(P("not_a_zip.pt"), "w").write("this is not an archive\n")
torch.save(torch.randn(2, 2), P("not_torchscript.pt"))
torch.jit.save(torch.jit.script(nn.Linear(3, 2)), P("float_linear.pt"))
torch.save(torch.randn(4, 3, 7), P("wrong_width_inputs.pt"))  # the LSTM takes 6 features
nan_linear = torch.ao.nn.quantized.Linear(4, 3)
nan_linear.scale = float("nan")
torch.jit.save(torch.jit.script(nan_linear), P("nan_scale.pt"))
torch.save(torch.quantize_per_tensor(torch.randn(2, 4), 0.1, 128, torch.quint8), P("quint8_inputs.pt"))


class Linear(nn.Module):  # a quantized Linear's name without its attributes
    def forward(self, x):
        return x


Linear.__module__ = "torch.ao.nn.quantized.modules.linear"
Linear.__qualname__ = "Linear"
torch.jit.save(torch.jit.script(Linear()), P("missing_attributes.pt"))

# A BatchNorm2d as PyTorch 1.13's convert leaves it: scale and zero_point of shape [1], which
# its scripted forward cannot take (fixture add explains the reshape that fixes it).
bn = torch.ao.quantization.QuantWrapper(nn.BatchNorm2d(3)).eval()
bn.qconfig = torch.ao.quantization.get_default_qconfig("qnnpack")
bn_prepared = torch.ao.quantization.prepare(bn)
bn_prepared(torch.randn(2, 3, 4, 4))
torch.jit.save(torch.jit.script(torch.ao.quantization.convert(bn_prepared)), P("bn_scale_shape.pt"))
torch.save(torch.randn(2, 3, 4, 4), P("bn_inputs.pt"))

# nnq.Embedding as PyTorch 1.13's from_float makes it from a 4-bit qconfig: a quint8 module
# around quint4x2 rows (fixture add names the defect and the way around it).
emb = nn.Embedding(10, 12)
emb.qconfig = torch.ao.quantization.float_qparams_weight_only_qconfig_4bit
torch.jit.save(torch.jit.script(torch.ao.nn.quantized.Embedding.from_float(emb)), P("embedding_4bit_from_float.pt"))
torch.save(torch.tensor([1, 2, 3]), P("embedding_inputs.pt"))
