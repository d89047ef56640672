#!/bin/bash
# CI's short run of every fuzz target (scripts/fuzz --list), 10 seconds each from its seed
# corpus, with its own clang build under BUILD/fuzz; any crash, leak or sanitizer report fails.
# The long runs are in docs/reliability.md. Skipped (exit 77) without clang-14.
# usage: fuzz_smoke.sh SOURCE_DIR BUILD_DIR [SECONDS]
set -uo pipefail
source_dir=$1
build=$2
seconds=${3:-10}
command -v clang++-14 >/dev/null || { echo "clang-14 missing: no fuzz smoke run"; exit 77; }
export QCONFORM_FUZZ_BUILD_DIR="$build/fuzz"
status=0
for target in $("$source_dir/scripts/fuzz" --list | awk '{print $1}'); do
  if "$source_dir/scripts/fuzz" "$target" --seconds "$seconds" >"$build/fuzz-$target.log" 2>&1; then
    echo "$target: $(grep -m1 -o 'number_of_executed_units: [0-9]*' "$build/fuzz-$target.log")"
  else
    echo "FAIL: $target"; tail -30 "$build/fuzz-$target.log"; status=1
  fi
done
exit "$status"
