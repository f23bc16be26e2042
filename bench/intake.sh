#!/usr/bin/env bash
# Intake benchmark: how many messages per second `mta` accepts over SMTP
# (each 250 only after the message is synced to disk).
#
# Usage:
#   bench/intake.sh [path/to/mta]           # default: $MTA_BIN, else build/mta/app/mta
#
# Environment knobs (defaults in brackets):
#   SESSIONS   concurrent SMTP sessions to try            ["1 10 50"]
#   N          messages per run for SESSIONS >= 10        [20000]
#   N1         messages per run for SESSIONS == 1         [5000]
#   SIZE       message size in bytes                      [5120]
#   PERSIST    1: smtp-source -d (all of a session's messages on one connection);
#              0: one connection per message; both: run each C both ways   [1]
#   LATENCY    1: also run bench/smtp_latency.py per C for p50/p99 250-to-250 [1]
#   LAT_SECS   seconds per latency run                    [10]
#   WORKDIR    where the temp dir (config, log, spool) goes; keep it on the
#              disk you want to measure                    [/var/tmp]
#   KEEP       1: keep the temp dir afterwards             [0]
#
# Load generator: Postfix's smtp-source
#   smtp-source -s C -m N -l SIZE -f a@src.test -t b@dst.test -M bench.test [-d] 127.0.0.1:PORT
# timed with `date +%s.%N`.  Everything runs on loopback on free ports; the
# daemon is started once with a fresh spool and stopped by its PID at exit.
# The accepted count is cross-checked with mta_messages_received_total.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
MTA_BIN=${1:-${MTA_BIN:-$root/build/mta/app/mta}}
SESSIONS=${SESSIONS:-"1 10 50"}
N=${N:-20000}
N1=${N1:-5000}
SIZE=${SIZE:-5120}
PERSIST=${PERSIST:-1}
LATENCY=${LATENCY:-1}
LAT_SECS=${LAT_SECS:-10}
WORKDIR=${WORKDIR:-/var/tmp}
PY=/usr/bin/python3

[ -x "$MTA_BIN" ] || { echo "no mta binary at $MTA_BIN" >&2; exit 2; }
command -v smtp-source >/dev/null || [ -x /usr/sbin/smtp-source ] || { echo "smtp-source missing (apt install postfix)" >&2; exit 2; }
SMTP_SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

dir=$(mktemp -d "$WORKDIR/mta-bench.XXXXXX")
smtp_port=$(free_port)
metrics_port=$(free_port)
dead_port=$(free_port)
mta_pid=""

cleanup() {
  if [ -n "$mta_pid" ] && kill -0 "$mta_pid" 2>/dev/null; then
    kill -TERM "$mta_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$mta_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$mta_pid" 2>/dev/null || true
    wait "$mta_pid" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$dir/mta.yaml" <<EOF
hostname: bench.mta.test
spool_dir: "$dir/spool"
log_level: warn
smtp:
  listeners:
    - listen: "127.0.0.1:$smtp_port"
  max_connections: 2000
  max_connections_per_ip: 1000
  max_recipients: 100
metrics:
  listen: "127.0.0.1:$metrics_port"
ip_pools:
  - name: main
    ips:
      - { address: 127.0.0.1, ehlo: o1.bench.mta.test }
configuration_sets:
  - { name: default, ip_pool: main, priority: normal }
default_configuration_set: default
# Intake only: every domain routes to a loopback port where nothing listens,
# so each message gets one cheap first attempt (connection refused, then
# the destination is marked dead and the rest are deferred without
# connecting) and then waits an hour. Delivery work stays out of the figures.
routes:
  - { domain: "*", hosts: ["127.0.0.1:$dead_port"] }
retry:
  intervals: [1h]
EOF

"$MTA_BIN" serve --config "$dir/mta.yaml" 2>"$dir/mta.log" &
mta_pid=$!

# wait for the banner
ready=0
for _ in $(seq 1 150); do
  if ! kill -0 "$mta_pid" 2>/dev/null; then echo "mta exited; log:" >&2; tail -20 "$dir/mta.log" >&2; exit 1; fi
  if $PY - "$smtp_port" <<'EOP' 2>/dev/null; then ready=1; break; fi
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.settimeout(2)
ok = s.recv(512).startswith(b"220")
s.sendall(b"QUIT\r\n"); s.close()
sys.exit(0 if ok else 1)
EOP
  sleep 0.1
done
[ "$ready" = 1 ] || { echo "mta did not serve SMTP; log:" >&2; tail -20 "$dir/mta.log" >&2; exit 1; }

received() {
  curl -fsS "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null |
    awk '/^mta_messages_received_total/ { s += $NF } END { printf "%d\n", s }'
}

echo "mta $MTA_BIN pid $mta_pid, spool $dir/spool ($(df -h --output=source,fstype "$dir" | tail -1 | xargs))"
case $PERSIST in
  0) mode_text="one connection per message" ;;
  both) mode_text="-d (persist) and one connection per message (per-msg)" ;;
  *) mode_text="-d (persistent connections)" ;;
esac
echo "size=$SIZE bytes, smtp-source $mode_text"
printf '%-10s %-8s %-8s %-10s %-10s %-10s\n' sessions conn msgs seconds msg/s accepted

modes=$PERSIST
[ "$PERSIST" = both ] && modes="1 0"

for c in $SESSIONS; do
  n=$N; [ "$c" -eq 1 ] && n=$N1
  for p in $modes; do
    flag=""; [ "$p" = 1 ] && flag="-d"
    before=$(received || echo 0)
    t0=$(date +%s.%N)
    if ! "$SMTP_SOURCE" -s "$c" -m "$n" -l "$SIZE" -f a@src.test -t b@dst.test -M bench.test $flag \
         "127.0.0.1:$smtp_port" 2>"$dir/source.err"; then
      echo "smtp-source failed (C=$c):" >&2; tail -5 "$dir/source.err" >&2
    fi
    t1=$(date +%s.%N)
    after=$(received || echo 0)
    acc=$((after - before))
    awk -v c="$c" -v p="$([ "$p" = 1 ] && echo persist || echo per-msg)" -v n="$n" -v t0="$t0" -v t1="$t1" -v a="$acc" \
      'BEGIN { d = t1 - t0; printf "%-10d %-8s %-8d %-10.2f %-10.0f %-10d\n", c, p, n, d, n / d, a }'
    if [ -s "$dir/source.err" ]; then
      echo "  smtp-source stderr: $(sort "$dir/source.err" | uniq -c | sort -rn | head -3 | tr '\n' ';')"
    fi
  done
  if [ "$LATENCY" = 1 ]; then
    echo "  latency: $($PY "$here/smtp_latency.py" --port "$smtp_port" -c "$c" -d "$LAT_SECS" -s "$SIZE" || true)"
  fi
done

echo "spool messages: $(curl -fsS "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null | awk '/^mta_spool_messages / {print $2}')"
