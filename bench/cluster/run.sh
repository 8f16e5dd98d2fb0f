#!/usr/bin/env bash
# run.sh — the cluster benchmark (issue 15): W1's shape (1 KiB, a new
# connection per message, 20 sessions in all, mtaload smtp -json) against
#
#   A  one node, local backend (spool + Maildir): the baseline
#   B  one node, jetstream backend (embedded NATS), replicas 1, sync_always off
#   C  the same with sync_always on
#   D  three nodes, embedded NATS, replicas 3, sync_always off; three mtaload
#      processes (7 + 7 + 6 sessions), one per node, started together
#   E  the same with sync_always on
#
# alternated A B C D E in each of ROUNDS rounds, in one run on this machine.
# Per sample: accepted msg/s (sum over the clients, wall time from the first
# start to the last finish), p50/p99 of mtaload's "message" step (MAIL to the
# reply to the final dot), delivered msg/s until the last message is in a
# mailbox (distinct msg_id of the "message delivered" lines in the mtad logs),
# mtad CPU µs per message (utime+stime of every mtad from /proc/PID/stat,
# from the client start to the last delivery), VmRSS of each node at the end,
# UDP datagrams sent (Udp OutDatagrams of /proc/net/snmp) and the load average.
#
#   bash bench/cluster/run.sh                 # N=6000, 5 rounds (~8 min on 2 CPUs)
#   N=300 ROUNDS=1 bash bench/cluster/run.sh  # a short trial
#   CASES=A,D bash bench/cluster/run.sh       # some cases only
#
#   N        messages per sample (default 6000)    ROUNDS  rounds (default 5)
#   CASES    which of A,B,C,D,E (default all)      OUT     results directory (default bench/results)
#   BASE     work directory: binaries, configs, data, logs (default /tmp/gomta-benchcl; kept with KEEP=1)
#   NETNS=0  do not enter a private network namespace even as root
#
# As root the run happens in a network namespace of its own with only
# loopback: no DNS server is reachable and the namespace's UDP counter counts
# this benchmark alone. Without root it runs on the host's loopback and the
# UDP figure is the host's (other users of the machine count too). Every
# daemon is stopped by the pid it got (trap on exit); every wait is bounded.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
N=${N:-6000} ROUNDS=${ROUNDS:-5} CASES=${CASES:-A,B,C,D,E}
BASE=${BASE:-/tmp/gomta-benchcl}
export RESULTS=${OUT:-$REPO/bench/results}
log() { printf '# %s %s\n' "$(date +%T)" "$*" >&2; }

if [ -z "${BCL_INNER:-}" ]; then
  # Outside: build (the module cache may need the host), then run inside a
  # private network namespace when we can.
  export PATH=$PATH:/usr/local/go/bin
  rm -rf "$BASE"; mkdir -p "$BASE/bin" "$RESULTS"
  REV=$(git -C "$REPO" rev-parse --short HEAD)
  git -C "$REPO" diff --quiet HEAD -- . ':!bench' || REV="$REV+dirty"
  log "building mtad and mtaload ($REV)"
  (cd "$REPO" && go build -o "$BASE/bin/" ./cmd/mtad ./cmd/mtaload)
  export BCL_INNER=1 REV STAMP=$(date +%Y%m%d-%H%M%S) GOVERSION=$(cd "$REPO" && go env GOVERSION)
  rc=0
  if [ "$(id -u)" = 0 ] && [ "${NETNS:-1}" != 0 ]; then
    NS=gomta-benchcl-$$
    ip netns add "$NS"; trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
    ip netns exec "$NS" ip link set lo up
    BCL_NETNS="namespace $NS (loopback only)" ip netns exec "$NS" bash "$0" "$@" || rc=$?
  else
    BCL_NETNS="host network (UDP count is the host's, other users included)" bash "$0" "$@" || rc=$?
  fi
  [ "${KEEP:-0}" = 1 ] || rm -rf "$BASE"
  exit $rc
fi

BIN=$BASE/bin
STARTED=()   # pids of every mtad started here
# stop_all: SIGTERM every mtad, up to 30 s in all for them to stop, then
# SIGKILL what is left. The bound matters: an mtad still provisioning its
# cluster streams keeps a stop signal until it is up (up to 2 min when its
# peers are gone), so a run interrupted during a node's start would wait.
stop_all() {
  local p i alive
  for p in "${STARTED[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for i in $(seq 300); do
    alive=0
    for p in "${STARTED[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${STARTED[@]}"; do
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  STARTED=()
}
CLIENTS=()   # pids of the running mtaload processes
cleanup() {
  local p
  for p in "${CLIENTS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  stop_all
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM   # exit runs cleanup (EXIT trap)
ulimit -n 20000 2>/dev/null || true

# free_ports K: K distinct free TCP ports on 127.0.0.1 (all held open at once
# while choosing, so that they differ).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
for s in ss: s.close()
PY
}

# config FILE SMTP POP [CLUSTER-TABLE]: one mail host, 20 accounts.
config() {
  local i
  {
    echo '[server]'
    echo "\"mx.bench.test\" = { smtp = $2, pop = $3 }"
    echo '[accounts."mx.bench.test"]'
    for i in $(seq 1 20); do echo "\"r$i@bench.test\" = \"pw\""; done
    printf '[gomta]\nlisten = "127.0.0.1"\nresolver = "fdns"\ntrusted_networks = ["127.0.0.0/8"]\n'
    [ -n "${4:-}" ] && printf '%s\n' "$4"
  } > "$1"
}

# start_nodes CASE DIR: writes the configs of CASE and starts its mtad(s);
# sets SMTPS (one SMTP port per node) and LOGS. Returns once every node
# serves (a cluster node serves only after its peers and its streams are up).
start_nodes() {
  local c=$1 dir=$2 sync=false nodes=1 i j p routes tbl
  case $c in C|E) sync=true ;; esac
  case $c in D|E) nodes=3 ;; esac
  read -r -a p <<< "$(free_ports $((4 * nodes)))"
  SMTPS=() LOGS=()
  for ((i = 0; i < nodes; i++)); do
    tbl=
    if [ "$c" != A ]; then
      routes=
      for ((j = 0; j < nodes; j++)); do
        [ $j = $i ] || routes="$routes${routes:+, }\"nats-route://127.0.0.1:${p[4*j+3]}\""
      done
      tbl=$(printf '[gomta.cluster]\nnode = "n%d"\nembedded = true\nnats_listen = "127.0.0.1:%d"\n' $((i + 1)) "${p[4*i+2]}")
      if [ $nodes = 1 ]; then tbl="$tbl"$'\ncluster_listen = ""'
      else tbl="$tbl"$'\n'"cluster_listen = \"127.0.0.1:${p[4*i+3]}\""$'\n'"routes = [$routes]"; fi
      tbl="$tbl"$'\n'"replicas = $nodes"$'\n'"sync_always = $sync"
    fi
    config "$dir/n$((i + 1)).toml" "${p[4*i]}" "${p[4*i+1]}" "$tbl"
    "$BIN/mtad" -config "$dir/n$((i + 1)).toml" -data "$dir/data-n$((i + 1))" -log-level info \
      > "$dir/n$((i + 1)).log" 2>&1 &
    STARTED+=($!); SMTPS+=("${p[4*i]}"); LOGS+=("$dir/n$((i + 1)).log")
  done
  # A node binds its ports at once but serves only once its peers and its
  # streams are up ("mtad started"): up to 180 s, elections are slow on a
  # loaded machine.
  for i in "${!SMTPS[@]}"; do
    for j in $(seq 1800); do grep -qF '"msg":"mtad started"' "${LOGS[i]}" && break; sleep 0.1; done
    grep -qF '"msg":"mtad started"' "${LOGS[i]}" || { log "$c: node $((i + 1)) did not start"; tail -n 5 "${LOGS[i]}" >&2; return 1; }
  done
}

# mtad_cpu: utime+stime (clock ticks) of each mtad, in node order.
mtad_cpu() { local p; for p in "${STARTED[@]}"; do awk '{printf "%d ", $14 + $15}' /proc/$p/stat; done; }
udp_out() { awk '/^Udp:/{if(h){print $5}else{h=1}}' /proc/net/snmp; }
delivered() { cat "${LOGS[@]}" | grep -F '"msg":"message delivered"' | grep -o '"msg_id":"[^"]*"' | sort -u | wc -l; }

# sample CASE ROUND: one measurement, appended to $SAMPLES as a JSON line.
sample() {
  local c=$1 r=$2 dir=$BASE/run/r$2-$1 i k n sess t0 t1 t2 cpu0 cpu1 udp0 udp1 got load rss=() jsons=()
  mkdir -p "$dir"
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  start_nodes "$c" "$dir" || return 1
  sleep 2   # a cluster node's workers find their consumer a moment after it listens
  k=${#SMTPS[@]}
  udp0=$(udp_out); cpu0=$(mtad_cpu); t0=$(date +%s.%N)
  CLIENTS=()
  for ((i = 0; i < k; i++)); do
    if [ "$k" = 1 ]; then sess=20 n=$N; else sess=$((i < 2 ? 7 : 6)); n=$((N * sess / 20)); fi
    [ "$k" = 3 ] && [ $i = 2 ] && n=$((N - 2 * (N * 7 / 20)))
    "$BIN/mtaload" smtp -addr "127.0.0.1:${SMTPS[i]}" -c "$sess" -n "$n" -size 1024 -reuse 1 \
      -from bench@client.test -to 'r%d@bench.test' -to-n 20 -progress 0 -json "$dir/load$i.json" \
      > "$dir/load$i.txt" 2>&1 &
    CLIENTS+=($!); jsons+=("$dir/load$i.json")
  done
  for i in "${CLIENTS[@]}"; do wait "$i" || log "$c: an mtaload exited $?"; done
  CLIENTS=(); t1=$(date +%s.%N)
  got=0
  for i in $(seq 6000); do   # up to 600 s for the last delivery
    got=$(delivered); [ "$got" -ge "$N" ] && break; sleep 0.1
  done
  t2=$(date +%s.%N)
  for i in "${STARTED[@]}"; do   # a node that died would make every figure below wrong
    [ -r /proc/$i/stat ] || { log "$c round $r: mtad $i exited during the run"; tail -n 20 "${LOGS[@]}" >&2; return 1; }
  done
  cpu1=$(mtad_cpu); udp1=$(udp_out)
  local c0 c1 ticks=()
  read -r -a c0 <<< "$cpu0"; read -r -a c1 <<< "$cpu1"
  for i in "${!c1[@]}"; do ticks+=($((c1[i] - c0[i]))); done
  [ "$got" -ge "$N" ] || log "$c round $r: only $got of $N delivered after 600 s"
  for i in "${STARTED[@]}"; do rss+=("$(awk '/^VmRSS:/{print $2}' /proc/$i/status)"); done
  local dups logargs=()
  dups=$(cat "${LOGS[@]}" | grep -F '"msg":"message delivered"' | grep -cF '"duplicate":true' || true)
  for i in "${LOGS[@]}"; do logargs+=(--log "$i"); done
  stop_all
  python3 "$HERE/report.py" sample --case "$c" --round "$r" --n "$N" --t0 "$t0" --t1 "$t1" --t2 "$t2" \
    --cpu-ticks "${ticks[*]}" --hz "$(getconf CLK_TCK)" --delivered "$got" --udp $((udp1 - udp0)) \
    --rss "${rss[*]}" --load "$load" "${logargs[@]}" --dups "$dups" --dir "$dir" "${jsons[@]}" >> "$SAMPLES"
  tail -n 1 "$SAMPLES" | python3 "$HERE/report.py" line >&2
}

SAMPLES=$BASE/samples.jsonl; : > "$SAMPLES"
IFS=, read -r -a CS <<< "$CASES"
log "cluster benchmark: N=$N, $ROUNDS rounds of ${CS[*]}, gomta $REV, $BCL_NETNS"
T0=$(date +%s)
for r in $(seq "$ROUNDS"); do
  log "round $r, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for c in "${CS[@]}"; do sample "$c" "$r"; done
done
mkdir -p "$RESULTS"
python3 "$HERE/report.py" table --samples "$SAMPLES" --rev "$REV" --go "$GOVERSION" --net "$BCL_NETNS" \
  --took $(( $(date +%s) - T0 )) --txt "$RESULTS/cluster-$STAMP.txt" --json "$RESULTS/cluster-$STAMP.json"
log "results: $RESULTS/cluster-$STAMP.txt and .json"
