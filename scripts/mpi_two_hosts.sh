#!/usr/bin/env bash
# Data-parallel training across two "hosts": two network namespaces of this machine joined by a
# veth pair, with OpenMPI's TCP transport between them (no shared memory). Trains the same
# float64 run as 2 ranks on one host and as 1 rank on each of the two, and checks that the
# checkpoints are byte-identical (the all-reduce of two ranks is one addition, the same over
# either transport). Needs root (ip netns) and OpenMPI; prints a message and exits 0 without
# testing when namespaces cannot be made (as in an unprivileged container).
#
#     bash scripts/mpi_two_hosts.sh [path/to/ssm]      # default .build/release/ssm
set -euo pipefail
cd "$(dirname "$0")/.."
ssm=$(realpath "${1:-.build/release/ssm}")
command -v mpirun >/dev/null || { echo "mpi_two_hosts: mpirun is missing (bash scripts/setup.sh installs OpenMPI)" >&2; exit 1; }
[ -x "$ssm" ] || { echo "mpi_two_hosts: no ssm at $ssm (swift build -c release)" >&2; exit 1; }

tag="ssm$$"
a="${tag}a" b="${tag}b"
work=$(mktemp -d)
cleanup() { ip netns del "$a" 2>/dev/null || true; ip netns del "$b" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
if ! ip netns add "$a" 2>/dev/null || ! ip netns add "$b" 2>/dev/null; then
  echo "mpi_two_hosts: skipped (cannot create network namespaces here: not root, or no CAP_SYS_ADMIN)"
  exit 0
fi
ip link add "${tag}x" type veth peer name "${tag}y"
ip link set "${tag}x" netns "$a"
ip link set "${tag}y" netns "$b"
ip -n "$a" addr add 10.231.7.1/24 dev "${tag}x"
ip -n "$b" addr add 10.231.7.2/24 dev "${tag}y"
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set "${tag}x" up
ip -n "$b" link set "${tag}y" up

# mpirun starts its daemon on each host through an "rsh agent": here, a command run inside the
# host's namespace instead of ssh.
cat >"$work/agent" <<AGENT
#!/usr/bin/env bash
host=\$1; shift
case "\$host" in
  10.231.7.1) ns=$a ;;
  10.231.7.2) ns=$b ;;
  *) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" /bin/sh -c "\$*"
AGENT
chmod +x "$work/agent"
printf '10.231.7.1 slots=1\n10.231.7.2 slots=1\n' >"$work/hosts"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
two_hosts=(ip netns exec "$a" mpirun -np 2 --hostfile "$work/hosts" --mca plm_rsh_agent "$work/agent"
           --mca btl tcp,self --mca btl_tcp_if_include 10.231.7.0/24 --mca oob_tcp_if_include 10.231.7.0/24)
# Each rank reports the address of its namespace: two different hosts, or the test is void.
placement=$("${two_hosts[@]}" /bin/sh -c 'ip -brief addr | grep -o "10\.231\.7\.[0-9]*"' | sort -u)
[ "$(echo "$placement" | wc -l)" -eq 2 ] || { echo "mpi_two_hosts: the ranks did not start in the two namespaces: $placement" >&2; exit 1; }
echo "ranks placed on $(echo $placement)"
run=(train --task selective-copying --model mamba --steps 20 --batch 16 --precision float64 --threads 1 --validation-size 64 --json)
echo "== 2 ranks on one host (shared memory)"
mpirun -np 2 --oversubscribe "$ssm" "${run[@]}" --checkpoint "$work/local" | tail -1
echo "== 1 rank on each of two hosts (TCP over a veth pair between namespaces $a and $b)"
"${two_hosts[@]}" "$ssm" "${run[@]}" --checkpoint "$work/hosts-run" | tail -1
for f in model.safetensors optimizer.safetensors; do
  cmp "$work/local/$f" "$work/hosts-run/$f" || { echo "mpi_two_hosts: $f differs between the runs" >&2; exit 1; }
done
echo "mpi_two_hosts: the two-host run's checkpoint equals the one-host run's, byte for byte"
