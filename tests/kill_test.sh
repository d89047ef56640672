#!/bin/bash
# Faults (issue 30): `qconform fixture add` (a whole model, and one module) and `qconform
# conform` killed with SIGKILL at random moments leave the store and the output folder either
# as they were or complete — never a partial file — and the store still passes `qconform
# check`; a file-size limit (ulimit -f, a full disk's error) gives a clear message and changes
# nothing.
# usage: kill_test.sh QCONFORM SOURCE_DIR [KILLS]   (KILLS per command, default 20; the
#        acceptance run used 200: docs/reliability.md)
set -uo pipefail
tool=$1
source_dir=$2
kills=${3:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
RANDOM=20261206  # the kill times repeat from run to run

python=/usr/bin/python3
$python "$source_dir/scripts/dump_fixture.py" --model mobilenet_v2 --width-mult 0.25 --num-classes 10 --size 32 \
  --engine qnnpack --out "$work" --name model >/dev/null 2>&1 || { echo "FAIL: dump the model"; exit 1; }
$python "$source_dir/scripts/dump_fixture.py" static.Conv2d --engine qnnpack --out "$work" --name conv \
  >/dev/null 2>&1 || { echo "FAIL: dump the module"; exit 1; }
store="$work/store"
mkdir -p "$store"
"$tool" fixture add "$work/model.pt" --inputs "$work/model.inputs.pt" --engine qnnpack --store "$store" >/dev/null ||
  fail "the first model import"
"$tool" fixture add "$work/conv.pt" --inputs "$work/conv.inputs.pt" --engine qnnpack --store "$store" >/dev/null ||
  fail "the first module import"

# Visible files and directories only: hidden ones are temporaries (core/files.h).
visible_partials() { find "$1" -name '*partial*' -not -path '*/.*' | head -3; }
store_is_whole() {
  [ -z "$(visible_partials "$store")" ] || { fail "a visible partial file in the store: $(visible_partials "$store")"; return; }
  "$tool" check --store "$store" >"$work/check.log" 2>&1 || { tail -5 "$work/check.log"; fail "the store fails qconform check"; }
}

# A command's usual time, to kill it anywhere within.
timed() { local start=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - start) / 1000000 )); }
model_ms=$(timed "$tool" fixture add "$work/model.pt" --inputs "$work/model.inputs.pt" --engine qnnpack --store "$store" --force)
conform_ms=$(timed "$tool" conform --cases 1 --seed 1 --out "$work/out")
echo "fixture add (model): ${model_ms} ms; conform --cases 1: ${conform_ms} ms; $kills kills each"

kill_at_random() {  # kill_at_random MILLISECONDS COMMAND...
  local limit=$1
  shift
  "$@" >/dev/null 2>&1 &
  local pid=$!
  sleep "$(awk -v r="$RANDOM" -v l="$limit" 'BEGIN { printf "%.3f", r / 32767 * l / 1000 }')"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

for ((i = 1; i <= kills; i++)); do
  case $((i % 3)) in
    0) kill_at_random "$model_ms" "$tool" fixture add "$work/model.pt" --inputs "$work/model.inputs.pt" --engine qnnpack \
         --store "$store" --force ;;                                  # replacing a model
    1) kill_at_random "$model_ms" "$tool" fixture add "$work/model.pt" --inputs "$work/model.inputs.pt" --engine qnnpack \
         --store "$store" --name "new-$i" ;;                          # a new one
    2) kill_at_random 300 "$tool" fixture add "$work/conv.pt" --inputs "$work/conv.inputs.pt" --engine qnnpack \
         --store "$store" --force ;;                                  # one module
  esac
  store_is_whole
done
echo "fixture add: $kills kills; models in the store: $(ls -d "$store"/*.model | wc -l); hidden temporaries left: $(find "$store" -maxdepth 1 -name '.*partial*' | wc -l)"
# The next import clears what killed ones left.
"$tool" fixture add "$work/conv.pt" --inputs "$work/conv.inputs.pt" --engine qnnpack --store "$store" --force >/dev/null ||
  fail "an import after the kills"
[ "$(find "$store" -maxdepth 1 -name '.*partial*' | wc -l)" -eq 0 ] || fail "the next import left killed imports' temporaries"

out="$work/out"
for ((i = 1; i <= kills; i++)); do
  rm -rf "$out"
  kill_at_random "$conform_ms" "$tool" conform --cases 1 --seed "$i" --out "$out"
  [ -d "$out" ] || continue
  [ -z "$(visible_partials "$out")" ] || fail "a visible partial file in conform's output: $(visible_partials "$out")"
  if [ -f "$out/results.json" ]; then
    $python -c "import json, sys; r = json.load(open(sys.argv[1])); assert 'cells' in r" "$out/results.json" ||
      fail "conform killed left an incomplete results.json"
  fi
  if [ -f "$out/report.html" ]; then tail -c 20 "$out/report.html" | grep -q "</html>" || fail "an incomplete report.html"; fi
  if [ -f "$out/summary.txt" ]; then grep -q "agreement cases in" "$out/summary.txt" || fail "an incomplete summary.txt"; fi
done
echo "conform: $kills kills"

# A full disk, as a file-size limit: a clear error, nothing changed.
snapshot() { (cd "$store" && find . -print0 | sort -z | xargs -0 sha256sum 2>/dev/null; ls -A); }
before=$(snapshot)
out_full=$( (ulimit -f 64; "$tool" fixture add "$work/model.pt" --inputs "$work/model.inputs.pt" --engine qnnpack \
             --store "$store" --name too-big) 2>&1)
status=$?
[ "$status" -eq 2 ] || fail "a full disk: fixture add exits $status, expected 2 ($out_full)"
grep -q "File too large" <<<"$out_full" || fail "a full disk: the message does not say why: $out_full"
[ "$(snapshot)" == "$before" ] || fail "a full disk changed the store"
echo "refused as expected: $out_full"
rm -rf "$out"
out_full=$( (ulimit -f 8; "$tool" conform --cases 1 --seed 1 --out "$out") 2>&1)
status=$?
[ "$status" -ne 0 ] || fail "a full disk: conform exits 0"
grep -q "File too large" <<<"$out_full" || fail "a full disk: conform does not say why: $(tail -2 <<<"$out_full")"
[ ! -f "$out/results.json" ] || fail "a full disk left a results.json"
echo "refused as expected: $(grep "File too large" <<<"$out_full" | head -1)"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "kill_test: all checks passed"
