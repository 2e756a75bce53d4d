#!/usr/bin/env bash
# run.sh BUILD_DIR — `make bench`: times every bench/suite.txt entry with convd,
# PyTorch and oneDNN, then bench/report.py prints the table and writes
# bench/RESULTS.md.
#
# For each entry and thread count the three tools run back to back (their order
# rotating between passes), so machine noise hits all alike; the whole suite is
# run BENCH_PASSES times and the table takes the median of the per-pass medians.
# PyTorch stays one process (--serve) because importing torch takes seconds.
#
# Knobs (environment): BENCH_PASSES (3), BENCH_THREADS ("1 2"), BENCH_MIN_TIME
# (0.2 s of timed runs per measurement, and at least 20 runs), BENCH_SUITE
# (bench/suite.txt), BENCH_RESULTS_MD (bench/RESULTS.md; empty: don't write it),
# BENCH_QUIET_WAIT (up to 120 s waiting for the 1-minute load average to fall
# below 0.5 before starting: other work on the machine skews 2-thread timings most).
set -euo pipefail

build=${1:-build}
cd "$(dirname "$0")/.."
passes=${BENCH_PASSES:-3}
threads_list=${BENCH_THREADS:-1 2}
min_time=${BENCH_MIN_TIME:-0.2}
suite=${BENCH_SUITE:-bench/suite.txt}
results_md=${BENCH_RESULTS_MD-bench/RESULTS.md}
convd=$build/convd
out=$build/bench
results=$out/results.jsonl

[ -x "$convd" ] || { echo "bench: $convd is missing (make BUILD=$build first)" >&2; exit 1; }
# benchmark-only dependencies: never needed to build or test convd
tools/install-deps.sh libdnnl-dev python3-torch
mkdir -p "$out"
if [ ! -x "$out/onednn_bench" ] || [ bench/onednn_bench.c -nt "$out/onednn_bench" ]; then
  gcc -std=c11 -O2 -Wall -Wextra -Werror bench/onednn_bench.c -o "$out/onednn_bench" -ldnnl
fi

# "KIND N,C,H,W OUT K STRIDE PAD DIL GROUPS" -> the layer JSON convd bench takes
# (an optional ninth argument forces convd's algorithm)
layer_json() {
  local kind=$1 shape=$2 o=$3 k=$4 s=$5 p=$6 d=$7 g=$8 algo=${9:-} c extra=""
  c=$(cut -d, -f2 <<<"$shape")
  [ -n "$algo" ] && extra=", \"algorithm\": \"$algo\""
  if [ "$kind" = sep ]; then
    printf '{"type": "SeparableConv2d", "in_channels": %s, "out_channels": %s, "kernel_size": %s, "stride": %s, "padding": %s, "dilation": %s%s}' \
      "$c" "$o" "$k" "$s" "$p" "$d" "$extra"
  else
    printf '{"type": "Conv2d", "in_channels": %s, "out_channels": %s, "kernel_size": %s, "stride": %s, "padding": %s, "dilation": %s, "groups": %s%s}' \
      "$c" "$o" "$k" "$s" "$p" "$d" "$g" "$extra"
  fi
}

# one JSON line into $results, tagged with the pass; errors become lines too,
# so one failing shape leaves the rest of the table intact
record() { # pass tool entry threads json_or_empty error_text
  local line=$5
  if [ -n "$line" ] && [ "${line:0:1}" = "{" ]; then
    printf '{"pass": %d, %s\n' "$1" "${line#\{}" >>"$results"
  else
    local msg=${6//\\/\\\\}
    msg=${msg//\"/\\\"}
    printf '{"pass": %d, "tool": "%s", "entry": "%s", "threads": %d, "error": "%s"}\n' \
      "$1" "$2" "$3" "$4" "$(tr '\n' ' ' <<<"$msg")" >>"$results"
    echo "bench: $2 failed on '$3' with $4 threads: $6" >&2
  fi
}

# convd bench on one layer JSON, recorded as `tool` for the entry
time_convd() { # pass tool entry threads layer_json
  local json err
  if json=$("$convd" bench --layer "$5" --input-shape "$(cut -d' ' -f2 <<<"$3")" \
              --threads "$4" --min-time "$min_time" --json 2>"$out/stderr"); then
    record "$1" "$2" "$3" "$4" "{\"tool\": \"$2\", \"entry\": \"$3\", ${json#\{}" ""
  else
    err=$(cat "$out/stderr")
    record "$1" "$2" "$3" "$4" "" "$err"
  fi
}

run_convd() { # pass entry threads
  # shellcheck disable=SC2086
  time_convd "$1" convd "$2" "$3" "$(layer_json $2)"
  # a separable entry also times its standard layer as a GEMM (im2col), the
  # algorithm whose multiplies the FLOP ratio counts (convd's default there,
  # Winograd, does 4x fewer): the separable table shows both speedups
  if [ "${2%% *}" = sep ]; then
    local f
    read -ra f <<<"$2" # sep N,C,H,W OUT K STRIDE PAD DIL GROUPS
    time_convd "$1" convd_gemm "$2" "$3" "$(layer_json conv "${f[1]}" "${f[2]}" "${f[3]}" "${f[4]}" "${f[5]}" "${f[6]}" 1 im2col)"
  fi
}

run_torch() { # pass entry threads
  local line=""
  if printf '%s %s\n' "$3" "$2" >&"${torch_proc[1]}" && read -r -t 300 line <&"${torch_proc[0]}" \
      && [[ $line != *'"error"'* ]]; then
    record "$1" torch "$2" "$3" "$line" ""
  else
    record "$1" torch "$2" "$3" "" "${line:-torch_bench.py did not answer}"
  fi
}

run_onednn() { # pass entry threads
  local lines err
  if lines=$(OMP_NUM_THREADS=$3 "$out/onednn_bench" --entry "$2" --min-time "$min_time" \
               2>"$out/stderr"); then
    while IFS= read -r l; do record "$1" onednn "$2" "$3" "$l" ""; done <<<"$lines"
  else
    err=$(cat "$out/stderr")
    record "$1" onednn_nchw "$2" "$3" "" "$err"
    record "$1" onednn_blocked "$2" "$3" "" "$err"
  fi
}

mapfile -t entries < <(sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e 's/[[:space:]]\+/ /g' "$suite" | grep -v '^$')
[ ${#entries[@]} -gt 0 ] || { echo "bench: no entries in $suite" >&2; exit 1; }

waited=0
quiet_wait=${BENCH_QUIET_WAIT:-120}
while awk '{exit !($1 >= 0.5)}' /proc/loadavg && [ "$waited" -lt "$quiet_wait" ]; do
  [ "$waited" -eq 0 ] && echo "bench: load average $(cut -d' ' -f1 /proc/loadavg), waiting up to ${quiet_wait} s for a quieter machine" >&2
  sleep 10
  waited=$((waited + 10))
done
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# OpenMP's default spin-waiting (torch, oneDNN) collapses when other processes
# hold the cores: a 2-thread region waits whole scheduler slices (medians of
# 12-70 ms for 0.1 ms layers). On a busy machine the OpenMP tools therefore
# sleep while waiting, as convd's pool (a condition variable) does;
# BENCH_OMP_WAIT_POLICY (active, passive or "default") overrides the choice.
omp_policy=${BENCH_OMP_WAIT_POLICY:-}
if [ -z "$omp_policy" ]; then
  if awk '{exit !($1 >= 0.5)}' /proc/loadavg; then omp_policy=passive; else omp_policy=default; fi
fi
if [ "$omp_policy" = default ]; then unset OMP_WAIT_POLICY; else export OMP_WAIT_POLICY=$omp_policy; fi

coproc torch_proc { exec /usr/bin/python3 bench/torch_bench.py --serve --min-time "$min_time"; }
: >"$results"
started=$(date +%s)
tools=(convd torch onednn)
for ((pass = 1; pass <= passes; pass++)); do
  for e in "${entries[@]}"; do
    for t in $threads_list; do
      for ((i = 0; i < 3; i++)); do
        tool=${tools[(i + pass - 1) % 3]}
        "run_$tool" "$pass" "$e" "$t"
      done
    done
  done
  echo "bench: pass $pass/$passes done after $(($(date +%s) - started)) s" >&2
done
# end of input stops torch_bench.py
eval "exec ${torch_proc[1]}>&-"
wait "$torch_proc_PID" 2>/dev/null || true

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
args=(--results "$results" --suite "$suite" --convd-version "$("$convd" --version)"
      --machine "${cpu:-unknown CPU}, $(nproc) cores" --seconds "$(($(date +%s) - started))" --load "$load_before" "$load_after" --omp-wait-policy "$omp_policy"
      --command "make bench BUILD=$build  (bench/run.sh $build; passes $passes, threads $threads_list, each measurement >= ${min_time} s and >= 20 runs)")
[ -n "$results_md" ] && args+=(--markdown "$results_md")
/usr/bin/python3 bench/report.py "${args[@]}"
