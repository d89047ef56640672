#!/usr/bin/env bash
# Runs a test command with ATen's CPU dispatch set to one capability (ATEN_CPU_CAPABILITY:
# default, avx2 or avx512), so that the integer models of ATen's own kernels are held to each
# of its builds' vector forms (quantized/kernels/elementwise.h, pooling.h). ATen trusts the
# variable: avx512 on a CPU without AVX-512 would fault, so there the run is skipped (exit 77).
# Usage: with_aten_capability.sh CAPABILITY COMMAND [ARGS...]
set -euo pipefail
capability=$1
shift
if [[ $capability == avx512 ]] && ! grep -qw avx512f /proc/cpuinfo; then
  echo "no AVX-512 on this CPU: ATen's avx512 kernels cannot run here"
  exit 77
fi
if [[ $capability == avx2 ]] && ! grep -qw avx2 /proc/cpuinfo; then
  echo "no AVX2 on this CPU"
  exit 77
fi
export ATEN_CPU_CAPABILITY=$capability
echo "ATEN_CPU_CAPABILITY=$capability; running: $*"
exec "$@"
