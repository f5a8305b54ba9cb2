#!/usr/bin/env bash
# The demo of SSMKit, on built-in defaults: installs what is missing, builds the `ssm` tool,
# checks it against the official PyTorch code on the fixtures in Tests/Fixtures, cross-checks
# convolution mode against recurrent mode, benchmarks the FFT convolution against the FFTW
# bound, times kernel generation and the selective scan at Mamba-130m's shape against its
# exponentials, trains S4D on the 8×8 digits and Mamba on selective copying, streams a long
# convolution, and shows that bad input is refused.
#
#     bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --numpy
swift build -c release --product ssm
ssm=.build/release/ssm
"$ssm" --version

echo
echo "== 1. Cross-check: ssm eval against tensors computed by the official PyTorch code (Tests/Fixtures)"
"$ssm" verify --fixtures Tests/Fixtures

echo
echo "== 2. Cross-check: convolution mode against recurrent mode (float64, then float32)"
"$ssm" crosscheck --model s4d --length 16384
"$ssm" crosscheck --model s4 --step-mode linear --length 16384
"$ssm" crosscheck --model s4 --step-mode linear --length 16384 --precision float32

echo
echo "== 3. Benchmark: FFT convolution against the FFTW bound (same transforms, same plans)"
echo "   H = 256 channels, float32; ratio = SSMKit time / FFTW-alone time, measured in one run"
"$ssm" bench conv --batch 1,4 --channels 256 --length 2^12...2^16 --repeats 7
"$ssm" bench conv --batch 1 --channels 256 --length 2^14 --repeats 5 --backward

echo
echo "== 4. Benchmark: kernel generation (S4D Vandermonde, S4 Cauchy + Woodbury; N = 64, float32)"
"$ssm" bench kernel --model s4d --channels 256 --state 64 --length 2^10,2^14 --repeats 5
"$ssm" bench kernel --model s4 --channels 256 --state 64 --length 2^10 --repeats 5

echo "   recurrent mode: the step engine, one token at a time (S4D; S4 in linear mode), N = 64"
"$ssm" bench step --model s4d --channels 256 --batch 1,16 --repeats 3
"$ssm" bench step --model s4 --step-mode linear --channels 256 --batch 1 --repeats 3

echo
echo "== 5. Benchmark: the selective scan (S6) at Mamba-130m's shape (D = 1536, N = 16, float32)"
echo "   bound = the scan's B·D·L·N exponentials alone, same exponential and threads, same run"
"$ssm" bench scan --batch 1 --channels 1536 --length 512,2048 --repeats 5
"$ssm" bench scan --batch 1 --channels 1536 --length 2048 --repeats 3 --backward

echo
echo "== 6. Training (convolution mode; validation accuracy in convolution and recurrent mode)"
echo "   digits with its defaults (S4D, 4 layers, width 64, 600 steps):"
"$ssm" train --task digits --json | tail -1
echo "   selective copying, Mamba, shortened to 400 of its 2000 default steps:"
"$ssm" train --task selective-copying --model mamba --steps 400 --json | tail -1
echo "   one training step of a 4-layer S4D model (width 128, N = 64, L = 1024, batch 16):"
"$ssm" bench train --model s4d --layers 4 --channels 128 --state 64 --length 1024 --batch 16 --repeats 3

echo
echo "== 7. Streaming convolution of .npy files (L = 2^22, a 2^16-tap kernel) against in-memory"
tmpconv=$(mktemp -d)
trap 'rm -rf "$tmpconv"' EXIT
python3 -c "
import numpy as np
r = np.random.default_rng(0)
np.save('$tmpconv/u.npy', r.standard_normal(2**22).astype(np.float32))
np.save('$tmpconv/k.npy', (r.standard_normal(2**16) * np.exp(-np.arange(2**16) / 4096) / 64).astype(np.float32))"
"$ssm" conv --input "$tmpconv/u.npy" --kernel "$tmpconv/k.npy" --output "$tmpconv/ys.npy"
"$ssm" conv --input "$tmpconv/u.npy" --kernel "$tmpconv/k.npy" --output "$tmpconv/ym.npy" --in-memory
python3 -c "
import numpy as np
a, b = np.load('$tmpconv/ys.npy').astype(np.float64), np.load('$tmpconv/ym.npy').astype(np.float64)
print('streamed vs in-memory, relative:', abs(a - b).max() / abs(b).max())"
rm -rf "$tmpconv"

echo
echo "== 8. A pretrained model: a tiny MambaForCausalLM made with transformers (Tests/Fixtures/pretrained)"
"$ssm" generate --model Tests/Fixtures/pretrained/tiny-mamba --prompt "The quick fox sees the old river and then" --max-new-tokens 24
echo "(transformers' greedy continuation: $(python3 -c "import json; print(repr(json.load(open('Tests/Fixtures/pretrained/tiny_mamba_expected.json'))['greedy_text']))" 2>/dev/null || echo 'see Tests/Fixtures/pretrained/tiny_mamba_expected.json'))"

echo
echo "== 9. Bad input is refused with one line and a non-zero status"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$tmpconv"' EXIT
printf 'not a safetensors file' > "$tmp/bad.safetensors"
status=0
"$ssm" eval fftconv --input "$tmp/bad.safetensors" --output "$tmp/out.safetensors" || status=$?
[ "$status" -ne 0 ] || { echo "unexpected success" >&2; exit 1; }
[ ! -e "$tmp/out.safetensors" ] || { echo "an output was written" >&2; exit 1; }
echo "(exit status $status; no output written)"
