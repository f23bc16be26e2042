#!/usr/bin/python3
"""SMTP intake latency: C sessions, each on one persistent connection, each
sending messages back to back; records the time between successive final
250s of a session ("250 to 250": one whole transaction, including the fsync
before the reply) and prints p50/p90/p99/max and the overall rate.

Usage:
    /usr/bin/python3 bench/smtp_latency.py --port 2525 [--host 127.0.0.1]
        [-c SESSIONS] [-n MESSAGES_PER_SESSION | -d SECONDS] [-s SIZE]
        [--no-pipelining] [--json]

  -c  concurrent sessions (threads), default 10
  -n  messages per session, default 500 (ignored with -d)
  -d  run for this many seconds instead of a fixed count
  -s  message size in bytes, default 5120
  By default MAIL, RCPT and DATA go out in one write (PIPELINING, RFC 2920);
  the content follows the 354.
Exit status 1 when any transaction was refused or a session failed.
Standard library only.
"""

import argparse
import json
import socket
import sys
import threading
import time


def read_reply(sock, buf):
    """Read one (multi-line) reply; returns (code, text, rest-of-buffer)."""
    lines = []
    while True:
        while b"\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        line, _, buf = buf.partition(b"\n")
        line = line.rstrip(b"\r")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), b"\n".join(lines).decode(errors="replace"), buf


def make_body(size, n):
    head = (f"From: <bench@src.test>\r\nTo: <sink@dst.test>\r\nSubject: latency {n}\r\n"
            "\r\n").encode()
    line = b"x" * 76 + b"\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


def session(args, idx, stop_at, results, errors):
    intervals = []
    sent = 0
    try:
        s = socket.create_connection((args.host, args.port), timeout=60)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        code, text, buf = read_reply(s, buf)
        if code != 220:
            raise RuntimeError(f"banner {text}")
        s.sendall(f"EHLO lat{idx}.test\r\n".encode())
        code, text, buf = read_reply(s, buf)
        if code != 250:
            raise RuntimeError(f"EHLO {text}")
        data = make_body(args.size, idx) + b".\r\n"
        env = [b"MAIL FROM:<bench@src.test>\r\n", f"RCPT TO:<r{idx}@dst.test>\r\n".encode(), b"DATA\r\n"]
        last = time.monotonic()
        while True:
            if stop_at is not None:
                if time.monotonic() >= stop_at:
                    break
            elif sent >= args.n:
                break
            if args.pipelining:
                s.sendall(b"".join(env))
                codes = []
                for _ in env:
                    code, text, buf = read_reply(s, buf)
                    codes.append((code, text))
            else:
                codes = []
                for cmd in env:
                    s.sendall(cmd)
                    code, text, buf = read_reply(s, buf)
                    codes.append((code, text))
                    if code >= 400:
                        break
            if [c for c, _ in codes] != [250, 250, 354]:
                raise RuntimeError(f"envelope refused: {codes}")
            s.sendall(data)
            code, text, buf = read_reply(s, buf)
            now = time.monotonic()
            if code != 250:
                raise RuntimeError(f"final reply {text}")
            intervals.append(now - last)
            last = now
            sent += 1
        s.sendall(b"QUIT\r\n")
        try:
            read_reply(s, buf)
        except (OSError, ConnectionError):
            pass
        s.close()
    except Exception as e:  # noqa: BLE001 -- report and keep the others going
        errors.append(f"session {idx}: {e}")
    results[idx] = intervals


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-c", "--sessions", type=int, default=10)
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("-d", "--duration", type=float, default=None)
    ap.add_argument("-s", "--size", type=int, default=5120)
    ap.add_argument("--no-pipelining", dest="pipelining", action="store_false")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = ap.parse_args()

    results = [None] * args.sessions
    errors = []
    t0 = time.monotonic()
    stop_at = t0 + args.duration if args.duration else None
    threads = [threading.Thread(target=session, args=(args, i, stop_at, results, errors), daemon=True)
               for i in range(args.sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    # the first interval of a session includes the connection set-up: drop it
    vals = sorted(v for r in results if r for v in r[1:])
    total = sum(len(r) for r in results if r)
    out = {
        "sessions": args.sessions, "size": args.size, "messages": total,
        "seconds": round(wall, 3), "rate": round(total / wall, 1) if wall > 0 else 0,
        "p50_ms": round(pct(vals, 50) * 1000, 2), "p90_ms": round(pct(vals, 90) * 1000, 2),
        "p99_ms": round(pct(vals, 99) * 1000, 2), "max_ms": round((vals[-1] if vals else 0) * 1000, 2),
        "errors": errors,
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"sessions={out['sessions']} size={out['size']} messages={total} "
              f"seconds={out['seconds']} rate={out['rate']}/s "
              f"p50={out['p50_ms']}ms p90={out['p90_ms']}ms p99={out['p99_ms']}ms max={out['max_ms']}ms")
        for e in errors[:10]:
            print("error:", e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
