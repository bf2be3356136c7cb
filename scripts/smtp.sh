#!/usr/bin/env bash
# A local Postfix SMTP server for the messaging tests: scripts/smtp.sh start|stop|status
#
# Listens on 127.0.0.1:${SMTP_PORT:-10025} (plain SMTP, no TLS, no AUTH: loopback only) and
# delivers mail for the test domain ${SMTP_DOMAIN:-vo-leads.test} over LMTP into the Dovecot of
# scripts/imap.sh (started here if needed), so a test sends a message and reads it back over IMAP.
# Recipients are not checked at RCPT time: mail to an unknown user of the test domain is accepted,
# refused by Dovecot's LMTP (550 5.1.1), and Postfix sends a real DSN (RFC 3464) back to the
# envelope sender. Mail to ${SMTP_DISCARD_DOMAIN:-discard.example.fr} is accepted and dropped (the
# `discard` transport): the benchmarks write to their made-up prospects there, so a bench measures
# the pipeline and not a bounce and a mailbox delivery per lead that real prospects would not cause.
# Any other domain is bounced by the `error` transport: nothing leaves the machine (the master.cf
# has no smtp/relay client at all).
# Idempotent: start when running is a no-op; installs Debian's postfix with apt-get if missing
# (without letting the package configure or start a system instance). Must run as root: the
# Postfix master starts as root and drops to the `postfix` user.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${SMTP_PORT:-10025}"
DOMAIN="${SMTP_DOMAIN:-vo-leads.test}"
DISCARD_DOMAIN="${SMTP_DISCARD_DOMAIN:-discard.example.fr}"

# Postfix's unprivileged processes must reach the queue: a checkout under a private folder is out
# of their reach, then a folder of our own under /var/lib, one per checkout (as scripts/imap.sh).
resolve_dir() {
  if [[ -n "${SMTP_DIR:-}" ]]; then
    DIR="$SMTP_DIR"
  elif id postfix >/dev/null 2>&1 && ! runuser -u postfix -- test -x "$ROOT" 2>/dev/null; then
    DIR="/var/lib/vo-leads-postfix/$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
  else
    DIR="$ROOT/var/infra/postfix"
  fi
  CONF_DIR="$DIR/etc"
  QUEUE_DIR="$DIR/queue"
  PIDFILE="$QUEUE_DIR/pid/master.pid"
  MAILLOG="$DIR/maillog"
}
resolve_dir

is_running() {
  [[ -f "$PIDFILE" ]] && kill -0 "$(tr -d ' ' <"$PIDFILE")" 2>/dev/null
}

# A real SMTP exchange: the greeting, then EHLO answered with 250.
answers() {
  local reply
  exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
  IFS= read -r -t 5 reply <&3 || { exec 3<&-; return 1; }
  [[ "$reply" == 220* ]] || { exec 3<&-; return 1; }
  printf 'EHLO status.%s\r\n' "$DOMAIN" >&3
  while IFS= read -r -t 5 reply <&3; do
    if [[ "$reply" == 250\ * ]]; then
      printf 'QUIT\r\n' >&3
      exec 3<&-
      return 0
    fi
    [[ "$reply" == 250-* ]] || break
  done
  exec 3<&-
  return 1
}

install_postfix() {
  if [[ -x /usr/sbin/postfix ]]; then return; fi
  echo "installing postfix…" >&2
  # "No configuration": the package writes no main.cf and starts no system instance.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now postfix 2>/dev/null || true; fi
}

write_config() {
  local lmtp_socket="$1"
  mkdir -p "$CONF_DIR" "$QUEUE_DIR" "$DIR/data"
  chown root:root "$QUEUE_DIR"
  chown postfix:postfix "$DIR/data"
  cat >"$CONF_DIR/main.cf" <<CONF
# Written by scripts/smtp.sh: a throw-away test server, never a production config.
compatibility_level = 3.6
queue_directory = $QUEUE_DIR
data_directory = $DIR/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $MAILLOG
maillog_file_prefixes = $DIR
myhostname = mail.$DOMAIN
mydomain = $DOMAIN
myorigin = \$mydomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_peername_lookup = no
smtpd_banner = \$myhostname ESMTP vo-leads test server
# The test domain goes to Dovecot's LMTP; unknown users are accepted here and bounced on delivery.
virtual_mailbox_domains = $DOMAIN
virtual_transport = lmtp:unix:$lmtp_socket
smtpd_reject_unlisted_recipient = no
recipient_delimiter = +
# The benchmarks' prospects: accepted, then dropped without a bounce.
transport_maps = texthash:$CONF_DIR/transport
# Nothing else is delivered: every other domain is bounced at once.
default_transport = error:5.7.1 test server, no delivery outside $DOMAIN
relay_transport = error:5.7.1 test server, no delivery outside $DOMAIN
local_transport = error:5.1.1 test server, no local delivery
alias_maps =
alias_database =
biff = no
smtputf8_enable = yes
# Tests: deliver and bounce at once, retry soon.
in_flow_delay = 0
delay_warning_time = 0
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 60s
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
CONF
  printf '%s discard:\n' "$DISCARD_DOMAIN" >"$CONF_DIR/transport"
  # No smtp/relay client: mail cannot leave the machine even by mistake.
  cat >"$CONF_DIR/master.cf" <<CONF
# Written by scripts/smtp.sh. service type private unpriv chroot wakeup maxproc command
127.0.0.1:$PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CONF
}

start() {
  if is_running; then
    if answers; then echo "postfix running on 127.0.0.1:$PORT"; return; fi
    echo "postfix holds $PIDFILE but does not answer on 127.0.0.1:$PORT: restarting" >&2
    postfix -c "$CONF_DIR" stop </dev/null >/dev/null 2>&1 || true
  fi
  # Delivery goes to Dovecot's LMTP: start it first (a no-op when it runs).
  "$ROOT/scripts/imap.sh" start >/dev/null
  local lmtp_socket
  lmtp_socket="$("$ROOT/scripts/imap.sh" lmtp-socket)"
  install_postfix
  resolve_dir # the postfix user exists now
  write_config "$lmtp_socket"
  # All three standard streams away from the caller: the master daemon inherits them, and a
  # pipe it held open would keep the caller (make, CI) waiting for its end.
  postfix -c "$CONF_DIR" start </dev/null >>"$DIR/start.log" 2>&1
  for _ in $(seq 1 100); do
    if answers; then echo "postfix started on 127.0.0.1:$PORT (domain $DOMAIN → LMTP $lmtp_socket)"; return; fi
    sleep 0.1
  done
  echo "postfix did not start; see $MAILLOG and $DIR/start.log" >&2
  exit 1
}

stop() {
  if ! is_running; then echo "postfix not running"; return; fi
  postfix -c "$CONF_DIR" stop </dev/null >>"$DIR/start.log" 2>&1 || kill "$(tr -d ' ' <"$PIDFILE")"
  for _ in $(seq 1 100); do
    if ! is_running; then echo "postfix stopped"; return; fi
    sleep 0.1
  done
  echo "postfix did not stop" >&2
  exit 1
}

status() {
  if is_running && answers; then
    echo "postfix running on 127.0.0.1:$PORT (domain $DOMAIN)"
  else
    echo "postfix not running"
    exit 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
