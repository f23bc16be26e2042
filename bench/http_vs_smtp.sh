#!/usr/bin/env bash
# HTTP API against SMTP intake, same daemon, same run: C concurrent clients
# sending 5 KB messages for SECS seconds each, first over SMTP
# (bench/smtp_latency.py: persistent sessions, pipelined envelope) then over
# the HTTP API (bench/http_send.py: keep-alive connections, SES v2
# SendEmail with Simple content, Bearer auth), then SMTP again, so drift on
# a shared machine shows. Every acceptance is synced to disk before its
# reply in both cases (one group commit shared by both listeners). With
# Debian's wrk installed, the HTTP run is repeated with wrk
# (bench/http_send.lua), whose client is not bounded by Python's GIL.
#
# Usage:
#   bench/http_vs_smtp.sh [path/to/mta]    # default: $MTA_BIN, else build/mta/app/mta
# Environment: C [50], SECS [10], SIZE [5120], RAW [0: Simple content; 1: Raw],
#   WORKDIR [/var/tmp] (the spool's disk is part of what is measured), KEEP [0].
# Mail routes to a loopback port where nothing listens and then waits an
# hour, so delivery stays out of the figures (as in bench/intake.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
MTA_BIN=${1:-${MTA_BIN:-$root/build/mta/app/mta}}
C=${C:-50}
SECS=${SECS:-10}
SIZE=${SIZE:-5120}
RAW=${RAW:-0}
WORKDIR=${WORKDIR:-/var/tmp}
PY=/usr/bin/python3
SECRET=bench-secret-0123456789

[ -x "$MTA_BIN" ] || { echo "no mta binary at $MTA_BIN" >&2; exit 2; }
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

dir=$(mktemp -d "$WORKDIR/mta-bench-http.XXXXXX")
smtp_port=$(free_port); http_port=$(free_port); metrics_port=$(free_port); dead_port=$(free_port)
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

cat >"$dir/mta.yaml" <<EOC
hostname: bench.mta.test
spool_dir: "$dir/spool"
log_level: warn
smtp:
  listeners:
    - listen: "127.0.0.1:$smtp_port"
  max_connections: 2000
  max_connections_per_ip: 1000
http:
  listen: "127.0.0.1:$http_port"
  api_keys: [{ id: AKIDBENCH, secret: "$SECRET" }]
metrics:
  listen: "127.0.0.1:$metrics_port"
ip_pools:
  - name: main
    ips:
      - { address: 127.0.0.1, ehlo: o1.bench.mta.test }
configuration_sets:
  - { name: default, ip_pool: main, priority: normal }
routes:
  - { domain: "*", hosts: ["127.0.0.1:$dead_port"] }
retry:
  intervals: [1h]
EOC

"$MTA_BIN" serve --config "$dir/mta.yaml" 2>"$dir/mta.log" &
mta_pid=$!
for _ in $(seq 1 150); do
  kill -0 "$mta_pid" 2>/dev/null || { echo "mta exited; log:" >&2; tail -20 "$dir/mta.log" >&2; exit 1; }
  curl -fsS "http://127.0.0.1:$http_port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

received() {
  curl -fsS "http://127.0.0.1:$metrics_port/metrics" | awk -v p="$1" \
    '/^mta_messages_received_total/ && index($0, "protocol=\"" p "\"") { s += $NF } END { printf "%d\n", s }'
}

raw_flag=""; [ "$RAW" = 1 ] && raw_flag="--raw"
echo "mta $MTA_BIN pid $mta_pid, spool on $(df -h --output=source,fstype "$dir" | tail -1 | xargs); C=$C, ${SECS}s each, size=$SIZE"
echo "smtp : $($PY "$here/smtp_latency.py" --port "$smtp_port" -c "$C" -d "$SECS" -s "$SIZE" || true)"
echo "http : $($PY "$here/http_send.py" --port "$http_port" --secret "$SECRET" -c "$C" -d "$SECS" -s "$SIZE" $raw_flag || true)"
echo "smtp : $($PY "$here/smtp_latency.py" --port "$smtp_port" -c "$C" -d "$SECS" -s "$SIZE" || true)"
# wrk (Debian package) as a second HTTP load generator: a C client, so the
# figure is not bounded by Python's GIL. Skipped when not installed.
if command -v wrk >/dev/null && [ "$RAW" != 1 ]; then
  echo "http : $(MTA_API_SECRET="$SECRET" SIZE="$SIZE" wrk -t2 -c"$C" -d"${SECS}s" -s "$here/http_send.lua" \
    "http://127.0.0.1:$http_port" | grep '^wrk:')"
fi
echo "accepted: smtp $(received smtp), http $(received http) (mta_messages_received_total)"
