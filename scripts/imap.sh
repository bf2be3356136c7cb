#!/usr/bin/env bash
# A local Dovecot IMAP server for the ingest IMAP tests: scripts/imap.sh start|stop|status
#
# Listens on 127.0.0.1:${IMAP_PORT:-10143} (plain IMAP, no TLS: loopback only), test users
# ${IMAP_USER:-ingest} and ${IMAP_EXTRA_USERS:-prospect concession} (one password,
# ${IMAP_PASSWORD:-ingest-test}), maildir under var/infra/dovecot/. It also serves LMTP on a Unix
# socket (`scripts/imap.sh lmtp-socket` prints its path): scripts/smtp.sh's Postfix delivers the
# test domain there, and an unknown user is refused (550 5.1.1), so Postfix bounces with a DSN.
# Idempotent: start when running is a no-op; installs dovecot-imapd and dovecot-lmtpd if missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${IMAP_PORT:-10143}"
USER_NAME="${IMAP_USER:-ingest}"
EXTRA_USERS="${IMAP_EXTRA_USERS:-prospect concession}"
PASSWORD="${IMAP_PASSWORD:-ingest-test}"
MAIL_DOMAIN="${SMTP_DOMAIN:-vo-leads.test}"

# Dovecot's unprivileged processes must reach the maildir and the users file. A checkout under a
# private folder (mktemp -d is 0700) is out of their reach: then use a folder of our own under
# /var/lib, one per checkout. Decided the same way by start, stop and status.
resolve_dir() {
  if [[ -n "${IMAP_DIR:-}" ]]; then
    DIR="$IMAP_DIR"
  elif [[ "$(id -u)" == "0" ]] && id dovecot >/dev/null 2>&1 \
      && ! runuser -u dovecot -- test -x "$ROOT" 2>/dev/null; then
    DIR="/var/lib/vo-leads-dovecot/$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
  else
    DIR="$ROOT/var/infra/dovecot"
  fi
  CONF="$DIR/dovecot.conf"
  PIDFILE="$DIR/run/master.pid"
  LMTP_SOCKET="$DIR/run/lmtp"
}
resolve_dir

is_running() {
  [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

install_dovecot() {
  # LMTP (dovecot-lmtpd) is how scripts/smtp.sh's Postfix delivers into these mailboxes.
  if command -v dovecot >/dev/null 2>&1 && [[ -x /usr/lib/dovecot/lmtp ]]; then return; fi
  local sudo=""
  if [[ "$(id -u)" != "0" ]]; then sudo="sudo"; fi
  echo "installing dovecot-imapd and dovecot-lmtpd…" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    dovecot-core dovecot-imapd dovecot-lmtpd >/dev/null
  # The package's own instance is not used: stop it if the package started one.
  if command -v systemctl >/dev/null 2>&1; then $sudo systemctl disable --now dovecot 2>/dev/null || true; fi
  $sudo service dovecot stop 2>/dev/null || true
}

write_config() {
  mkdir -p "$DIR/run" "$DIR/state" "$DIR/mail"
  local mail_user mail_group
  mail_user="$(id -un)"
  mail_group="$(id -gn)"
  if [[ "$(id -u)" == "0" ]]; then
    # Dovecot refuses uid 0 for mail access: use the package's unprivileged user.
    mail_user="dovecot"
    mail_group="dovecot"
    chown -R dovecot:dovecot "$DIR/mail"
  fi
  : >"$DIR/users"
  local name
  for name in $USER_NAME $EXTRA_USERS; do
    printf '%s:{PLAIN}%s\n' "$name" "$PASSWORD" >>"$DIR/users"
  done
  chmod 644 "$DIR/users"
  cat >"$CONF" <<CONF
# Written by scripts/imap.sh: a throw-away test server, never a production config.
protocols = imap lmtp
listen = 127.0.0.1
base_dir = $DIR/run
state_dir = $DIR/state
log_path = $DIR/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
first_valid_gid = 1
# %n: the user part, so that IMAP's "ingest" and LMTP's "ingest@$MAIL_DOMAIN" are one mailbox.
mail_location = maildir:$DIR/mail/%n
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $DIR/users
}
# A static userdb checks with the passdb that an LMTP recipient exists: an unknown one is refused.
userdb {
  driver = static
  args = uid=$mail_user gid=$mail_group home=$DIR/mail/%n
}
# LMTP: user+detail@domain is delivered to user's INBOX (plus-addresses carry reply tokens).
recipient_delimiter = +
lmtp_save_to_detail_mailbox = no
postmaster_address = postmaster@$MAIL_DOMAIN
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Processed {
    auto = create
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
}
CONF
}

start() {
  if is_running; then
    if [[ ! -S "$LMTP_SOCKET" ]]; then
      # Started by an older version of this script (IMAP only): add LMTP in place.
      install_dovecot
      write_config
      doveadm -c "$CONF" reload
      wait_for_lmtp
    fi
    echo "dovecot running on 127.0.0.1:$PORT"
    return
  fi
  install_dovecot
  resolve_dir # the dovecot user exists now
  write_config
  # Standard streams to a file: the daemon inherits them, and a pipe it held open would keep
  # the caller (make, CI, scripts/smtp.sh) waiting for its end.
  if ! dovecot -c "$CONF" </dev/null >>"$DIR/start.log" 2>&1; then
    cat "$DIR/start.log" >&2
    exit 1
  fi
  for _ in $(seq 1 50); do
    if listening; then
      wait_for_lmtp
      echo "dovecot started on 127.0.0.1:$PORT (users $USER_NAME $EXTRA_USERS; LMTP $LMTP_SOCKET)"
      return
    fi
    sleep 0.1
  done
  echo "dovecot did not start; see $DIR/dovecot.log" >&2
  exit 1
}

wait_for_lmtp() {
  for _ in $(seq 1 50); do
    if [[ -S "$LMTP_SOCKET" ]]; then return; fi
    sleep 0.1
  done
  echo "dovecot serves no LMTP socket at $LMTP_SOCKET; see $DIR/dovecot.log" >&2
  exit 1
}

stop() {
  if ! is_running; then echo "dovecot not running"; return; fi
  doveadm -c "$CONF" stop 2>/dev/null || kill "$(cat "$PIDFILE")"
  for _ in $(seq 1 50); do
    if ! is_running; then echo "dovecot stopped"; return; fi
    sleep 0.1
  done
  echo "dovecot did not stop" >&2
  exit 1
}

status() {
  if is_running && listening; then
    echo "dovecot running on 127.0.0.1:$PORT"
  else
    echo "dovecot not running"
    exit 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  lmtp-socket) echo "$LMTP_SOCKET" ;;
  *) echo "usage: $0 start|stop|status|lmtp-socket" >&2; exit 2 ;;
esac
