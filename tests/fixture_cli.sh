#!/bin/bash
# `qconform fixture add` and `qconform check` end to end (issue 7's acceptance):
#   - archives made by hand with nothing but torch (a dynamic LSTM, a dynamic GRUCell, a static
#     Conv2d between QuantStub/DeQuantStub) import and check;
#   - every malformed input exits 2 with its message and leaves the store byte-for-byte as it was;
#   - a fixture whose recorded outputs are altered (one quantum for a static module, beyond the
#     bound for a dynamic one) fails `qconform check`, naming the fixture, the element and the error.
# usage: fixture_cli.sh QCONFORM SOURCE_DIR
set -uo pipefail
tool=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# shellcheck source=tests/refusals.sh
source "$source_dir/tests/refusals.sh"

/usr/bin/python3 "$source_dir/tests/fixture_inputs.py" "$work" || { echo "FAIL: tests/fixture_inputs.py"; exit 1; }
store="$work/store"
mkdir -p "$store"

# Hand-made dumps import and check.
for m in lstm grucell conv; do
  if ! out=$("$tool" fixture add "$work/$m.pt" --inputs "$work/${m}_inputs.pt" --engine qnnpack --store "$store" 2>&1); then
    fail "fixture add $m: $out"
  fi
  echo "$out"
  grep -q "^check: PASS" <<<"$out" || fail "the fixture made from $m.pt does not pass its replay"
done
"$tool" check --store "$store" || fail "qconform check over the hand-made fixtures"

# refused: module | inputs | expected message | extra options
cases=(
  "not_a_zip.pt|quint8_inputs.pt|not_a_zip.pt: not a zip archive|"
  "not_torchscript.pt|quint8_inputs.pt|not_torchscript.pt: a zip archive, but not a TorchScript module|"
  "float_linear.pt|quint8_inputs.pt|float_linear.pt: unsupported module kind torch.nn.modules.linear.Linear|"
  "nan_scale.pt|quint8_inputs.pt|nan_scale.pt: static.Linear fixture: output qparams (scale, zero_point): invalid quantization parameters: scale = nan|"
  "missing_attributes.pt|quint8_inputs.pt|missing_attributes.pt: torch.ao.nn.quantized.modules.linear.Linear has no attribute 'in_features'|"
  "lstm.pt|wrong_width_inputs.pt|wrong_width_inputs.pt: the inputs do not fit the module: LibTorch says: input.size(-1) must be equal to input_size. Expected 6, got 7|--name fresh"
  "lstm.pt|not_a_zip.pt|not_a_zip.pt: not a zip archive, so not a file written by torch.save|--name fresh"
  "conv.pt|conv_inputs.pt|conv.fixture.json exists; pass --force|"
  "lstm.pt|lstm_inputs.pt|fixture name 'bad/name': use letters|--name bad/name"
  "lstm.pt|lstm_inputs.pt|engine fbgemm is not in this LibTorch|--engine fbgemm --name other"
  "bn_scale_shape.pt|bn_inputs.pt|BatchNorm2d.scale has shape [1], as PyTorch 1.13's convert leaves it|"
  "embedding_4bit_from_float.pt|embedding_inputs.pt|nnq.Embedding.from_float drops a 4-bit qconfig's dtype|"
)
check_refusals "${cases[@]}"

# Altered recordings fail check, naming fixture, element and error.
altered="$work/altered"
mkdir -p "$altered"
cp "$source_dir/fixtures/modules/static.Conv2d-qnnpack-default.fixture.json" \
   "$source_dir/fixtures/modules/dynamic.LSTM-qnnpack-default.fixture.json" "$altered/"
/usr/bin/python3 - "$altered" <<'PY'
import json, sys
d = sys.argv[1]
p = f"{d}/static.Conv2d-qnnpack-default.fixture.json"
f = json.load(open(p)); q = f["expected"]["output"]["int_repr"]
q[5] = q[5] + 1 if q[5] < 255 else q[5] - 1     # one quantum
json.dump(f, open(p, "w"))
p = f"{d}/dynamic.LSTM-qnnpack-default.fixture.json"
f = json.load(open(p)); f["expected"]["output"]["values"][5] += 0.5   # far beyond the bound
json.dump(f, open(p, "w"))
PY
out=$("$tool" check --store "$altered" 2>&1)
status=$?
echo "$out"
[ "$status" -eq 1 ] || fail "check of altered fixtures: exit status $status, expected 1"
grep -q "fixture static.Conv2d-qnnpack-default .*element 5 of output .*exceeds the bound" <<<"$out" ||
  fail "the altered static fixture's failure does not name fixture, element and error"
grep -q "fixture dynamic.LSTM-qnnpack-default .*element 5 of output .*exceeds the bound" <<<"$out" ||
  fail "the altered dynamic fixture's failure does not name fixture, element and error"

# A misspelt option is refused before any work, not run with the defaults.
out=$("$tool" conform --seeed 3 --out "$work/never" 2>&1)
status=$?
[ "$status" -eq 2 ] || fail "conform with a misspelt option: exit status $status, expected 2"
grep -q "unknown option --seeed for qconform conform" <<<"$out" || fail "conform --seeed: $out"
[ ! -e "$work/never" ] || fail "conform with a misspelt option wrote its output folder"

[ "$failures" -eq 0 ] && echo "fixture_cli: all checks pass" || echo "fixture_cli: $failures failures"
[ "$failures" -eq 0 ]
