#!/usr/bin/python3
"""Whole-model archives for tests/model_cli.sh, made with nothing but torch: the bad inputs
`qconform fixture add MODEL.pt` must refuse (a float model, inputs forward does not take, a
layer call the harness cannot carry) and their inputs.

usage: model_inputs.py OUT_DIR
"""
import os
import sys

import torch
import torch.nn as nn
from torch.ao.quantization import float_qparams_weight_only_qconfig, quantize_dynamic

out = sys.argv[1]
torch.manual_seed(0)


def save(name, module, inputs):
    torch.jit.save(torch.jit.script(module), os.path.join(out, name + ".pt"))
    torch.save(inputs, os.path.join(out, name + ".inputs.pt"))


class FloatNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).mean((2, 3)))


save("float_model", FloatNet().eval(), torch.randn(1, 3, 8, 8))
torch.save(torch.randn(1, 5, 8, 8), os.path.join(out, "wrong_channels.inputs.pt"))


class BagWithoutOffsets(nn.Module):
    """A 2-d EmbeddingBag call with per_sample_weights and no offsets, then a Linear."""

    def __init__(self):
        super().__init__()
        self.bag = nn.EmbeddingBag(20, 6, mode="sum")
        self.fc = nn.Linear(6, 3)

    def forward(self, indices: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bag(indices, per_sample_weights=weights))


bag = quantize_dynamic(BagWithoutOffsets().eval(),
                       {nn.EmbeddingBag: float_qparams_weight_only_qconfig, nn.Linear: torch.ao.quantization.default_dynamic_qconfig},
                       dtype=torch.qint8)
save("bag_without_offsets", bag, (torch.randint(0, 20, (2, 4)), torch.rand(2, 4)))

# A layer of a registered kind the harness cannot read: an Embedding as PyTorch 1.13's
# quantize_dynamic leaves it with a 4-bit qconfig (a quint8 module around 4-bit rows).
class EmbeddingLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(20, 8)
        self.fc = nn.Linear(8, 3)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embedding(indices))


four_bit = quantize_dynamic(EmbeddingLinear().eval(),
                            {nn.Embedding: torch.ao.quantization.float_qparams_weight_only_qconfig_4bit,
                             nn.Linear: torch.ao.quantization.default_dynamic_qconfig}, dtype=torch.qint8)
save("embedding_4bit", four_bit, torch.randint(0, 20, (5,)))
with open(os.path.join(out, "not_a_zip.pt"), "w") as f:
    f.write("not a zip archive\n")
