#!/usr/bin/env bash
# Builds every libFuzzer harness tests/fuzz/fuzz_<parser>.c with
# clang -fsanitize=fuzzer,address,undefined against the proto/core sources
# (and server/router.c), then runs each for FUZZ_SECONDS, FUZZ_JOBS at a time.
# Each run starts from the committed seeds tests/fuzz/corpus/<parser>/ plus
# what earlier runs found (kept in $FUZZ_BUILD/corpus/<parser>, never in the
# tree); crashes land in $FUZZ_BUILD/artifacts/<parser>/ and fail the script.
#   FUZZ_SECONDS (60)  FUZZ_JOBS (2)  FUZZ_TARGETS ("" = all: e.g. "npy router")
#   FUZZ_BUILD (build-fuzz)  FUZZ_RSS_MB (2048)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}
build=${FUZZ_BUILD:-build-fuzz}
rss_mb=${FUZZ_RSS_MB:-2048}
CLANG=${CLANG:-clang}
command -v "$CLANG" >/dev/null || { echo "fuzz: $CLANG not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }

pkgs="jansson openblas zlib"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
cflags="-std=c11 -O1 -g -fno-omit-frame-pointer -I. -D_GNU_SOURCE $(pkg-config --cflags $pkgs) $san"
libs="$(pkg-config --libs $pkgs) -lm -lpthread"

# ---- the library under test, instrumented for coverage (fuzzer-no-link)
mkdir -p "$build/obj"
objs=()
build_obj() { # src
  local src=$1 obj="$build/obj/${1%.c}.o" extra=""
  case "$src" in *_avx2.c) extra="-mavx2 -mfma" ;; *_avx512.c) extra="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma" ;; esac
  mkdir -p "$(dirname "$obj")"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ core/conv.h -nt "$obj" ]; then
    case "$src" in
      core/kernels/*)
        # The compute kernels are never fed by a parser (the harnesses only
        # link them) and clang with ASan spends many minutes on the big
        # unrolled AVX2 ones; some use GCC vector builtins clang lacks:
        # built uninstrumented with the project's compiler.
        ${CC:-gcc} -std=c11 -O2 -I. -D_GNU_SOURCE $extra -c "$src" -o "$obj" ;;
      *)
        # shellcheck disable=SC2086
        "$CLANG" $cflags $extra -fsanitize=fuzzer-no-link -c "$src" -o "$obj" ;;
    esac
  fi
  objs+=("$obj")
}
for src in core/*.c core/kernels/*.c proto/*.c server/router.c; do build_obj "$src"; done
rm -f "$build/libfuzzed.a"
ar rcs "$build/libfuzzed.a" "${objs[@]}"

harnesses=()
for h in tests/fuzz/fuzz_*.c; do
  name=$(basename "$h" .c); name=${name#fuzz_}
  if [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" $name "* ]]; then continue; fi
  # shellcheck disable=SC2086
  "$CLANG" $cflags -fsanitize=fuzzer "$h" "$build/libfuzzed.a" $libs -o "$build/fuzz_$name"
  harnesses+=("$name")
done
[ "${FUZZ_BUILD_ONLY:-0}" = 1 ] && { echo "fuzz: built ${harnesses[*]}"; exit 0; }

run_one() { # name
  local name=$1 work="$build/corpus/$1" art="$build/artifacts/$1/"
  mkdir -p "$work" "$art"
  local dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
  local rc=0
  "$build/fuzz_$name" "$work" "tests/fuzz/corpus/$name" "${dict[@]}" -max_total_time="$seconds" \
    -rss_limit_mb="$rss_mb" -timeout=10 -max_len=65536 -print_final_stats=1 -artifact_prefix="$art" \
    > "$build/fuzz_$name.log" 2>&1 || rc=$?
  # the last status line (execs, cov, ft, corpus) and the final stats
  local last execs
  last=$(grep -E '^#[0-9]+' "$build/fuzz_$name.log" | tail -1 || true)
  execs=$(grep -E '^stat::number_of_executed_units' "$build/fuzz_$name.log" | awk '{print $2}' || true)
  if [ $rc -eq 0 ]; then
    echo "fuzz $name: ok, ${execs:-?} execs in ${seconds}s; $last"
  else
    echo "fuzz $name: FAILED (exit $rc), see $build/fuzz_$name.log and $art"
    grep -E 'ERROR|SUMMARY|Test unit written' "$build/fuzz_$name.log" | head -5
  fi
  return $rc
}
export -f run_one
export build seconds rss_mb
printf '%s\n' "${harnesses[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'
