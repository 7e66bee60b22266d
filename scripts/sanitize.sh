#!/usr/bin/env bash
# The sanitizer stages of CI (.ci/run), also run by hand:
#   bash scripts/sanitize.sh asan   AddressSanitizer + UBSan (build/asan): the parser fuzz
#                                   harnesses (ctest label fuzz), the model tests (label model,
#                                   without the llama.node oracle), server_unit_test and the
#                                   server's hostile-input battery
#   bash scripts/sanitize.sh tsan   ThreadSanitizer (build/tsan): the thread pool, server_unit_test (scheduler
#                                   with concurrent submitters) and the server load test
# Builds only the targets those tests need (tests/CMakeLists.txt: sanitize_asan, sanitize_tsan).
# Any sanitizer report fails the stage: ASan/UBSan/TSan abort the process with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."
stage="${1:?usage: sanitize.sh asan|tsan}"
jobs="$(nproc)"
export MOE_SANITIZER="$stage"  # tests that measure RSS skip that bound (tests/server/hostile_test.mjs)
start=$SECONDS
case "$stage" in
  asan)
    export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    selections=("-L fuzz" "-R ^JinjaLimits" "-L model -E llama_node_oracle" "-L server -E ^server_(openai|load|sse_curl)_test$|^server_throughput_bench$")
    ;;
  tsan)
    # second_deadlock_stack: both stacks of a lock-order inversion; halt on the first report.
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:exitcode=66"
    selections=("-R ^ThreadPool" "-L server -E ^server_(openai|bad_input|hostile|sse_curl)_test$|^server_throughput_bench$")
    ;;
  *) echo "sanitize.sh: unknown stage '$stage' (asan or tsan)" >&2; exit 2 ;;
esac
echo "sanitize[$stage]: configuring and building (target sanitize_$stage)"
cmake --preset "$stage" >/dev/null
cmake --build --preset "$stage" -j"$jobs" --target "sanitize_$stage"
build_s=$((SECONDS - start))
status=0
i=0
for sel in "${selections[@]}"; do
  i=$((i + 1))
  junit="$PWD/build/$stage/ctest-junit-$i.xml"
  # shellcheck disable=SC2086  # $sel holds ctest options
  ctest --preset "$stage" $sel -j"$jobs" --timeout 1800 --no-tests=error --output-junit "$junit" || status=1
  python3 scripts/test_summary.py "$junit" "$stage: $sel" || status=1
done
echo "sanitize[$stage]: build ${build_s} s, tests $((SECONDS - start - build_s)) s, $([ $status = 0 ] && echo passed || echo FAILED)"
exit $status
