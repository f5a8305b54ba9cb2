#!/usr/bin/env bash
# Runs SSMKit's tests: installs what is missing, then builds and runs every test target in
# release mode (the numeric references are loops that a debug build runs 10-100x slower;
# -enable-testing keeps @testable imports working). The CLI tests run the built `ssm` on the
# PyTorch fixtures in Tests/Fixtures. Before the tests, builds and runs the client package
# Examples/Digits, which depends on SSMKit by path and trains by `import` as the README shows,
# and checks that the DocC catalogs build with no warning; after them, trains over MPI across
# two network namespaces (scripts/mpi_two_hosts.sh; skipped with a message without root).
#
#     bash scripts/test.sh                # everything
#     bash scripts/test.sh --filter FFT   # extra arguments go to `swift test` (no example run)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release -Xswiftc -enable-testing --build-tests
if [ $# -eq 0 ]; then
  echo "== Examples/Digits: a client package that depends on SSMKit (swift run -c release)"
  (cd Examples/Digits && swift run -c release Digits)
  echo
  echo "== DocC: the SSMKit, SSMTraining and SSMLanguage catalogs build with no warning"
  docs_log=$(mktemp)
  swift package generate-documentation --target SSMKit --target SSMTraining --target SSMLanguage >"$docs_log" 2>&1 \
    || { cat "$docs_log"; echo "test.sh: the documentation does not build" >&2; exit 1; }
  if grep -q "warning:" "$docs_log"; then
    grep -A3 "warning:" "$docs_log"; echo "test.sh: the documentation builds with warnings" >&2; exit 1
  fi
  rm -f "$docs_log"
  echo "documentation: built, no warnings"
  echo
fi
swift test -c release -Xswiftc -enable-testing --skip-build "$@"
if [ $# -eq 0 ]; then
  echo
  echo "== Data-parallel training across two network namespaces (OpenMPI over TCP)"
  bash scripts/mpi_two_hosts.sh .build/release/ssm | grep -v "steps ·"
fi
