#!/usr/bin/env bash
# Sections liveness on real processes: `keyquorum sections node`s on loopback, with candidates
# killed in the middle of a DKG, or members joining at almost the same moment. Each run grows a
# fresh section and checks that it settles: every node sees the same section key, and the SAP's
# elders all hold shares. Timing-dependent and minutes long, so it runs outside CI.
#
# Usage:
#   scripts/sections-liveness.sh kill N "I J ..." DELAY [RUNS]
#       grows a section to N-1 members, joins an N-th (a DKG among N candidates), SIGKILLs nodes
#       I J ... DELAY seconds after that DKG started, restarts them on their data directories 5 s
#       later; expects N elders on one key within 120 s, then a further join to settle within
#       90 s (N at most 7, the default elder count)
#   scripts/sections-liveness.sh joins GAP [RUNS]
#       grows a section to 5 members, starts two more GAP seconds apart; expects 7 elders on one
#       key within 90 s
# Examples (each reproduced a stall on builds before 2026-12-06, in about half the runs):
#   scripts/sections-liveness.sh kill 4 "1 2" 1 4
#   scripts/sections-liveness.sh kill 7 "2 6" 0.3 4
#   scripts/sections-liveness.sh joins 0 6
# Environment: KEYQUORUM_BIN (default target/release/keyquorum; build it with
# `cargo build --release`), BASE_PORT (default 19100: p2p ports from it, HTTP ports from it +
# 100), ROUND_MS (default 1000). Needs python3.
# Exit status: 0 every run settled; 1 a run stalled (its directory is kept and named); 2 usage or
# set-up failure.
set -u
BIN=$(readlink -f "${KEYQUORUM_BIN:-target/release/keyquorum}")
BASE=${BASE_PORT:-19100}
ROUND_MS=${ROUND_MS:-1000}
[ -x "$BIN" ] || { echo "no keyquorum binary at $BIN (cargo build --release)" >&2; exit 2; }
export KEYQUORUM_PASSPHRASE=sections-liveness
export KEYQUORUM_LOG=${KEYQUORUM_LOG:-info,libp2p=warn}

usage() { sed -n '7,19p' "$0" | cut -c3- >&2; exit 2; }
MODE=${1:-}; shift || true
case "$MODE" in
  kill) N=${1:-}; KILL=${2:-}; DELAY=${3:-}; RUNS=${4:-1}
        [ -n "$N" ] && [ -n "$KILL" ] && [ -n "$DELAY" ] && [ "$N" -ge 2 ] && [ "$N" -le 7 ] || usage
        NODES=$((N + 1)) ;;
  joins) GAP=${1:-}; RUNS=${2:-1}; [ -n "$GAP" ] || usage; NODES=7 ;;
  *) usage ;;
esac

RUN=""
declare -a PID PEER

# The section as node $1 serves it, one line: generation, elders, holds a share (0/1), section
# key, members; "down" when it does not answer.
state() {
  python3 - "$((BASE + 100 + $1))" <<'PY'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/sections", timeout=2) as r:
        v = json.load(r)
    print(v["generation"], len(v["elders"]), int(v["elder"]), v["section_key"][:16], v["members"])
except Exception:
    print("down")
PY
}

start_node() { # index [genesis key]
  local i=$1
  local args=(sections node --key-file "$RUN/k$i.json" --data-dir "$RUN/node$i"
    --p2p-listen "/ip4/127.0.0.1/tcp/$((BASE + i))" --http-listen "127.0.0.1:$((BASE + 100 + i))"
    --round-ms "$ROUND_MS")
  [ -n "${2:-}" ] && args+=(--bootstrap "/ip4/127.0.0.1/tcp/$BASE/p2p/${PEER[0]}" --genesis-key "$2")
  "$BIN" "${args[@]}" >>"$RUN/node$i.log" 2>&1 &
  PID[$i]=$!
}

stop_all() { for p in "${PID[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; wait 2>/dev/null; PID=(); }
trap stop_all EXIT

# Waits up to $3 s until nodes 0..$1-1 all see $2 elders, all holding shares, on one key.
settled() {
  local n=$1 elders=$2 limit=$3 start=$SECONDS
  while (( SECONDS - start < limit )); do
    local keys="" sharers=0 ok=1
    for ((i = 0; i < n; i++)); do
      read -r gen e share key members < <(state "$i")
      [ "$gen" = down ] && { ok=0; break; }
      [ "$e" = "$elders" ] || ok=0
      keys+="$key"$'\n'; sharers=$((sharers + share))
    done
    if [ $ok = 1 ] && [ "$(printf '%s' "$keys" | sort -u | wc -l)" = 1 ] && [ $sharers = "$elders" ]; then
      return 0
    fi
    sleep 1
  done
  return 1
}

G=""
grow() { # members: starts node 0 and joins nodes 1..members-1 one by one; sets G, the genesis key
  start_node 0
  local tries=0
  until G=$(python3 -c "import json,urllib.request as u; print(json.load(u.urlopen('http://127.0.0.1:$((BASE + 100))/sections'))['genesis_key'])" 2>/dev/null); do
    (( ++tries > 50 )) && { echo "set-up: the genesis node does not answer; logs in $RUN" >&2; return 1; }
    sleep 0.2
  done
  for ((j = 1; j < $1; j++)); do
    start_node "$j" "$G"
    settled $((j + 1)) $((j + 1 < 7 ? j + 1 : 7)) 90 || { echo "set-up: join $j did not settle; logs in $RUN" >&2; return 1; }
  done
}

one_run() {
  RUN=$(mktemp -d "${TMPDIR:-/tmp}/sections-liveness.XXXXXX")
  for ((i = 0; i < NODES; i++)); do
    PEER[$i]=$("$BIN" keys new --key-file "$RUN/k$i.json" --kdf-memory-kib 1024 --kdf-passes 1 |
      awk '$1 == "peer_id" { print $2 }')
  done
  local result
  if [ "$MODE" = kill ]; then
    grow $((N - 1)) || return 2
    start_node $((N - 1)) "$G"
    local start=$SECONDS
    until grep -q "DKG started.*candidates=$N" "$RUN"/node*.log; do
      (( SECONDS - start > 60 )) && { echo "set-up: no DKG among $N candidates; logs in $RUN" >&2; return 2; }
      sleep 0.05
    done
    sleep "$DELAY"
    for k in $KILL; do { kill -KILL "${PID[$k]}"; wait "${PID[$k]}"; } 2>/dev/null; done
    sleep 5
    for k in $KILL; do start_node "$k" "$G"; done
    if settled "$N" "$N" 120; then
      start_node "$N" "$G"
      settled $((N + 1)) $((N + 1 < 7 ? N + 1 : 7)) 90 && result=settled || result="stalled after the further join"
    else
      result="stalled after the kills"
    fi
  else
    grow 5 || return 2
    start_node 5 "$G"; sleep "$GAP"; start_node 6 "$G"
    settled 7 7 90 && result=settled || result=stalled
  fi
  if [ "$result" = settled ]; then
    stop_all; echo "run $1: settled"; rm -rf "$RUN"; return 0
  fi
  echo "run $1: $result; logs in $RUN; each node's generation, elders, share, key, members:"
  for ((i = 0; i < NODES; i++)); do echo "  node$i: $(state "$i")"; done
  stop_all
  return 1
}

status=0
for ((r = 1; r <= RUNS; r++)); do
  one_run "$r"; s=$?
  stop_all
  (( s > status )) && status=$s
  [ $s = 2 ] && break
done
exit $status
