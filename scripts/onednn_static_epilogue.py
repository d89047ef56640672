#!/usr/bin/python3
"""Checks the model of PyTorch 1.13's onednn static quantized::linear / linear_relu
(quantized/kernels/static_gemm.h, FloatEpilogue) against the op itself, with plain PyTorch.

Model, on oneDNN's int8 path (docs/numerics.md, "Two int8 paths"):
  avx2: acc = sum over K pairs of sat16(x[2p] w[2p] + x[2p+1] w[2p+1]) - x_zp sum_k w[k]
        (u8 x s8 pairs in int16, as vpmaddubsw);
  vnni: acc = sum_k x[k] w[k] - x_zp sum_k w[k], exact (vpdpbusd);
then ideep's reciprocal scales r = float(1/x_scale) * float(1/w_scale[n]) and
m = float(1/y_scale) / r, in float; q = nearbyint((float(acc) + bias * r) * m + y_zp),
clamped to [relu ? y_zp : 0, 255].

Run with ideep's cache off, or earlier calls can change a later answer (docs/numerics.md):
  LRU_CACHE_CAPACITY=1 /usr/bin/python3 scripts/onednn_static_epilogue.py [--path P] [TRIALS] [SEED]
--path avx2|vnni checks that path's model (default: the path oneDNN takes here, which
ONEDNN_MAX_CPU_ISA=AVX2 holds to avx2). Prints the oneDNN ISA and the number of cases
matched bit for bit, per op; exits 1 on any mismatch.
"""
import ctypes
import sys

import numpy as np
import torch

torch.backends.quantized.engine = 'onednn'
f32 = np.float32


def onednn_path():
    """oneDNN's ISA in this process and its int8 path (core/cpu.cc asks the same way)."""
    dnnl = ctypes.CDLL('libdnnl.so.2')
    dnnl.dnnl_cpu_isa2str.restype = ctypes.c_char_p
    isa = dnnl.dnnl_get_effective_cpu_isa()
    vnni = (isa & 0x67) == 0x67 or (isa & 0x407) == 0x407  # avx512_core_vnni, avx2_vnni
    return dnnl.dnnl_cpu_isa2str(isa).decode(), 'vnni' if vnni else 'avx2'


def path_argument(argv):
    """Removes --path P from argv; P, or this process's path."""
    isa, here = onednn_path()
    path = here
    if '--path' in argv:
        at = argv.index('--path')
        path = argv[at + 1]
        del argv[at:at + 2]
    if path not in ('avx2', 'vnni'):
        sys.exit(f'--path must be avx2 or vnni, not {path}')
    print(f'oneDNN ISA {isa} ({here} path here); checking the {path} model')
    return path


def model(xq, x_scale, x_zp, wq, w_scales, bias, y_scale, y_zp, relu, path):
    k = xq.shape[1] + xq.shape[1] % 2
    xp = np.zeros((xq.shape[0], k), dtype=np.int64); xp[:, :xq.shape[1]] = xq
    wp = np.zeros((wq.shape[0], k), dtype=np.int64); wp[:, :wq.shape[1]] = wq
    products = xp[:, None, :] * wp[None, :, :]
    pairs = products[:, :, 0::2] + products[:, :, 1::2]
    if path == 'avx2':
        pairs = np.clip(pairs, -32768, 32767)
    acc = pairs.sum(-1) - x_zp * wq.sum(1)[None, :]
    r = (f32(1.0 / x_scale) * (1.0 / w_scales).astype(f32)).astype(f32)
    m = (f32(1.0 / y_scale) / r).astype(f32)
    v = acc.astype(f32)
    if bias is not None:
        v = v + (bias * r).astype(f32)
    q = np.rint(v * m + f32(y_zp))
    return np.clip(q, y_zp if relu else 0, 255)


def main():
    argv = sys.argv[1:]
    path = path_argument(argv)
    trials = int(argv[0]) if len(argv) > 0 else 2000
    rng = np.random.default_rng(int(argv[1]) if len(argv) > 1 else 0)
    failures = 0
    for op in ('linear', 'linear_relu'):
        matched = 0
        for _ in range(trials):
            k, n, rows = int(rng.integers(1, 20)), int(rng.integers(1, 6)), int(rng.integers(1, 9))
            # Power-of-two and round scales make rounding ties frequent; random ones the rest.
            x_scale = float(rng.choice([0.01, 0.02, 0.015625, rng.uniform(0.002, 0.05)]))
            x_zp = int(rng.integers(0, 256))
            w_scales = rng.choice([0.01, 0.0078125, 0.015625], size=n) * rng.choice([1.0, 0.37], size=n)
            per_channel = rng.random() < 0.5
            if not per_channel:
                w_scales[:] = w_scales[0]
            xq = rng.integers(0, 256, size=(rows, k))
            wq = rng.integers(-127, 128, size=(n, k))
            bias = (rng.integers(-64, 64, size=n) * 0.015625).astype(f32) if rng.random() < 0.7 else None
            y_scale = float(rng.choice([0.01, 0.02, 0.05, 0.1, 0.03125, rng.uniform(0.001, 0.2)]))
            y_zp = 0 if op == 'linear_relu' else int(rng.integers(0, 256))
            x = torch._make_per_tensor_quantized_tensor(torch.tensor(xq, dtype=torch.uint8), x_scale, x_zp)
            w_int = torch.tensor(wq, dtype=torch.int8)
            w = (torch._make_per_channel_quantized_tensor(w_int, torch.tensor(w_scales, dtype=torch.double),
                                                          torch.zeros(n, dtype=torch.long), 0)
                 if per_channel else torch._make_per_tensor_quantized_tensor(w_int, float(w_scales[0]), 0))
            packed = torch.ops.quantized.linear_prepack(w, None if bias is None else torch.tensor(bias))
            y = getattr(torch.ops.quantized, op)(x, packed, y_scale, y_zp).int_repr().numpy()
            matched += int((model(xq, x_scale, x_zp, wq, w_scales, bias, y_scale, y_zp, op == 'linear_relu', path) == y).all())
        print(f'{op}: {matched} of {trials} cases bit-exact')
        failures += trials - matched
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
