#!/usr/bin/env bash
# profile.sh — W1's shape against gomta alone, with the CPU each side used and,
# on request, mtad's CPU profile or system-call counts. For the work between
# two `make bench-peers` runs; it never touches Postfix or Dovecot.
#
#   bash bench/profile.sh                 # c=20, 10,000 messages of 1 KiB
#   C=100 N=20000 bash bench/profile.sh
#   PPROF=4 bash bench/profile.sh         # + a 4 s CPU profile → $OUT/cpu.pprof
#   STRACE=1 N=2000 bash bench/profile.sh # + strace -c -f of mtad → $OUT/strace.txt, calls per message by call
#   MTAD=/path/to/other/mtad bash bench/profile.sh   # A/B against another build
#
# Everything listens on 127.0.0.1 high ports; the data directory is a fresh
# folder under $OUT each run (kept: deleting it just before a run would make
# ext4 without a journal skip the freed inodes on every create, BENCHMARKS.md).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
C=${C:-20} N=${N:-10000} SIZE=${SIZE:-1024} PPROF=${PPROF:-0} STRACE=${STRACE:-0}
OUT=${OUT:-/tmp/gomta-profile}
SMTP=${SMTP:-2725} POP=${POP:-2710} PPROF_ADDR=127.0.0.1:${PPROF_PORT:-6061}
mkdir -p "$OUT"
if [ -z "${MTAD:-}" ]; then (cd "$REPO" && go build -o "$OUT/mtad" ./cmd/mtad); MTAD=$OUT/mtad; fi
if [ -z "${MTALOAD:-}" ]; then (cd "$REPO" && go build -o "$OUT/mtaload" ./cmd/mtaload); MTALOAD=$OUT/mtaload; fi
DATA=$OUT/data.$(date +%s%N)
{
  echo '[server]'
  echo "\"mx.bench.test\" = { smtp = $SMTP, pop = $POP }"
  echo '[accounts."mx.bench.test"]'
  for i in $(seq 1 20); do echo "\"r$i@bench.test\" = \"pw\""; done
  cat <<CONF
[gomta]
data_dir = "$DATA"
listen = "127.0.0.1"
resolver = "fdns"
trusted_networks = ["127.0.0.0/8"]
CONF
} > "$OUT/gomta.toml"

"$MTAD" -config "$OUT/gomta.toml" -pprof "$PPROF_ADDR" -log-level "${LOG_LEVEL:-info}" > "${MTAD_LOG:-/dev/null}" 2>&1 &
MP=$!
trap 'kill $MP 2>/dev/null || true; wait $MP 2>/dev/null || true' EXIT
for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/$SMTP) 2>/dev/null && break; sleep 0.1; done

cpu() { awk '{printf "%.2f %.2f", $14/100, $15/100}' /proc/$MP/stat; }
before=$(cpu)
CP=
[ "$PPROF" != 0 ] && { curl -s -o "$OUT/cpu.pprof" "http://$PPROF_ADDR/debug/pprof/profile?seconds=$PPROF" & CP=$!; }
[ "$STRACE" != 0 ] && { strace -c -f -p $MP -o "$OUT/strace.txt" 2>/dev/null & SP=$!; sleep 0.5; }
start=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$OUT/mtaload.time" "$MTALOAD" smtp -addr 127.0.0.1:$SMTP -c "$C" -n "$N" \
  -size "$SIZE" -from bench@client.test -to 'r%d@bench.test' -to-n 20 -progress 0 > "$OUT/mtaload.txt"
for _ in $(seq 1200); do
  n=$(find "$DATA" -path '*/new/*' -type f | wc -l)
  [ "$n" -ge "$N" ] && break
  sleep 0.05
done
end=$(date +%s.%N)
[ "$STRACE" != 0 ] && { kill -INT $SP; wait $SP 2>/dev/null || true; }
[ -n "$CP" ] && { wait $CP || true; }
after=$(cpu)
read -r lu ls < "$OUT/mtaload.time"
awk -v n="$N" -v d="$n" -v s="$start" -v e="$end" -v b="$before" -v a="$after" -v lu="$lu" -v ls="$ls" 'BEGIN {
  split(b, B, " "); split(a, A, " ")
  mu = (A[1]-B[1]) * 1e6 / n; ms = (A[2]-B[2]) * 1e6 / n
  printf "%d of %d in the Maildirs in %.2f s: %.0f msg/s\n", d, n, e-s, n/(e-s)
  printf "CPU per message: mtad %.0f µs user + %.0f µs kernel, mtaload %.0f + %.0f\n", mu, ms, lu*1e6/n, ls*1e6/n
}'
grep -E '^ +(data-end|message) ' "$OUT/mtaload.txt" || true
if [ "$STRACE" != 0 ]; then
  awk -v n="$N" '/total/ {printf "system calls: %.1f per message (%s)\n", $4/n, FILENAME}' "$OUT/strace.txt"
  # per call, the largest first: calls per message, errors per message, share of system time
  awk -v n="$N" '$1 ~ /^[0-9.]+$/ && NF >= 5 {
      name = $NF; calls = $4; errs = (NF == 6 ? $5 : 0)
      printf "  %-18s %6.2f calls/msg  %5.2f errors/msg  %5.1f%% of strace time\n", name, calls/n, errs/n, $1 }' "$OUT/strace.txt" |
    sort -k2 -rn | head -25
fi
[ "$PPROF" != 0 ] && echo "profile: go tool pprof -top $OUT/mtad $OUT/cpu.pprof"
exit 0
