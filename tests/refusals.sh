# Sourced by tests/fixture_cli.sh and tests/model_cli.sh: every refused `fixture add` exits 2
# with its message and leaves the store byte-for-byte as it was.
# check_refusals ROW...: each row "module|inputs|expected message|extra options", files under
# $work, the store $store, the tool $tool; failures through the caller's fail().
snapshot() { (cd "$store" && find . -print0 | sort -z | xargs -0 sha256sum 2>/dev/null; ls -A); }
check_refusals() {
  local before row module inputs message extra out status
  before=$(snapshot)
  for row in "$@"; do
    IFS='|' read -r module inputs message extra <<<"$row"
    # shellcheck disable=SC2086  # extra options are several words
    out=$("$tool" fixture add "$work/$module" --inputs "$work/$inputs" --store "$store" $extra --engine qnnpack 2>&1)
    status=$?
    [ "$status" -eq 2 ] || fail "$module + $inputs: exit status $status, expected 2 ($out)"
    grep -qF -- "$message" <<<"$out" || fail "$module + $inputs: message '$out' lacks '$message'"
    [ "$(snapshot)" == "$before" ] || fail "$module + $inputs changed the store"
    echo "refused as expected ($status): $out"
  done
}
