#!/usr/bin/env bash
# Opens the main job's HTML report in headless Chromium (Debian's chromium, installed by
# scripts/setup --with-browser), fails on any console message, and keeps a screenshot:
# OUT/report.png is the CI artifact. A control page with a deliberate script error must be
# caught first, so that a silent browser cannot pass the test.
# Usage: report_browser.sh QCONFORM OUT
set -euo pipefail
qconform=$1
out=$2
rm -rf "$out" && mkdir -p "$out"
if ! command -v chromium > /dev/null; then
  echo "chromium is not installed: run scripts/setup --with-browser" >&2
  exit 1
fi

browser() {  # browser PAGE SCREENSHOT -> Chromium's log on stdout
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$out/profile" --enable-logging=stderr --v=0 --window-size=1400,2400 \
    --screenshot="$2" "file://$1" 2>&1 || true
}

echo '<html><body><script>undefined_function();</script></body></html>' > "$out/control.html"
if ! browser "$out/control.html" "$out/control.png" | grep -q 'CONSOLE.*Uncaught ReferenceError'; then
  echo "the console-error check does not work: Chromium reported nothing for a broken page" >&2
  exit 1
fi

"$qconform" conform --out "$out/run" --seed 13 > "$out/conform.log"
log=$(browser "$out/run/report.html" "$out/report.png")
if grep 'CONSOLE' <<< "$log"; then
  echo "the report logged to the console (above)" >&2
  exit 1
fi
test -s "$out/report.png" || { echo "no screenshot was written" >&2; exit 1; }

# The page records how long it took to load; it must stay under a second.
dom=$(timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$out/profile" --dump-dom "file://$out/run/report.html" 2>/dev/null || true)
loaded_ms=$(grep -o 'data-loaded-ms="[0-9]*"' <<< "$dom" | grep -o '[0-9]*' || true)
if [[ -z "$loaded_ms" ]]; then echo "the report did not record its load time" >&2; exit 1; fi
if (( loaded_ms >= 1000 )); then echo "the report took ${loaded_ms} ms to load (budget: 1000)" >&2; exit 1; fi
echo "report loaded in ${loaded_ms} ms" 
echo "report opened without console messages; screenshot: $out/report.png ($(stat -c %s "$out/report.png") bytes)"
