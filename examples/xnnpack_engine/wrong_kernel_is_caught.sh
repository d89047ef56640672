#!/bin/bash
# The plug-in with its input zero point ignored must fail the agreement oracle: a shrunk
# counterexample, and a rerun line that reproduces the failure from this build.
# usage: wrong_kernel_is_caught.sh PROGRAM
set -uo pipefail
program=$1
out=$(QCONFORM_PLUGIN_OUT=$(mktemp -d) "$program" --run_test='static_Linear/reference_vs_xnnpack' --color_output=no 2>&1)
status=$?
out=$(sed 's/\x1b\[[0-9;]*m//g' <<<"$out")  # no terminal colours in what is parsed
echo "$out" | tail -n 30
[ "$status" -ne 0 ] || { echo "FAIL: the wrong kernel passed"; exit 1; }
grep -q "Falsifiable after" <<<"$out" || { echo "FAIL: no counterexample"; exit 1; }
grep -q "qconform::CaseConfig:" <<<"$out" || { echo "FAIL: the counterexample is not shown"; exit 1; }
rerun=$(grep -m1 -o "rerun: .*" <<<"$out" | sed 's/^rerun: //')
[ -n "$rerun" ] || { echo "FAIL: no rerun line"; exit 1; }
echo "rerunning: $rerun"
eval "$rerun"
rerun_status=$?
[ "$rerun_status" -eq 1 ] || { echo "FAIL: the rerun exits $rerun_status, expected 1 (the case fails again)"; exit 1; }
echo "wrong_kernel_is_caught: the oracle caught it, shrank it, and its rerun line reproduces it"
