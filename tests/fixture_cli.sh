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
# A torch.save file whose zip directory points past its end (scripts/fuzz torch_save's first
# finding): refused, and under the sanitizer build not read past its end.
# A torch.save file whose tensor's sizes run past its storage (the second finding): refused
# before anything reads it.
cp "$source_dir/fixtures/fuzz/torch_save/regression-zip-directory-past-end.pt" "$work/zip_directory_past_end.pt"
cp "$source_dir/fixtures/fuzz/torch_save/regression-sizes-past-storage.pt" "$work/sizes_past_storage.pt"
# The fuzz targets fix the zip CRCs of what they read (tests/fuzz/zip_crc.h); these two
# reproducers are kept as saved, so their CRCs are fixed here the same way: a storage that
# claims more bytes than its record holds (the third finding), and an archive whose mutated
# class constant crashes LibTorch's TorchScript compiler under ASan (the fourth; a release
# LibTorch throws instead).
/usr/bin/python3 "$source_dir/tests/fuzz/fix_zip_crcs.py" "$source_dir/fixtures/fuzz/torch_save/regression-storage-larger-than-its-record.pt" "$work/storage_past_record.pt"
/usr/bin/python3 "$source_dir/tests/fuzz/fix_zip_crcs.py" "$source_dir/fixtures/fuzz/torchscript/regression-class-constant-crashes-the-compiler.pt" "$work/class_constant.pt"
# A 1.5 KB file whose pickle asks LibTorch for a 4 GiB string (the fifth): the child process that
# loads it first runs out of its memory cap (or, under ASan, which sets no cap, reads past the
# file's end), and the file is refused.
/usr/bin/python3 "$source_dir/tests/fuzz/fix_zip_crcs.py" "$source_dir/fixtures/fuzz/torch_save/regression-length-field-asks-4-gib.pt" "$work/length_asks_4_gib.pt"
# A storage whose zip record is empty (no data at all, and LibTorch's data pointer null): refused.
/usr/bin/python3 "$source_dir/tests/fuzz/fix_zip_crcs.py" "$source_dir/fixtures/fuzz/torch_save/regression-storage-record-empty.pt" "$work/storage_record_empty.pt"
# An archive whose pickle asks for 36 GiB (the sixth): refused the same way.
/usr/bin/python3 "$source_dir/tests/fuzz/fix_zip_crcs.py" "$source_dir/fixtures/fuzz/torchscript/regression-asks-36-gib.pt" "$work/asks_36_gib.pt"
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
  "lstm.pt|zip_directory_past_end.pt|zip_directory_past_end.pt: not a torch.save file LibTorch can read|--name fresh"
  "lstm.pt|sizes_past_storage.pt|sizes_past_storage.pt: a tensor of shape [2, 3, 4, 4] reaches past its storage of 384 bytes|--name fresh"
  "lstm.pt|storage_past_record.pt|storage_past_record.pt: a tensor of shape [1, 3, 4] says its storage holds 48 bytes, but the file gave 24|--name fresh"
  "class_constant.pt|lstm_inputs.pt|class_constant.pt: a zip archive, but not a TorchScript module LibTorch can load|--name fresh"
  "lstm.pt|length_asks_4_gib.pt|length_asks_4_gib.pt: not a torch.save file LibTorch can read|--name fresh"
  "asks_36_gib.pt|lstm_inputs.pt|asks_36_gib.pt: a zip archive, but not a TorchScript module LibTorch can load|--name fresh"
  "lstm.pt|storage_record_empty.pt|storage_record_empty.pt: a tensor of shape [4, 2, 5] says its storage holds 40 bytes, but the file gave none|--name fresh"
  "conv.pt|conv_inputs.pt|conv.fixture.json exists; pass --force|"
  "lstm.pt|lstm_inputs.pt|fixture name 'bad/name': use letters|--name bad/name"
  "lstm.pt|lstm_inputs.pt|engine fbgemm is not in this LibTorch|--engine fbgemm --name other"
  "bn_scale_shape.pt|bn_inputs.pt|BatchNorm2d.scale has shape [1], as PyTorch 1.13's convert leaves it|"
  "embedding_4bit_from_float.pt|embedding_inputs.pt|nnq.Embedding.from_float drops a 4-bit qconfig's dtype|"
)
check_refusals "${cases[@]}"
# The loading child's memory cap (not set under AddressSanitizer, whose allocation limit stops
# these instead): the length field asking 4 GiB is refused as such, not after the child took it.
if [ -z "${ASAN_OPTIONS:-}" ]; then
  check_refusals "lstm.pt|length_asks_4_gib.pt|length_asks_4_gib.pt: not a torch.save file LibTorch can read: loading it asks for more memory than such a file can need|--name fresh"
fi

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
