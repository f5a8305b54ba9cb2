#!/usr/bin/env bash
# Compares Debian's BLAS libraries on SSMKit's training-step GEMM shapes, on this machine, with
# no BLAS environment variable set.
#
#   scripts/gemm/bench.sh [--no-install]      (env: ROUNDS=5, MIN_TIME=0.2 seconds per shape)
#
# Installs the candidate runtime packages through apt-get when their libraries are missing (as
# root; otherwise they are skipped), compiles gemm_bench.c with cc, and runs every library on the
# same shapes INTERLEAVED: round 1 runs library A, B, C, ..., round 2 again, and so on (each
# round starting one place further along the list), each run a fresh process with an empty
# environment. The table reports, per library, thread count and shape, the median GFLOP/s over
# the rounds and the ratio to the best library at that shape and thread count. Because the
# libraries alternate within one run, the ratios stay fair even when something else (a build)
# is loading the machine; the absolute numbers do not.
#
# Each library is dlopen'ed by its full path: the system's libblas.so.3 / liblapack.so.3
# alternatives are not changed. (The runtime packages register alternatives, but at lower
# priority than OpenBLAS pthread, so an alternatives group in auto mode keeps OpenBLAS.)
#
# One row is a simulation, labelled so: OpenBLAS with OPENBLAS_CORETYPE=Prescott, the SSE3
# kernels OpenBLAS 0.3.21 falls back to on an Intel CPU whose model number it mishandles. It is
# the only run that sets a variable. Prescott is safe on any x86-64; never force an AVX-512 core
# type here, a CPU without the instructions dies of SIGILL.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
rounds=${ROUNDS:-5}
min_time=${MIN_TIME:-0.2}
install=1
for arg in "$@"; do
    case $arg in
        --no-install) install=0 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || cc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
libdir=/usr/lib/$multiarch

# name | variant | library below $libdir | Debian package | thread counts | extra environment
candidates=(
    "openblas|pthread|openblas-pthread/libopenblas.so.0|libopenblas0-pthread|1 2|"
    "openblas|openmp|openblas-openmp/libopenblas.so.0|libopenblas0-openmp|1 2|"
    "openblas|serial|openblas-serial/libopenblas.so.0|libopenblas0-serial|1|"
    "blis|pthread|blis-pthread/libblis.so.4|libblis4-pthread|1 2|"
    "blis|openmp|blis-openmp/libblis.so.4|libblis4-openmp|1 2|"
    "blis|serial|blis-serial/libblis.so.4|libblis4-serial|1|"
    "atlas|serial|atlas/libblas.so.3|libatlas3-base|1|"
    "netlib|reference|blas/libblas.so.3|libblas3|1|"
    "openblas|pthread, SIMULATED Prescott fallback|openblas-pthread/libopenblas.so.0|libopenblas0-pthread|1 2|OPENBLAS_CORETYPE=Prescott"
)

# --- install what is missing ---------------------------------------------------------------
missing=()
for c in "${candidates[@]}"; do
    IFS='|' read -r _ _ rel pkg _ _ <<<"$c"
    [[ -e $libdir/$rel ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if ((install)) && [[ $(id -u) == 0 ]]; then
        echo "Installing: ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
            || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; } \
            || echo "bench.sh: apt-get failed; the missing libraries are skipped" >&2
    else
        echo "bench.sh: not installing ${missing[*]} (not root or --no-install); skipped" >&2
    fi
fi

# --- build ----------------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/ssmkit-gemm.XXXXXX")
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/gemm_bench" "$here/gemm_bench.c" -ldl -lm

# A run: an empty environment (no OPENBLAS_*, OMP_*, BLIS_* variable), plus the candidate's extra.
run() { # extra-env args...
    local extra=$1; shift
    # shellcheck disable=SC2086
    env -i PATH=/usr/bin:/bin $extra timeout 300 "$work/gemm_bench" "$@"
}

# --- what the machine and the libraries are ---------------------------------------------------
echo "# GEMM benchmark: SSMKit training-step shapes"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); rounds: $rounds; min time per shape and run: ${min_time}s"
lscpu | awk -F: '/^(Model name|Vendor ID|CPU family|Model|CPU\(s\)|Hypervisor vendor)/ { gsub(/^ +/, "", $2); printf "- %s: %s\n", $1, $2 }'
echo "- SIMD flags: $(grep -m1 -o -w -E 'avx2|fma|avx512f|avx512bw|avx512vl|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Packages:"
echo
for c in "${candidates[@]}"; do IFS='|' read -r _ _ _ pkg _ _ <<<"$c"; echo "$pkg"; done | sort -u | while read -r pkg; do
    v=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || echo "not installed")
    echo "- $pkg $v"
done
echo
echo "What each library reports (no environment variable set unless stated):"
echo
echo '```'
for c in "${candidates[@]}"; do
    IFS='|' read -r name variant rel _ _ extra <<<"$c"
    [[ -e $libdir/$rel ]] || continue
    echo "[$name $variant]${extra:+ with $extra}"
    run "$extra" --info "$libdir/$rel" | grep -v '^library:' || true
done
echo '```'
echo

# --- the interleaved runs ---------------------------------------------------------------------
# One entry per (candidate, thread count).
configs=()
for i in "${!candidates[@]}"; do
    IFS='|' read -r _ _ rel _ threads _ <<<"${candidates[$i]}"
    [[ -e $libdir/$rel ]] || continue
    for t in $threads; do configs+=("$i|$t"); done
done
n=${#configs[@]}
raw=$work/raw.tsv
: >"$raw"
for ((r = 0; r < rounds; r++)); do
    for ((j = 0; j < n; j++)); do
        IFS='|' read -r i t <<<"${configs[$(((j + r) % n))]}"
        IFS='|' read -r name variant rel _ _ extra <<<"${candidates[$i]}"
        out=$(run "$extra" "$libdir/$rel" "$t" "$min_time") || {
            rc=$?
            ((rc == 3)) && continue # no way to set the thread count: noted in the table's absence
            echo "bench.sh: $name $variant threads=$t failed (exit $rc)" >&2
            continue
        }
        # RESULT <shape> <gflops> <maxrelerr> <reps>
        awk -F'\t' -v ci="$i" -v n="$name" -v v="$variant" -v t="$t" -v r="$r" \
            '$1 == "RESULT" { print ci "\t" n "\t" v "\t" t "\t" $2 "\t" $3 "\t" $4 "\t" r }' <<<"$out" >>"$raw"
    done
    echo "bench.sh: round $((r + 1))/$rounds done" >&2
done
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# --- the table --------------------------------------------------------------------------------
# Shape order as gemm_bench prints it.
mapfile -t shape_order < <(awk -F'\t' '!seen[$5]++ { print $5 }' "$raw")
shape_index() { local k; for k in "${!shape_order[@]}"; do [[ ${shape_order[$k]} == "$1" ]] && { echo "$k"; return; }; done; echo 99; }

# Median over the rounds per (candidate, threads, shape); worst spot-check error.
sort -t$'\t' -k1,1n -k4,4n -k5,5 -k6,6g "$raw" | awk -F'\t' '
    function flush() { if (cnt) { m = cnt % 2 ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
                                   print key "\t" m "\t" err "\t" cnt } cnt = 0; err = 0 }
    { k = $1 "\t" $2 "\t" $3 "\t" $4 "\t" $5
      if (k != key) { flush(); key = k }
      v[++cnt] = $6; if ($7 + 0 > err) err = $7 + 0 }
    END { flush() }' >"$work/median.tsv"

while IFS=$'\t' read -r ci name variant t shape g err cnt; do
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(shape_index "$shape")" "$t" "$g" "$ci" "$name" "$variant" "$shape" "$err" "$cnt"
done <"$work/median.tsv" | sort -t$'\t' -k1,1n -k2,2n -k3,3gr >"$work/rows.tsv"

echo "## Median GFLOP/s over $rounds interleaved rounds"
echo
echo "Ratio: to the best library at the same shape and thread count (simulated rows excluded from the best)."
echo
echo "| library | variant | threads | shape | GFLOP/s | ratio to best |"
echo "| --- | --- | ---: | --- | ---: | ---: |"
awk -F'\t' '
    { rows[NR] = $0; grp = $1 "\t" $2
      if ($6 !~ /SIMULATED/ && $3 + 0 > best[grp]) best[grp] = $3 + 0 }
    END { for (i = 1; i <= NR; i++) { split(rows[i], f, "\t"); grp = f[1] "\t" f[2]
            bad = (f[8] + 0 > 1e-3) ? " (WRONG RESULT: rel err " f[8] ")" : ""
            printf "| %s | %s | %d | %s | %.1f | %.2f%s |\n", f[5], f[6], f[2], f[7], f[3], f[3] / best[grp], bad } }' "$work/rows.tsv"
echo

echo "## Simulated misdetection: OpenBLAS pthread, forced Prescott vs its own choice"
echo
echo "| threads | shape | auto GFLOP/s | Prescott GFLOP/s | Prescott / auto |"
echo "| ---: | --- | ---: | ---: | ---: |"
awk -F'\t' '
    $5 == "openblas" && $6 == "pthread" { auto[$1 "\t" $2] = $3; shape[$1 "\t" $2] = $7 }
    $6 ~ /SIMULATED/ { sim[$1 "\t" $2] = $3 }
    END { for (k in sim) if (k in auto) { split(k, f, "\t")
            printf "%s\t| %d | %s | %.1f | %.1f | %.2f |\n", f[1] * 10 + f[2], f[2], shape[k], auto[k], sim[k], sim[k] / auto[k] } }' \
    "$work/rows.tsv" | sort -n | cut -f2-
echo
if [[ -n ${KEEP_RAW:-} ]]; then cp "$raw" "$KEEP_RAW"; echo "(raw per-round data copied to $KEEP_RAW)"; fi
