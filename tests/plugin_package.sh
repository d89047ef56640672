#!/bin/bash
# The installed package (issue 29): `cmake --install` this build into a fresh prefix, then
# configure, build and test examples/xnnpack_engine against it as an outside project does
# (find_package(qconform)); its report must show the xnnpack columns. Also checks that the
# installed CMake files name no path of this build tree.
# usage: plugin_package.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "cmake --install"; }
if grep -rl -- "$build" "$work/prefix/lib/cmake/qconform" >/dev/null 2>&1; then
  grep -rn -- "$build" "$work/prefix/lib/cmake/qconform" | head -3
  fail "the installed CMake files name the build tree"
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$source_dir/examples/xnnpack_engine" -B "$work/example" "${generator[@]}" \
      -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; fail "configure the example"; }
cmake --build "$work/example" >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; fail "build the example"; }
(cd "$work/example" && ctest --output-on-failure) || fail "the example's ctest"
report="$work/example/conformance/report.html"
[ -f "$report" ] || fail "no report at $report"
grep -q "xnnpack vs libtorch\[qnnpack\]" "$report" || fail "the report has no xnnpack column"
echo "plugin_package: installed, the example built against it, its tests pass, its report shows xnnpack"
