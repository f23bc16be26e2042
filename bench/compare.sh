#!/usr/bin/env bash
# Peer comparison: the loopback ceiling, Postfix as a relay and mta as a relay,
# same messages, same sessions, all in one run, printed as a table with ratios.
#
#   bash bench/compare.sh [--messages N] [--large-messages M] [--sessions C]
#                         [--sizes "1024 5120 102400"] [--mta PATH] [--runs R]
#                         [--paths "ceiling postfix mta"] [--workdir DIR] [--keep]
#                         [--html]
#
# --paths may also name mta-pools: mta with 4 sending IPs in 2 pools (pool a
# with an hourly ceiling of N/4+1 per IP, overflowing to pool b), to compare
# the router and limiter path with the single-IP one; mta-tracking: open and
# click tracking on (every HTML link rewritten per recipient); mta-dkim:
# every message DKIM-signed twice (RSA-2048 + Ed25519, keys made with `mta
# dkim keygen` in the run dir); mta-full: tracking, List-Unsubscribe and both
# signatures.
# --html: every path sends the same newsletter of about SIZE bytes
# (multipart/alternative, quoted-printable HTML, a link every ~500 bytes;
# benchlib.py html-message) with smtp-source -F instead of -l's plain text.
#
#   N   messages per run for sizes up to 20 KB            [20000]
#   M   messages per run for larger sizes (100 KB)        [N/4]
#   C   concurrent smtp-source sessions, and the relays' connection limit
#       to the sink                                        [50]
#   R   repeat every (size, path) R times; the summary uses medians  [1]
#   --mta   the daemon to measure [$MTA_BIN, else build/mta/app/mta; built with
#           cmake+ninja into build/ if missing]
#   --workdir  where the temp dir goes (Postfix queue, mta spool): this disk is
#           the one measured                                [/var/tmp]
#   IDLE_MAX_BUSY / IDLE_SECS / IDLE_TIMEOUT (env): before each run wait until
#           the machine used < IDLE_MAX_BUSY cores for IDLE_SECS seconds in a row,
#           at most IDLE_TIMEOUT s                          [0.3 / 3 / 120]
#   STALL (env): give up on a run when the sink count has not moved for STALL s [60]
#
# Needs root (installs Postfix if missing, runs a private Postfix instance).
# Loopback only. Everything started here is stopped by PID at exit.
#
# What runs, per size, in this order (every run with a fresh sink, queue, spool):
#  (a) ceiling:  smtp-source -> smtp-sink 127.0.0.2:SINK directly.
#  (b) postfix:  smtp-source -> Postfix smtpd 127.0.0.1:P -> queue (this disk,
#      fsync'd) -> smtp(8) from 127.0.0.3 -> smtp-sink.  A private instance in
#      the temp dir (own config_directory, queue_directory, data_directory),
#      main.cf as shared/research/peer-bench.md section 2: relayhost
#      [127.0.0.2]:SINK, smtp_bind_address 127.0.0.3, no DNS,
#      smtp_destination_concurrency_limit = C, default_process_limit 200,
#      chroot n, log to a file via postlogd (Postfix keeps logging ~5 lines
#      per message, as a production MTA does).
#  (c) mta:      smtp-source -> mta 127.0.0.1:P -> RocksDB spool (this disk,
#      synced before 250) -> pool IP 127.0.0.3 -> smtp-sink; route "*" to the
#      sink, shaping max_connections C, max_messages_per_connection 1000,
#      tls none (Postfix's default for smtp(8) too), log_level warn: mta's
#      per-message info lines are OFF, unlike Postfix's.
#
# Load:  smtp-source -s C -m N -l SIZE -f a@src.test -t b@dst.test -M src.test -d
#        (-d: every session keeps its connection for all its messages).
# Sink:  smtp-sink -4 -u nobody -c -m 1024 127.0.0.2:SINK 1024 > sink.out
#        -c makes it write "sess=.. quit=.. mesg=N\r" after every message; a
#        small poller (benchlib.py waitcount) reads the last 256 bytes of that
#        file every 20 ms and notes the time the counter reaches N. Cheap (no
#        dump of message bodies, no per-message process), robust (the sink
#        itself counts, after the final "." of each message), and a fresh sink
#        per run starts from 0, so stale mail of an earlier run cannot count.
#
# Measured per run:
#  accept/s   N / smtp-source wall time.
#  deliv/s    N / (injection start -> sink counter reaches N): end to end.
#             For the ceiling the source's end is used (the sink answers every
#             "." before the source goes on).
#  cpu_s      CPU seconds of the MTA under test between injection start and the
#             last delivery.  mta: /proc/PID/stat utime+stime.  Postfix: the
#             master's utime+stime+cutime+cstime (cutime/cstime hold every child
#             that has exited and been reaped, e.g. smtp processes retiring after
#             max_use) plus utime+stime of its live children: nothing is lost
#             between samples.  us/msg = cpu_s / N (ceiling: source+sink).
#  rss        mta: VmHWM of the daemon.  Postfix: a sum of per-process peaks is
#             meaningless (shared pages), so, sampled every 0.5 s over all its
#             processes: the largest VmHWM of one process / the largest sum of
#             PSS (shared pages split among their users: the real footprint) /
#             the largest sum of VmRSS (counts shared libraries once per
#             process), with the largest number of processes seen.
#  src_cpu, sink_cpu   of smtp-source (rusage) and smtp-sink (/proc).
#  other_cpu  busy CPU of the whole machine (/proc/stat) during the run minus
#             source, sink and MTA: other work on this shared box, plus the
#             pollers (small). Compare runs only when it is small.
#  peers      source addresses of the connections seen at the sink (127.0.0.3
#             for both relays).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
PY=/usr/bin/python3
LIB="$PY $here/benchlib.py"

MESSAGES=20000
LARGE=""
SESSIONS=50
SIZES="1024 5120 102400"
MTA_BIN=${MTA_BIN:-}
RUNS=1
PATHS="ceiling postfix mta"
WORKDIR=${WORKDIR:-/var/tmp}
KEEP=0
HTML=0
IDLE_MAX_BUSY=${IDLE_MAX_BUSY:-0.3}
IDLE_SECS=${IDLE_SECS:-3}
IDLE_TIMEOUT=${IDLE_TIMEOUT:-120}
STALL=${STALL:-60}

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case $1 in
    --messages) MESSAGES=$2; shift 2 ;;
    --large-messages) LARGE=$2; shift 2 ;;
    --sessions) SESSIONS=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --mta) MTA_BIN=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --paths) PATHS=$2; shift 2 ;;
    --workdir) WORKDIR=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --html) HTML=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done
[ -n "$LARGE" ] || LARGE=$(( MESSAGES / 4 > 0 ? MESSAGES / 4 : 1 ))

[ "$(id -u)" = 0 ] || { echo "run as root (Postfix instance, apt-get)" >&2; exit 2; }

# ---- prerequisites -------------------------------------------------------------
if ! [ -x /usr/sbin/smtp-source ] || ! [ -x /usr/sbin/postfix ]; then
  echo "installing postfix (no system configuration, no service) ..."
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
fi
for t in /usr/sbin/smtp-source /usr/sbin/smtp-sink /usr/sbin/postfix; do
  [ -x "$t" ] || { echo "missing $t" >&2; exit 2; }
done
case " $PATHS " in *" mta "*)
  if [ -z "$MTA_BIN" ]; then
    MTA_BIN=$root/build/mta/app/mta
    if ! [ -x "$MTA_BIN" ]; then
      echo "building mta (Release) into $root/build ..."
      cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
      ninja -C "$root/build" mta >/dev/null
    fi
  fi
  [ -x "$MTA_BIN" ] || { echo "no mta binary at $MTA_BIN" >&2; exit 2; } ;;
esac
# 127.0.0.2 and 127.0.0.3 are loopback on Linux (all of 127/8 is); check anyway.
for ip in 127.0.0.2 127.0.0.3; do
  $PY -c "import socket,sys; s=socket.socket(); s.bind(('$ip',0))" ||
    { echo "cannot bind $ip" >&2; exit 2; }
done

work=$(mktemp -d "$WORKDIR/mta-compare.XXXXXX")
chmod 755 "$work"   # Postfix daemons (user postfix) must reach their queue
results=$work/results.jsonl

# ---- process bookkeeping -------------------------------------------------------
sink_pid="" mta_pid="" pf_etc="" pf_queue="" bg_pids=""

stop_pid() {  # PID [seconds]: TERM, wait, KILL; only our own children
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

# Processes of the private Postfix instance: every Postfix daemon (master
# included) runs with its queue directory as working directory.
pf_pids() {
  local d p
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$(readlink "$d/cwd" 2>/dev/null)" = "$pf_queue" ] && echo "$p"
  done
  return 0
}

pf_stop() {
  [ -n "$pf_etc" ] || return 0
  postfix -c "$pf_etc" stop >/dev/null 2>&1 || true
  local left
  for _ in $(seq 1 100); do
    left=$(pf_pids)
    [ -z "$left" ] && break
    sleep 0.1
  done
  left=$(pf_pids)
  if [ -n "$left" ]; then
    echo "  Postfix processes left after 'postfix stop': $left; terminating them" >&2
    for p in $left; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 1
    for p in $(pf_pids); do kill -KILL "$p" 2>/dev/null || true; done
  fi
  pf_etc="" pf_queue=""
}

cleanup() {
  local p
  for p in $bg_pids; do stop_pid "$p" 2; done
  stop_pid "$mta_pid" 30
  pf_stop
  stop_pid "$sink_pid" 5
  if [ "$KEEP" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the pieces ----------------------------------------------------------------
start_sink() {  # RUNDIR PORT
  /usr/sbin/smtp-sink -4 -u nobody -c -m 1024 "127.0.0.2:$2" 1024 >"$1/sink.out" 2>"$1/sink.err" &
  sink_pid=$!
  $LIB banner 127.0.0.2 "$2" 10 >/dev/null || { echo "smtp-sink did not start" >&2; cat "$1/sink.err" >&2; exit 1; }
  # the banner probe is one session, no message: the counter stays at mesg=0
}

pf_start() {  # RUNDIR INPORT SINKPORT
  local d=$1/postfix
  mkdir -p "$d/etc" "$d/queue" "$d/data"
  chown postfix "$d/data"   # master.lock etc.; owned by mail_owner
  pf_etc=$d/etc pf_queue=$d/queue
  cat >"$d/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
maillog_file = $d/maillog
myhostname = relay.bench.test
mydomain = bench.test
mydestination =
local_recipient_maps =
relay_domains =
alias_maps =
alias_database =
local_transport = error:local delivery disabled
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
relayhost = [127.0.0.2]:$3
smtp_bind_address = 127.0.0.3
smtp_dns_support_level = disabled
smtp_host_lookup = native
default_process_limit = 200
smtp_destination_concurrency_limit = $SESSIONS
EOF
  cat >"$d/etc/master.cf" <<EOF
127.0.0.1:$2 inet n       -       n       -       -       smtpd
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
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
  # `postfix check` creates the queue's subdirectories with their owners
  postfix -c "$d/etc" check >"$1/postfix-check.log" 2>&1 || { cat "$1/postfix-check.log" >&2; exit 1; }
  postfix -c "$d/etc" start >"$1/postfix-start.log" 2>&1 || { cat "$1/postfix-start.log" >&2; exit 1; }
  $LIB banner 127.0.0.1 "$2" 20 >/dev/null || { echo "Postfix smtpd did not answer" >&2; tail "$d/maillog" >&2; exit 1; }
  mpid=$(tr -d ' ' <"$d/queue/pid/master.pid")
}

pf_queue_count() {  # files in Postfix's queues
  find "$pf_queue/incoming" "$pf_queue/active" "$pf_queue/deferred" "$pf_queue/maildrop" \
    "$pf_queue/hold" -type f 2>/dev/null | wc -l
}

mta_start() {  # RUNDIR INPORT SINKPORT [pools|tracking|dkim|full]
  local d=$1
  metrics_port=$($LIB free-port 127.0.0.1)
  # "pools": 4 IPs in 2 pools. Pool a's IPs have an hourly ceiling of a
  # quarter of the run, so the router and limiter work for every message
  # and half of the mail overflows to pool b.
  local pools="  - name: bench
    ips:
      - { address: 127.0.0.3, ehlo: relay.bench.test }" hourly=0
  if [ "${4:-}" = pools ]; then
    hourly=$(( N_RUN / 4 + 1 ))
    pools="  - name: bench
    overflow: \"pool:b\"
    ips:
      - { address: 127.0.0.3, ehlo: r3.bench.test }
      - { address: 127.0.0.4, ehlo: r4.bench.test }
  - name: b
    ips:
      - { address: 127.0.0.5, ehlo: r5.bench.test }
      - { address: 127.0.0.6, ehlo: r6.bench.test }"
  fi
  # Per-message work: tracking (no listener needed to make the links) and
  # DKIM keys for src.test, the sender domain of every message.
  local set_extra="" extra=""
  case "${4:-}" in
    tracking|full)
      set_extra=", tracking: { opens: true, clicks: true }"
      extra="tracking: { base_url: \"https://t.bench.test\", secret: \"bench-tracking-secret\" }" ;;
  esac
  [ "${4:-}" = full ] && set_extra="$set_extra, list_unsubscribe: { enabled: true }"
  case "${4:-}" in
    dkim|full)
      "$MTA_BIN" dkim keygen --domain src.test --selector r --out "$d/rsa.pem" >/dev/null
      "$MTA_BIN" dkim keygen --domain src.test --selector e --algorithm ed25519-sha256 \
        --out "$d/ed.pem" >/dev/null
      extra="$extra
dkim:
  - { domain: src.test, selector: r, private_key: \"$d/rsa.pem\" }
  - { domain: src.test, selector: e, private_key: \"$d/ed.pem\", algorithm: ed25519-sha256 }" ;;
  esac
  cat >"$d/mta.yaml" <<EOF
hostname: relay.bench.test
spool_dir: "$d/spool"
log_level: warn
smtp:
  listeners:
    - listen: "127.0.0.1:$2"
  max_connections: 2000
  max_connections_per_ip: 1000
metrics:
  listen: "127.0.0.1:$metrics_port"
ip_pools:
$pools
configuration_sets:
  - { name: bench, ip_pool: bench$set_extra }
default_configuration_set: bench
$extra
routes:
  - { domain: "*", hosts: ["127.0.0.2:$3"], tls: none }
shaping:
  default: { max_connections: $SESSIONS, max_messages_per_connection: 1000,
             max_messages_per_hour: $hourly }
EOF
  "$MTA_BIN" check-config --config "$d/mta.yaml" >/dev/null
  "$MTA_BIN" serve --config "$d/mta.yaml" 2>"$d/mta.log" &
  mta_pid=$!
  mpid=$mta_pid
  $LIB banner 127.0.0.1 "$2" 30 >/dev/null || { echo "mta did not serve SMTP" >&2; tail "$d/mta.log" >&2; exit 1; }
}

seq_no=0
run_one() {  # PATH SIZE N
  local path=$1 size=$2 n=$3
  seq_no=$((seq_no + 1))
  local run; run=$work/$(printf '%02d' $seq_no)-$size-$path
  mkdir -p "$run"
  local idle; idle=$($LIB wait-idle "$IDLE_MAX_BUSY" "$IDLE_SECS" "$IDLE_TIMEOUT")
  local sink_port in_port target notes="" tree=""
  sink_port=$($LIB free-port 127.0.0.2)
  in_port=$($LIB free-port 127.0.0.1)
  start_sink "$run" "$sink_port"
  mpid=""
  case $path in
    ceiling) target=127.0.0.2:$sink_port ;;
    postfix) pf_start "$run" "$in_port" "$sink_port"; target=127.0.0.1:$in_port; tree=--tree ;;
    mta) mta_start "$run" "$in_port" "$sink_port"; target=127.0.0.1:$in_port ;;
    mta-pools) N_RUN=$n mta_start "$run" "$in_port" "$sink_port" pools; target=127.0.0.1:$in_port ;;
    mta-tracking|mta-dkim|mta-full)
      mta_start "$run" "$in_port" "$sink_port" "${path#mta-}"; target=127.0.0.1:$in_port ;;
  esac
  local spid=""
  if [ -n "$mpid" ]; then
    $LIB sample "$mpid" "$run/sample.json" $tree --sink "127.0.0.2:$sink_port" &
  else
    $LIB sample "$sink_pid" "$run/sample.json" --sink "127.0.0.2:$sink_port" &
  fi
  spid=$!; bg_pids="$bg_pids $spid"
  {
    echo "path=$path"; echo "size=$size"; echo "n=$n"; echo "sessions=$SESSIONS"
    echo "idle=$(echo "$idle" | cut -d' ' -f1)s"
    if [ -n "$mpid" ]; then echo "cpu0=$($LIB cpu "$mpid" $tree)"; fi
    echo "sink_cpu0=$($LIB cpu "$sink_pid")"
    echo "busy0=$($LIB busy)"
  } >"$run/vals"
  $LIB waitcount "$run/sink.out" "$n" "$STALL" "$run/count.json" &
  local wpid=$!; bg_pids="$bg_pids $wpid"
  # bounded: no run may take longer than this (the stall check usually ends it first)
  local limit=$((600 + n * size / 200000))
  local content=(-l "$size")
  if [ "$HTML" = 1 ]; then
    [ -f "$work/html-$size.eml" ] || $LIB html-message "$size" "$work/html-$size.eml"
    content=(-F "$work/html-$size.eml")
  fi
  $LIB run "$run/source.json" -- timeout "$limit" /usr/sbin/smtp-source -s "$SESSIONS" -m "$n" \
    "${content[@]}" -f a@src.test -t b@dst.test -M src.test -d "$target" 2>"$run/source.err" || true
  wait "$wpid" || true
  {
    if [ -n "$mpid" ]; then echo "cpu1=$($LIB cpu "$mpid" $tree)"; fi
    echo "sink_cpu1=$($LIB cpu "$sink_pid")"
    echo "busy1=$($LIB busy)"
    case $path in mta*) echo "hwm=$($LIB hwm "$mta_pid" | cut -d' ' -f1)" ;; esac
  } >>"$run/vals"
  kill -TERM "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  bg_pids=""
  case $path in
    postfix)
      local q; q=$(pf_queue_count)
      [ "$q" = 0 ] || notes="$notes postfix-queue-left=$q"
      pf_stop ;;
    mta*)
      local left; left=$($LIB metric "http://127.0.0.1:$metrics_port/metrics" mta_spool_messages || echo "?")
      [ "$left" = 0 ] || notes="$notes spool-left=$left"
      local errs; errs=$(grep -c -E '\[(error|critical)\]' "$run/mta.log" || true)
      [ "$errs" = 0 ] || notes="$notes mta-log-errors=$errs"
      stop_pid "$mta_pid" 30; mta_pid="" ;;
  esac
  stop_pid "$sink_pid" 5; sink_pid=""
  if [ -s "$run/source.err" ]; then notes="$notes source-stderr:$(sort "$run/source.err" | uniq -c | sort -rn | head -1 | tr -s ' ' | cut -c1-60)"; fi
  echo "notes=$notes" >>"$run/vals"
  $LIB row "$run" "$results"
}

# ---- the run ---------------------------------------------------------------------
echo "compare: sizes [$SIZES], $SESSIONS sessions, N=$MESSAGES (sizes > 20 KB: $LARGE), runs=$RUNS, paths [$PATHS]"
echo "host: $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); temp dir $work on $(df -h --output=source,fstype "$work" | tail -1 | xargs)"
echo "postfix $(postconf -d mail_version 2>/dev/null | cut -d' ' -f3)${MTA_BIN:+; mta $MTA_BIN ($("$MTA_BIN" --version 2>/dev/null || echo '?'))}"
echo "mta runs with log_level warn (no per-message log lines); Postfix logs every message to a file (postlogd)."
echo "Before each run: wait until < $IDLE_MAX_BUSY cores busy for ${IDLE_SECS}s (at most ${IDLE_TIMEOUT}s)."
echo
$PY -c "import sys; sys.path.insert(0, '$here'); import benchlib; print(benchlib.HEADER)"
for size in $SIZES; do
  n=$MESSAGES
  [ "$size" -gt 20480 ] && n=$LARGE
  for r in $(seq 1 "$RUNS"); do
    order=$PATHS
    # with repeats, alternate the two relays so that drift hits both alike
    if [ $((r % 2)) = 0 ]; then order=$(echo "$PATHS" | awk '{for(i=1;i<=NF;i++){ if($i=="postfix")$i="mta"; else if($i=="mta")$i="postfix"} print}'); fi
    for p in $order; do run_one "$p" "$size" "$n"; done
  done
done
$LIB summary "$results"
