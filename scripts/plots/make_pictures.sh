#!/usr/bin/env bash
# Regenerates the DocC pictures in Sources/SSMKit/SSMKit.docc/Resources/ from `ssm` output:
#
#   kernels-hippo.png     scripts/plots/kernels.py      `ssm eval hippo`, `s4-kernel`, `s4d-kernel`
#   crosscheck-error.png  scripts/plots/crosscheck.py   `ssm eval s4d-recurrent`, `s4-recurrent`, `fftconv`, ...
#   throughput.png        scripts/plots/throughput.py   `ssm bench conv --json` and torch.fft
#                                                       (scripts/peers/fftconv_bench.py), alternately per L
#
#   bash scripts/plots/make_pictures.sh [SSM_BINARY]
#
# SSM_BINARY defaults to .build/release/ssm, built with `swift build -c release --product ssm` when
# missing. The venvs come from scripts/plots/setup.sh (numpy, matplotlib) and, for throughput.png,
# scripts/peers/setup.sh venv (torch: a large download the first time). Environment:
#   PICTURES   which pictures to make (default: "kernels crosscheck throughput")
#   LENGTHS    throughput.png's lengths (default: 2^10...2^20; about 5 minutes on 2 cores)
#   REPEATS    throughput.png's timed calls per row (default: auto, see throughput.py)
# The throughput rows are kept in .build/plots/throughput.jsonl and FFTW's plans in
# .build/plots/fftw-wisdom (`ssm bench conv --wisdom`); to redraw the figure from the rows
# without measuring again:
#   .build/plots-venv/bin/python scripts/plots/throughput.py --replot .build/plots/throughput.jsonl \
#       -o Sources/SSMKit/SSMKit.docc/Resources/throughput.png
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ beside the scripts

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/scripts/plots"
OUT="$ROOT/Sources/SSMKit/SSMKit.docc/Resources"
PICTURES="${PICTURES:-kernels crosscheck throughput}"

if [ $# -ge 1 ]; then
    SSM="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
    [ -x "$SSM" ] || { echo "make_pictures.sh: $1 is not an executable" >&2; exit 1; }
else
    SSM="$ROOT/.build/release/ssm"
    if [ ! -x "$SSM" ]; then
        echo "== building $SSM" >&2
        (cd "$ROOT" && swift build -c release --product ssm)
    fi
fi

PY="$(bash "$HERE/setup.sh" | tail -n 1)"
mkdir -p "$OUT" "$ROOT/.build/plots"
echo "== ssm: $SSM" >&2
echo "== CPU: $(LC_ALL=C lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)" >&2

for picture in $PICTURES; do
    case "$picture" in
        kernels)
            "$PY" "$HERE/kernels.py" --ssm "$SSM" -o "$OUT/kernels-hippo.png" ;;
        crosscheck)
            "$PY" "$HERE/crosscheck.py" --ssm "$SSM" -o "$OUT/crosscheck-error.png" ;;
        throughput)
            TORCH_PY="$(bash "$ROOT/scripts/peers/setup.sh" venv | tail -n 1)"
            "$PY" "$HERE/throughput.py" --ssm "$SSM" --torch-python "$TORCH_PY" \
                --lengths "${LENGTHS:-2^10...2^20}" --repeats "${REPEATS:-auto}" \
                --rows "$ROOT/.build/plots/throughput.jsonl" --wisdom "$ROOT/.build/plots/fftw-wisdom" \
                -o "$OUT/throughput.png" ;;
        *)
            echo "make_pictures.sh: unknown picture '$picture' (kernels, crosscheck, throughput)" >&2
            exit 2 ;;
    esac
done
