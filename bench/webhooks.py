#!/usr/bin/python3
"""Webhook publishing benchmark (loopback only).

    /usr/bin/python3 bench/webhooks.py [--mta PATH] [--messages N] [--sessions C]
                                       [--batch B] [--in-flight F] [--workdir DIR]

Two measurements:

1. Publish rate: N messages are delivered while the webhook receiver is
   down, so their 2N events (Send + Delivery) pile up in the destination's
   queue on disk. The daemon is stopped, the receiver started, the daemon
   started again (no backoff left in memory), and we time how long it takes
   the receiver to get all 2N events: events published per second.
2. Delivery rate with webhooks off vs on: N messages, smtp-source (Postfix)
   -> mta -> smtp-sink (Postfix), timed until the sink has all of them;
   "on" also has every event POSTed to the receiver while delivering. Also
   reports mta's CPU seconds per run.

The receiver is a small asyncio HTTP/1.1 server in its own process
(keep-alive, answers 200, counts events, checks one signature in 100).
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from mtatest import free_port, to_yaml  # noqa: E402

SECRET = "bench-secret"


# ---------------------------------------------------------------- receiver

def receiver_main(port, count_path):
    """Runs in a child process: counts events, writes the count to a file
    every 50 ms."""
    state = {"events": 0, "posts": 0, "bad": 0}

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                ts = sig = ids = ""
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.decode("latin-1").partition(":")
                    k = k.strip().lower()
                    v = v.strip()
                    if k == "content-length":
                        length = int(v)
                    elif k == "x-mta-timestamp":
                        ts = v
                    elif k == "x-mta-signature":
                        sig = v
                    elif k == "x-mta-event-id":
                        ids = v
                body = await reader.readexactly(length)
                if not state["posts"]:
                    state["t_first"] = time.time()
                state["posts"] += 1
                if state["posts"] % 100 == 1:
                    want = hmac.new(SECRET.encode(), ts.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
                    if sig != "sha256=" + want:
                        state["bad"] += 1
                state["events"] += ids.count(",") + 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def report():
        while True:
            with open(count_path + ".tmp", "w") as f:
                json.dump(state, f)
            os.replace(count_path + ".tmp", count_path)
            await asyncio.sleep(0.05)

    async def main():
        srv = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
        asyncio.ensure_future(report())
        async with srv:
            await srv.serve_forever()

    asyncio.run(main())


class Receiver:
    def __init__(self, port, workdir):
        self.port = port
        self.count_path = os.path.join(workdir, f"receiver-{port}.json")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([sys.executable, __file__, "--receiver", str(self.port),
                                      self.count_path])
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("receiver did not start")

    def state(self):
        try:
            with open(self.count_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {"events": 0, "posts": 0, "bad": 0}

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        try:
            os.unlink(self.count_path)
        except OSError:
            pass


# ---------------------------------------------------------------- mta

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


class Daemon:
    def __init__(self, mta, workdir, sink_port, hook_port, batch, in_flight, sessions):
        self.mta = mta
        self.dir = tempfile.mkdtemp(prefix="mta-bench-webhooks-", dir=workdir)
        self.smtp_port = free_port()
        self.metrics_port = free_port()
        self.hook_port = hook_port
        self.cfg = {
            "hostname": "bench.test",
            "log_level": "warn",
            "spool_dir": os.path.join(self.dir, "spool"),
            "smtp": {"listeners": [{"listen": f"127.0.0.1:{self.smtp_port}"}]},
            "metrics": {"listen": f"127.0.0.1:{self.metrics_port}"},
            "ip_pools": [{"name": "main", "ips": [{"address": "127.0.0.3"}]}],
            "configuration_sets": [{"name": "default", "ip_pool": "main"}],
            "routes": [{"domain": "*", "hosts": [f"127.0.0.2:{sink_port}"], "tls": "none"}],
            "shaping": {"default": {"max_connections": sessions,
                                    "max_messages_per_connection": 1000}},
        }
        if hook_port:
            self.cfg["event_destinations"] = [{
                "name": "bench",
                "webhook": {"url": f"http://127.0.0.1:{hook_port}/events", "secret": SECRET,
                            "batch": batch, "max_in_flight": in_flight}}]
            self.cfg["configuration_sets"][0]["event_destinations"] = ["bench"]
        self.path = os.path.join(self.dir, "mta.yaml")
        with open(self.path, "w") as f:
            f.write(to_yaml(self.cfg))
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.dir, "mta.log"), "ab")
        self.proc = subprocess.Popen([self.mta, "serve", "--config", self.path],
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.smtp_port), 0.5) as s:
                    if s.recv(100).startswith(b"220"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mta did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.log.close()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class SmtpSink:
    def __init__(self, workdir):
        self.port = free_port("127.0.0.2")
        self.out = os.path.join(workdir, f"sink-{self.port}.out")
        self.proc = None

    def start(self):
        self.f = open(self.out, "wb")
        self.proc = subprocess.Popen(["/usr/sbin/smtp-sink", "-4", "-u", "nobody", "-c",
                                      "-m", "1024", f"127.0.0.2:{self.port}", "1024"],
                                     stdout=self.f, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        return self

    def count(self):
        import re
        try:
            with open(self.out, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 256))
                found = re.findall(rb"mesg=(\d+)\r", f.read())
                return int(found[-1]) if found else 0
        except OSError:
            return 0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.f.close()
        os.unlink(self.out)


def send(d, n, sessions, size=2048):
    subprocess.run(["/usr/sbin/smtp-source", "-s", str(sessions), "-m", str(n), "-l", str(size),
                    "-f", "a@src.test", "-t", "b@dst.test", "-M", "src.test", "-d",
                    f"127.0.0.1:{d.smtp_port}"], check=True)


def wait_until(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return time.time()
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


# ---------------------------------------------------------------- runs

def publish_rate(args):
    sink = SmtpSink(args.workdir).start()
    port = free_port()
    d = Daemon(args.mta, args.workdir, sink.port, port, args.batch, args.in_flight, args.sessions)
    r = Receiver(port, args.workdir)
    try:
        d.start()
        send(d, args.messages, args.sessions)
        wait_until(lambda: sink.count() >= args.messages, 600, "deliveries")
        time.sleep(1.0)  # the last Delivery events reach the queue
        d.stop()
        r.start()
        t0 = time.time()
        d.start()
        want = 2 * args.messages
        cpu0 = cpu_seconds(d.proc.pid)
        t1 = wait_until(lambda: r.state()["events"] >= want, 600, "events")
        cpu = cpu_seconds(d.proc.pid) - cpu0
        st = r.state()
        # From the first POST the receiver saw (start-up excluded) to the last.
        secs = t1 - st.get("t_first", t0)
        return {"events": want, "seconds": secs, "events_per_s": want / secs,
                "with_startup_s": t1 - t0,
                "posts": st["posts"], "bad_signatures": st["bad"], "mta_cpu_s": cpu}
    finally:
        d.stop()
        r.stop()
        sink.stop()
        d.cleanup()


def delivery_rate(args, webhooks):
    sink = SmtpSink(args.workdir).start()
    port = free_port() if webhooks else None
    r = Receiver(port, args.workdir).start() if webhooks else None
    d = Daemon(args.mta, args.workdir, sink.port, port, args.batch, args.in_flight, args.sessions)
    try:
        d.start()
        cpu0 = cpu_seconds(d.proc.pid)
        t0 = time.time()
        send(d, args.messages, args.sessions)
        t1 = wait_until(lambda: sink.count() >= args.messages, 600, "deliveries")
        res = {"webhooks": webhooks, "messages": args.messages, "seconds": t1 - t0,
               "msgs_per_s": args.messages / (t1 - t0)}
        if webhooks:
            want = 2 * args.messages
            t2 = wait_until(lambda: r.state()["events"] >= want, 600, "events")
            res["events_done_after_s"] = t2 - t0
            res["bad_signatures"] = r.state()["bad"]
        res["mta_cpu_s"] = cpu_seconds(d.proc.pid) - cpu0
        return res
    finally:
        d.stop()
        if r:
            r.stop()
        sink.stop()
        d.cleanup()


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--receiver":
        receiver_main(int(sys.argv[2]), sys.argv[3])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--mta", default=os.environ.get("MTA_BIN", os.path.join(ROOT, "build/mta/app/mta")))
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--in-flight", type=int, default=8)
    ap.add_argument("--workdir", default="/var/tmp")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    print(f"# loadavg before: {os.getloadavg()}", flush=True)
    print(json.dumps({"publish_rate": publish_rate(args)}), flush=True)
    for _ in range(args.runs):
        print(json.dumps({"delivery": delivery_rate(args, False)}), flush=True)
        print(json.dumps({"delivery": delivery_rate(args, True)}), flush=True)


if __name__ == "__main__":
    main()
