#!/usr/bin/env bash
# peers.sh — gomta side by side with Postfix (SMTP), smtp-sink (protocol ceiling)
# and Dovecot (POP3) on this machine. Debian 12, run as root. `make bench-peers`
# runs `bash bench/peers.sh all`; it is not part of `make test` and never runs in CI.
#
#   gomta (mtad)  SMTP 127.0.0.1:2625  POP3 127.0.0.1:2610   data in $BASE/gomta
#   Postfix 3.7   SMTP 127.0.0.1:2525  virtual domain bench.test -> $BASE/mail (Maildir)
#   Dovecot 2.3   POP3 127.0.0.1:1110  the same Maildirs, passwd-file, plaintext (loopback)
#   smtp-sink     SMTP 127.0.0.1:2526  accepts and discards (started by the runner)
#
# Nothing listens on anything but 127.0.0.1, nothing on a standard port, no relay
# (Postfix: reject_unauth_destination, default_transport = error; gomta: only
# bench.test is local and the client.test sender is no local account), no DNS
# (Postfix: smtpd_peername_lookup = no, smtp_dns_support_level = disabled;
# gomta: resolver = "fdns" with empty tables). Every daemon started here is
# stopped on exit (trap), and $BASE is removed unless KEEP=1.
#
# mtad is started by the runner (peerbench -mtad), and started afresh, like
# Postfix (-peer-restart), before every W6 and W7 round.
#
# Usage: bash bench/peers.sh [all|install|run|stop]     (default: all = install + run)
#   QUICK=1        one round, a tenth of the messages (for development)
#   ROUNDS=N       rounds of A/B alternation (default 3)
#   ONLY=w1,w5     run only these workloads (w1..w7)
#   OUT=DIR        results folder (default bench/results)
#   KEEP=1         keep $BASE (Maildirs, logs) after the run
#   REV=<commit>   build gomta at this commit (default HEAD; git archive, not the work tree)
#   WORKTREE=1     build the work tree as it is instead
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BASE=${PEERBENCH_BASE:-/tmp/gomta-peerbench}
MAILBASE=$BASE/mail                 # Postfix/Dovecot: $MAILBASE/bench.test/<user>/{cur,new,tmp}
GDATA=$BASE/gomta                   # gomta: $GDATA/mx.bench.test/{spool,mail/<addr>/...}
DOMAIN=bench.test
VUID=5000; VGID=5000
PF_SMTP=127.0.0.1:2525; SINK=127.0.0.1:2526; DC_POP3=1110
G_SMTP=2625; G_POP3=2610
DOVECOT_CONF=/etc/dovecot/gomta-peerbench.conf
DOVECOT_PASSWD=/etc/dovecot/gomta-peerbench.passwd
# Accounts: r1..r80 one per timed SMTP run (gomta and Postfix each take one) (so that no Maildir is emptied, and no
# inode freed, during the benchmark), p1..p50 small and q1..q50 large POP3 boxes.
USERS=$(echo r{1..80} p{1..50} q{1..50} warm)

log() { printf '# %s %s\n' "$(date +%T)" "$*" >&2; }

do_install() {
  if command -v postfix >/dev/null && command -v smtp-source >/dev/null && command -v dovecot >/dev/null \
     && [ -x /usr/lib/dovecot/pop3 ]; then
    log "postfix and dovecot-pop3d already installed"; return
  fi
  # Pre-answer debconf: no main.cf written, nothing prompted.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  echo "postfix postfix/mailname string mx.$DOMAIN" | debconf-set-selections
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix dovecot-core dovecot-pop3d
  # Debian's postinst may start them on the standard ports: stop them.
  postfix stop 2>/dev/null || true
  doveadm stop 2>/dev/null || true
}

config_postfix() {
  getent group vmail >/dev/null || groupadd -g $VGID vmail
  getent passwd vmail >/dev/null || useradd -u $VUID -g $VGID -d "$MAILBASE" -s /usr/sbin/nologin -M vmail
  mkdir -p "$MAILBASE/$DOMAIN"; chown -R vmail:vmail "$MAILBASE"; chmod 755 "$BASE"
  : > /etc/postfix/main.cf
  # Defaults kept on purpose (they are what workload 6 measures): default_process_limit
  # = 100 (at most 100 smtpd), smtpd_client_connection_count_limit = 50 (loopback is
  # exempt through smtpd_client_event_limit_exceptions = $mynetworks).
  postconf -e \
    "compatibility_level = 3.6" \
    "myhostname = mx.$DOMAIN" "mydomain = $DOMAIN" "myorigin = \$myhostname" "mydestination =" \
    "inet_interfaces = 127.0.0.1" "inet_protocols = ipv4" "mynetworks = 127.0.0.0/8" \
    "relayhost =" "relay_domains =" \
    "default_transport = error:no relay in the benchmark" \
    "relay_transport = error:no relay in the benchmark" \
    "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination" \
    "smtpd_recipient_restrictions = reject_unauth_destination" \
    "smtpd_peername_lookup = no" "smtp_dns_support_level = disabled" \
    "biff = no" "append_dot_mydomain = no" "alias_maps =" "alias_database =" "local_recipient_maps =" \
    "virtual_mailbox_domains = $DOMAIN" "virtual_mailbox_base = $MAILBASE" \
    "virtual_mailbox_maps = hash:/etc/postfix/gomta_peerbench_vmailbox" \
    "virtual_minimum_uid = 100" "virtual_uid_maps = static:$VUID" "virtual_gid_maps = static:$VGID" \
    "virtual_destination_concurrency_limit = 20" \
    "message_size_limit = 67108864" "virtual_mailbox_limit = 0" \
    "maillog_file_prefixes = /var /dev/stdout $BASE" "maillog_file = $BASE/postfix.log"
  : > /etc/postfix/gomta_peerbench_vmailbox
  for u in $USERS; do echo "$u@$DOMAIN $DOMAIN/$u/" >> /etc/postfix/gomta_peerbench_vmailbox; done
  postmap /etc/postfix/gomta_peerbench_vmailbox
  # No chroot (started directly); no port 25; 127.0.0.1:2525 with the default maxproc.
  postconf -F '*/*/chroot = n'
  postconf -MX smtp/inet 2>/dev/null || true
  postconf -M "$PF_SMTP/inet=$PF_SMTP inet n - n - - smtpd"
  postfix check
}

config_dovecot() {
  : > "$DOVECOT_PASSWD"
  for u in $USERS; do
    echo "$u@$DOMAIN:{PLAIN}pw-$u:$VUID:$VGID::$MAILBASE/$DOMAIN/$u" >> "$DOVECOT_PASSWD"
  done
  chown root:dovecot "$DOVECOT_PASSWD"; chmod 640 "$DOVECOT_PASSWD"
  # Stock process model except the login "high-performance" mode; plaintext on loopback.
  cat > "$DOVECOT_CONF" <<CONF
protocols = pop3
listen = 127.0.0.1
base_dir = /run/dovecot-gomta-peerbench
instance_name = dovecot-gomta-peerbench
log_path = $BASE/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = $VUID
last_valid_uid = $VUID
mail_location = maildir:$MAILBASE/%d/%n
pop3_uidl_format = %08Xu%08Xv
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $DC_POP3
  }
  service_count = 0
  process_min_avail = 2
  client_limit = 1000
}
service pop3 {
  process_limit = 1024
}
default_client_limit = 2000
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DOVECOT_PASSWD
}
userdb {
  driver = passwd-file
  args = username_format=%u $DOVECOT_PASSWD
}
CONF
  doveconf -c "$DOVECOT_CONF" -n >/dev/null
}

config_gomta() {
  mkdir -p "$GDATA"
  {
    echo '# generated by bench/peers.sh: one mail host, final destination for bench.test'
    echo '[server]'
    echo "\"mx.$DOMAIN\" = { smtp = $G_SMTP, pop = $G_POP3 }"
    echo "[accounts.\"mx.$DOMAIN\"]"
    for u in $USERS; do echo "\"$u@$DOMAIN\" = \"pw-$u\""; done
    cat <<CONF
[gomta]
data_dir = "$GDATA"
listen = "127.0.0.1"
resolver = "fdns"                  # tables only (and they are empty): no DNS query
trusted_networks = ["127.0.0.0/8"]  # the default (with ::1): loopback may submit without AUTH
max_message_size = 67108864        # workload 7 sends one 50 MiB message
max_queue = 100000                 # the default
queue_workers = 16                 # the default: concurrent deliveries (Postfix: 20 per destination)
max_connections = 20000            # the default, per host (SMTP + POP3): W6's 10,000 fit
max_connections_per_ip = 50        # the default; trusted networks (127.0.0.0/8) are exempt
# No tls_cert / tls_self_signed: no STARTTLS or STLS offered, plain SMTP and
# POP3 as on the Postfix and Dovecot side (smtpd_tls_security_level empty, ssl = no).
CONF
  } > "$BASE/gomta.toml"
  # POP3 account lists for mtaload ("user password" lines).
  : > "$BASE/pop-small.txt"; : > "$BASE/pop-large.txt"
  for i in $(seq 1 50); do
    echo "p$i@$DOMAIN pw-p$i" >> "$BASE/pop-small.txt"
    echo "q$i@$DOMAIN pw-q$i" >> "$BASE/pop-large.txt"
  done
}

PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  # mtad is peerbench's child (restarted before W6/W7 rounds); peerbench stops
  # it on exit and on SIGINT/SIGTERM, and mtad gets SIGTERM if peerbench dies
  # (Pdeathsig). Belt and braces: the pid it last wrote, if that is still mtad.
  local mp; mp=$(cat "$BASE/mtad.pid" 2>/dev/null)
  if [ -n "$mp" ] && [ "$(readlink "/proc/$mp/exe" 2>/dev/null)" = "$BASE/mtad" ]; then
    kill "$mp" 2>/dev/null
    local i; for i in $(seq 300); do [ -d "/proc/$mp" ] || break; sleep 0.1; done
  fi
  postfix stop >/dev/null 2>&1
  doveadm -c "$DOVECOT_CONF" stop >/dev/null 2>&1
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$BASE"; fi
  log "peers stopped"
}

wait_port() {  # bounded: 10 s
  local i; for i in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1
  done
  echo "port $1 did not open" >&2; return 1
}

do_run() {
  [ "$(id -u)" = 0 ] || { echo "peers.sh: run as root (Postfix and Dovecot are configured system-wide)" >&2; exit 1; }
  postfix stop >/dev/null 2>&1 || true
  rm -rf "$BASE"; mkdir -p "$BASE"
  trap cleanup EXIT INT TERM
  config_postfix; config_dovecot; config_gomta
  # Build what is committed (REV, default HEAD), not the shared work tree, where
  # other packages may be half written; WORKTREE=1 builds the work tree instead.
  local src=$REPO rev
  if [ "${WORKTREE:-0}" != 1 ] && git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
    rev=$(git -C "$REPO" rev-parse --short "${REV:-HEAD}")
    src=$BASE/src; mkdir -p "$src"
    git -C "$REPO" archive "$rev" | tar -x -C "$src"
  else
    rev="work tree$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null | sed 's/^/ on /')"
  fi
  log "building mtad, mtaload and peerbench from $rev"
  (cd "$src" && go build -o "$BASE/mtad" ./cmd/mtad && go build -o "$BASE/mtaload" ./cmd/mtaload \
     && go build -o "$BASE/peerbench" ./bench/peerbench)
  # W6 holds 10,000 sessions: the client and mtad each need that many descriptors.
  ulimit -Hn 65536 2>/dev/null && ulimit -Sn 65536 2>/dev/null || log "open-file limit stays $(ulimit -n)"
  log "open-file limit $(ulimit -Sn) (soft) / $(ulimit -Hn) (hard)"
  postfix start
  dovecot -c "$DOVECOT_CONF"
  timeout 2400 smtp-sink -u nobody $SINK 1000 & PIDS+=($!)
  wait_port 2525; wait_port $DC_POP3; wait_port 2526
  local udp0; udp0=$(awk '/^Udp:/{if(h){print $5}else{h=1}}' /proc/net/snmp)
  log "running workloads (QUICK=${QUICK:-0} ROUNDS=${ROUNDS:-3} ONLY=${ONLY:-all})"
  # The runner alternates gomta and the peer for every figure; all loops are bounded.
  timeout 2400 "$BASE/peerbench" \
    -mtaload "$BASE/mtaload" -smtp-source "$(command -v smtp-source || echo /usr/sbin/smtp-source)" -quick="${QUICK:-0}" -rounds "${ROUNDS:-3}" -only "${ONLY:-}" \
    -out "${OUT:-$REPO/bench/results}" -cmd "bash bench/peers.sh ${1:-all}${QUICK:+ (QUICK=$QUICK)}" -rev "$rev" \
    -mtad "$BASE/mtad" -mtad-config "$BASE/gomta.toml" -mtad-log "$BASE/mtad.log" -mtad-pidfile "$BASE/mtad.pid" \
    -peer-restart "postfix stop >/dev/null 2>&1; postfix start >/dev/null 2>&1" \
    -gomta-smtp 127.0.0.1:$G_SMTP -gomta-pop 127.0.0.1:$G_POP3 \
    -gomta-mail "$GDATA/mx.$DOMAIN/mail" -gomta-spool "$GDATA/mx.$DOMAIN/spool" \
    -peer-smtp $PF_SMTP -peer-pop 127.0.0.1:$DC_POP3 -sink $SINK \
    -peer-mail "$MAILBASE/$DOMAIN" -peer-spool /var/spool/postfix \
    -accounts-small "$BASE/pop-small.txt" -accounts-large "$BASE/pop-large.txt" -domain $DOMAIN
  local udp1; udp1=$(awk '/^Udp:/{if(h){print $5}else{h=1}}' /proc/net/snmp)
  log "UDP datagrams sent by this host during the run (DNS would show here): $((udp1 - udp0))"
}

case "${1:-all}" in
  install) do_install ;;
  run)     do_run run ;;
  all)     do_install; do_run all ;;
  stop)    postfix stop 2>/dev/null || true; doveadm -c "$DOVECOT_CONF" stop 2>/dev/null || true ;;
  *) echo "usage: $0 [all|install|run|stop]" >&2; exit 2 ;;
esac
