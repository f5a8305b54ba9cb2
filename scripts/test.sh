#!/usr/bin/env bash
# Runs SSMKit's tests: installs what is missing, then builds and runs every test target in
# release mode (the numeric references are loops that a debug build runs 10-100x slower;
# -enable-testing keeps @testable imports working). The CLI tests run the built `ssm` on the
# PyTorch fixtures in ../shared/reference (or $SSMKIT_REFERENCE_DIR).
#
#     bash scripts/test.sh                # everything
#     bash scripts/test.sh --filter FFT   # extra arguments go to `swift test`
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release -Xswiftc -enable-testing --build-tests
swift test -c release -Xswiftc -enable-testing --skip-build "$@"
