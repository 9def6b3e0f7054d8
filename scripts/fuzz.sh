#!/usr/bin/env bash
# fuzz.sh: builds every fuzz/fuzz_*.c target with clang + libFuzzer into
# build-fuzz and runs each for FUZZ_SECONDS (default 30) over a temporary copy
# of its seed corpus fuzz/corpus/<name without fuzz_>/, so the repository's
# corpus is never modified. Exits non-zero if a build fails or any target
# finds a crash, leak, timeout or out-of-memory; the input that did it is kept
# in build-fuzz/artifacts/<target>/.
#
#     scripts/fuzz.sh                      # all targets, 30 s each
#     FUZZ_SECONDS=120 scripts/fuzz.sh fuzz_config fuzz_index
#
# FUZZ_CMAKE_ARGS adds configure options (e.g. -DUP_WITH_DNNL=OFF);
# FUZZ_ARGS adds libFuzzer options (e.g. -max_len=65536).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-fuzz"
seconds=${FUZZ_SECONDS:-30}
# the fuzz build does not pass -fno-sanitize-recover: make UBSan findings fatal
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
mkdir -p "$build"

# shellcheck disable=SC2086
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DUP_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo ${FUZZ_CMAKE_ARGS:-} >"$build/configure.log" 2>&1 ||
    { cat "$build/configure.log"; echo "fuzz: configure failed" >&2; exit 1; }

targets=()
if [ $# -gt 0 ]; then
    targets=("$@")
else
    for src in "$root"/fuzz/fuzz_*.c; do
        [ -e "$src" ] && targets+=("$(basename "$src" .c)")
    done
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no fuzz/fuzz_*.c targets" >&2; exit 1; }

make -C "$build" -j"$(nproc)" "${targets[@]}" >"$build/build.log" 2>&1 ||
    { tail -50 "$build/build.log"; echo "fuzz: build failed (log: $build/build.log)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
summary=()
for t in "${targets[@]}"; do
    corpus_src="$root/fuzz/corpus/${t#fuzz_}"
    corpus="$tmp/$t/corpus"
    artifacts="$build/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    seeds=0
    if [ -d "$corpus_src" ]; then
        cp -r "$corpus_src/." "$corpus/"
        seeds=$(find "$corpus" -type f | wc -l)
    fi
    log="$build/$t.log"
    rc=0
    # shellcheck disable=SC2086
    "$build/$t" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1 || rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || true)
    final=$(find "$corpus" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then
        line="$t: ok, ${execs:-?} execs in ${seconds} s, cov ${cov:-?}, corpus $seeds -> $final"
    else
        failed=1
        crash=$(grep -o "Test unit written to .*" "$log" | head -1 | sed 's/Test unit written to //' || true)
        what=$(grep -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)[^ ]*: [a-z-]+|SUMMARY: [^(]*|runtime error: .*' "$log" | head -1 || true)
        line="$t: FAILED (exit $rc) after ${execs:-?} execs: ${what:-see log}; input ${crash:-?}; log $log"
    fi
    summary+=("$line")
    echo "$line"
done

echo "---"
printf '%s\n' "${summary[@]}"
exit "$failed"
