#!/usr/bin/env bash
# setup.sh — binaries, users and configs for bench/allpeers/run.sh (sourced by it).
# Nothing here starts a daemon. Root, Debian 12.
#
# Peers come from Debian packages unpacked with `apt-get download` + `dpkg -x`
# (their MTA packages conflict with Postfix, which must stay installed for
# smtp-source and smtp-sink), or are built (maddy v0.8.1, bench/allpeers/maddy).
# Everything listens on 127.0.0.1 only, below the ephemeral range (32768-60999: a port
# there may be held by some client connection on this busy machine):
#
#   gomta 26025 (POP3 26026)   Postfix 26525   chasquid 26625 (+26626/26627, required)
#   maddy 26725   OpenSMTPD 26825   Exim 26925   smtp-sink 26999
#   W8 relay: gomta A 27025 -> B 27125 (POP3 27026/27126), Postfix A 27525 -> B 27625
#
# Variables: AP_BASE (state, configs, logs; removed by run.sh unless KEEP=1) and
# AP_CACHE (unpacked packages and built binaries; kept between runs).

DOMAIN=bench.test
RDOMAIN=relay.test
VUID=5000; VGID=5000
# Accounts: one per timed sample per server (no Maildir is emptied, no inode freed
# during the run), w9 for the open-loop steps, audit for the fsync trace.
USERS=$(echo r{1..16} warm w9 audit)

setup_binaries() {
  mkdir -p "$AP_CACHE/bin" "$AP_CACHE/debs" "$AP_CACHE/pkgs"
  local pkgs="chasquid opensmtpd exim4-daemon-light" p d n
  for p in $pkgs; do
    ls "$AP_CACHE"/debs/${p}_*.deb >/dev/null 2>&1 && continue
    (cd "$AP_CACHE/debs" && apt-get download "$p") || { apt-get update -q && (cd "$AP_CACHE/debs" && apt-get download "$p"); }
  done
  for d in "$AP_CACHE"/debs/*.deb; do
    n=$(basename "$d"); n=${n%%_*}
    [ -d "$AP_CACHE/pkgs/$n" ] || { mkdir -p "$AP_CACHE/pkgs/$n"; dpkg -x "$d" "$AP_CACHE/pkgs/$n"; }
  done
  # Exim's one library that Debian's base system lacks: installed (tiny, conflicts with
  # nothing), because the setuid re-exec for delivery ignores LD_LIBRARY_PATH.
  dpkg -s libidn12 >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q libidn12 >/dev/null \
    && touch "$AP_CACHE/installed-libidn12"; }   # run.sh clean removes it again
  [ -x "$AP_CACHE/bin/maildir-mda" ] || gcc -O2 -Wall -o "$AP_CACHE/bin/maildir-mda" "$HERE/src/maildir-mda.c"
  [ -f "$AP_CACHE/bin/backlog.so" ] || gcc -O2 -Wall -shared -fPIC -o "$AP_CACHE/bin/backlog.so" "$HERE/src/backlog.c" -ldl
  # maddy 0.8.1: its go.mod needs maddy's own replace lines, hence the module in maddy/.
  has "$SERVERS" maddy || return 0
  [ -x "$AP_CACHE/bin/maddy" ] || (cd "$HERE/maddy" && GOBIN="$AP_CACHE/bin" go install github.com/foxcpp/maddy/cmd/maddy) \
    || log "maddy did not build: it is left out"
}

setup_users() {
  getent group vmail >/dev/null || groupadd -g $VGID vmail
  getent passwd vmail >/dev/null || useradd -u $VUID -g $VGID -d /nonexistent -s /usr/sbin/nologin -M vmail
  local n
  for n in opensmtpd opensmtpq; do     # OpenSMTPD's compiled-in privilege-separation users
    getent group $n >/dev/null || groupadd --system $n
    getent passwd $n >/dev/null || useradd --system -g $n -d /var/lib/opensmtpd/empty -M -s /usr/sbin/nologin $n
  done
  # Exim's compiled-in user: it will not start without it.
  getent group Debian-exim >/dev/null || groupadd --system Debian-exim
  getent passwd Debian-exim >/dev/null || useradd --system -g Debian-exim -d /nonexistent -M -s /usr/sbin/nologin Debian-exim
}

# mailboxes ROOT: a Maildir per account under ROOT, owned by vmail.
mailboxes() { local u; for u in $USERS; do mkdir -p "$1/$u"/{tmp,new,cur}; done; chown -R vmail:vmail "$1"; }

conf_gomta() {  # conf_gomta FILE NAME SMTP POP DATA DOMAIN [FDNS-LINES]
  local f=$1 name=$2 smtp=$3 pop=$4 data=$5 dom=$6 u
  {
    echo "# bench/allpeers: gomta host $name (defaults of [gomta] unless said)"
    echo '[server]'
    echo "\"$name\" = { smtp = $smtp, pop = $pop }"
    echo "[accounts.\"$name\"]"
    for u in $USERS bench; do echo "\"$u@$dom\" = \"pw-$u\""; done
    cat <<CONF
[gomta]
data_dir = "$data"
listen = "127.0.0.1"
resolver = "fdns"                  # the [MX]/[P] tables only: never a DNS query
trusted_networks = ["127.0.0.0/8"]
max_message_size = 67108864
CONF
  } > "$f"
}

conf_postfix() {  # conf_postfix DIR NAME PORT STATE DOMAIN [relay-to-port]
  local pf=$1 name=$2 port=$3 st=$4 dom=$5 relay=${6:-} u
  mkdir -p "$pf" "$st/spool" "$st/data" "$st/mail"
  chown postfix:postfix "$st/data"
  cp /etc/postfix/master.cf "$pf/master.cf"
  : > "$pf/main.cf"
  postconf -c "$pf" -e \
    "compatibility_level = 3.6" "syslog_name = postfix-$(basename "$pf")" \
    "queue_directory = $st/spool" "data_directory = $st/data" \
    "myhostname = $name" "mydomain = $dom" "myorigin = \$myhostname" "mydestination =" \
    "inet_interfaces = 127.0.0.1" "inet_protocols = ipv4" "mynetworks = 127.0.0.0/8" \
    "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination" \
    "smtpd_recipient_restrictions = reject_unauth_destination" \
    "smtpd_peername_lookup = no" "smtp_dns_support_level = disabled" "disable_dns_lookups = yes" \
    "biff = no" "append_dot_mydomain = no" "alias_maps =" "alias_database =" "local_recipient_maps =" \
    "message_size_limit = 67108864" \
    "maillog_file_prefixes = /var /dev/stdout $st" "maillog_file = $st/postfix.log"
  if [ -n "$relay" ]; then
    # A: relays $dom to B through a transport map, no DNS (brackets: no MX lookup).
    echo "$dom smtp:[127.0.0.1]:$relay" > "$pf/transport"; postmap -c "$pf" "$pf/transport"
    postconf -c "$pf" -e "relay_domains = $dom" "relayhost =" \
      "transport_maps = hash:$pf/transport" \
      "default_transport = error:no other relay in the benchmark"
  else
    postconf -c "$pf" -e "relay_domains =" "relayhost =" \
      "default_transport = error:no relay in the benchmark" "relay_transport = error:no relay in the benchmark" \
      "virtual_mailbox_domains = $dom" "virtual_mailbox_base = $st/mail" \
      "virtual_mailbox_maps = hash:$pf/vmailbox" \
      "virtual_minimum_uid = 100" "virtual_uid_maps = static:$VUID" "virtual_gid_maps = static:$VGID" \
      "virtual_mailbox_limit = 0"
    : > "$pf/vmailbox"
    for u in $USERS; do echo "$u@$dom $u/" >> "$pf/vmailbox"; done
    postmap -c "$pf" "$pf/vmailbox"
    mailboxes "$st/mail"
  fi
  postconf -c "$pf" -F '*/*/chroot = n'
  postconf -c "$pf" -MX smtp/inet 2>/dev/null || true
  postconf -c "$pf" -M "127.0.0.1:$port/inet=127.0.0.1:$port inet n - n - - smtpd"
  postfix -c "$pf" check
}

setup_configs() {
  mkdir -p "$CONF" "$RUN"
  printf 'nameserver 127.0.0.1\nlookup file bind\n' > "$AP_BASE/resolv.conf"   # "lookup": OpenSMTPD's libasr reads /etc/hosts first

  # ---- gomta: W1 (one host), W8 (A relays relay.test to B through its fake DNS)
  conf_gomta "$CONF/gomta.toml" mx.$DOMAIN 26025 26026 "$RUN/gomta" $DOMAIN
  conf_gomta "$CONF/gomta-b.toml" mx-b.$RDOMAIN 27125 27126 "$RUN/gomta-b" $RDOMAIN
  conf_gomta "$CONF/gomta-a.toml" mx-a.a.test 27025 27026 "$RUN/gomta-a" a.test
  cat >> "$CONF/gomta-a.toml" <<CONF
[MX]
"$RDOMAIN." = "mx-b.$RDOMAIN."
[P]
"mx-b.$RDOMAIN." = "127.0.0.1:27125"
CONF

  # ---- Postfix 3.7: W1, W8 A -> B (own config and queue directories, postfix -c)
  conf_postfix "$CONF/postfix" mx.$DOMAIN 26525 "$RUN/postfix" $DOMAIN
  conf_postfix "$CONF/postfix-b" mx-b.$RDOMAIN 27625 "$RUN/postfix-b" $RDOMAIN
  conf_postfix "$CONF/postfix-a" mx-a.a.test 27525 "$RUN/postfix-a" $RDOMAIN 27625

  # ---- chasquid 1.11: local delivery by exec of maildir-mda (src/maildir-mda.c)
  local cq=$CONF/chasquid u
  mkdir -p "$cq/domains/$DOMAIN" "$cq/certs/mx.$DOMAIN" "$RUN/chasquid/data"
  cat > "$cq/chasquid.conf" <<CONF
hostname: "mx.$DOMAIN"
max_data_size_mb: 64
smtp_address: "127.0.0.1:26625"
submission_address: "127.0.0.1:26626"
submission_over_tls_address: "127.0.0.1:26627"
mail_delivery_agent_bin: "$AP_CACHE/bin/maildir-mda"
mail_delivery_agent_args: "$RUN/chasquid/mail/%to_user%"
data_dir: "$RUN/chasquid/data"
mail_log_path: "$RUN/chasquid/mail.log"
CONF
  # chasquid will not start without a certificate for its hostname (TLS is never used here).
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=mx.$DOMAIN" \
    -keyout "$cq/certs/mx.$DOMAIN/privkey.pem" -out "$cq/certs/mx.$DOMAIN/fullchain.pem" 2>/dev/null
  for u in $USERS; do
    "$AP_CACHE/pkgs/chasquid/usr/bin/chasquid-util" -C="$cq" user-add "$u@$DOMAIN" --password="pw-$u" >/dev/null
  done
  mailboxes "$RUN/chasquid/mail"

  # ---- maddy 0.8.1: its default local delivery (storage.imapsql: SQLite + blob files).
  # Left out of the shipped maddy.conf: 'limits' (20 msg/s per endpoint), DNS checks
  # (require_mx_record, dkim, spf, dmarc), TLS.
  mkdir -p "$CONF/maddy" "$RUN/maddy/state" "$RUN/maddy/run"
  cat > "$CONF/maddy/maddy.conf" <<CONF
state_dir $RUN/maddy/state
runtime_dir $RUN/maddy/run
hostname mx.$DOMAIN
tls off
log $RUN/maddy/maddy.log
storage.imapsql local_mailboxes {
    driver sqlite3
    dsn imapsql.db
}
smtp tcp://127.0.0.1:26725 {
    dmarc no
    default_source {
        destination $DOMAIN {
            deliver_to &local_mailboxes
        }
        default_destination {
            reject 550 5.1.1 "no such user"
        }
    }
}
CONF
  if [ -x "$AP_CACHE/bin/maddy" ]; then
    for u in $USERS; do
      AP_BIND= "$HERE/nodns" "$AP_CACHE/bin/maddy" -config "$CONF/maddy/maddy.conf" imap-acct create "$u@$DOMAIN" >/dev/null 2>&1
    done
  fi

  # ---- OpenSMTPD 6.8: the maildir action (mail.maildir as vmail). Its compiled-in
  # spool and socket paths are bind-mounted from $RUN in its namespace (nodns AP_BIND);
  # the helpers are looked up under /usr/libexec/opensmtpd (a symlink, removed at the end).
  local os=$CONF/opensmtpd
  mkdir -p "$os" "$RUN/opensmtpd/run" /var/lib/opensmtpd/empty
  install -d -m 711 "$RUN/opensmtpd/spool"
  install -d -m 711 /var/spool/smtpd          # mount point only
  [ -e /usr/libexec/opensmtpd ] || ln -s "$AP_CACHE/pkgs/opensmtpd/usr/libexec/opensmtpd" /usr/libexec/opensmtpd
  : > "$os/vusers"; for u in $USERS; do echo "$u@$DOMAIN vmail" >> "$os/vusers"; done
  cat > "$os/smtpd.conf" <<CONF
table vusers file:$os/vusers
listen on 127.0.0.1 port 26825
action "local" maildir "$RUN/opensmtpd/mail/%{dest.user}" virtual <vusers>
match from any for domain "$DOMAIN" action "local"
CONF
  chmod 644 "$os/smtpd.conf" "$os/vusers"
  mailboxes "$RUN/opensmtpd/mail"

  # ---- Exim 4.96 (exim4-daemon-light): minimal config, loopback, appendfile to Maildir.
  # No DNS: no reverse lookup of clients (host_lookup empty), no ident (rfc1413),
  # primary_hostname set (no gethostbyname of our own name), no verify in the ACLs.
  local ex=$CONF/exim
  mkdir -p "$ex" "$RUN/exim/spool" "$RUN/exim/log"
  chown -R Debian-exim:Debian-exim "$RUN/exim"
  : > "$ex/users"; for u in $USERS; do echo "$u: $u" >> "$ex/users"; done
  cat > "$ex/exim.conf" <<CONF
primary_hostname = mx.$DOMAIN
domainlist local_domains = $DOMAIN
local_interfaces = <; 127.0.0.1.26925
daemon_smtp_ports = 26925
exim_path = $AP_CACHE/pkgs/exim4-daemon-light/usr/sbin/exim4
never_users = root
spool_directory = $RUN/exim/spool
log_file_path = $RUN/exim/log/%slog
log_selector = -host_lookup_failed
host_lookup =
rfc1413_hosts =
rfc1413_query_timeout = 0s
dns_again_means_nonexist = *
# Exim's default smtp_accept_max (20) would refuse part of the 100-session load:
# raised as Postfix's 100 smtpd processes.
smtp_accept_max = 200
smtp_accept_queue_per_connection = 0
message_size_limit = 64M
acl_smtp_rcpt = acl_rcpt

begin acl
acl_rcpt:
  accept domains = +local_domains
         local_parts = lsearch;$ex/users
  deny   message = relay not permitted

begin routers
local_maildir:
  driver = accept
  domains = +local_domains
  local_parts = lsearch;$ex/users
  transport = maildir

begin transports
maildir:
  driver = appendfile
  directory = $RUN/exim/mail/\$local_part_data
  maildir_format
  create_directory
  delivery_date_add
  envelope_to_add
  return_path_add
  user = vmail
  group = vmail

begin retry
*  *  F,1h,1m
CONF
  chmod 644 "$ex/exim.conf" "$ex/users"
  mailboxes "$RUN/exim/mail"
  # Exim keeps root (needed to deliver as vmail) with -C only for files listed here.
  mkdir -p /etc/exim4
  if ! grep -qx "$ex/exim.conf" /etc/exim4/trusted_configs 2>/dev/null; then
    echo "$ex/exim.conf" >> /etc/exim4/trusted_configs
  fi
  chmod 644 /etc/exim4/trusted_configs
}
