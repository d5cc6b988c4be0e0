#!/usr/bin/env bash
# Times `keyquorum demo` at several network sizes and appends the figures to
# docs/performance.md (a new section; nothing else in the file is touched).
#
# For each size n: n node processes, a committee of n, no faulty node, a fresh view change
# then a reshare, on 127.0.0.1. Recorded: the demo's wall time, its CPU time (user + sys,
# the chain in the demo process plus every node process, which the demo waits for) and that
# CPU time per node per view change, the time of each view change on chain (committee
# selection to activation), the bytes each node sent and received (deals, acks, pulls,
# transactions), read from every node's traffic counters (its /status), and the machine's
# load average (1 minute) when the demo started and when it ended.
#
# The demo's default decides whether the nodes re-execute the chain's blocks with their own
# contract, as `keyquorum node` does by default: up to 16 nodes they do, above they take the
# blocks as served (on one machine every node re-executing the chain multiplies the chain's own
# work by the number of nodes). DEMO_FLAGS="--verify-chain" or "--trust-chain" decides for every
# size; the table's heading records the flags.
#
# Usage: scripts/bench-demo.sh            # sizes 7 64 128
#        SIZES="8 16" BLOCK_MS=250 scripts/bench-demo.sh
#        NO_APPEND=1 scripts/bench-demo.sh  # print the table only
#        DEMO_FLAGS="--trust-chain" scripts/bench-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES="${SIZES:-7 64 128}"
BLOCK_MS="${BLOCK_MS:-200}"
DEMO_FLAGS="${DEMO_FLAGS:-}"
OUT="${OUT:-docs/performance.md}"

command -v python3 >/dev/null || { echo "python3 is needed to read the demo's JSON" >&2; exit 2; }
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "GNU time (/usr/bin/time) is needed for CPU times" >&2; exit 2; }

cargo build --release -p keyquorum
BIN=target/release/keyquorum

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

rows=""
for n in $SIZES; do
    echo "== $n nodes" >&2
    status=0
    load_start="$(cut -d' ' -f1 /proc/loadavg)"
    "$TIME" -f "%e %U %S" -o "$tmp/time-$n" \
        "$BIN" demo --nodes "$n" --committee "$n" --faulty 0 --views 2 \
        --block-ms "$BLOCK_MS" --format json --metrics-out "$tmp/metrics-$n.json" \
        --report "$tmp/report-$n.html" $DEMO_FLAGS >"$tmp/out-$n.json" 2>"$tmp/err-$n.txt" || status=$?
    load_end="$(cut -d' ' -f1 /proc/loadavg)"
    [ "$status" -eq 0 ] || tail -n 5 "$tmp/err-$n.txt" >&2
    row="$(python3 - "$n" "$status" "$tmp" "$load_start" "$load_end" <<'EOF'
import json, sys
n, status, tmp, load_start, load_end = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
wall, user, sys_ = open(f"{tmp}/time-{n}").read().split()[-3:]
try:
    views = json.load(open(f"{tmp}/out-{n}.json"))["views"]
except Exception:
    views = []
try:
    nodes = json.load(open(f"{tmp}/metrics-{n}.json"))["nodes"]
except Exception:
    nodes = []
def dur(i):
    d = views[i].get("duration_s") if len(views) > i else None
    return f"{d:.1f}" if d is not None else "-"
def mean(key):
    v = [x["metrics"].get(key, 0) for x in nodes]
    return f"{sum(v) / len(v) / 1024:.1f}" if v else "-"
ok = status == 0 and len(views) >= 2 and all(v.get("activated") and v["signature"].get("verified") for v in views)
cpu = float(user) + float(sys_)
print(f"| {n} | {float(wall):.1f} | {cpu:.1f} | {cpu / int(n) / 2:.2f} | {dur(0)} | {dur(1)} | {mean('bytes_sent')} | {mean('bytes_received')} | {load_start} / {load_end} | {'ok' if ok else 'FAILED (exit %d)' % status} |")
EOF
)"
    echo "$row" >&2
    rows="$rows$row"$'\n'
done

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
section="$(cat <<EOF

## Node daemon and one-command demo (\`scripts/bench-demo.sh\`)

$(date -u +%Y-%m-%d), ${cpu:-unknown CPU}, $(nproc) cores, release build; \`keyquorum demo --nodes n
--committee n --faulty 0 --views 2 --block-ms $BLOCK_MS $DEMO_FLAGS\`: the embedded chain in the demo process
and n node processes on 127.0.0.1, a fresh-key view change then a reshare. CPU is user + sys of
the demo and all node processes over the whole demo (start-up, registration, DHT lookups, both
view changes); per node per view change it is that total divided by 2n, an upper bound.
View-change times run from the committee's selection to the view's activation on chain (block
times). Phases close as soon as every post they expect is on chain (\`phases.close_early\`); the
demo's phase lengths, which grow with n, bound only a phase someone leaves incomplete.
Traffic is what each node sent and received on average (deals, acks and pulls over libp2p, its
transactions to the chain), from its \`/metrics\`; it excludes libp2p's own overhead (Noise, Yamux,
Kademlia, Identify). Load is the machine's 1-minute load average when the demo started and
when it ended.

| nodes | demo wall (s) | CPU (s) | CPU per node per view change (s) | fresh view change (s) | reshare (s) | sent per node (KiB) | received per node (KiB) | load avg (start / end) | result |
|---|---|---|---|---|---|---|---|---|---|
$rows
EOF
)"

echo "$section"
if [ -z "${NO_APPEND:-}" ]; then
    printf '%s\n' "$section" >>"$OUT"
    echo "appended to $OUT" >&2
fi
