#!/usr/bin/env bash
# Runs the whole test suite under a sanitizer: AddressSanitizer (heap and stack overflows,
# use after free, leaks) or ThreadSanitizer (data races: the worker pool, the plan cache,
# concurrent instances). Each builds into its own scratch folder (.build-asan, .build-tsan),
# release mode with -enable-testing as scripts/test.sh. The CLI tests run the instrumented `ssm`.
#
#     bash scripts/sanitize.sh address  [--filter X]
#     bash scripts/sanitize.sh thread   [--filter X]
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: scripts/sanitize.sh address|thread [swift test arguments]}
shift
case "$kind" in
  address) scratch=.build-asan
           # Leaks are reported at exit of each process; allocations the runtime keeps for the
           # life of the process (type metadata, FFTW's planner) are suppressed by the list.
           export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:${ASAN_OPTIONS:-}"
           export LSAN_OPTIONS="suppressions=$PWD/scripts/sanitize-leaks.supp:print_suppressions=0:${LSAN_OPTIONS:-}" ;;
  thread)  scratch=.build-tsan
           export TSAN_OPTIONS="halt_on_error=1:${TSAN_OPTIONS:-}" ;;
  *) echo "sanitize: expected address or thread, got $kind" >&2; exit 64 ;;
esac
bash scripts/setup.sh
swift build -c release --sanitize="$kind" --scratch-path "$scratch" -Xswiftc -enable-testing --build-tests
swift test -c release --sanitize="$kind" --scratch-path "$scratch" -Xswiftc -enable-testing --skip-build "$@"
