#!/usr/bin/python3
"""PyTorch's own way of checking dynamic Linear, timed: a Python loop of Hypothesis examples
over torch.ops.quantized.linear_dynamic against a NumPy reference, shaped like
test_quantized_op.py's dynamic Linear test (PyTorch 1.13: batch 1-4, 16-32 input and 4-8
output channels, bias or not, per-tensor or per-channel weights, reduce_range or not).

scripts/suite_speed runs it next to the suite's own dynamic.Linear cells and reports the
ratio of verified cases per second (docs/benchmarks.md). Prints one JSON object:
{"cases": N, "seconds": S, "cases_per_second": N / S, "engine": E}.

Usage: /usr/bin/python3 scripts/pytorch_loop.py [--examples N] [--engine onednn|qnnpack]
"""
import argparse
import json
import sys
import time

import numpy as np
import torch
from hypothesis import given, settings, strategies as st, HealthCheck


def dynamic_qparams(x, reduce_range):
    """quint8 affine qparams from the data's range including 0 (PyTorch's dynamic rule)."""
    qmin, qmax = (0, 127) if reduce_range else (0, 255)
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (hi - lo) / (qmax - qmin) if hi > lo else 1.0
    zero_point = int(np.clip(round(qmin - lo / scale), qmin, qmax))
    return scale, zero_point


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--engine", default="onednn", choices=["onednn", "qnnpack"])
    args = parser.parse_args()
    torch.backends.quantized.engine = args.engine
    torch.set_num_threads(1)
    verified = [0]

    @settings(max_examples=args.examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(batch=st.integers(1, 4), in_channels=st.integers(16, 32), out_channels=st.integers(4, 8),
           use_bias=st.booleans(), per_channel=st.booleans(), reduce_range=st.booleans(),
           seed=st.integers(0, 2**31 - 1))
    def check(batch, in_channels, out_channels, use_bias, per_channel, reduce_range, seed):
        rng = np.random.default_rng(seed)
        x = torch.from_numpy(rng.uniform(-1, 1, (batch, in_channels)).astype(np.float32))
        w = torch.from_numpy(rng.uniform(-1, 1, (out_channels, in_channels)).astype(np.float32))
        b = torch.from_numpy(rng.uniform(-1, 1, out_channels).astype(np.float32)) if use_bias else None
        if per_channel:
            w_scales = (w.abs().amax(dim=1) / 127.0).double()
            wq = torch.quantize_per_channel(w, w_scales, torch.zeros(out_channels, dtype=torch.long), 0, torch.qint8)
            w_scale = w_scales.numpy()[:, None]
        else:
            w_scales = float(w.abs().max() / 127.0)
            wq = torch.quantize_per_tensor(w, w_scales, 0, torch.qint8)
            w_scale = w_scales
        packed = torch.ops.quantized.linear_prepack(wq, b)
        y = torch.ops.quantized.linear_dynamic(x, packed, reduce_range and args.engine != "qnnpack").numpy()
        # The reference: x quantized with the dynamic rule, an int32 GEMM, dequantized.
        x_scale, x_zp = dynamic_qparams(x.numpy(), reduce_range and args.engine != "qnnpack")
        xq = np.clip(np.round(x.numpy() / x_scale) + x_zp, 0, 255).astype(np.int64)
        w_int = wq.int_repr().numpy().astype(np.int64)
        acc = (xq - x_zp) @ w_int.T
        w_real = w_int * w_scale
        ref = acc * (x_scale * (w_scale.T if per_channel else w_scale))
        if use_bias:
            ref = ref + b.numpy()
        # An engine may round x's qparams or values one quantum apart: each term moves by at
        # most one x quantum times |w|.
        bound = x_scale * np.abs(w_real).sum(axis=1) + 1e-5 * np.abs(ref) + 1e-6
        assert np.all(np.abs(y - ref) <= bound), "dynamic Linear differs from the NumPy reference"
        verified[0] += 1

    start = time.perf_counter()
    check()
    seconds = time.perf_counter() - start
    json.dump({"cases": verified[0], "seconds": seconds, "cases_per_second": verified[0] / seconds,
               "engine": args.engine, "torch": torch.__version__}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
