#!/usr/bin/env bash
# Fuzzes one of SSMKit's readers with libFuzzer and AddressSanitizer for a given time.
#
#     bash scripts/fuzz.sh TARGET SECONDS [libFuzzer options…]
#     TARGET: safetensors | npy | json | config | tokenizer | checkpoint
#
# Builds Sources/SSMFuzz with -sanitize=fuzzer,address (into .build-fuzz), seeds the corpus
# .fuzz/corpus/TARGET from the test fixtures on first use, and runs libFuzzer on it with a
# malloc limit (an allocation of more than 64 MB from an input of at most 1 MB is a finding: a
# reader must not allocate what the file's size does not justify). Findings (crashes, leaks,
# timeouts, over-large allocations) go to .fuzz/findings/TARGET/; `.build/release/SSMFuzz TARGET
# FILE` replays one through a normal build. A fixed finding becomes a regression test of its reader.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS}
shift 2
case "$target" in safetensors|npy|json|config|tokenizer|checkpoint) ;; *) echo "fuzz: unknown target $target" >&2; exit 64 ;; esac
bash scripts/setup.sh
swift build -c release --scratch-path .build-fuzz --product SSMFuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -parse-as-library

corpus=.fuzz/corpus/$target findings=.fuzz/findings/$target
mkdir -p "$corpus" "$findings"
if [ -z "$(ls -A "$corpus")" ]; then
  case "$target" in
    safetensors|checkpoint) find Tests/Fixtures -name '*.safetensors' -size -256k -exec cp {} "$corpus"/ \; ;;
    npy) python3 - "$corpus" <<'PY' || printf '\x93NUMPY\x01\x00v\x00{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (2, 3), }\n' > "$corpus/seed.npy"
import sys, numpy as np
np.save(sys.argv[1] + "/a.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
np.save(sys.argv[1] + "/b.npy", np.linspace(0, 1, 17))
PY
    ;;
    json|config) find Tests/Fixtures -name 'config.json' -exec sh -c 'cp "$1" "$2/$(echo "$1" | tr / _)"' _ {} "$corpus" \;
                 [ "$target" = json ] && cp Tests/Fixtures/cases.json "$corpus"/ ;;
    tokenizer) cp Tests/Fixtures/pretrained/tokenizer/tokenizer.json "$corpus"/ ;;
  esac
  [ "$target" = checkpoint ] && find Tests/Fixtures/checkpoints -name '*.safetensors' -exec sh -c 'cp "$1" "$2/$(echo "$1" | tr / _)"' _ {} "$corpus" \;
fi
echo "fuzz: $target for $seconds s, corpus $corpus ($(ls "$corpus" | wc -l) files)"
SSM_FUZZ_TARGET=$target ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}" \
  .build-fuzz/release/SSMFuzz "$corpus" -max_total_time="$seconds" -max_len=1048576 -malloc_limit_mb=64 -rss_limit_mb=2048 \
  -timeout=10 -artifact_prefix="$findings/" -print_final_stats=1 "$@"
