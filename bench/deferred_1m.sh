#!/usr/bin/env bash
# A million deferred messages: memory, restart time, and the drain when the
# destination comes back, against the empty-queue rate of the same config.
#
#   bash bench/deferred_1m.sh [--messages 1000000] [--baseline 50000] [--sessions 50]
#                             [--size 5120] [--retry SECONDS] [--mta PATH]
#                             [--workdir /var/tmp] [--keep]
#
# Targets (the issue): RSS < 1 GiB with 1M deferred, a restart serves SMTP
# within 10 s, and the drain runs at >= 80 % of the empty-queue rate.
#
# Why the run is shaped like this
# -------------------------------
# Deferred mail is retried when its schedule entry is due (now + the retry
# interval, +-10 % jitter); nothing in mta makes deferred mail due earlier (no
# "flush" like Postfix's `postqueue -f`, which peer-bench.md used). A clean
# "1M deferred, then the sink comes back, drain" therefore needs every
# deferred entry to be due at the moment the sink returns, and none to be
# retried before (while the sink is still down):
#  * Short intervals (1s) with the sink down do not give that: the dead-
#    destination rule (a destination whose hops all failed is dead for
#    min(first interval, 60 s), and its jobs are deferred without connecting)
#    only saves the connects; every entry is still re-deferred once a second,
#    a retry storm of N writes/s, not a deferred queue.
#  * A long interval and a restart with a new config does not help either:
#    entries keep the due time written when they were deferred.
# So: ONE config for the whole run (only the spool dir differs between the
# instances), with retry.intervals = [R], R long enough that nothing becomes
# due while mta runs with the sink down (R is 1.2 x the expected injection
# time + 120 s, from the baseline's accept rate; --retry overrides). The
# route points at the sink's port; "sink down" = the sink is not running.
# While the sink is down the destination is dead (connection refused; one
# connect per minute), every message is deferred once, to +R.
# After the injection mta is stopped and we wait, with mta down, until every
# entry is due (last deferral + 1.1 R); then the sink starts and mta starts on
# the 1M spool: it finds 1M due retries, exactly "the sink comes back after
# an outage longer than the retry interval". The wait is idle time, used for
# the second empty-queue baseline.
#
# Phases
#  A  empty-queue baseline: fresh spool, sink up, inject B messages (default
#     50000) of SIZE with smtp-source -s C -d; end-to-end rate = B / (inject
#     start -> sink has B).
#  1  sink DOWN, fresh spool D: inject N; accept rate; RSS (VmRSS, VmHWM) every
#     second during and after, until all N are deferred (mta_deliveries_total
#     {result="deferred"} = N, mta_queue_active = 0); idle CPU with N deferred.
#  2  restart: SIGTERM (time to exit), exec -> SMTP banner (target < 10 s),
#     RSS after the restart, nothing retried (not yet due), spool = N.
#  B  second empty-queue baseline on another fresh spool (same config).
#     Then wait (mta down) until every entry of D is due.
#  3  drain: sink up (fresh counter), exec mta on D; exec -> banner (restart
#     with N due); drain rate = N / (exec -> the sink has N), and until
#     mta_spool_messages = 0; timeline every 10 s (spool, active, sink, RSS,
#     CPU) to see stalls or slow-downs.
#  Report: RSS peaks, restart times, accept rate, drain rate, ratio to the
#  mean of baselines A and B.
#
# Disk: about N x SIZE x 2 in the spool (RocksDB, blob files), checked first;
# the temp dir is removed at the end (--keep keeps it). Loopback only; every
# process started here is stopped by PID; every wait is bounded.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
PY=/usr/bin/python3
LIB="$PY $here/benchlib.py"

N=1000000
BASE=50000
C=50
SIZE=5120
RETRY=""
MTA_BIN=${MTA_BIN:-}
WORKDIR=${WORKDIR:-/var/tmp}
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --messages) N=$2; shift 2 ;;
    --baseline) BASE=$2; shift 2 ;;
    --sessions) C=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --retry) RETRY=$2; shift 2 ;;
    --mta) MTA_BIN=$2; shift 2 ;;
    --workdir) WORKDIR=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ "$BASE" -le "$N" ] || BASE=$N

if ! [ -x /usr/sbin/smtp-source ]; then
  [ "$(id -u)" = 0 ] || { echo "smtp-source missing; run as root to install postfix" >&2; exit 2; }
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
fi
if [ -z "$MTA_BIN" ]; then
  MTA_BIN=$root/build/mta/app/mta
  if ! [ -x "$MTA_BIN" ]; then
    cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
    ninja -C "$root/build" mta >/dev/null
  fi
fi
[ -x "$MTA_BIN" ] || { echo "no mta binary at $MTA_BIN" >&2; exit 2; }

need_kb=$(( N * SIZE * 2 / 1024 + 1048576 ))
avail_kb=$(df -Pk "$WORKDIR" | awk 'NR==2 {print $4}')
if [ "$avail_kb" -lt "$need_kb" ]; then
  echo "not enough disk in $WORKDIR: $((avail_kb / 1048576)) GiB free, need ~$((need_kb / 1048576)) GiB" >&2
  exit 2
fi

work=$(mktemp -d "$WORKDIR/mta-deferred.XXXXXX")
sink_port=$($LIB free-port 127.0.0.2)
smtp_port=$($LIB free-port 127.0.0.1)
metrics_port=$($LIB free-port 127.0.0.1)
metrics=http://127.0.0.1:$metrics_port/metrics
mta_pid="" sink_pid="" bg_pids=""

stop_pid() {  # PID [seconds]
  local pid=$1 secs=${2:-10}
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((secs * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "  pid $pid did not stop in ${secs}s, killing" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local p
  for p in $bg_pids; do stop_pid "$p" 2; done
  stop_pid "$mta_pid" 60
  stop_pid "$sink_pid" 5
  if [ "$KEEP" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"$1\n\", $2 }"; }
log() { echo "[$(date +%T)] $*"; }

write_config() {  # SPOOL RETRY_SECONDS FILE
  cat >"$3" <<EOF
hostname: relay.bench.test
spool_dir: "$1"
log_level: warn
smtp:
  listeners:
    - listen: "127.0.0.1:$smtp_port"
  max_connections: 2000
  max_connections_per_ip: 1000
metrics:
  listen: "127.0.0.1:$metrics_port"
ip_pools:
  - name: bench
    ips:
      - { address: 127.0.0.3, ehlo: relay.bench.test }
configuration_sets:
  - { name: bench, ip_pool: bench }
default_configuration_set: bench
routes:
  - { domain: "*", hosts: ["127.0.0.2:$sink_port"], tls: none }
shaping:
  default: { max_connections: $C, max_messages_per_connection: 1000 }
retry:
  intervals: ["${2}s"]
EOF
  "$MTA_BIN" check-config --config "$3" >/dev/null
}

start_mta() {  # CONFIG LOG -> mta_pid, t_exec, t_banner
  t_exec=$(now)
  "$MTA_BIN" serve --config "$1" 2>>"$2" &
  mta_pid=$!
  t_banner=$($LIB banner 127.0.0.1 "$smtp_port" 120) ||
    { echo "mta did not serve SMTP within 120 s" >&2; tail "$2" >&2; exit 1; }
}

stop_mta() {  # -> stop_s
  local t0; t0=$(now)
  stop_pid "$mta_pid" 120
  stop_s=$(calc "%.2f" "$(now) - $t0")
  mta_pid=""
}

start_sink() {  # OUTFILE
  /usr/sbin/smtp-sink -4 -u nobody -c -m 1024 "127.0.0.2:$sink_port" 1024 >"$1" 2>"$1.err" &
  sink_pid=$!
  $LIB banner 127.0.0.2 "$sink_port" 10 >/dev/null || { echo "smtp-sink did not start" >&2; exit 1; }
}

inject() {  # COUNT NAME  (smtp-source into mta; result in $work/NAME.source.json)
  $LIB run "$work/$2.source.json" -- timeout $((600 + $1 / 100)) /usr/sbin/smtp-source -s "$C" \
    -m "$1" -l "$SIZE" -f a@src.test -t b@dst.test -M src.test -d "127.0.0.1:$smtp_port" \
    2>"$work/$2.source.err" || true
  if [ -s "$work/$2.source.err" ]; then
    echo "  smtp-source stderr: $(sort "$work/$2.source.err" | uniq -c | sort -rn | head -3 | tr '\n' ';')"
  fi
}
jget() { $PY -c "import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2], {}, d); print(v if v is not None else '')" "$@"; }

baseline() {  # NAME -> prints a line; sets base_rate, base_accept
  local name=$1 d=$work/$1
  mkdir -p "$d"
  write_config "$d/spool" "$R" "$d/mta.yaml"
  start_sink "$d/sink.out"
  start_mta "$d/mta.yaml" "$d/mta.log"
  $LIB waitcount "$d/sink.out" "$BASE" 60 "$d/count.json" &
  local w=$!; bg_pids="$bg_pids $w"
  inject "$BASE" "$name"
  wait "$w" || true
  bg_pids=""
  local src=$work/$name.source.json
  base_accept=$(jget "$src" "round($BASE / wall)")
  local status; status=$(jget "$d/count.json" "status")
  if [ "$status" != complete ]; then
    echo "baseline $name incomplete: $(cat "$d/count.json")" >&2
    base_rate=0
  else
    base_rate=$($PY -c "import json; s=json.load(open('$src')); c=json.load(open('$d/count.json')); print(round($BASE / (c['t_last'] - s['start'])))")
  fi
  local hwm; hwm=$($LIB hwm "$mta_pid" | awk '{printf "%.0f", $1/1024}')
  stop_mta
  stop_pid "$sink_pid" 5; sink_pid=""
  log "baseline $name: $BASE x $SIZE B, $C sessions, empty queue: accepted $base_accept/s, delivered end to end $base_rate/s, VmHWM ${hwm} MB"
  rm -rf "$d/spool"
}

echo "deferred_1m: N=$N x $SIZE B, $C sessions, baseline $BASE; mta $MTA_BIN"
echo "host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); temp dir $work ($(df -h --output=avail "$WORKDIR" | tail -1 | xargs) free)"
echo "log_level warn (no per-message log lines); sink 127.0.0.2:$sink_port, mta 127.0.0.1:$smtp_port from 127.0.0.3"
echo

# ---- A: baseline -----------------------------------------------------------------
R=${RETRY:-3600}   # placeholder for the baseline; the value does not matter with the sink up
baseline A
rate_a=$base_rate accept_a=$base_accept
[ "$rate_a" -gt 0 ] || { echo "baseline failed" >&2; exit 1; }
if [ -z "$RETRY" ]; then
  R=$(awk -v n="$N" -v a="$accept_a" 'BEGIN { r = 1.2 * n / a + 120; if (r < 120) r = 120; printf "%d", r }')
else
  R=$RETRY
fi
log "retry interval for the deferred run: ${R}s (entries due $(calc %.0f "$R * 0.9")..$(calc %.0f "$R * 1.1") s after their deferral)"

# ---- 1: inject with the sink down --------------------------------------------------
D=$work/deferred
mkdir -p "$D"
write_config "$D/spool" "$R" "$D/mta.yaml"
start_mta "$D/mta.yaml" "$D/mta.log"
log "phase 1: sink down, injecting $N messages"
$LIB watch "$mta_pid" "$metrics" "$work/inject.watch" --every 30 --label "inject " &
wpid=$!; bg_pids="$wpid"
inject "$N" inject
inj_wall=$(jget "$work/inject.source.json" "round(wall, 1)")
inj_rate=$(jget "$work/inject.source.json" "round($N / wall)")
log "injected $N in ${inj_wall}s: $inj_rate accepted/s; waiting until every message is deferred"
settle0=$(now)
for _ in $(seq 1 600); do
  deferred=$($LIB metric "$metrics" mta_deliveries_total result=deferred || echo 0)
  active=$($LIB metric "$metrics" mta_queue_active || echo -1)
  [ "${deferred%.*}" -ge "$N" ] && [ "${active%.*}" = 0 ] && break
  sleep 1
done
settle=$(calc "%.1f" "$(now) - $settle0")
log "deferred=$deferred active=$active after ${settle}s more"
sleep 10   # idle with N deferred: RSS and CPU at rest
cpu_a=$($LIB cpu "$mta_pid"); sleep 10; cpu_b=$($LIB cpu "$mta_pid")
idle_cpu=$(calc "%.2f" "($cpu_b - $cpu_a) / 10")
kill -TERM "$wpid"; wait "$wpid" || true; bg_pids=""
read -r hwm1 rss1 < <($LIB hwm "$mta_pid")
spool1=$($LIB metric "$metrics" mta_spool_messages || echo "?")
peak1=$(jget "$work/inject.watch" "round(peak_rss_kb/1024)")
log "with $spool1 deferred: VmRSS $((rss1 / 1024)) MB, VmHWM $((hwm1 / 1024)) MB (peak VmRSS sampled $peak1 MB), idle CPU $idle_cpu cores"
stop_mta
t_stop1=$(now) stop1=$stop_s
log "SIGTERM -> exit: ${stop_s}s; spool on disk: $(du -sh "$D/spool" | cut -f1)"

# ---- 2: restart with N deferred (not due) ------------------------------------------
start_mta "$D/mta.yaml" "$D/mta.log"
restart1=$(calc "%.2f" "$t_banner - $t_exec")
read -r hwm2a rss2a < <($LIB hwm "$mta_pid")
spool2=$($LIB metric "$metrics" mta_spool_messages || echo "?")
cpu_a=$($LIB cpu "$mta_pid"); sleep 10; cpu_b=$($LIB cpu "$mta_pid")
read -r hwm2 rss2 < <($LIB hwm "$mta_pid")
retried2=$($LIB metric "$metrics" mta_deliveries_total result=deferred || echo 0)
log "restart with $spool2 deferred: exec -> banner ${restart1}s; VmRSS at banner $((rss2a / 1024)) MB, after 10 s $((rss2 / 1024)) MB (VmHWM $((hwm2 / 1024)) MB); CPU in those 10 s $(calc %.2f "$cpu_b - $cpu_a") s; retried early: ${retried2:-0}"
stop_mta
t_stop2=$(now)

# ---- B: second baseline while the deferred entries become due -----------------------
baseline B
rate_b=$base_rate accept_b=$base_accept
due_at=$(calc "%.0f" "$t_stop1 + 1.1 * $R + 5")
wait_s=$(calc "%.0f" "$due_at - $(now)")
if [ "$wait_s" -gt 0 ]; then
  log "waiting ${wait_s}s (mta down) until every deferred entry is due"
  sleep "$wait_s"
fi

# ---- 3: the sink comes back: drain -----------------------------------------------------
start_sink "$work/drain.sink.out"
log "phase 3: sink up; starting mta on the spool with $N due retries"
start_mta "$D/mta.yaml" "$D/mta.log"
restart2=$(calc "%.2f" "$t_banner - $t_exec")
log "exec -> banner ${restart2}s (all $N due)"
$LIB waitcount "$work/drain.sink.out" "$N" 120 "$work/drain.count.json" &
cpid=$!; bg_pids="$cpid"
$LIB watch "$mta_pid" "$metrics" "$work/drain.watch" --sink "$work/drain.sink.out" \
  --until-sink "$N" --until-empty --stall 120 --timeout $((7200 + N / 100)) --every 30 --label "drain " || true
wait "$cpid" || true; bg_pids=""
drain_status=$(jget "$work/drain.count.json" "status")
drain_count=$(jget "$work/drain.count.json" "count")
drain_s=$($PY -c "import json; c=json.load(open('$work/drain.count.json')); print(round(c['t_last'] - $t_exec, 1) if c['t_last'] else '')")
empty_s=$($PY -c "import json; w=json.load(open('$work/drain.watch')); print(round(w['t_empty'] - $t_exec, 1) if w['t_empty'] else '')")
peak3=$(jget "$work/drain.watch" "round(peak_rss_kb/1024)")
hwm3=$(jget "$work/drain.watch" "round(peak_hwm_kb/1024)")
reason3=$(jget "$work/drain.watch" "reason")
delivered3=$($LIB metric "$metrics" mta_deliveries_total result=delivered || echo "?")
deferred3=$($LIB metric "$metrics" mta_deliveries_total result=deferred || echo 0)
stop_mta
stop_pid "$sink_pid" 5; sink_pid=""

# drain rate per tenth of the queue, from the timeline
segments=$($PY - "$work/drain.watch.jsonl" "$N" <<'EOP'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
n = int(sys.argv[2])
out, last_t, last_c, step = [], 0.0, 0, n / 10
nxt = step
for r in rows:
    c = r.get("sink") or 0
    while c >= nxt and nxt <= n:
        dt = r["t"] - last_t
        out.append(f"{(c - last_c) / dt:.0f}" if dt > 0 else "-")
        last_t, last_c, nxt = r["t"], c, nxt + step
print(" ".join(out))
EOP
)

ref=$(( (rate_a + rate_b) / 2 ))
echo
echo "==================== deferred_1m results ===================="
printf '%-52s %s\n' "messages x size, sessions" "$N x $SIZE B, $C"
printf '%-52s %s\n' "retry interval (one for the whole run)" "${R}s"
printf '%-52s %s\n' "empty-queue baseline A / B (delivered e2e msg/s)" "$rate_a / $rate_b  (accepted $accept_a / $accept_b)"
printf '%-52s %s\n' "injection, sink down: accepted msg/s" "$inj_rate  (${inj_wall}s; all deferred ${settle}s later)"
printf '%-52s %s\n' "RSS during injection: peak VmRSS / VmHWM" "$peak1 MB / $((hwm1 / 1024)) MB"
printf '%-52s %s\n' "RSS idle with N deferred" "$((rss1 / 1024)) MB  (idle CPU $idle_cpu cores)"
printf '%-52s %s\n' "SIGTERM -> exit with N deferred" "${stop1}s"
printf '%-52s %s\n' "restart exec -> SMTP banner, N deferred (not due)" "${restart1}s  (VmRSS $((rss2 / 1024)) MB 10 s later)"
printf '%-52s %s\n' "restart exec -> SMTP banner, N due" "${restart2}s"
printf '%-52s %s\n' "drain: exec -> sink has N" "${drain_s:-INCOMPLETE}s  (sink $drain_count/$N, $drain_status; spool empty at ${empty_s:--}s; $reason3)"
drain_rate=""
if [ -n "$drain_s" ] && [ "$drain_status" = complete ]; then
  drain_rate=$(calc "%.0f" "$N / $drain_s")
fi
printf '%-52s %s\n' "drain rate msg/s (per tenth of the queue)" "${drain_rate:-n/a}  ($segments)"
printf '%-52s %s\n' "RSS during the drain: peak VmRSS / VmHWM" "$peak3 MB / $hwm3 MB"
printf '%-52s %s\n' "deliveries in the drain: delivered / deferred" "$delivered3 / $deferred3"
echo
max_hwm=$(( hwm1 > hwm2 ? hwm1 : hwm2 )); max_hwm=$(( max_hwm / 1024 > hwm3 ? max_hwm / 1024 : hwm3 ))
verdict() { if [ "$1" = 1 ]; then echo PASS; else echo FAIL; fi; }
echo "Targets:"
echo "  RSS < 1 GiB with N deferred (max VmHWM ${max_hwm} MB):   $(verdict "$([ "$max_hwm" -lt 1024 ] && echo 1)")"
r1ok=$(awk -v a="$restart1" -v b="$restart2" 'BEGIN { print (a < 10 && b < 10) ? 1 : 0 }')
echo "  restart serving within 10 s (${restart1}s / ${restart2}s):      $(verdict "$r1ok")"
if [ -n "$drain_rate" ] && [ "$ref" -gt 0 ]; then
  ratio=$(calc "%.2f" "$drain_rate / $ref")
  okr=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8) ? 1 : 0 }')
  echo "  drain >= 80% of empty-queue rate ($drain_rate / $ref = $ratio): $(verdict "$okr")"
else
  echo "  drain >= 80% of empty-queue rate: FAIL (drain did not complete)"
fi
if [ "${retried2%.*}" != 0 ] && [ -n "$retried2" ]; then
  echo "  note: $retried2 deliveries were retried during the restart phase (R too short? use --retry)"
fi
grep -h -E '\[(error|critical)\]' "$D/mta.log" | sort | uniq -c | sort -rn | head -5 || true
