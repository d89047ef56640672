#!/usr/bin/python3
"""Generates fixtures/core/observers.json with PyTorch itself: for >= 200 random tensors
(constant, all-zero, single-element, huge and tiny ranges, exact rounding ties, ...), the
scale and zero point every observer configuration computes, and the integers the tensor
quantizes to with them; plus the engines' dynamic activation qparams.

Run with Debian's PyTorch:  /usr/bin/python3 scripts/gen_core_fixture.py [OUT]
Floats are written as exact hex (float.hex) so the C++ side can compare bit for bit.
"""
import json
import sys
import warnings

import numpy as np
import torch
from torch.ao.quantization.observer import (
    FixedQParamsObserver, HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver, PerChannelMinMaxObserver)

warnings.filterwarnings("ignore")
SEED = 20261121
rng = np.random.default_rng(SEED)
torch.manual_seed(SEED)


def hexes(values):
    return [float(v).hex() for v in np.asarray(values, dtype=np.float32).reshape(-1)]


def make_tensors():
    """(kind, float32 array) pairs; every array has rank >= 1."""
    out = []

    def shape():
        rank = rng.choice([1, 2, 2, 2, 3])
        return tuple(int(rng.integers(1, 6 if rank > 1 else 20)) for _ in range(rank))

    for _ in range(60):
        out.append(("normal", rng.standard_normal(shape()) * 10.0 ** rng.uniform(-3, 3)))
    for _ in range(15):
        out.append(("positive", rng.uniform(0.1, 5.0, shape()) * 10.0 ** rng.uniform(-2, 2)))
    for _ in range(15):
        out.append(("negative", -rng.uniform(0.1, 5.0, shape()) * 10.0 ** rng.uniform(-2, 2)))
    for _ in range(15):
        out.append(("constant", np.full(shape(), rng.standard_normal() * 10.0 ** rng.uniform(-3, 3))))
    for _ in range(10):
        out.append(("zeros", np.zeros(shape())))
    for _ in range(15):
        out.append(("single", np.array([rng.standard_normal() * 10.0 ** rng.uniform(-4, 4)])))
    for _ in range(15):
        out.append(("huge", rng.standard_normal(shape()) * 10.0 ** rng.uniform(20, 35)))
    for _ in range(15):
        out.append(("tiny", rng.standard_normal(shape()) * 10.0 ** rng.uniform(-35, -8)))
    for _ in range(15):
        s = shape()
        out.append(("wide", np.sign(rng.standard_normal(s)) * 10.0 ** rng.uniform(-6, 6, s)))
    # Exact ties for the quint8 affine MinMax scale: values at (k + 1/2) quanta of it.
    for _ in range(30):
        s = shape()
        base = rng.standard_normal(s).astype(np.float32) * np.float32(10.0 ** rng.uniform(-2, 2))
        lo, hi = min(float(base.min()), 0.0), max(float(base.max()), 0.0)
        scale = np.float32(max(np.float32(hi) - np.float32(lo), 0) / np.float32(255.0))
        if scale > 0:
            inv = np.float32(1.0) / scale
            flat = base.reshape(-1)
            for i in range(flat.size):
                k = rng.integers(-60, 60)
                c = np.float32((k + 0.5) / inv)
                if lo <= c <= hi and c * inv == np.float32(k + 0.5):
                    flat[i] = c
        out.append(("ties", base))
    return [(kind, np.asarray(a, dtype=np.float32)) for kind, a in out]


def observer_configs():
    """(name, kwargs, constructor, batches); kwargs use the C++ ObserverOptions names."""
    q8, s8, s32, q4 = torch.quint8, torch.qint8, torch.qint32, torch.quint4x2
    pta, pts = torch.per_tensor_affine, torch.per_tensor_symmetric
    pca, pcs, pcf = torch.per_channel_affine, torch.per_channel_symmetric, torch.per_channel_affine_float_qparams
    configs = []
    for dtype in (q8, s8):
        for qscheme in (pta, pts):
            for reduce_range in (False, True):
                if dtype == q8 and qscheme == pts and reduce_range:
                    continue  # PyTorch refuses this combination
                configs.append(("MinMaxObserver", dict(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range), 1))
    configs += [
        ("MinMaxObserver", dict(dtype=q8, quant_min=0, quant_max=127), 1),                        # default_observer
        ("MinMaxObserver", dict(dtype=s8, qscheme=pts, quant_min=-127, quant_max=127, eps=2 ** -12), 1),
        ("MinMaxObserver", dict(dtype=s32, quant_min=-32768, quant_max=32767), 1),                # int16 on qint32
        ("MinMaxObserver", dict(dtype=s32, qscheme=pts, quant_min=-32768, quant_max=32767), 1),
        ("MinMaxObserver", dict(dtype=s32), 1),
        ("MinMaxObserver", dict(dtype=q8, quant_min=0, quant_max=255, reduce_range=True), 1),
        ("MinMaxObserver", dict(dtype=q4), 1),
        ("MovingAverageMinMaxObserver", dict(dtype=q8), 2),
        ("MovingAverageMinMaxObserver", dict(dtype=q8, averaging_constant=0.5, reduce_range=True), 2),
        ("MovingAverageMinMaxObserver", dict(dtype=s8, qscheme=pts, averaging_constant=0.1), 2),
        ("PerChannelMinMaxObserver", dict(dtype=s8, qscheme=pcs, ch_axis=0), 1),
        ("PerChannelMinMaxObserver", dict(dtype=q8, qscheme=pca, ch_axis=0), 1),
        ("PerChannelMinMaxObserver", dict(dtype=q8, qscheme=pca, ch_axis=1, reduce_range=True), 1),
        ("PerChannelMinMaxObserver", dict(dtype=s8, qscheme=pcs, ch_axis=-1), 1),
        ("PerChannelMinMaxObserver", dict(dtype=q8, qscheme=pcf, ch_axis=0), 1),
        ("PerChannelMinMaxObserver", dict(dtype=q4, qscheme=pcf, ch_axis=0), 1),
        ("MovingAveragePerChannelMinMaxObserver", dict(dtype=s8, qscheme=pcs, ch_axis=0), 2),
        ("MovingAveragePerChannelMinMaxObserver", dict(dtype=q8, qscheme=pca, ch_axis=1, averaging_constant=0.3), 2),
        ("HistogramObserver", dict(dtype=q8), 1),
        ("HistogramObserver", dict(dtype=q8, reduce_range=True), 1),
        ("HistogramObserver", dict(dtype=q8, quant_min=0, quant_max=127), 1),             # default_histogram_observer
        ("HistogramObserver", dict(dtype=s8, qscheme=pts, bins=256), 1),
        ("HistogramObserver", dict(dtype=q8), 2),
        ("FixedQParamsObserver", dict(scale=2.0 / 256.0, zero_point=128), 1),
        ("FixedQParamsObserver", dict(scale=1.0 / 256.0, zero_point=0), 1),
    ]
    return configs


CONSTRUCTORS = {
    "MinMaxObserver": MinMaxObserver,
    "MovingAverageMinMaxObserver": MovingAverageMinMaxObserver,
    "PerChannelMinMaxObserver": PerChannelMinMaxObserver,
    "MovingAveragePerChannelMinMaxObserver": MovingAveragePerChannelMinMaxObserver,
    "FixedQParamsObserver": FixedQParamsObserver,
    "HistogramObserver": HistogramObserver,
}


def as_json_args(kwargs):
    out = {}
    for k, v in kwargs.items():
        out[k] = str(v) if isinstance(v, (torch.dtype, torch.qscheme)) else v
    if "eps" in out:
        out["eps"] = float(np.float32(out["eps"])).hex()
    if "scale" in out:
        out["scale"] = float(np.float32(out["scale"])).hex()
    if "averaging_constant" in out:
        out["averaging_constant"] = float(np.float32(out["averaging_constant"])).hex()
    return out


def int_values(q):
    if q.dtype == torch.quint4x2:  # two values per byte, low nibble first
        packed = q.int_repr().numpy().astype(np.int64).reshape(-1)
        return [int(v) for b in packed for v in (b & 15, b >> 4)][: q.numel()]
    return [int(v) for v in q.int_repr().numpy().reshape(-1)]


def quantize(x, scale, zero_point, qscheme, dtype, axis):
    if qscheme in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        return torch.quantize_per_tensor(x, float(scale), int(zero_point), dtype)
    zp = zero_point if qscheme == torch.per_channel_affine_float_qparams else zero_point.to(torch.int64)
    return torch.quantize_per_channel(x, scale.to(torch.double), zp, axis, dtype)


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "fixtures/core/observers.json"
    tensors = make_tensors()
    second = [(a * np.float32(0.5) + np.float32(0.25)).astype(np.float32) for _, a in tensors]
    fixture = {
        "format": "qconform-core-fixture/1",
        "torch_version": torch.__version__,
        "generator": "scripts/gen_core_fixture.py",
        "seed": SEED,
        "tensors": [{"id": i, "kind": k, "shape": list(a.shape), "values": hexes(a),
                     "second_batch": hexes(second[i])} for i, (k, a) in enumerate(tensors)],
        "observers": [],
        "dynamic": [],
    }
    for name, kwargs, batches in observer_configs():
        entry = {"observer": name, "args": as_json_args(kwargs), "batches": batches, "results": []}
        for i, (kind, a) in enumerate(tensors):
            x = torch.from_numpy(a.copy())
            axis = kwargs.get("ch_axis", 0)
            if axis == 1 and x.dim() < 2:
                continue
            obs = CONSTRUCTORS[name](**kwargs)
            try:  # errors are recorded, and the C++ side must refuse too
                obs(x)
                if batches == 2:
                    obs(torch.from_numpy(second[i].copy()))
                scale, zero_point = obs.calculate_qparams()
            except Exception as e:
                entry["results"].append({"tensor": i, "error": str(e).split("\n")[0]})
                continue
            result = {"tensor": i, "scale": hexes(scale.to(torch.float32).numpy()),
                      "zero_point": [float(z) if obs.qscheme == torch.per_channel_affine_float_qparams
                                     else int(z) for z in zero_point.reshape(-1).tolist()]}
            qscheme = getattr(obs, "qscheme", torch.per_tensor_affine)
            dtype = obs.dtype
            ch_axis = axis if axis >= 0 else x.dim() + axis
            per_channel_default = qscheme in (torch.per_channel_affine, torch.per_channel_symmetric,
                                              torch.per_channel_affine_float_qparams) and scale.numel() != x.shape[ch_axis]
            if not per_channel_default:
                q = quantize(x, scale, zero_point, qscheme, dtype, ch_axis)
                result["q"] = int_values(q)
            entry["results"].append(result)
        fixture["observers"].append(entry)
    # Every engine's default configs, run through PyTorch's own objects. FakeQuantize
    # variants are called (forward), so their fake-quantized output and the qparams the
    # forward pass used are recorded too.
    qconfig = torch.ao.quantization.qconfig
    for engine in ("fbgemm", "x86", "qnnpack", "onednn"):
        for function, version in (("get_default_qconfig", 0), ("get_default_qat_qconfig", 0),
                                  ("get_default_qat_qconfig", 1)):
            config = getattr(qconfig, function)(engine, version)
            for part in ("activation", "weight"):
                batches = 2 if part == "activation" else 1
                entry = {"observer": "qconfig", "args": {"function": function, "engine": engine,
                                                         "version": version, "part": part},
                         "batches": batches, "results": []}
                histogram = function == "get_default_qconfig" and part == "activation"
                for i, (kind, a) in enumerate(tensors):
                    if histogram and i % 3:
                        continue  # Python's histogram search is slow; a third of the tensors
                    obs = getattr(config, part)()
                    fq = hasattr(obs, "activation_post_process")
                    result = {"tensor": i}
                    try:
                        out = obs(torch.from_numpy(a.copy()))
                        if batches == 2:
                            out = obs(torch.from_numpy(second[i].copy()))
                        scale, zero_point = obs.calculate_qparams()
                    except Exception as e:
                        result["error"] = str(e).split("\n")[0]
                        entry["results"].append(result)
                        continue
                    result["scale"] = hexes(scale.to(torch.float32).numpy())
                    result["zero_point"] = [int(z) for z in zero_point.reshape(-1).tolist()]
                    if fq:
                        result["forward_scale"] = hexes(obs.scale.to(torch.float32).numpy())
                        result["forward_zero_point"] = [int(z) for z in obs.zero_point.reshape(-1).tolist()]
                        result["fq_out"] = hexes(out.detach().numpy())
                    entry["results"].append(result)
                fixture["observers"].append(entry)

    for i, (kind, a) in enumerate(tensors):
        for reduce_range in (False, True):
            s, z = torch._choose_qparams_per_tensor(torch.from_numpy(a.copy()), reduce_range)
            fixture["dynamic"].append({"tensor": i, "reduce_range": reduce_range, "scale": float(s).hex(),
                                       "zero_point": int(z)})
    with open(out_path, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
    total = sum(len(e["results"]) for e in fixture["observers"])
    print(f"{out_path}: torch {torch.__version__}, {len(tensors)} tensors, "
          f"{len(fixture['observers'])} observer configurations, {total} observer results, "
          f"{len(fixture['dynamic'])} dynamic qparams")


if __name__ == "__main__":
    main()
