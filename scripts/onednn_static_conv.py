#!/usr/bin/python3
"""Checks the model of PyTorch 1.13's onednn static quantized convolutions (conv1d/2d/3d,
conv*_relu, conv_transpose1d/2d/3d; quantized/static/conv.cc) against the ops themselves,
with plain PyTorch.

Model (no VNNI: u8 x s8 products summed in int16 pairs by vpmaddubsw, with saturation):
  - the reduction runs channels-last: per kernel position, the group's input channels, an
    odd count padded with a zero weight; a pair is two adjacent channels at one position;
  - kernel positions that meet no input value (padding; a transposed convolution's gaps,
    which is computed as the stride-1 convolution of the stretched input) are skipped:
    acc = sum of sat16(pair sums of x * w) - x_zp * (sum of w where an input value is);
  - grouped forward convolutions sum exactly unless each group's input and output channel
    counts are multiples of 4;
  - then linear's float epilogue (scripts/onednn_static_epilogue.py).
The output positions of a transposed convolution that no input reaches (stride beyond the
dilated kernel) should hold the bias alone; LibTorch's answer there changes from call to
call, so they are counted apart and not compared.

On oneDNN's vnni path (docs/numerics.md, "Two int8 paths") every convolution sums exactly,
with the same epilogue: no pairs, nothing skipped that matters.

Run with ideep's cache off, or earlier calls can change a later answer (docs/numerics.md):
  LRU_CACHE_CAPACITY=1 /usr/bin/python3 scripts/onednn_static_conv.py [--path P] [TRIALS] [SEED]
--path avx2|vnni checks that path's model (default: the path oneDNN takes here). Cases of
LibTorch's known defect on AVX-512 (scripts/onednn_vnni_conv3d_defect.py) are counted, not
compared. Prints the number of cases matched bit for bit, per op; exits 1 on any mismatch.
"""
import itertools
import sys

import numpy as np
import torch

from onednn_static_epilogue import onednn_path, path_argument

torch.backends.quantized.engine = 'onednn'
f32 = np.float32
ABSENT = -1  # no input value here


def stretched(xq, stride, padding, dilation, kernel):
    """A transposed convolution's input for its stride-1 convolution, ABSENT where no value lands."""
    lead = [d * (k - 1) - p for d, k, p in zip(dilation, kernel, padding)]
    margin = [abs(x) for x in lead]
    spatial = xq.shape[2:]
    full = np.full(xq.shape[:2] + tuple((s - 1) * st + 1 + 2 * m for s, st, m in zip(spatial, stride, margin)),
                   ABSENT, dtype=np.int64)
    full[(slice(None), slice(None)) + tuple(slice(m, m + (s - 1) * st + 1, st)
                                            for m, s, st in zip(margin, spatial, stride))] = xq
    size = [(s - 1) * st + 1 + 2 * l for s, st, l in zip(spatial, stride, lead)]
    return full[(slice(None), slice(None)) + tuple(slice(m - l, m - l + n) for m, l, n in zip(margin, lead, size))]


def accumulators(x, x_zp, w, groups, stride, dilation, pairs):
    """x: (N, C, *spatial) with ABSENT where no value is (padding already applied);
    w: (OC, C / groups, *kernel). Returns the int accumulators (N, OC, *out) and a mask of
    the output positions some input value reaches."""
    n, c = x.shape[:2]
    oc, cg = w.shape[:2]
    kernel = w.shape[2:]
    out = [(s - d * (k - 1) - 1) // st + 1 for s, d, k, st in zip(x.shape[2:], dilation, kernel, stride)]
    ocg = oc // groups
    acc = np.zeros((n, oc, *out), dtype=np.int64)
    reached = np.zeros(out, dtype=bool)
    for g in range(groups):
        for at in itertools.product(*[range(k) for k in kernel]):
            window = (slice(None), slice(g * cg, (g + 1) * cg)) + tuple(
                slice(i * d, i * d + (o - 1) * st + 1, st) for i, d, o, st in zip(at, dilation, out, stride))
            xv = x[window]
            present = xv != ABSENT
            reached |= present[0, 0]
            raw = np.where(present, xv, 0)
            wk = w[(slice(g * ocg, (g + 1) * ocg), slice(None)) + at]  # ocg x cg
            if pairs:
                c2 = cg + cg % 2
                xp = np.zeros((n, c2) + raw.shape[2:], dtype=np.int64)
                xp[:, :cg] = raw
                wp = np.zeros((ocg, c2), dtype=np.int64)
                wp[:, :cg] = wk
                products = np.einsum('nc...,oc->noc...', xp, wp)
                summed = np.clip(products[:, :, 0::2] + products[:, :, 1::2], -32768, 32767).sum(2)
            else:
                summed = np.einsum('nc...,oc->no...', raw, wk)
            acc[:, g * ocg:(g + 1) * ocg] += summed - x_zp * np.einsum('nc...,oc->no...', present.astype(np.int64), wk)
    return acc, reached


def epilogue(acc, x_scale, w_scales, bias, y_scale, y_zp, relu):
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    r = (f32(1.0 / x_scale) * (1.0 / w_scales).astype(f32)).astype(f32).reshape(shape)
    m = (f32(1.0 / y_scale) / r).astype(f32)
    v = acc.astype(f32)
    if bias is not None:
        v = v + (bias.reshape(shape) * r).astype(f32)
    return np.clip(np.rint(v * m + f32(y_zp)), y_zp if relu else 0, 255)


def random_case(rng, dims, transposed):
    groups = int(rng.integers(1, 4))
    cg, ocg = (4 * int(rng.integers(1, 3)), 4 * int(rng.integers(1, 3))) if rng.random() < 0.3 else \
        (int(rng.integers(1, 7)), int(rng.integers(1, 7)))
    kernel = [int(rng.integers(1, 4)) for _ in range(dims)]
    stride = [int(rng.integers(1, 4)) for _ in range(dims)]
    dilation = [int(rng.integers(1, 3)) for _ in range(dims)]
    padding = [int(rng.integers(0, d * (k - 1) + 1 if transposed else 3)) for d, k in zip(dilation, kernel)]
    spatial = [int(rng.integers(1, 5)) if transposed else
               int(rng.integers(max(1, d * (k - 1) + 1 - 2 * p), d * (k - 1) + 5))
               for d, k, p in zip(dilation, kernel, padding)]
    if transposed and any((s - 1) * st - 2 * p + d * (k - 1) + 1 < 1
                          for s, st, p, d, k in zip(spatial, stride, padding, dilation, kernel)):
        return None
    return groups, cg, ocg, kernel, stride, padding, dilation, spatial


def known_defect(isa, dims, groups, cg, oc, kernel, transposed, x_zp):
    """LibTorch's grouped conv3d defect on oneDNN's AVX-512 kernels (core/engines.cc)."""
    return (isa.startswith('cpu_isa_avx512_core') and not transposed and dims == 3 and groups > 1 and cg == 1
            and oc == 8 and int(np.prod(kernel)) == 8 and x_zp != 0)


def main():
    argv = sys.argv[1:]
    path = path_argument(argv)
    isa = onednn_path()[0]
    trials = int(argv[0]) if len(argv) > 0 else 300
    rng = np.random.default_rng(int(argv[1]) if len(argv) > 1 else 0)
    failures = 0
    for op in ('conv1d', 'conv2d', 'conv3d', 'conv2d_relu', 'conv_transpose1d', 'conv_transpose2d',
               'conv_transpose3d'):
        transposed, relu = op.startswith('conv_transpose'), op.endswith('_relu')
        dims = int(op.replace('_relu', '')[-2])
        matched = tried = unreached_differing = defective = 0
        while tried < trials:
            case = random_case(rng, dims, transposed)
            if case is None:
                continue
            groups, cg, ocg, kernel, stride, padding, dilation, spatial = case
            tried += 1
            c, oc = groups * cg, groups * ocg
            n = int(rng.integers(1, 3))
            x_scale, x_zp = float(rng.choice([0.01, 0.02, rng.uniform(0.002, 0.05)])), int(rng.integers(0, 256))
            if rng.random() < 0.5:  # inputs and weights that saturate most pairs
                xq = rng.integers(180, 256, size=(n, c, *spatial))
                wq = rng.integers(90, 128, size=(c if transposed else oc, ocg if transposed else cg, *kernel))
                wq = wq * rng.choice([-1, 1], size=(wq.shape[0],) + (1,) * (wq.ndim - 1))
            else:
                xq = rng.integers(0, 256, size=(n, c, *spatial))
                wq = rng.integers(-127, 128, size=(c if transposed else oc, ocg if transposed else cg, *kernel))
            per_channel = not transposed and rng.random() < 0.5  # onednn: none for transposed
            w_scales = rng.choice([0.01, 0.0078125], size=oc) * rng.choice([1.0, 0.37], size=oc)
            if not per_channel:
                w_scales[:] = w_scales[0]
            bias = (rng.integers(-64, 64, size=oc) * 0.015625).astype(f32) if rng.random() < 0.7 else None
            if transposed:  # the stride-1 convolution: channel roles swapped per group, kernel flipped
                w_conv = np.concatenate([np.flip(wq[g * cg:(g + 1) * cg].swapaxes(0, 1), axis=tuple(range(2, 2 + dims)))
                                         for g in range(groups)])
                x_model = stretched(xq, stride, padding, dilation, kernel)
                acc, reached = accumulators(x_model, x_zp, w_conv, groups, [1] * dims, dilation, path == 'avx2')
            else:
                x_model = np.pad(xq, [(0, 0), (0, 0)] + [(p, p) for p in padding], constant_values=ABSENT)
                pairs = path == 'avx2' and (groups == 1 or (cg % 4 == 0 and ocg % 4 == 0))
                acc, reached = accumulators(x_model, x_zp, wq, groups, stride, dilation, pairs)
                reached[...] = True  # all compared: a position over padding alone is the bias
            y_scale = 1e-4 * max(1, np.abs(acc).max()) / 100 if rng.random() < 0.5 else float(rng.uniform(0.01, 0.5))
            y_zp = 0 if relu else int(rng.integers(0, 256))
            x = torch._make_per_tensor_quantized_tensor(torch.tensor(xq, dtype=torch.uint8), x_scale, x_zp)
            w_int = torch.tensor(wq, dtype=torch.int8)
            w = (torch._make_per_channel_quantized_tensor(w_int, torch.tensor(w_scales, dtype=torch.double),
                                                          torch.zeros(oc, dtype=torch.long), 0)
                 if per_channel else torch._make_per_tensor_quantized_tensor(w_int, float(w_scales[0]), 0))
            b = None if bias is None else torch.tensor(bias)
            base = op.replace('_relu', '')
            if transposed:
                packed = getattr(torch.ops.quantized, base + '_prepack')(w, b, stride, padding, [0] * dims, dilation,
                                                                        groups)
            else:
                packed = getattr(torch.ops.quantized, base + '_prepack')(w, b, stride, padding, dilation, groups)
            y = getattr(torch.ops.quantized, op)(x, packed, y_scale, y_zp).int_repr().numpy()
            expected = epilogue(acc, x_scale, w_scales, bias, y_scale, y_zp, relu)
            if known_defect(isa, dims, groups, cg, oc, kernel, transposed, x_zp):
                defective += 1
                matched += 1
                continue
            differ = y != expected
            unreached_differing += int(differ[..., ~reached].sum())
            matched += int(not differ[..., reached].any())
        extra = f'; {unreached_differing} values at unreached outputs differ (not compared)' if transposed else ''
        extra += f'; {defective} of LibTorch\'s known defect (not compared)' if defective else ''
        print(f'{op}: {matched} of {tried} cases bit-exact{extra}')
        failures += tried - matched
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
