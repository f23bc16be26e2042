"""Helpers for the delivery tests (on top of mtatest and sink).

  delivery_config(routes=..., **kw)  base_config() set up for delivery: short
                                 retries, a test pool on a chosen source IP
  events(m), wait_event(m, pred)  `mta events tail` as parsed JSON
  suppression_list(m)            `mta suppression list --json`
  accounting(path)               the accounting JSON lines
  wait_queue_empty(m, ids)       until `mta queue list` no longer has them
  random_loopback()              an unused-looking 127.x.y.z address
  Dnsmasq(args)                  a real DNS server on a free loopback port
  dns_query(port, name, qtype)   a minimal DNS client (rcode, answers)
  DeliveryTestCase               E2ETestCase + self.sink(), self.dnsmasq(),
                                 self.submit(), assertDelivered()
"""

import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mtatest import _die_with_parent, base_config, run_cli  # noqa: E402

DNSMASQ = "/usr/sbin/dnsmasq"


# --------------------------------------------------------------------------
# config


def delivery_config(routes=None, intervals=("1s",), max_age="1h", source_ip="127.0.0.1",
                    ehlo="o1.mta.test", **shaping):
    """base_config() with `routes` (None: no routes, i.e. MX), retry
    `intervals`/`max_age`, the pool's single IP `source_ip` with EHLO `ehlo`,
    and shaping.default from the keyword arguments."""
    cfg = base_config()
    if routes is None:
        cfg.pop("routes", None)
    else:
        cfg["routes"] = routes
    cfg["retry"] = {"intervals": list(intervals), "max_age": max_age}
    cfg["ip_pools"] = [{"name": "main", "ips": [{"address": source_ip, "ehlo": ehlo}]}]
    if shaping:
        cfg["shaping"] = {"default": dict(shaping)}
    return cfg


def route(domain, *hosts, tls=None):
    r = {"domain": domain, "hosts": list(hosts)}
    if tls:
        r["tls"] = tls
    return r


def random_loopback(prefix=None):
    """A random 127.a.b.c address (a in 64..250), different per call; the
    whole of 127/8 is loopback on Linux, so parallel runs rarely collide."""
    rnd = random.SystemRandom()
    a = prefix if prefix is not None else rnd.randint(64, 250)
    return f"127.{a}.{rnd.randint(1, 254)}.{rnd.randint(1, 254)}"


# --------------------------------------------------------------------------
# daemon state through the CLI


def events(m, after=None):
    """Stored events of daemon m, oldest first, as dicts."""
    args = ["events", "tail", "--config", m.config_path]
    if after:
        args += ["--after", after]
    p = run_cli(*args)
    if p.returncode != 0:
        raise AssertionError(f"events tail exited {p.returncode}: {p.stderr.decode(errors='replace')}")
    return [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]


def events_for(m, msg_id):
    return [e for e in events(m) if e.get("mail", {}).get("messageId") == msg_id]


def wait_events(m, pred, n=1, timeout=20.0):
    """Poll the events until at least n match pred; returns the matches."""
    deadline = time.monotonic() + timeout
    while True:
        got = [e for e in events(m) if pred(e)]
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def ev_type(msg_id, etype):
    return lambda e: e.get("eventType") == etype and e.get("mail", {}).get("messageId") == msg_id


def suppression_list(m):
    p = run_cli("suppression", "list", "--config", m.config_path, "--json")
    if p.returncode != 0:
        raise AssertionError(f"suppression list exited {p.returncode}: {p.stderr.decode(errors='replace')}")
    return [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]


def accounting(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def wait_accounting(path, pred, n=1, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        got = [a for a in accounting(path) if pred(a)]
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def wait_queue_empty(m, ids=None, timeout=20.0):
    """Wait until none of `ids` (None: nothing at all) is in `mta queue list`;
    returns what is still there."""
    deadline = time.monotonic() + timeout
    while True:
        q = m.queue_ids()
        left = q if ids is None else (q & set(ids))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


# --------------------------------------------------------------------------
# DNS


def _free_udp_tcp_port(host="127.0.0.1"):
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = u.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    t.bind((host, port))
                    return port
            except OSError:
                continue
    raise RuntimeError("no port free for both UDP and TCP")


QTYPES = {"A": 1, "MX": 15, "AAAA": 28, "TXT": 16}


def dns_query(port, name, qtype="A", host="127.0.0.1", timeout=1.0):
    """One UDP query; returns (rcode, [(type, rdata bytes)...]) or raises
    socket.timeout."""
    qid = random.randint(0, 0xFFFF)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", QTYPES.get(qtype, qtype) if isinstance(qtype, str) else qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, (host, port))
        while True:
            data, _ = s.recvfrom(4096)
            if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                break
    flags, qd, an = struct.unpack(">HHH", data[2:8])
    rcode = flags & 0xF
    pos = 12

    def skip_name(p):
        while True:
            ln = data[p]
            if ln == 0:
                return p + 1
            if ln & 0xC0 == 0xC0:
                return p + 2
            p += 1 + ln

    for _ in range(qd):
        pos = skip_name(pos) + 4
    answers = []
    for _ in range(an):
        pos = skip_name(pos)
        t, _c, _ttl, rdlen = struct.unpack(">HHIH", data[pos:pos + 10])
        pos += 10
        answers.append((t, data[pos:pos + rdlen]))
        pos += rdlen
    return rcode, answers


class Dnsmasq:
    """dnsmasq in the foreground on 127.0.0.1:<free port>, authoritative-ish
    for *.test (--local=/test/: unknown names are NXDOMAIN).  `args` are
    extra options (--mx-host=..., --host-record=..., --dns-rr=...)."""

    def __init__(self, args, host="127.0.0.1"):
        self.args = list(args)
        self.host = host
        self.port = None
        self.proc = None
        self.log = b""

    def start(self, timeout=10.0):
        if not os.access(DNSMASQ, os.X_OK):
            import unittest
            raise unittest.SkipTest("dnsmasq not installed")
        last = ""
        for _ in range(10):
            self.port = _free_udp_tcp_port(self.host)
            cmd = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                   f"--listen-address={self.host}", "--bind-interfaces", f"--port={self.port}",
                   "--pid-file=", "--local=/test/", "--log-queries", "--log-facility=-",
                   *self.args]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_die_with_parent)
            self._reader = threading.Thread(target=self._drain, daemon=True)
            self._reader.start()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    dns_query(self.port, "probe.test", "A", host=self.host, timeout=0.3)
                    return self
                except (socket.timeout, OSError):
                    time.sleep(0.05)
            self._reader.join(2)
            last = self.log.decode(errors="replace")
            self.stop()
            if "already in use" not in last:
                break
        raise RuntimeError(f"dnsmasq did not start: {last[-2000:]}")

    def _drain(self):
        p = self.proc
        for line in iter(p.stdout.readline, b""):
            self.log += line

    def stop(self):
        p = self.proc
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if p is not None and p.stdout:
            try:
                p.stdout.close()
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def server(self):
        return f"{self.host}:{self.port}"


# --------------------------------------------------------------------------
# unittest glue

from mtatest import E2ETestCase, make_message  # noqa: E402
from sink import Sink  # noqa: E402


class DeliveryTestCase(E2ETestCase):
    """E2ETestCase plus sinks and DNS servers that are stopped by cleanup,
    and a one-call submit."""

    def sink(self, host="127.0.0.1", port=0, **kw):
        s = Sink(host, port, **kw)
        s.start()
        self.addCleanup(s.stop)
        return s

    def dnsmasq(self, *args):
        d = Dnsmasq(args)
        d.start()
        self.addCleanup(d.stop)
        return d

    def submit(self, m, rcpts=("rcpt@example.test",), data=None, mail_from="sender@src.test",
               **msg):
        """Submit one message over SMTP; returns its id (asserts the 250)."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        if data is None:
            msg.setdefault("to", rcpts[0])
            data = make_message(**msg)
        return self.assertAccepted(m.send(data, mail_from=mail_from, rcpts=list(rcpts)))

    def assertDelivered(self, sink, n, timeout=20.0, pred=None):
        got = sink.wait_for(n, timeout, pred)
        self.assertGreaterEqual(len(got), n, f"sink got {len(got)} of {n} messages in {timeout}s; "
                                             f"transactions: {sink.transactions[-5:]}")
        return got
