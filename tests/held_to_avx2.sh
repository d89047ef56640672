#!/usr/bin/env bash
# Runs a test command with oneDNN held to its AVX2 path (ONEDNN_MAX_CPU_ISA=AVX2, which
# oneDNN reads at its first use), so that a VNNI host checks LibTorch's avx2 int8 numerics
# against the integer onednn:avx2 model too, and with the integer kernels held to theirs. Where oneDNN takes the avx2 path anyway, the
# plain run of the same test already did: exit 77, which ctest reports as skipped.
# Usage: held_to_avx2.sh QCONFORM COMMAND [ARGS...]
set -euo pipefail
qconform=$1
shift
if ! "$qconform" host | grep -qx "onednn: vnni"; then
  echo "oneDNN takes the avx2 path on this host already ($("$qconform" host | grep '^onednn_isa')):"\
       "the plain run covered it"
  exit 77
fi
export ONEDNN_MAX_CPU_ISA=AVX2
# The integer kernels too: the paths an AVX2-only host takes (avx2-int16, avx2-int8 on 7-bit
# values, the convolution's loop for 8-bit ones) instead of VNNI's.
export QCONFORM_KERNEL_ISA=avx2
if ! "$qconform" host | grep -qx "onednn: avx2"; then
  echo "ONEDNN_MAX_CPU_ISA=AVX2 did not hold oneDNN to AVX2:" >&2
  "$qconform" host >&2
  exit 1
fi
echo "oneDNN held to AVX2 ($("$qconform" host | grep '^onednn_isa')); running: $*"
exec "$@"
