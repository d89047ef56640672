#!/usr/bin/python3
"""Dump one quantized module and its inputs the way a user would, for `qconform fixture add`.

Builds the float module of a registered kind (`qconform modules`) with the configuration
given, quantizes it through PyTorch's own flow on the chosen engine — quantize_dynamic for
the dynamic kinds; QuantWrapper + prepare + calibrate + convert for the static ones, which
gives Quantize -> module -> DeQuantize — scripts it and writes

    OUT/NAME.pt          torch.jit.save(torch.jit.script(qmodule))
    OUT/NAME.inputs.pt   torch.save(inputs): a tensor, or (x, h0[, c0]), a packed input as
                         (tuple(packed), h0[, c0])

and prints the `qconform fixture add` line that imports them. Nothing here is harness code:
the files are exactly what the README asks users for.

usage: /usr/bin/python3 scripts/dump_fixture.py KIND --engine qnnpack|onednn --out DIR
                        [--name NAME] [--seed N] [key=value ...]
keys (defaults in DEFAULTS below): sizes (batch, in_features, hidden_size, kernel, ...),
flags (bias, per_channel, bidirectional, packed, hidden_given, relu, ...).
"""
import argparse
import os
import sys
import warnings

import torch
import torch.nn as nn
import torch.nn.intrinsic as nni
from torch.ao.quantization import (QConfig, QuantWrapper, convert, default_dynamic_qconfig,
                                   default_per_channel_weight_observer, default_weight_observer,
                                   get_default_qconfig, per_channel_dynamic_qconfig, prepare,
                                   quantize_dynamic)
from torch.nn.utils.rnn import pack_padded_sequence

warnings.filterwarnings("ignore")

DEFAULTS = {
    "linear": dict(batch=3, in_features=8, out_features=4, bias=1, per_channel=0),
    "rnn": dict(batch=2, seq_len=4, input_size=5, hidden_size=4, num_layers=1, bidirectional=0,
                batch_first=0, packed=0, hidden_given=1, bias=1, per_channel=0),
    "cell": dict(batch=3, input_size=5, hidden_size=4, hidden_given=1, bias=1, per_channel=0, relu=0),
    "conv": dict(batch=2, in_channels=4, out_channels=4, groups=1, kernel=3, stride=1, padding=0,
                 dilation=1, output_padding=0, size=6, bias=1, per_channel=0),
}


def family(kind):
    name = kind.split(".", 1)[1]
    if name in ("Linear", "LinearReLU"):
        return "linear"
    if name in ("LSTM", "GRU"):
        return "rnn"
    if name.endswith("Cell"):
        return "cell"
    if name.startswith("Conv"):
        return "conv"
    sys.exit(f"dump_fixture.py: unknown kind {kind}")


def float_module(kind, c):
    name = kind.split(".", 1)[1]
    f = family(kind)
    if f == "linear":
        linear = nn.Linear(c["in_features"], c["out_features"], bias=bool(c["bias"]))
        return nni.LinearReLU(linear, nn.ReLU()) if name == "LinearReLU" else linear
    if f == "rnn":
        cls = nn.LSTM if name == "LSTM" else nn.GRU
        return cls(c["input_size"], c["hidden_size"], num_layers=c["num_layers"], bias=bool(c["bias"]),
                   batch_first=bool(c["batch_first"]), bidirectional=bool(c["bidirectional"]))
    if f == "cell":
        if name == "RNNCell":
            return nn.RNNCell(c["input_size"], c["hidden_size"], bias=bool(c["bias"]),
                              nonlinearity="relu" if c["relu"] else "tanh")
        return getattr(nn, name)(c["input_size"], c["hidden_size"], bias=bool(c["bias"]))
    dims = int(name[-2])
    transposed = name.startswith("ConvTranspose")
    cls = getattr(nn, ("ConvTranspose" if transposed else "Conv") + f"{dims}d")
    extra = dict(output_padding=c["output_padding"]) if transposed else {}
    conv = cls(c["in_channels"], c["out_channels"], c["kernel"], stride=c["stride"], padding=c["padding"],
               dilation=c["dilation"], groups=c["groups"], bias=bool(c["bias"]), **extra)
    if name.startswith("ConvReLU"):
        return getattr(nni, f"ConvReLU{dims}d")(conv, nn.ReLU())
    return conv


def float_input(kind, c):
    f = family(kind)
    if f == "linear":
        return torch.randn(c["batch"], c["in_features"])
    if f == "cell":
        return torch.randn(c["batch"], c["input_size"])
    if f == "rnn":
        shape = (c["batch"], c["seq_len"]) if c["batch_first"] else (c["seq_len"], c["batch"])
        return torch.randn(*shape, c["input_size"])
    dims = int(kind[-2])
    return torch.randn(c["batch"], c["in_channels"], *([c["size"]] * dims))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind")
    parser.add_argument("--engine", required=True, choices=["qnnpack", "onednn"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--name")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("config", nargs="*", help="key=value")
    args = parser.parse_intermixed_args()
    kind = args.kind
    c = dict(DEFAULTS[family(kind)])
    for item in args.config:
        key, _, value = item.partition("=")
        if key not in c:
            sys.exit(f"dump_fixture.py: {kind} has no key '{key}' (keys: {', '.join(c)})")
        c[key] = int(value)
    torch.manual_seed(args.seed)
    torch.backends.quantized.engine = args.engine

    model = float_module(kind, c).eval()
    x = float_input(kind, c)
    if kind.startswith("dynamic."):
        qconfig = per_channel_dynamic_qconfig if c["per_channel"] else default_dynamic_qconfig
        holder = nn.Sequential(model)
        qmodule = quantize_dynamic(holder, {type(model): qconfig}, dtype=torch.qint8)[0]
    else:
        engine_default = get_default_qconfig(args.engine)
        weight = default_per_channel_weight_observer if c["per_channel"] else default_weight_observer
        wrapper = QuantWrapper(model).eval()
        wrapper.qconfig = QConfig(activation=engine_default.activation, weight=weight)
        prepared = prepare(wrapper)
        for _ in range(4):
            prepared(float_input(kind, c))
        qmodule = convert(prepared)

    inputs = x
    if family(kind) in ("rnn", "cell") and c["hidden_given"]:
        directions = 2 if family(kind) == "rnn" and c["bidirectional"] else 1
        layers = c["num_layers"] * directions if family(kind) == "rnn" else None
        shape = (layers, c["batch"], c["hidden_size"]) if layers else (c["batch"], c["hidden_size"])
        hidden = [torch.randn(*shape)] + ([torch.randn(*shape)] if "LSTM" in kind else [])
        inputs = (x, *hidden)
    if family(kind) == "rnn" and c["packed"]:
        seq = x.transpose(0, 1) if c["batch_first"] else x
        lengths = torch.randint(1, c["seq_len"] + 1, (c["batch"],))
        lengths[torch.randint(0, c["batch"], (1,))] = c["seq_len"]
        packed = pack_padded_sequence(seq, lengths, enforce_sorted=False)
        inputs = (tuple(packed), *(inputs[1:] if isinstance(inputs, tuple) else ()))

    name = args.name or f"{kind}-{args.engine}"
    os.makedirs(args.out, exist_ok=True)
    module_path = os.path.join(args.out, name + ".pt")
    inputs_path = os.path.join(args.out, name + ".inputs.pt")
    torch.jit.save(torch.jit.script(qmodule), module_path)
    torch.save(inputs, inputs_path)
    print(f"qconform fixture add {module_path} --inputs {inputs_path} --engine {args.engine} --name {name}")


if __name__ == "__main__":
    main()
