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

Whole models (`fixture add` records them layer by layer):
       /usr/bin/python3 scripts/dump_fixture.py --model MODEL --engine qnnpack|onednn --out DIR
                        [--name NAME] [--seed N] [--size PIXELS] [--num-classes N]
                        [--width-mult W]
MODEL: a torchvision 0.14 quantizable model (resnet18, resnet50, mobilenet_v2,
mobilenet_v3_large, shufflenet_v2_x0_5, shufflenet_v2_x1_0, googlenet, inception_v3), built
with weights=None (nothing is downloaded), fused, prepared with the engine's default qconfig,
calibrated on random images, converted; or a dynamic model: embedding_lstm_linear
(nn.Embedding -> nn.LSTM -> nn.Linear) or embeddingbag_linear (nn.EmbeddingBag -> nn.Linear),
quantized with quantize_dynamic (the embeddings weight-only, float_qparams). Its inputs: one
image batch of 1 x 3 x SIZE x SIZE (default 224; inception_v3 needs at least 75), or the
index tensors.
"""
import argparse
import os
import sys
import warnings

import torch
import torch.nn as nn
import torch.nn.intrinsic as nni
from torch.ao.quantization import (DeQuantStub, QConfig, QuantStub, QuantWrapper, convert, default_dynamic_qconfig,
                                   default_per_channel_weight_observer, default_weight_observer,
                                   get_default_qconfig, per_channel_dynamic_qconfig, prepare,
                                   quantize_dynamic)
from torch.ao.quantization.observer import MinMaxObserver
import torch.ao.nn.quantized as nnq
from torch.nn.utils.rnn import pack_padded_sequence

warnings.filterwarnings("ignore")

DEFAULTS = {
    "linear": dict(batch=3, in_features=8, out_features=4, bias=1, per_channel=0),
    "rnn": dict(batch=2, seq_len=4, input_size=5, hidden_size=4, num_layers=1, bidirectional=0,
                batch_first=0, packed=0, hidden_given=1, bias=1, per_channel=0),
    # torch.ao.nn.quantized.LSTM: the eager flow on a model QuantStub -> nn.LSTM (prepare swaps in
    # the quantizable LSTM); the quantized LSTM is scripted alone and takes the quantized input.
    "static_lstm": dict(batch=2, seq_len=4, input_size=5, hidden_size=4, num_layers=1, bidirectional=0,
                        batch_first=0, bias=1, per_channel=0),
    "cell": dict(batch=3, input_size=5, hidden_size=4, hidden_given=1, bias=1, per_channel=0, relu=0),
    "conv": dict(batch=2, in_channels=4, out_channels=4, groups=1, kernel=3, stride=1, padding=0,
                 dilation=1, output_padding=0, size=6, bias=1, per_channel=0),
    # The static ops without weights, on (batch, channels, size, size) inputs. variant=1 picks the
    # op's other argument (negative_slope 0.2, alpha 0.5, p 0.3).
    "activation": dict(batch=2, channels=3, size=5, variant=0),
    # nnq.Softmax alone (nn.Softmax is in no eager mapping); fixed=1: output qparams (1/256, 0),
    # QNNPACK's soft-argmax on qnnpack; dim=4 for None.
    "softmax": dict(batch=2, channels=5, size=4, dim=1, fixed=0),
    "pooling": dict(batch=2, channels=3, size=7, kernel=3, stride=2, padding=1, dilation=1, ceil_mode=0,
                    count_include_pad=1, divisor=0, out_h=1, out_w=1),
    # nnq.Quantize (floats in) or nnq.DeQuantize (quint8 in) alone.
    "stub": dict(batch=2, channels=3, size=5),
    # A model calling one FloatFunctional method on its arguments, each through its own stub
    # (scalar_x100: add_scalar's and mul_scalar's scalar in hundredths; cat: three operands
    # along dim, of 2, 3 and 4 there; spatial_ones=1: H = W = 1, ATen's NHWC cat on dim 1).
    "functional": dict(batch=2, channels=3, size=4, scalar_x100=37, dim=1, spatial_ones=0),
    # BatchNorm2d/3d (BNReLU: fused with a ReLU) with random statistics; depth for 3d inputs.
    "batchnorm": dict(batch=2, channels=4, size=5, depth=3),
    # LayerNorm over the last normalized_dims of (batch, channels, size, size); GroupNorm with
    # groups; InstanceNorm{1,2,3}d on (batch, channels, size...); affine=0 drops weight and bias.
    "norm": dict(batch=2, channels=4, size=5, groups=2, normalized_dims=2, affine=1),
    # nnq.Embedding / EmbeddingBag built as the seeds build them (nnq.Embedding with the 4-bit
    # dtype directly: 1.13's from_float drops it); bags of offsets (0 .. n), include_last_offset,
    # mode (0 sum, 1 mean, 2 max), per_sample_weights.
    # pruned: EmbeddingBag with pruned_weights, indices into 3 more rows than kept through an int32
    # compressed_indices_mapping (-1: pruned), passed after offsets (None for 2-d indices).
    "embedding": dict(num_embeddings=10, embedding_dim=12, four_bit=0, indices=16, bags=4, two_d=0,
                      include_last_offset=0, mode=0, per_sample_weights=0, pruned=0),
}


def family(kind):
    name = kind.split(".", 1)[1]
    if kind == "static.LSTM":
        return "static_lstm"
    if name in ("Linear", "LinearReLU"):
        return "linear"
    if name in ("LSTM", "GRU"):
        return "rnn"
    if name.endswith("Cell"):
        return "cell"
    if name.startswith("Conv"):
        return "conv"
    if name in ("ReLU", "ReLU6", "LeakyReLU", "Hardswish", "ELU", "Sigmoid", "Hardsigmoid", "Tanh", "Dropout"):
        return "activation"
    if name == "Softmax":
        return "softmax"
    if name in ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"):
        return "pooling"
    if name in ("Quantize", "DeQuantize"):
        return "stub"
    if name in ("add", "add_relu", "mul", "add_scalar", "mul_scalar", "cat", "matmul"):
        return "functional"
    if name.startswith("BatchNorm") or name.startswith("BNReLU"):
        return "batchnorm"
    if name in ("LayerNorm", "GroupNorm") or name.startswith("InstanceNorm"):
        return "norm"
    if name in ("Embedding", "EmbeddingBag"):
        return "embedding"
    sys.exit(f"dump_fixture.py: unknown kind {kind}")


def float_module(kind, c):
    name = kind.split(".", 1)[1]
    f = family(kind)
    if f == "activation":
        extra = {"LeakyReLU": dict(negative_slope=0.2 if c["variant"] else 0.01),
                 "ELU": dict(alpha=0.5 if c["variant"] else 1.0),
                 "Dropout": dict(p=0.3 if c["variant"] else 0.5)}.get(name, {})
        return getattr(nn, name)(**extra)
    if f == "pooling":
        if name == "AdaptiveAvgPool2d":
            return nn.AdaptiveAvgPool2d((c["out_h"], c["out_w"]))
        if name == "MaxPool2d":
            return nn.MaxPool2d(c["kernel"], c["stride"], c["padding"], dilation=c["dilation"],
                                ceil_mode=bool(c["ceil_mode"]))
        return nn.AvgPool2d(c["kernel"], c["stride"], c["padding"], ceil_mode=bool(c["ceil_mode"]),
                            count_include_pad=bool(c["count_include_pad"]), divisor_override=c["divisor"] or None)
    if f == "batchnorm":
        dims = int(name[-2])
        bn = getattr(nn, f"BatchNorm{dims}d")(c["channels"], eps=1e-3)
        with torch.no_grad():  # statistics as training would leave them
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.05, 3.0)
            bn.weight.normal_()
            bn.bias.normal_()
        return getattr(nni, f"BNReLU{dims}d")(bn, nn.ReLU()) if name.startswith("BNReLU") else bn
    if f == "norm":
        affine = bool(c["affine"])
        if name == "LayerNorm":
            shape = [c["channels"], c["size"], c["size"]][3 - c["normalized_dims"]:]
            m = nn.LayerNorm(shape, elementwise_affine=affine)
        elif name == "GroupNorm":
            m = nn.GroupNorm(c["groups"], c["channels"], affine=affine)
        else:
            m = getattr(nn, name)(c["channels"], affine=affine)
        if affine:
            with torch.no_grad():
                m.weight.normal_()
                m.bias.normal_()
        return m
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
    if f in ("activation", "softmax", "pooling", "stub"):
        return torch.randn(c["batch"], c["channels"], c["size"], c["size"]) * 3
    if f == "batchnorm":
        spatial = [c["depth"], c["size"], c["size"]] if kind.endswith("3d") else [c["size"], c["size"]]
        return torch.randn(c["batch"], c["channels"], *spatial) * 2
    if f == "norm":
        dims = {"InstanceNorm1d": 1, "InstanceNorm3d": 3}.get(kind.split(".", 1)[1], 2)
        return torch.randn(c["batch"], c["channels"], *([c["size"]] * dims)) * 2 + 1
    dims = int(kind[-2])
    return torch.randn(c["batch"], c["in_channels"], *([c["size"]] * dims))


def _float_functional_matmul(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r = torch.matmul(x, y)
    r = self.activation_post_process(r)
    return r


def _qfunctional_matmul(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r = torch.ops.quantized.matmul(x, y, scale=self.scale, zero_point=self.zero_point)
    r = self.activation_post_process(r)
    return r


# PyTorch 2's FloatFunctional.matmul and QFunctional.matmul, given to 1.13's classes: 1.13 has the
# quantized op (quantized::matmul) but not yet the methods. The eager flow and TorchScript then
# treat them as any other QFunctional method.
for _method in (_float_functional_matmul, _qfunctional_matmul):
    _method.__name__ = _method.__qualname__ = "matmul"  # TorchScript compiles a method by its name
nnq.FloatFunctional.matmul = _float_functional_matmul
nnq.QFunctional.matmul = _qfunctional_matmul


class Calls(nn.Module):
    """Stubs, one FloatFunctional, and the call's constant arguments as attributes."""
    def __init__(self, scalar, dim):
        super().__init__()
        self.quant_x, self.quant_y, self.quant_z, self.dequant = QuantStub(), QuantStub(), QuantStub(), DeQuantStub()
        self.f = nnq.FloatFunctional()
        self.scalar = scalar
        self.dim = dim


def functional_model(method, c):
    """A scriptable model around one FloatFunctional call (TorchScript needs the method
    spelled out, so one small class per method)."""
    class Add(Calls):
        def forward(self, x, y):
            return self.dequant(self.f.add(self.quant_x(x), self.quant_y(y)))

    class AddRelu(Calls):
        def forward(self, x, y):
            return self.dequant(self.f.add_relu(self.quant_x(x), self.quant_y(y)))

    class Mul(Calls):
        def forward(self, x, y):
            return self.dequant(self.f.mul(self.quant_x(x), self.quant_y(y)))

    class AddScalar(Calls):
        def forward(self, x):
            return self.dequant(self.f.add_scalar(self.quant_x(x), self.scalar))

    class MulScalar(Calls):
        def forward(self, x):
            return self.dequant(self.f.mul_scalar(self.quant_x(x), self.scalar))

    class Cat(Calls):
        def forward(self, x, y, z):
            return self.dequant(self.f.cat([self.quant_x(x), self.quant_y(y), self.quant_z(z)], self.dim))

    class Matmul(Calls):
        def forward(self, x, y):
            return self.dequant(self.f.matmul(self.quant_x(x), self.quant_y(y)))

    classes = dict(add=Add, add_relu=AddRelu, mul=Mul, add_scalar=AddScalar, mul_scalar=MulScalar, cat=Cat,
                   matmul=Matmul)
    return classes[method](c["scalar_x100"] / 100.0, c["dim"])


def functional_inputs(method, c):
    shape = [c["batch"], c["channels"], c["size"], c["size"]]
    if c["spatial_ones"]:
        shape[2] = shape[3] = 1
    if method in ("add_scalar", "mul_scalar"):
        return (torch.randn(*shape) * 3,)
    if method == "matmul":  # (batch, channels, size) x (batch, size, size + 1)
        return (torch.randn(c["batch"], c["channels"], c["size"]), torch.randn(c["batch"], c["size"], c["size"] + 1))
    if method == "cat":
        parts = []
        for extent in (2, 3, 4):
            s = list(shape)
            s[c["dim"]] = extent
            parts.append(torch.randn(*s) * 3)
        return tuple(parts)
    return (torch.randn(*shape) * 3, torch.randn(*shape) * 2)


def embedding_module(kind, c):
    """nnq.Embedding / EmbeddingBag with a weight quantized per row with float qparams, and its
    inputs: (indices,), (indices, offsets[, per_sample_weights]), or for pruned weights
    (indices, offsets or None, per_sample_weights or None, compressed_indices_mapping)."""
    from torch.ao.quantization.observer import PerChannelMinMaxObserver
    bag = kind.endswith("Bag")
    dtype = torch.quint4x2 if c["four_bit"] else torch.quint8
    w = torch.randn(c["num_embeddings"], c["embedding_dim"])
    observer = PerChannelMinMaxObserver(ch_axis=0, dtype=dtype, qscheme=torch.per_channel_affine_float_qparams)
    observer(w)
    scales, zero_points = observer.calculate_qparams()
    qweight = torch.quantize_per_channel(w, scales, zero_points, 0, dtype)
    if bag:
        m = nnq.EmbeddingBag(c["num_embeddings"], c["embedding_dim"], mode=["sum", "mean", "max"][c["mode"]],
                             include_last_offset=bool(c["include_last_offset"]), dtype=dtype)
    else:
        m = nnq.Embedding(c["num_embeddings"], c["embedding_dim"], dtype=dtype)
    m.set_weight(qweight)
    n = c["indices"]
    if c["pruned"]:
        # The rows kept are the weight's; an index u of the uncompressed range reads row
        # mapping[u], -1 reads nothing.
        m.pruned_weights = True
        uncompressed = c["num_embeddings"] + 3
        mapping = torch.randint(-1, c["num_embeddings"], (uncompressed,), dtype=torch.int32)
        weights = torch.rand(n) if c["per_sample_weights"] else None
        if c["two_d"]:
            indices = torch.randint(0, uncompressed, (c["bags"], n // c["bags"]))
            return m, (indices, None, weights.reshape(indices.shape) if weights is not None else None, mapping)
        indices = torch.randint(0, uncompressed, (n,))
        cuts = sorted(torch.randint(0, n + 1, (c["bags"] - 1,)).tolist())
        return m, (indices, torch.tensor([0] + cuts), weights, mapping)
    if c["two_d"]:
        indices = torch.randint(0, c["num_embeddings"], (c["bags"], n // c["bags"]))
        return m, (indices,)
    indices = torch.randint(0, c["num_embeddings"], (n,))
    if not bag:
        return m, (indices,)
    cuts = sorted(torch.randint(0, n + 1, (c["bags"] - 1,)).tolist())
    offsets = torch.tensor([0] + cuts + ([n] if c["include_last_offset"] else []))
    if c["per_sample_weights"]:
        return m, (indices, offsets, torch.rand(n))
    return m, (indices, offsets)


def standalone(kind, c, x):
    """nnq.Softmax, nnq.Quantize and nnq.DeQuantize, built as their from_float would, alone:
    returns the module and its input (floats for Quantize, quint8 for the others)."""
    name = kind.split(".", 1)[1]
    observer = MinMaxObserver(dtype=torch.quint8)
    observer(x)
    scale, zero_point = observer.calculate_qparams()
    xq = torch.quantize_per_tensor(x, float(scale), int(zero_point), torch.quint8)
    if name == "Quantize":
        return nnq.Quantize(float(scale), int(zero_point), torch.quint8), x
    if name == "DeQuantize":
        return nnq.DeQuantize(), xq
    dim = None if c["dim"] == 4 else c["dim"]
    if c["fixed"]:
        out_scale, out_zero_point = 1.0 / 256.0, 0
    else:
        out = MinMaxObserver(dtype=torch.quint8)
        out(torch.softmax(xq.dequantize(), 1 if dim is None else dim))
        out_scale, out_zero_point = (float(v) for v in out.calculate_qparams())
    return nnq.Softmax(dim, out_scale, int(out_zero_point)), xq


def static_lstm_module(c, engine):
    """QuantStub -> nn.LSTM through prepare (the quantizable LSTM), calibration and convert;
    returns the quantized LSTM and the quantized input it receives."""
    lstm = nn.LSTM(c["input_size"], c["hidden_size"], c["num_layers"], bias=bool(c["bias"]),
                   batch_first=bool(c["batch_first"]), bidirectional=bool(c["bidirectional"]))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.quant = QuantStub()
            self.lstm = lstm

        def forward(self, x):
            return self.lstm(self.quant(x))

    shape = (c["batch"], c["seq_len"], c["input_size"]) if c["batch_first"] else (c["seq_len"], c["batch"], c["input_size"])
    engine_default = get_default_qconfig(engine)
    weight = default_per_channel_weight_observer if c["per_channel"] else default_weight_observer
    model = Model().eval()
    model.qconfig = QConfig(activation=engine_default.activation, weight=weight)
    prepared = prepare(model)
    for _ in range(4):
        prepared(torch.randn(*shape) * 2)
    converted = convert(prepared)
    return converted.lstm, converted.quant(torch.randn(*shape) * 2)


TORCHVISION_MODELS = ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "shufflenet_v2_x0_5",
                      "shufflenet_v2_x1_0", "googlenet", "inception_v3"]
DYNAMIC_MODELS = ["embedding_lstm_linear", "embeddingbag_linear"]


class EmbeddingLSTMLinear(nn.Module):
    def __init__(self, vocabulary=50, embedding=12, hidden=16, classes=5):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, embedding)
        self.lstm = nn.LSTM(embedding, hidden)
        self.linear = nn.Linear(hidden, classes)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        x = self.embedding(indices)
        out, _ = self.lstm(x)
        return self.linear(out)


class EmbeddingBagLinear(nn.Module):
    def __init__(self, vocabulary=50, embedding=12, classes=5):
        super().__init__()
        self.bag = nn.EmbeddingBag(vocabulary, embedding, mode="sum")
        self.linear = nn.Linear(embedding, classes)

    def forward(self, indices: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.linear(self.bag(indices, offsets))


def whole_model(args):
    """A quantized model and the arguments of its forward, made as a user makes them."""
    from torch.ao.quantization import float_qparams_weight_only_qconfig
    if args.model in DYNAMIC_MODELS:
        if args.model == "embedding_lstm_linear":
            model = EmbeddingLSTMLinear().eval()
            spec = {nn.Embedding: float_qparams_weight_only_qconfig, nn.LSTM: default_dynamic_qconfig,
                    nn.Linear: default_dynamic_qconfig}
            inputs = (torch.randint(0, 50, (7, 3)),)
        else:
            model = EmbeddingBagLinear().eval()
            spec = {nn.EmbeddingBag: float_qparams_weight_only_qconfig, nn.Linear: default_dynamic_qconfig}
            inputs = (torch.randint(0, 50, (10,)), torch.tensor([0, 3, 3, 7]))
        return quantize_dynamic(model, spec, dtype=torch.qint8), inputs
    import torchvision.models.quantization as tvq
    options = {"weights": None, "quantize": False}
    if args.num_classes:
        options["num_classes"] = args.num_classes
    if args.width_mult:
        options["width_mult"] = args.width_mult
    if args.model in ("googlenet", "inception_v3"):
        options.update(aux_logits=False, init_weights=False)
    model = getattr(tvq, args.model)(**options).eval()
    model.fuse_model()
    model.qconfig = get_default_qconfig(args.engine)
    prepare(model, inplace=True)
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(2, 3, args.size, args.size))
    convert(model, inplace=True)
    return model, (torch.randn(1, 3, args.size, args.size),)


def dump_model(args):
    model, inputs = whole_model(args)
    name = args.name or f"{args.model}-{args.engine}"
    os.makedirs(args.out, exist_ok=True)
    module_path = os.path.join(args.out, name + ".pt")
    inputs_path = os.path.join(args.out, name + ".inputs.pt")
    torch.jit.save(torch.jit.script(model), module_path)
    torch.save(inputs[0] if len(inputs) == 1 else inputs, inputs_path)
    print(f"qconform fixture add {module_path} --inputs {inputs_path} --engine {args.engine} --name {name}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", nargs="?")
    parser.add_argument("--model", choices=TORCHVISION_MODELS + DYNAMIC_MODELS)
    parser.add_argument("--size", type=int, default=224, help="--model: image height and width")
    parser.add_argument("--num-classes", type=int, help="--model: classifier outputs (torchvision's default 1000)")
    parser.add_argument("--width-mult", type=float, help="--model mobilenet_v2: channel multiplier")
    parser.add_argument("--engine", required=True, choices=["qnnpack", "onednn"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--name")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("config", nargs="*", help="key=value")
    args = parser.parse_intermixed_args()
    if args.model:
        if args.kind or args.config:
            sys.exit("dump_fixture.py: --model takes no KIND or key=value")
        torch.manual_seed(args.seed)
        torch.backends.quantized.engine = args.engine
        dump_model(args)
        return
    if not args.kind:
        sys.exit("dump_fixture.py: name a KIND, or --model MODEL")
    kind = args.kind
    c = dict(DEFAULTS[family(kind)])
    for item in args.config:
        key, _, value = item.partition("=")
        if key not in c:
            sys.exit(f"dump_fixture.py: {kind} has no key '{key}' (keys: {', '.join(c)})")
        c[key] = int(value)
    torch.manual_seed(args.seed)
    torch.backends.quantized.engine = args.engine

    if family(kind) == "static_lstm":
        qmodule, x = static_lstm_module(c, args.engine)
    elif family(kind) == "embedding":
        qmodule, x = embedding_module(kind, c)
    elif family(kind) == "functional":
        method = kind.split(".", 1)[1]
        model = functional_model(method, c).eval()
        model.qconfig = get_default_qconfig(args.engine)
        prepared = prepare(model)
        for _ in range(4):
            prepared(*functional_inputs(method, c))
        qmodule = convert(prepared)
        x = functional_inputs(method, c)
    elif family(kind) in ("softmax", "stub"):
        qmodule, x = standalone(kind, c, float_input(kind, c))
    else:
        model = float_module(kind, c).eval()  # before the input: the random draws' order is the corpus's
        x = float_input(kind, c)
    if family(kind) in ("softmax", "stub", "functional", "embedding", "static_lstm"):
        pass
    elif kind.startswith("dynamic."):
        qconfig = per_channel_dynamic_qconfig if c["per_channel"] else default_dynamic_qconfig
        holder = nn.Sequential(model)
        qmodule = quantize_dynamic(holder, {type(model): qconfig}, dtype=torch.qint8)[0]
    else:
        engine_default = get_default_qconfig(args.engine)
        weight = default_per_channel_weight_observer if c.get("per_channel") else default_weight_observer
        wrapper = QuantWrapper(model).eval()
        wrapper.qconfig = QConfig(activation=engine_default.activation, weight=weight)
        prepared = prepare(wrapper)
        for _ in range(4):
            prepared(float_input(kind, c))
        qmodule = convert(prepared)
        if family(kind) == "batchnorm":
            # PyTorch 1.13's convert leaves nnq.BatchNorm's scale and zero_point buffers with
            # shape [1], which its scripted forward refuses to pass as numbers ("Cannot input a
            # tensor of dimension other than 0 as a scalar argument"): make them 0-dim, as the
            # module's own constructor does.
            bn = qmodule.module
            bn.scale = bn.scale.reshape(())
            bn.zero_point = bn.zero_point.reshape(())

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
