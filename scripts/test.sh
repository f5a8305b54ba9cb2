#!/usr/bin/env bash
# Runs SSMKit's tests: installs what is missing, then builds and runs every test target in
# release mode (the numeric references are loops that a debug build runs 10-100x slower;
# -enable-testing keeps @testable imports working). The CLI tests run the built `ssm` on the
# PyTorch fixtures in Tests/Fixtures. Before the tests, builds and runs the client package
# Examples/Digits, which depends on SSMKit by path and trains by `import` as the README shows.
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
fi
swift test -c release -Xswiftc -enable-testing --skip-build "$@"
