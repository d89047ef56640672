#!/usr/bin/python3
"""Generates fixtures/core/fuse.json with PyTorch itself: fuse_modules (post-training) over
random Conv{1,2,3}d / ConvTranspose{1,2,3}d / Linear layers followed by BatchNorm (and ReLU),
with the fused weight and bias PyTorch computes; and the refusals fuse_modules gives, with
their messages. tests/test_fuse.cc rebuilds every case in C++ and compares bit for bit.

Run with Debian's PyTorch:  /usr/bin/python3 scripts/gen_fuse_fixture.py [OUT]
Floats are written as exact hex (float.hex).
"""
import json
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
from torch.ao.quantization import fuse_modules

warnings.filterwarnings("ignore")
SEED = 20261206
rng = np.random.default_rng(SEED)
torch.manual_seed(SEED)


def hexes(t):
    return [float(v).hex() for v in t.detach().numpy().astype(np.float32).reshape(-1)]


def values(shape, style):
    """float32 values of a style that stresses the fold: ordinary, tiny or huge variances, ..."""
    n = int(np.prod(shape))
    if style == "normal":
        v = rng.standard_normal(n)
    elif style == "wide":
        v = np.sign(rng.standard_normal(n)) * 10.0 ** rng.uniform(-6, 6, n)
    elif style == "positive":
        v = rng.uniform(0.0, 3.0, n)
    elif style == "tiny":
        v = 10.0 ** rng.uniform(-12, -4, n)
    elif style == "huge":
        v = 10.0 ** rng.uniform(3, 12, n)
    elif style == "zero":
        v = np.zeros(n)
    else:
        raise ValueError(style)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def describe(m):
    """A module as the C++ test rebuilds it."""
    d = {"type": type(m).__name__, "training": m.training}
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        d.update(in_channels=m.in_channels, out_channels=m.out_channels, kernel_size=list(m.kernel_size),
                 groups=m.groups, weight_shape=list(m.weight.shape), weight=hexes(m.weight),
                 bias=hexes(m.bias) if m.bias is not None else None)
    elif isinstance(m, nn.Linear):
        d.update(weight_shape=list(m.weight.shape), weight=hexes(m.weight),
                 bias=hexes(m.bias) if m.bias is not None else None)
    elif isinstance(m, nn.modules.batchnorm._BatchNorm):
        d.update(num_features=m.num_features, eps=m.eps, affine=m.affine,
                 weight=hexes(m.weight) if m.affine else None, bias=hexes(m.bias) if m.affine else None,
                 running_mean=hexes(m.running_mean), running_var=hexes(m.running_var))
    return d


def batch_norm(dims, features, var_style, affine=True):
    bn = [nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d][dims - 1](
        features, eps=float(rng.choice([1e-5, 1e-3, 0.1, 1e-12])), affine=affine)
    with torch.no_grad():
        bn.running_mean.copy_(values((features,), rng.choice(["normal", "wide"])))
        bn.running_var.copy_(values((features,), var_style))
        if bn.affine:
            bn.weight.copy_(values((features,), rng.choice(["normal", "wide"])))
            bn.bias.copy_(values((features,), "normal"))
    return bn


def layer(kind, dims):
    cin = int(rng.integers(1, 5))
    groups = int(rng.choice([1, 1, 2]))
    cout = int(rng.integers(1, 5)) * groups
    cin *= groups
    kernel = [int(rng.integers(1, 4)) for _ in range(dims)]
    bias = bool(rng.random() < 0.8)
    if kind == "conv":
        m = [nn.Conv1d, nn.Conv2d, nn.Conv3d][dims - 1](cin, cout, kernel, groups=groups, bias=bias)
        features = cout
    elif kind == "transposed":
        groups = 1  # PyTorch folds a transposed weight by its dimension 1 (out / groups)
        m = [nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d][dims - 1](cin, cout, kernel, bias=bias)
        features = cout
    else:
        m = nn.Linear(cin, cout, bias=bias)
        features = cout
    with torch.no_grad():
        m.weight.copy_(values(tuple(m.weight.shape), rng.choice(["normal", "normal", "wide"])))
        if bias:
            m.bias.copy_(values((features,), "normal"))
    return m, features


def fused_case(kind, dims, relu):
    var_style = str(rng.choice(["positive", "positive", "tiny", "huge", "zero"]))
    first, features = layer(kind, dims)
    # ATen broadcasts a BatchNorm of one feature (without a layer bias PyTorch then makes a
    # module with a bias of one element, which fails at its first call: tests/test_fuse.cc)
    bn_features = 1 if first.bias is not None and rng.random() < 0.05 else features
    # PyTorch's linear fold needs the BatchNorm's weight (affine=False is a refusal below).
    affine = kind == "linear" or bool(rng.random() < 0.9)
    mods = [first, batch_norm(1 if kind == "linear" else dims, bn_features, var_style, affine)]
    if relu:
        mods.append(nn.ReLU())
    model = nn.Sequential(*mods).eval()
    fused = fuse_modules(model, [str(i) for i in range(len(mods))])
    out = fused[0][0] if relu else fused[0]
    return {"modules": [describe(m) for m in mods], "var_style": var_style,
            "fused_type": type(fused[0]).__name__,
            "weight_shape": list(out.weight.shape), "weight": hexes(out.weight), "bias": hexes(out.bias)}


def refusal(mods, paths=None):
    model = nn.Sequential(*mods)
    paths = paths or [str(i) for i in range(len(mods))]
    try:
        fuse_modules(model, paths)
    except Exception as e:  # noqa: BLE001 - the message is the record
        return {"modules": [describe(m) for m in mods], "paths": paths, "error": str(e)}
    raise AssertionError("fuse_modules accepted {}".format(mods))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "fixtures/core/fuse.json"
    cases = []
    for _ in range(40):
        cases.append(fused_case("conv", int(rng.integers(1, 4)), False))
    for _ in range(40):
        cases.append(fused_case("conv", int(rng.integers(1, 4)), True))
    for _ in range(30):
        cases.append(fused_case("transposed", int(rng.integers(1, 4)), False))
    for _ in range(40):
        cases.append(fused_case("linear", 1, False))

    def train(m):
        m.train()
        return m

    refusals = [
        refusal([train(nn.Conv2d(2, 3, 1)), train(nn.BatchNorm2d(3))]),                 # both training
        refusal([nn.Conv2d(2, 3, 1).eval(), train(nn.BatchNorm2d(3))]),                 # modes differ
        refusal([nn.Conv2d(2, 3, 1).eval(), nn.BatchNorm2d(3).eval(), train(nn.ReLU())]),
        refusal([train(nn.Conv2d(2, 3, 1)), train(nn.BatchNorm2d(3)), train(nn.ReLU())]),
        refusal([train(nn.Linear(2, 3)), train(nn.BatchNorm1d(3))]),
        refusal([nn.Linear(2, 3).eval(), train(nn.BatchNorm1d(3))]),
        refusal([train(nn.ConvTranspose2d(2, 3, 1)), nn.BatchNorm2d(3).eval()]),
        refusal([train(nn.ConvTranspose2d(2, 3, 1)), train(nn.BatchNorm2d(3))]),
        refusal([nn.Linear(2, 3).eval(), nn.Conv2d(3, 3, 1).eval()]),                   # no such pattern
        refusal([nn.Conv2d(2, 3, 1).eval(), nn.BatchNorm3d(3).eval()]),
        refusal([nn.BatchNorm1d(3).eval(), nn.ReLU().eval()]),
        refusal([nn.ReLU().eval(), nn.Conv2d(3, 3, 1).eval()]),
        refusal([nn.Linear(2, 3).eval()]),
        refusal([nn.Conv2d(2, 3, 1).eval(), nn.ReLU6().eval()]),
        refusal([nn.Conv2d(2, 4, 1).eval(), nn.BatchNorm2d(3).eval()]),                 # sizes differ
        refusal([nn.Linear(2, 4).eval(), nn.BatchNorm1d(3).eval()]),
        refusal([nn.Linear(2, 3).eval(), nn.BatchNorm1d(3, affine=False).eval()]),
        refusal([nn.Conv2d(2, 3, 1).eval(), nn.BatchNorm2d(3).eval()], ["0", "x"]),    # no such module
        refusal([nn.Conv2d(2, 3, 1).eval(), nn.BatchNorm2d(3).eval()], ["0.weight_fake", "1"]),
    ]
    with open(out, "w") as f:
        json.dump({"generator": "scripts/gen_fuse_fixture.py", "torch_version": torch.__version__, "seed": SEED,
                   "cases": cases, "refusals": refusals}, f, indent=0)
        f.write("\n")
    print("wrote", out, len(cases), "cases,", len(refusals), "refusals")


if __name__ == "__main__":
    main()
