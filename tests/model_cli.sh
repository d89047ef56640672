#!/bin/bash
# Whole models (issue 28): `qconform fixture add MODEL.pt` and `qconform check` end to end.
#   - models dumped as a user dumps them (scripts/dump_fixture.py --model: torchvision's
#     quantizable MobileNetV2 and ShuffleNetV2, small; Embedding -> LSTM -> Linear and
#     EmbeddingBag -> Linear quantized dynamically) import on qnnpack and onednn, fully
#     covered, and replay: every layer within its bound, the integer chain exact;
#   - bad input (a float model, inputs forward does not take, an unreadable archive, a layer
#     the harness cannot read (an Embedding as a 4-bit quantize_dynamic leaves it), an existing name) exits 2 with its
#     reason and leaves the store byte-for-byte as it was;
#   - a 2-d EmbeddingBag call with per_sample_weights and no offsets imports and replays;
#   - a layer whose recording is altered by one quantum is named as the first failing layer,
#     and `bench --model`'s comparisons see it (1 quantum; 0 before), its layers on LibTorch's
#     channels-last bytes among them;
#   - `check --report` writes the model report; with chromium, its screenshot lands in
#     ARTIFACTS/model_report.png.
# usage: model_cli.sh QCONFORM SOURCE_DIR ARTIFACTS
set -uo pipefail
tool=$1
source_dir=$2
artifacts=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# shellcheck source=tests/refusals.sh
source "$source_dir/tests/refusals.sh"
dump() { /usr/bin/python3 "$source_dir/scripts/dump_fixture.py" --out "$work" "$@" 2>/dev/null | tail -1; }
store="$work/store"
mkdir -p "$store" "$artifacts"

# name | dump_fixture.py arguments
models=(
  "mobilenet_v2-qnnpack|--model mobilenet_v2 --width-mult 0.25 --num-classes 10 --size 32 --engine qnnpack"
  "shufflenet_v2_x0_5-onednn|--model shufflenet_v2_x0_5 --num-classes 10 --size 64 --engine onednn"
  "embedding_lstm_linear-onednn|--model embedding_lstm_linear --engine onednn"
  "embeddingbag_linear-qnnpack|--model embeddingbag_linear --engine qnnpack"
)
for row in "${models[@]}"; do
  IFS='|' read -r name arguments <<<"$row"
  # shellcheck disable=SC2086  # several words
  dump $arguments --name "$name" >/dev/null || { fail "dump_fixture.py $arguments"; continue; }
  engine=${name##*-}
  out=$("$tool" fixture add "$work/$name.pt" --inputs "$work/$name.inputs.pt" --engine "$engine" --store "$store" 2>&1)
  status=$?
  echo "$out" | cut -c1-400
  [ "$status" -eq 0 ] || fail "fixture add $name: exit $status"
  grep -q "(fully covered)" <<<"$out" || fail "$name is not fully covered"
  grep -q "^check: PASS" <<<"$out" || fail "$name does not pass its replay"
  grep -q "integer chain within bounds throughout" <<<"$out" || fail "$name: the integer chain leaves a bound"
done
"$tool" check --store "$store" --layers --report "$work/report.html" --models-json "$work/models.json" >"$work/check.log" 2>&1 ||
  { cat "$work/check.log"; fail "qconform check over the models"; }
grep -c "^PASS" "$work/check.log" | grep -qx "${#models[@]}" || { cat "$work/check.log"; fail "not every model passes"; }
grep -q "<svg class=\"chain\"" "$work/report.html" || fail "the model report has no layer chain plot"

# Bad input: exit 2, the reason, the store untouched.
/usr/bin/python3 "$source_dir/tests/model_inputs.py" "$work" || fail "tests/model_inputs.py"
# module | inputs | expected message | extra options
cases=(
  "float_model.pt|float_model.inputs.pt|has no quantized layer|"
  "float_model.pt|wrong_channels.inputs.pt|the inputs do not fit the model's forward: LibTorch says: Given groups=1|"
  "not_a_zip.pt|float_model.inputs.pt|not_a_zip.pt: not a zip archive|"
  "embedding_4bit.pt|embedding_4bit.inputs.pt|layer embedding (torch.ao.nn.quantized.modules.embedding_ops.Embedding): |"
  "mobilenet_v2-qnnpack.pt|mobilenet_v2-qnnpack.inputs.pt|mobilenet_v2-qnnpack.model exists; pass --force|"
  "mobilenet_v2-qnnpack.pt|embeddingbag_linear-qnnpack.inputs.pt|the inputs do not fit the model's forward|--name other"
)
check_refusals "${cases[@]}"

# A 2-d EmbeddingBag call given per_sample_weights and no offsets.
out=$("$tool" fixture add "$work/bag_without_offsets.pt" --inputs "$work/bag_without_offsets.inputs.pt" \
      --engine qnnpack --store "$store" 2>&1) || fail "fixture add bag_without_offsets: $out"
grep -q "^check: PASS  bag_without_offsets .*(fully covered)" <<<"$out" || fail "bag_without_offsets: $out"

# The replay's timing (bench --model) compares every layer with its recording as it goes.
model="$store/mobilenet_v2-qnnpack.model"
bench_differences() { "$tool" bench --model "$model" --reps 1 2>&1 | sed -nE 's/.*(layers alone|chain).*largest difference ([0-9.e+-]+) quanta.*/\1 \2/p' | tr '\n' ' '; }
[ "$(bench_differences)" = "layers alone 0 chain 0 " ] || fail "bench --model on the recorded model: $(bench_differences)"
# Its convolutions and adds run on LibTorch's channels-last bytes (the path check's chain takes too).
on_bytes=$("$tool" bench --model "$model" --reps 1 2>&1 | sed -nE "s/.*channels-last bytes as they are: ([0-9]+).*/\1/p")
[ "${on_bytes:-0}" -gt 0 ] || fail "bench --model runs no layer on channels-last bytes (got '${on_bytes}')"

# One quantum off in one layer's recording: that layer is the first failing one.
layer=$(ls "$model/layers" | sed -n 5p)
/usr/bin/python3 - "$model/layers/$layer" <<'PY'
import json, sys
path = sys.argv[1]
lines = open(path).read().split("\n")
for i, line in enumerate(lines):
    if line.startswith('  "expected": '):
        expected = json.loads(line[len('  "expected": '):])
        q = expected["output"]["int_repr"]
        q[0] = q[0] + 1 if q[0] < 255 else q[0] - 1
        lines[i] = '  "expected": ' + json.dumps(expected, separators=(",", ":"))
open(path, "w").write("\n".join(lines))
PY
out=$("$tool" check mobilenet_v2-qnnpack --store "$store" 2>&1)
status=$?
echo "$out" | cut -c1-400 | head -5
[ "$status" -eq 1 ] || fail "an altered layer: check exits $status, expected 1"
label=$(sed -E 's/^mobilenet_v2-qnnpack\.[0-9]+\.//; s/\.fixture\.json$//' <<<"$layer")
grep -qF "first failing layer: $label" <<<"$out" || fail "the altered layer $label is not named first failing"
[ "$(bench_differences)" = "layers alone 1 chain 1 " ] || fail "bench --model does not see the altered layer: $(bench_differences)"

if command -v chromium >/dev/null; then
  chromium --headless --no-sandbox --disable-gpu --window-size=1400,1000 \
    --screenshot="$artifacts/model_report.png" "file://$work/report.html" >/dev/null 2>&1 ||
    fail "chromium could not open the model report"
  [ -s "$artifacts/model_report.png" ] || fail "no screenshot of the model report"
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "model_cli: all checks passed"
