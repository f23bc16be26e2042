#!/usr/bin/env python3
"""Small measuring helpers for bench/compare.sh and bench/deferred_1m.sh.

Standard library only; every subcommand is bounded by a timeout.

  free-port IP                       a free TCP port on IP
  banner IP PORT TIMEOUT             wait for a 220 banner; print the epoch time it came
  busy                               busy CPU seconds of the whole machine (/proc/stat)
  wait-idle MAX_BUSY SECS TIMEOUT    wait until the machine used < MAX_BUSY cores for SECS
                                     seconds in a row; print seconds waited and load average
  cpu PID [--tree]                   CPU seconds of PID (utime+stime, plus reaped children);
                                     --tree adds its live descendants (Postfix's master)
  hwm PID                            VmHWM and VmRSS of PID in KiB
  run OUT -- CMD ...                 run CMD, write {start,end,wall,user,sys,rc} to OUT
  waitcount FILE N STALL OUT         follow smtp-sink -c output in FILE until its message
                                     counter reaches N (or does not move for STALL s);
                                     write {count,reached,t_last,...} to OUT
  sample PID OUT [--tree] [--sink IP:PORT] [--interval S]
                                     sample RSS of PID (and descendants) until PID exits
                                     or SIGTERM; write peaks and the local addresses of
                                     connections to the sink to OUT
  metric URL NAME                    sum of a Prometheus metric's samples
  row RUNDIR RESULTS                 turn a run directory's measurements into one JSON
                                     line in RESULTS and print it as a table row
  summary RESULTS                    the final table and ratios
"""
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HZ = os.sysconf("SC_CLK_TCK")


# ---- /proc -------------------------------------------------------------------

def proc_stat(pid):
    """(ppid, state, utime, stime, cutime, cstime) in seconds, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("latin-1")
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    state = rest[0]
    ppid = int(rest[1])
    ut, st, cut, cst = (int(x) / HZ for x in rest[11:15])
    return ppid, state, ut, st, cut, cst


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def descendants(root):
    children = {}
    for pid in all_pids():
        s = proc_stat(pid)
        if s:
            children.setdefault(s[0], []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def cpu_of(pid, tree=False):
    s = proc_stat(pid)
    if not s:
        return None
    total = sum(s[2:6])
    if tree:
        for c in descendants(pid):
            cs = proc_stat(c)
            if cs:
                total += sum(cs[2:6])
    return total


def status_kb(pid, keys=("VmHWM", "VmRSS")):
    out = {k: 0 for k in keys}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k = line.split(":", 1)[0]
                if k in out:
                    out[k] = int(line.split()[1])
    except OSError:
        return None
    return out


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def busy_seconds():
    with open("/proc/stat") as f:
        parts = f.readline().split()
    # user nice system idle iowait irq softirq steal guest guest_nice
    v = [int(x) for x in parts[1:]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return busy / HZ


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def sink_peers(ip, port):
    """Local addresses of established TCP connections to ip:port."""
    want = "%08X:%04X" % (int.from_bytes(socket.inet_aton(ip), "little"), port)
    peers = set()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                p = line.split()
                if p[2] == want and p[3] == "01":
                    a, _ = p[1].split(":")
                    peers.add(socket.inet_ntoa(int(a, 16).to_bytes(4, "little")))
    except OSError:
        pass
    return peers


# ---- subcommands -------------------------------------------------------------

def cmd_free_port(ip):
    s = socket.socket()
    s.bind((ip, 0))
    print(s.getsockname()[1])
    s.close()


def cmd_banner(ip, port, timeout):
    deadline = time.time() + float(timeout)
    while time.time() < deadline:
        try:
            with socket.create_connection((ip, int(port)), timeout=2) as s:
                s.settimeout(5)
                data = s.recv(512)
                t = time.time()
                if data.startswith(b"220"):
                    try:
                        s.sendall(b"QUIT\r\n")
                        s.recv(512)
                    except OSError:
                        pass
                    print(f"{t:.3f}")
                    return 0
        except OSError:
            pass
        time.sleep(0.02)
    return 1


def cmd_wait_idle(max_busy, secs, timeout):
    max_busy, secs, timeout = float(max_busy), int(secs), float(timeout)
    t0 = time.time()
    quiet = 0
    last = busy_seconds()
    while time.time() - t0 < timeout:
        time.sleep(1)
        now = busy_seconds()
        quiet = quiet + 1 if now - last < max_busy else 0
        last = now
        if quiet >= secs:
            break
    state = "idle" if quiet >= secs else "busy(timeout)"
    print(f"{time.time() - t0:.0f} {state} load={loadavg().replace(' ', ',')}")


def cmd_run(out, argv):
    start = time.time()
    p = subprocess.Popen(argv)
    _, status, ru = os.wait4(p.pid, 0)
    end = time.time()
    rc = os.waitstatus_to_exitcode(status)
    res = dict(start=start, end=end, wall=end - start, user=ru.ru_utime, sys=ru.ru_stime, rc=rc)
    with open(out, "w") as f:
        json.dump(res, f)
    return 0


MESG = re.compile(rb"mesg=(\d+)\r")


def sink_count(path):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 256))
            tail = f.read()
    except OSError:
        return 0
    found = MESG.findall(tail)
    return int(found[-1]) if found else 0


def cmd_waitcount(path, n, stall, out, interval=0.02):
    n, stall = int(n), float(stall)
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    count, t_last, t_move = 0, None, time.time()
    t_first = None
    status = "stalled"
    while not stop["flag"]:
        c = sink_count(path)
        now = time.time()
        if c != count:
            if t_first is None and c > 0:
                t_first = now
            count, t_last, t_move = c, now, now
        if count >= n:
            status = "complete"
            break
        if now - t_move > stall:
            break
        time.sleep(interval)
    if stop["flag"]:
        status = "stopped"
    with open(out, "w") as f:
        json.dump(dict(count=count, wanted=n, status=status, t_last=t_last, t_first=t_first), f)
    return 0


def cmd_sample(pid, out, tree=False, sink=None, interval=0.5):
    pid, interval = int(pid), float(interval)
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    peak_sum_rss = 0
    peak_sum_pss = 0
    peak_proc = (0, "", 0)  # (VmHWM kB, comm, pid)
    max_procs = 0
    peers = set()
    sip, sport = (sink.rsplit(":", 1)[0], int(sink.rsplit(":", 1)[1])) if sink else (None, None)
    samples = 0
    while not stop["flag"]:
        if not os.path.exists(f"/proc/{pid}"):
            break
        pids = [pid] + (descendants(pid) if tree else [])
        total = total_pss = 0
        for p in pids:
            st = status_kb(p)
            if not st:
                continue
            total += st["VmRSS"]
            if tree:
                total_pss += pss_kb(p)
            if st["VmHWM"] > peak_proc[0]:
                peak_proc = (st["VmHWM"], comm(p), p)
        peak_sum_rss = max(peak_sum_rss, total)
        peak_sum_pss = max(peak_sum_pss, total_pss)
        max_procs = max(max_procs, len(pids))
        if sip:
            peers |= sink_peers(sip, sport)
        samples += 1
        time.sleep(interval)
    with open(out, "w") as f:
        json.dump(dict(peak_sum_rss_kb=peak_sum_rss, peak_sum_pss_kb=peak_sum_pss, peak_proc_hwm_kb=peak_proc[0],
                       peak_proc=peak_proc[1], max_procs=max_procs, peers=sorted(peers),
                       samples=samples), f)
    return 0


def scrape_all(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if m:
            out.append((m.group(1), m.group(2) or "", float(m.group(3))))
    return out


def pick(samples, name, label=None):
    """Sum of the samples of `name` (whose labels contain `label`, e.g. 'result="deferred"')."""
    vals = [v for n, l, v in samples if n == name and (label is None or label in l)]
    return sum(vals) if vals else None


def scrape(url, name, label=None):
    return pick(scrape_all(url), name, label)


def cmd_metric(url, name, label=None):
    if label and "=" in label and '"' not in label:
        k, v = label.split("=", 1)
        label = f'{k}="{v}"'
    try:
        v = scrape(url, name, label)
    except OSError:
        return 1
    if v is None:
        return 1
    print(int(v) if v == int(v) else v)
    return 0


def cmd_watch(args):
    """watch PID METRICS_URL OUT [--sink FILE] [--until-sink N] [--until-empty]
             [--stall S] [--timeout S] [--every S] [--label TEXT]

    Every second: the daemon's VmRSS/VmHWM and CPU, mta_spool_messages,
    mta_queue_active, mta_messages_received_total, delivered and deferred
    attempts, and the sink's counter. Prints a line every --every seconds and
    the timeline to OUT.jsonl; at the end a summary to OUT. Ends on SIGTERM,
    when the daemon exits, when --until-sink N / --until-empty are met, when
    nothing moved for --stall s, or after --timeout s."""
    pid, url, out = int(args[0]), args[1], args[2]

    def opt(name, default=None, conv=str):
        return conv(args[args.index(name) + 1]) if name in args else default
    sink = opt("--sink")
    until_sink = opt("--until-sink", None, int)
    until_empty = "--until-empty" in args
    stall = opt("--stall", 0, float)
    timeout = opt("--timeout", 0, float)
    every = opt("--every", 10, float)
    label = opt("--label", "")
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    t0 = time.time()
    peak_rss = peak_hwm = 0
    last_print = 0
    last_sig, t_move = None, t0
    t_sink_done = t_empty = None
    reason = "stopped"
    cpu0 = cpu_of(pid) or 0
    rows = []
    tl = open(out + ".jsonl", "w")
    while True:
        now = time.time()
        st = status_kb(pid)
        if st is None:
            reason = "daemon exited"
            break
        peak_rss, peak_hwm = max(peak_rss, st["VmRSS"]), max(peak_hwm, st["VmHWM"])
        try:
            samples = scrape_all(url)
        except OSError:
            samples = []
        row = dict(t=round(now - t0, 2), rss_mb=round(st["VmRSS"] / 1024), hwm_mb=round(st["VmHWM"] / 1024),
                   cpu_s=round((cpu_of(pid) or 0) - cpu0, 2),
                   spool=pick(samples, "mta_spool_messages"),
                   active=pick(samples, "mta_queue_active"),
                   received=pick(samples, "mta_messages_received_total"),
                   delivered=pick(samples, "mta_deliveries_total", 'result="delivered"'),
                   deferred=pick(samples, "mta_deliveries_total", 'result="deferred"'),
                   conns=pick(samples, "mta_delivery_connections"))
        if sink:
            row["sink"] = sink_count(sink)
        rows.append(row)
        tl.write(json.dumps(row) + "\n")
        tl.flush()
        sig = (row["spool"], row["received"], row["delivered"], row["deferred"], row.get("sink"))
        if sig != last_sig:
            last_sig, t_move = sig, now
        if until_sink is not None and t_sink_done is None and row.get("sink", 0) >= until_sink:
            t_sink_done = now
        if until_empty and t_empty is None and row["spool"] == 0:
            t_empty = now
        if now - last_print >= every:
            last_print = now

            def i(x):
                return "-" if x is None else int(x)
            print(f"  {label}t={row['t']:>6.0f}s spool={i(row['spool'])} active={i(row['active'])} "
                  f"received={i(row['received'])} delivered={i(row['delivered'])} "
                  f"deferred={i(row['deferred'])} sink={row.get('sink', '-')} conns={i(row['conns'])} "
                  f"rss={row['rss_mb']}MB hwm={row['hwm_mb']}MB cpu={row['cpu_s']}s", flush=True)
        done_sink = until_sink is None or t_sink_done is not None
        done_empty = not until_empty or t_empty is not None
        if (until_sink is not None or until_empty) and done_sink and done_empty:
            reason = "done"
            break
        if stop["flag"]:
            break
        if stall and now - t_move > stall:
            reason = f"stalled {stall:.0f}s"
            break
        if timeout and now - t0 > timeout:
            reason = "timeout"
            break
        time.sleep(max(0.0, 1.0 - (time.time() - now)))
    tl.close()
    with open(out, "w") as f:
        json.dump(dict(t0=t0, end=time.time(), reason=reason, peak_rss_kb=peak_rss,
                       peak_hwm_kb=peak_hwm, t_sink_done=t_sink_done, t_empty=t_empty,
                       last=rows[-1] if rows else None), f)
    return 0


# ---- results -----------------------------------------------------------------

def read_vals(path):
    vals = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                vals[k] = v
    return vals


def fnum(v, default=None):
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


HEADER = ("size   path         msgs  accept/s deliv/s  inj_s  e2e_s  cpu_s  us/msg "
          "rss_MB(peak)             src_cpu sink_cpu other_cpu idle_wait  peers / notes")


def cmd_row(rundir, results):
    v = read_vals(os.path.join(rundir, "vals"))
    src = json.load(open(os.path.join(rundir, "source.json")))
    cnt = json.load(open(os.path.join(rundir, "count.json")))
    samp = {}
    if os.path.exists(os.path.join(rundir, "sample.json")):
        samp = json.load(open(os.path.join(rundir, "sample.json")))
    n = int(v["n"])
    t0 = src["start"]
    inj = src["wall"]
    delivered = cnt["count"]
    complete = cnt["status"] == "complete" and delivered == n
    t_end = cnt["t_last"] if cnt["t_last"] else None
    if v["path"] == "ceiling":
        # the sink answers each "." before smtp-source sends on, so the source's
        # end is when the last message was at the sink (the counter's poll is coarser)
        t_end = src["end"] if complete else t_end
    e2e = (t_end - t0) if (t_end and complete) else None
    mta_cpu = None
    if v.get("cpu0") and v.get("cpu1"):
        mta_cpu = fnum(v["cpu1"]) - fnum(v["cpu0"])
    sink_cpu = fnum(v.get("sink_cpu1"), 0) - fnum(v.get("sink_cpu0"), 0)
    src_cpu = src["user"] + src["sys"]
    busy = fnum(v.get("busy1"), 0) - fnum(v.get("busy0"), 0)
    other = busy - src_cpu - sink_cpu - (mta_cpu or 0)
    rec = dict(size=int(v["size"]), path=v["path"], n=n, sessions=int(v["sessions"]),
               accept_rate=n / inj if inj > 0 else None,
               delivered_rate=(n / e2e) if e2e else None,
               inject_s=inj, e2e_s=e2e, delivered=delivered, count_status=cnt["status"],
               source_rc=src["rc"], mta_cpu_s=mta_cpu,
               cpu_us_per_msg=(mta_cpu / n * 1e6) if mta_cpu is not None else
               (src_cpu + sink_cpu) / n * 1e6,
               src_cpu_s=src_cpu, sink_cpu_s=sink_cpu, busy_s=busy, other_cpu_s=other,
               rss_hwm_kb=int(v["hwm"]) if v.get("hwm") else
               (samp.get("peak_proc_hwm_kb") if v["path"] == "postfix" else None),
               rss_sum_kb=samp.get("peak_sum_rss_kb"), pss_sum_kb=samp.get("peak_sum_pss_kb"), peak_proc=samp.get("peak_proc"),
               procs=samp.get("max_procs"), peers=samp.get("peers", []),
               idle_wait=v.get("idle", ""), notes=v.get("notes", ""))
    with open(results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(fmt_row(rec), flush=True)


def fmt_size(b):
    return f"{b // 1024}K" if b % 1024 == 0 else f"{b}B"


def fmt_row(r):
    def f(x, spec):
        return format(x, spec) if x is not None else "-"
    if r["path"] == "postfix" and r.get("rss_hwm_kb"):
        rss = (f"{r['rss_hwm_kb'] / 1024:.0f}/{(r.get('pss_sum_kb') or 0) / 1024:.0f}pss/"
               f"{(r.get('rss_sum_kb') or 0) / 1024:.0f}rss({r['procs']}p)")
    elif r["path"].startswith("mta") and r.get("rss_hwm_kb"):
        rss = f"{r['rss_hwm_kb'] / 1024:.0f} VmHWM"
    else:
        rss = "-"
    notes = r.get("notes", "")
    if r["count_status"] != "complete" or r["delivered"] != r["n"]:
        notes += f" INCOMPLETE: sink has {r['delivered']}/{r['n']} ({r['count_status']})"
    if r["source_rc"] != 0:
        notes += f" smtp-source rc={r['source_rc']}"
    cpu_label = f(r["mta_cpu_s"], ".1f") if r["path"] != "ceiling" else "-"
    return (f"{fmt_size(r['size']):<6} {r['path']:<12} {r['n']:<5} {f(r['accept_rate'], '<8.0f')} "
            f"{f(r['delivered_rate'], '<8.0f')} {r['inject_s']:<6.1f} {f(r['e2e_s'], '<6.1f')} "
            f"{cpu_label:<6} {r['cpu_us_per_msg']:<6.0f} {rss:<24} {r['src_cpu_s']:<7.1f} "
            f"{r['sink_cpu_s']:<8.1f} {r['other_cpu_s']:<9.1f} {r['idle_wait']:<10} "
            f"{','.join(r['peers']) or '-'} {notes}").rstrip()


def cmd_summary(results, target_size="5120"):
    recs = [json.loads(line) for line in open(results) if line.strip()]
    if not recs:
        print("no results")
        return 1
    print()
    print("All runs:")
    print(HEADER)
    for r in recs:
        print(fmt_row(r))
    groups = {}
    for r in recs:
        groups.setdefault((r["size"], r["path"]), []).append(r)
    sizes = sorted({r["size"] for r in recs})

    def med(rs, key):
        xs = [r[key] for r in rs if r.get(key) is not None]
        return statistics.median(xs) if xs else None

    print()
    runs = max(len(g) for g in groups.values())
    print("Summary" + (f" (median of {runs} runs)" if runs > 1 else "") +
          ": delivered = end to end, injection start -> last message at the sink")
    print(f"{'size':<6} {'path':<12} {'accept/s':>9} {'deliv/s':>9} {'of ceiling':>10} "
          f"{'CPU-s':>7} {'us/msg':>7} {'peak RSS MB':>12} {'all procs PSS/RSS MB':>21}")
    for s in sizes:
        ceil = med(groups.get((s, "ceiling"), []), "delivered_rate")
        for p in ("ceiling", "postfix", "mta", "mta-pools", "mta-tracking", "mta-dkim",
                  "mta-full"):
            rs = groups.get((s, p))
            if not rs:
                continue
            d = med(rs, "delivered_rate")
            a = med(rs, "accept_rate")
            c = med(rs, "mta_cpu_s")
            u = med(rs, "cpu_us_per_msg")
            h = med(rs, "rss_hwm_kb")
            ps, rsum = med(rs, "pss_sum_kb"), med(rs, "rss_sum_kb")
            allp = f"{ps / 1024:.0f}/{rsum / 1024:.0f}" if (p == "postfix" and ps) else "-"
            frac = f"{d / ceil * 100:.1f}%" if (d and ceil) else "-"
            print(f"{fmt_size(s):<6} {p:<12} {a if a is None else round(a):>9} "
                  f"{d if d is None else round(d):>9} {frac:>10} "
                  f"{'-' if c is None else format(c, '.1f'):>7} "
                  f"{'-' if u is None else format(u, '.0f'):>7} "
                  f"{'-' if h is None else format(h / 1024, '.0f'):>12} {allp:>21}")
    print()
    print("Ratios mta / Postfix (same run):")
    print(f"{'size':<6} {'delivered rate':>15} {'accept rate':>12} {'CPU per msg':>12} "
          f"{'memory':>9}   (memory: mta VmHWM / Postfix peak PSS of all processes)")
    verdict = None
    for s in sizes:
        pf, mt = groups.get((s, "postfix")), groups.get((s, "mta"))
        if not pf or not mt:
            continue

        def ratio(key):
            a, b = med(mt, key), med(pf, key)
            return a / b if (a and b) else None
        rd, ra, rc = ratio("delivered_rate"), ratio("accept_rate"), ratio("cpu_us_per_msg")
        mh, pp = med(mt, "rss_hwm_kb"), med(pf, "pss_sum_kb")
        rr = mh / pp if (mh and pp) else None

        def f(x):
            return f"{x:.2f}x" if x is not None else "-"
        print(f"{fmt_size(s):<6} {f(rd):>15} {f(ra):>12} {f(rc):>12} {f(rr):>9}")
        if str(s) == str(target_size):
            verdict = rd
    sessions = {r["sessions"] for r in recs}
    if verdict is not None:
        ok = verdict >= 2.0
        print(f"\nTarget (5 KB, {','.join(map(str, sorted(sessions)))} sessions): mta delivered rate "
              f">= 2x Postfix: {verdict:.2f}x -> {'PASS' if ok else 'FAIL'}")
    return 0


def cmd_html_message(size, path):
    """A newsletter of about `size` bytes for smtp-source -F: From
    a@src.test, multipart/alternative, a short text part and a
    quoted-printable HTML part with a link every ~500 bytes (&amp; in the
    query strings), LF line ends (smtp-source adds the CR)."""
    import email.charset
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText
    size = int(size)
    blocks, i = [], 0
    while sum(len(b) for b in blocks) < size - 1200:
        blocks.append(f'<tr><td style="padding:8px;font-family:Arial">Offer {i}: a paragraph of '
                      f'newsletter text that goes on for a while to look like real copy, with '
                      f'<a href="https://shop.example.com/p/{i}?utm_source=news&amp;utm_medium='
                      f'email&amp;id={i}">a link to item {i}</a> in it.</td></tr>\n')
        i += 1
    html = ("<html><body><table>\n" + "".join(blocks) +
            '</table><p><a href="mailto:help@src.test">help</a></p></body></html>\n')
    m = MIMEMultipart("alternative")
    m["From"] = "News <a@src.test>"
    m["To"] = "b@dst.test"
    m["Subject"] = "This week's offers"
    m.attach(MIMEText("This week's offers: see the HTML part.\n", "plain", "utf-8"))
    cs = email.charset.Charset("utf-8")
    cs.body_encoding = email.charset.QP
    m.attach(MIMEText(html, "html", cs))
    with open(path, "w") as f:
        f.write(m.as_string())
    return 0


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "free-port":
        return cmd_free_port(args[0])
    if cmd == "banner":
        return cmd_banner(*args[:3])
    if cmd == "busy":
        print(f"{busy_seconds():.2f}")
        return 0
    if cmd == "wait-idle":
        return cmd_wait_idle(*args[:3])
    if cmd == "cpu":
        c = cpu_of(int(args[0]), tree="--tree" in args)
        if c is None:
            return 1
        print(f"{c:.2f}")
        return 0
    if cmd == "hwm":
        st = status_kb(int(args[0]))
        if not st:
            return 1
        print(st["VmHWM"], st["VmRSS"])
        return 0
    if cmd == "run":
        i = args.index("--")
        return cmd_run(args[0], args[i + 1:])
    if cmd == "waitcount":
        return cmd_waitcount(*args[:4])
    if cmd == "sample":
        pid, out = args[0], args[1]
        tree = "--tree" in args
        sink = args[args.index("--sink") + 1] if "--sink" in args else None
        iv = float(args[args.index("--interval") + 1]) if "--interval" in args else 0.5
        return cmd_sample(pid, out, tree, sink, iv)
    if cmd == "metric":
        return cmd_metric(*args[:3])
    if cmd == "watch":
        return cmd_watch(args)
    if cmd == "row":
        return cmd_row(args[0], args[1])
    if cmd == "summary":
        return cmd_summary(*args[:2])
    if cmd == "html-message":
        return cmd_html_message(*args[:2])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
