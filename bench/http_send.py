#!/usr/bin/python3
"""HTTP API send latency and rate: C clients, each on one keep-alive
connection (http.client), each POSTing SES v2 SendEmail requests back to back
with "Authorization: Bearer <secret>"; records each request's time from send
to the 200 (which the daemon gives only after the message is synced to disk)
and prints p50/p90/p99/max and the overall rate.

Usage:
    /usr/bin/python3 bench/http_send.py --port 8025 --secret S [--host 127.0.0.1]
        [-c CLIENTS] [-n REQUESTS_PER_CLIENT | -d SECONDS] [-s SIZE] [--raw] [--json]

  -c  concurrent clients (threads), default 50
  -n  requests per client, default 200 (ignored with -d)
  -d  run for this many seconds instead of a fixed count
  -s  size of the text body in bytes, default 5120 (Simple content: the
      daemon builds the MIME message); with --raw a whole message of that
      size is sent base64-encoded as Content.Raw.Data
Exit status 1 when any request failed. Standard library only; the client
threads share the GIL, so on a small machine the generator itself may limit
the rate: compare with the SMTP figure of the same run, not across machines.
"""

import argparse
import base64
import http.client
import json
import sys
import threading
import time


def make_body(size, idx, raw):
    text = ("x" * 76 + "\n") * max(1, size // 77)
    if raw:
        msg = (f"From: bench@src.test\r\nTo: r{idx}@dst.test\r\nSubject: http bench {idx}\r\n\r\n"
               + text.replace("\n", "\r\n")).encode()
        content = {"Raw": {"Data": base64.b64encode(msg).decode()}}
    else:
        content = {"Simple": {"Subject": {"Data": f"http bench {idx}"},
                              "Body": {"Text": {"Data": text}}}}
    return json.dumps({"FromEmailAddress": "bench@src.test",
                       "Destination": {"ToAddresses": [f"r{idx}@dst.test"]},
                       "Content": content}).encode()


def client(args, idx, stop_at, results, errors):
    lat = []
    try:
        conn = http.client.HTTPConnection(args.host, args.port, timeout=60)
        body = make_body(args.size, idx, args.raw)
        headers = {"Authorization": f"Bearer {args.secret}", "Content-Type": "application/json"}
        sent = 0
        while True:
            if stop_at is not None:
                if time.monotonic() >= stop_at:
                    break
            elif sent >= args.n:
                break
            t0 = time.monotonic()
            conn.request("POST", "/v2/email/outbound-emails", body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            t1 = time.monotonic()
            if r.status != 200:
                raise RuntimeError(f"HTTP {r.status}: {data[:200]!r}")
            lat.append(t1 - t0)
            sent += 1
        conn.close()
    except Exception as e:  # noqa: BLE001 -- report and keep the others going
        errors.append(f"client {idx}: {e}")
    results[idx] = lat


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("-c", "--clients", type=int, default=50)
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("-d", "--duration", type=float, default=None)
    ap.add_argument("-s", "--size", type=int, default=5120)
    ap.add_argument("--raw", action="store_true")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = ap.parse_args()

    results = [None] * args.clients
    errors = []
    t0 = time.monotonic()
    stop_at = t0 + args.duration if args.duration else None
    threads = [threading.Thread(target=client, args=(args, i, stop_at, results, errors), daemon=True)
               for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    lat = sorted(x for r in results if r for x in r)
    out = {"clients": args.clients, "requests": len(lat), "seconds": round(elapsed, 2),
           "rate": round(len(lat) / elapsed, 1) if elapsed > 0 else 0,
           "p50_ms": round(pct(lat, 50) * 1000, 2), "p90_ms": round(pct(lat, 90) * 1000, 2),
           "p99_ms": round(pct(lat, 99) * 1000, 2), "max_ms": round(lat[-1] * 1000, 2) if lat else None,
           "errors": len(errors)}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['requests']} sends in {out['seconds']}s = {out['rate']}/s; latency p50 "
              f"{out['p50_ms']}ms p90 {out['p90_ms']}ms p99 {out['p99_ms']}ms max {out['max_ms']}ms"
              + (f"; {len(errors)} errors" if errors else ""))
    for e in errors[:5]:
        print(e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
