#!/usr/bin/env bash
# run.sh — gomta beside every peer a user would pick instead: Postfix, chasquid,
# maddy, OpenSMTPD, Exim, and smtp-sink as the protocol ceiling. Root, Debian 12,
# Postfix installed (smtp-source, smtp-sink; bench/peers.sh install does it).
# `make bench-peers` runs it after bench/peers.sh; alone:
#
#   bash bench/allpeers/run.sh                       # W1 all peers, W8, W9, syscalls, audit
#   ROUNDS=1 SCALE=0.05 W9_STEP=3s bash bench/allpeers/run.sh   # a short trial
#   PARTS=w1,audit SERVERS=gomta,exim bash bench/allpeers/run.sh
#   bash bench/allpeers/run.sh clean    # remove the users, libidn12 and the cache it added
#
#   ROUNDS   rounds of A B C … alternation (default 3)      SCALE  multiplies every N (default 1)
#   PARTS    w1,w8,w9,syscalls,audit (default all)         SERVERS  W1's servers (default all)
#   W9_RATES / W9_STEP / W9_SERVERS   open-loop steps (default 250,500,1000,2000,4000 / 20s / gomta,postfix)
#   W9_MTALOAD  an mtaload with -open built elsewhere (default: the one built from REV)
#   REV / WORKTREE=1   which gomta to build (as bench/peers.sh)   KEEP=1  keep $AP_BASE
#   AP_CACHE  unpacked packages and built peers, kept (default /var/tmp/gomta-allpeers)
#
# The run happens in a network namespace with only loopback, and each server also
# through ./nodns: a private mount namespace whose resolv.conf names 127.0.0.1, where
# nothing answers. The namespace's UDP datagram count over the whole run is printed
# at the end (and per sample in the results): a DNS query would show there.
# Every daemon started here is stopped by the pid it got (trap), system paths made
# for OpenSMTPD and Exim are removed, and $AP_BASE too unless KEEP=1.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export AP_BASE=${AP_BASE:-/tmp/gomta-allpeers}
export AP_CACHE=${AP_CACHE:-/var/tmp/gomta-allpeers}
CONF=$AP_BASE/conf RUN=$AP_BASE/run
ROUNDS=${ROUNDS:-3} SCALE=${SCALE:-1} PARTS=${PARTS:-w1,w8,w9,syscalls,audit}
SERVERS=${SERVERS:-gomta,postfix,chasquid,maddy,opensmtpd,exim,smtp-sink}
W9_RATES=${W9_RATES:-250,500,1000,2000,4000} W9_STEP=${W9_STEP:-20s} W9_SERVERS=${W9_SERVERS:-gomta,postfix}
export RESULTS=${OUT:-$REPO/bench/results} STAMP=$(date +%Y%m%d-%H%M%S)
log() { printf '# %s %s\n' "$(date +%T)" "$*" >&2; }
has() { case ",$1," in *",$2,"*) return 0 ;; esac; return 1; }
source "$HERE/setup.sh"

STARTED=()      # "name pid exe" of every daemon started here
start() {       # start NAME EXE ARGS...: in the background through nodns, pid kept
  local name=$1; shift
  "$HERE/nodns" "$@" >> "$RUN/$name.out" 2>&1 &
  echo $! > "$RUN/$name.pid"; STARTED+=("$name $! $1")
}
stop_pid() {    # SIGTERM (then SIGKILL after 10 s) a pid we started, if it is still that program
  local name=$1 p=$2 exe=$3 i
  [ -d /proc/$p ] || return 0
  [ "$(readlink -f /proc/$p/exe)" = "$(readlink -f "$exe")" ] || { log "$name: pid $p is no longer $exe"; return 0; }
  kill "$p" 2>/dev/null || true
  for i in $(seq 100); do [ -d /proc/$p ] || return 0; sleep 0.1; done
  log "$name ($p) still running after 10 s: SIGKILL"; kill -9 "$p" 2>/dev/null || true
}
cleanup() {
  set +e
  local s
  for s in "${STARTED[@]}"; do stop_pid $s; done
  for s in postfix postfix-a postfix-b; do [ -f "$CONF/$s/main.cf" ] && postfix -c "$CONF/$s" stop >/dev/null 2>&1; done
  wait 2>/dev/null
  # OpenSMTPD's and Exim's system paths (made in setup_configs)
  [ "$(readlink /usr/libexec/opensmtpd 2>/dev/null)" = "$AP_CACHE/pkgs/opensmtpd/usr/libexec/opensmtpd" ] && rm -f /usr/libexec/opensmtpd
  rmdir /var/spool/smtpd /var/lib/opensmtpd/empty /var/lib/opensmtpd 2>/dev/null
  if [ -f /etc/exim4/trusted_configs ]; then
    grep -vx "$CONF/exim/exim.conf" /etc/exim4/trusted_configs > /etc/exim4/trusted_configs.new
    if [ -s /etc/exim4/trusted_configs.new ]; then mv /etc/exim4/trusted_configs.new /etc/exim4/trusted_configs
    else rm -f /etc/exim4/trusted_configs.new /etc/exim4/trusted_configs; rmdir /etc/exim4 2>/dev/null; fi
  fi
  log "allpeers: every server stopped"
}

[ "$(id -u)" = 0 ] || { echo "run.sh: run as root" >&2; exit 1; }
if [ "${1:-}" = clean ]; then   # undo what setup.sh left on the system: users, libidn12, the cache
  for u in Debian-exim opensmtpd opensmtpq; do
    getent passwd $u >/dev/null && ! pgrep -u $u >/dev/null && userdel $u
    getent group $u >/dev/null && groupdel $u 2>/dev/null
  done
  [ -f "$AP_CACHE/installed-libidn12" ] && DEBIAN_FRONTEND=noninteractive apt-get purge -y -q libidn12 >/dev/null
  rm -rf "$AP_CACHE"; log "allpeers: cleaned"; exit 0
fi
command -v smtp-source >/dev/null || { echo "run.sh: smtp-source missing: bash bench/peers.sh install" >&2; exit 1; }

if [ -z "${AP_NETNS:-}" ]; then
  # Outside: what needs the network (packages, maddy's modules, gomta's build), then
  # the run itself inside a network namespace of its own with only loopback: no DNS
  # server is reachable from there, and /proc/net/snmp there counts the UDP datagrams
  # of this benchmark alone (the host's counter also counts the other users of a shared
  # machine). The namespace is deleted afterwards.
  T0=$(date +%s)
  setup_binaries
  rm -rf "$AP_BASE"; mkdir -p "$AP_BASE" "$RESULTS"; chmod 755 "$AP_BASE"
  if [ "${WORKTREE:-0}" != 1 ]; then    # gomta from a commit (git archive), as bench/peers.sh
    REVS=$(git -C "$REPO" rev-parse --short "${REV:-HEAD}"); mkdir -p "$AP_BASE/src"
    git -C "$REPO" archive "$REVS" | tar -x -C "$AP_BASE/src"; SRCDIR=$AP_BASE/src
  else REVS="work tree on $(git -C "$REPO" rev-parse --short HEAD)"; SRCDIR=$REPO; fi
  log "building mtad and mtaload from $REVS"
  (cd "$SRCDIR" && go build -o "$AP_BASE/mtad" ./cmd/mtad && go build -o "$AP_BASE/mtaload" ./cmd/mtaload)
  NS=gomta-allpeers-$$
  ip netns add "$NS"; trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
  ip netns exec "$NS" ip link set lo up
  rc=0; ip netns exec "$NS" env AP_NETNS="$NS" REVS="$REVS" T0="$T0" bash "$0" "$@" || rc=$?
  ip netns del "$NS"; trap - EXIT
  [ "${KEEP:-0}" = 1 ] || rm -rf "$AP_BASE"
  exit $rc
fi

trap cleanup EXIT INT TERM
setup_users; setup_configs
[ -x "$AP_CACHE/bin/maddy" ] || SERVERS=$(echo ",$SERVERS," | sed 's/,maddy,/,/; s/^,//; s/,$//')
ulimit -n 20000 2>/dev/null || true

log "starting servers (127.0.0.1 only, each in a namespace without DNS)"
need=(); nw() { need+=("$@"); }
if has "$SERVERS" gomta || has "$PARTS" w9 || has "$PARTS" audit; then
  start gomta "$AP_BASE/mtad" -config "$CONF/gomta.toml"; nw 26025; fi
if has "$PARTS" w8; then
  start gomta-b "$AP_BASE/mtad" -config "$CONF/gomta-b.toml"
  start gomta-a "$AP_BASE/mtad" -config "$CONF/gomta-a.toml"; nw 27125 27025
  "$HERE/nodns" postfix -c "$CONF/postfix-b" start; "$HERE/nodns" postfix -c "$CONF/postfix-a" start; nw 27625 27525
fi
"$HERE/nodns" postfix -c "$CONF/postfix" start; nw 26525
if has "$SERVERS" chasquid; then
  start chasquid "$AP_CACHE/pkgs/chasquid/usr/bin/chasquid" -config_dir "$CONF/chasquid" -logfile "$RUN/chasquid/chasquid.log"; nw 26625; fi
if has "$SERVERS" maddy; then start maddy "$AP_CACHE/bin/maddy" -config "$CONF/maddy/maddy.conf" run; nw 26725; fi
if has "$SERVERS" opensmtpd; then
  AP_BIND="$RUN/opensmtpd/spool:/var/spool/smtpd $RUN/opensmtpd/run:/run" LD_PRELOAD=$AP_CACHE/bin/backlog.so \
    start opensmtpd "$AP_CACHE/pkgs/opensmtpd/usr/sbin/smtpd" -d -f "$CONF/opensmtpd/smtpd.conf"; nw 26825; fi
if has "$SERVERS" exim; then
  start exim "$AP_CACHE/pkgs/exim4-daemon-light/usr/sbin/exim4" -bdf -C "$CONF/exim/exim.conf"; nw 26925; fi
if has "$SERVERS" smtp-sink; then start smtp-sink /usr/sbin/smtp-sink -u nobody 127.0.0.1:26999 1000; nw 26999; fi
for p in "${need[@]}"; do
  for i in $(seq 150); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
  (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { log "port $p did not open"; tail -n 5 "$RUN"/*.out >&2; exit 1; }
done
sleep 1

UDP0=$(awk '/^Udp:/{if(h){print $5}else{h=1}}' /proc/net/snmp)
vers() {
  echo "gomta $REVS; $(postconf -d -h mail_version | sed 's/^/Postfix /'); chasquid $(dpkg-deb -f "$AP_CACHE"/debs/chasquid_*.deb Version);" \
    "maddy $("$AP_CACHE/bin/maddy" version 2>/dev/null | head -1 || echo -); OpenSMTPD $(dpkg-deb -f "$AP_CACHE"/debs/opensmtpd_*.deb Version);" \
    "Exim $(dpkg-deb -f "$AP_CACHE"/debs/exim4-daemon-light_*.deb Version); go $(go env GOVERSION)"
}
{
  echo "# gomta beside every peer — run $STAMP"
  echo
  echo "\`ROUNDS=$ROUNDS SCALE=$SCALE PARTS=$PARTS bash bench/allpeers/run.sh\`. $(vers)."
  echo "Machine: $(nproc) CPUs, $(uname -r), load at start $(cut -d' ' -f1-3 /proc/loadavg); / is $(findmnt -no FSTYPE,OPTIONS /)."
} > "$RESULTS/allpeers-$STAMP.md"

has "$PARTS" w1 && python3 "$HERE/bench.py" w1 --rounds "$ROUNDS" --scale "$SCALE" --servers "$SERVERS"
has "$PARTS" w8 && python3 "$HERE/bench.py" w8 --rounds "$ROUNDS" --scale "$SCALE"

if has "$PARTS" w9; then
  # W9 needs mtaload's open-loop mode (-open, -rate steps, -step); skipped without it.
  ML=${W9_MTALOAD:-$AP_BASE/mtaload}
  help=$("$ML" smtp -h 2>&1 || true)
  if grep -q -- '-open' <<< "$help"; then
    declare -A W9PORT=([gomta]=26025 [postfix]=26525 [chasquid]=26625 [maddy]=26725 [opensmtpd]=26825 [exim]=26925)
    files=()
    for s in ${W9_SERVERS//,/ }; do
      log "W9 open loop: $s, rates $W9_RATES, $W9_STEP each"
      timeout 900 "$ML" smtp -open -rate "$W9_RATES" -step "$W9_STEP" -c 200 \
        -addr 127.0.0.1:${W9PORT[$s]} -from sender@client.test -to w9@bench.test -size 1024 \
        -json "$RESULTS/allpeers-$STAMP-w9-$s.json" -html "$RESULTS/allpeers-$STAMP-w9-$s.html" \
        > "$RUN/w9-$s.txt" 2>&1 || log "W9 $s: mtaload exit $? (errors are part of the figure)"
      files+=("$RESULTS/allpeers-$STAMP-w9-$s.json")
    done
    python3 "$HERE/bench.py" w9 "${files[@]}"
  else
    log "W9 skipped: this mtaload has no -open mode yet"
    printf '\n## W9 open loop\n\nSkipped: mtaload (%s) has no `-open` mode yet.\n' "$REVS" >> "$RESULTS/allpeers-$STAMP.md"
  fi
fi

if has "$PARTS" syscalls; then
  # gomta's system calls per message: strace -c -f over a short separate W1 run (bench/profile.sh)
  N=$(awk -v s="$SCALE" 'BEGIN{n=int(2000*s); print (n<200?200:n)}')
  log "system calls per message: profile.sh STRACE=1 N=$N"
  OUT=$RUN/profile MTAD=$AP_BASE/mtad MTALOAD=$AP_BASE/mtaload STRACE=1 N=$N C=20 SMTP=26325 POP=26310 \
    bash "$REPO/bench/profile.sh" > "$RUN/profile.txt" 2>&1 || true
  { printf '\n## gomta system calls per message (W1 shape, 20 sessions, %s messages, `strace -c -f`; strace slows it: rates here are not figures)\n\n```\n' "$N"
    cat "$RUN/profile.txt"; printf '```\n'; } >> "$RESULTS/allpeers-$STAMP.md"
  cat "$RUN/profile.txt"
fi

has "$PARTS" audit && python3 "$HERE/bench.py" audit --servers "$SERVERS" --msgs "${AUDIT_MSGS:-5}"

UDP1=$(awk '/^Udp:/{if(h){print $5}else{h=1}}' /proc/net/snmp)
printf '\nUDP datagrams sent in the benchmark network namespace during the run (a DNS query would show here): **%d** (by server, during its samples: %s). Took %d s.\n' \
  $((UDP1 - UDP0)) "$(python3 "$HERE/bench.py" udp)" $(( $(date +%s) - T0 )) | tee -a "$RESULTS/allpeers-$STAMP.md"
log "results: $RESULTS/allpeers-$STAMP.{md,jsonl}"
