"""Crash safety of delivery: 8 concurrent SMTP senders submit 2000 short
messages while the daemon delivers them to a (slightly slow) sink; the
daemon is killed with SIGKILL in the middle and restarted; the senders carry
on until 2000 messages are acknowledged.  Every acknowledged message must
reach the sink.  Duplicates are allowed only for what was in flight at the
kill: each duplicated message must have reached the sink before the kill,
at most twice, and their number may not exceed the messages in flight
(acknowledged but not yet at the sink at the kill).  The numbers are printed.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_delivery_crash.py
"""

import collections
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import DeliveryTestCase, delivery_config, route, wait_queue_empty  # noqa: E402
from mtatest import SmtpConn, make_message, require_binary  # noqa: E402

TOTAL = 2000
SENDERS = 8


def setUpModule():
    require_binary()


class Crash(DeliveryTestCase):
    def test_kill9_while_delivering(self):
        sink = self.sink(delay=0.03)          # ~300 messages/s over 10 connections
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")], intervals=["1s"],
                              max_connections=10, max_messages_per_connection=1000)
        cfg["log_level"] = "info"
        m = self.mta(cfg)

        acked = []                     # ids answered 250, in order
        lock = threading.Lock()
        errors = []
        done = threading.Event()
        quota = TOTAL // SENDERS

        def sender(n):
            sent = 0
            deadline = time.monotonic() + 50
            while sent < quota and time.monotonic() < deadline and not done.is_set():
                try:
                    c = SmtpConn(m.port, timeout=10)
                except OSError:
                    time.sleep(0.05)               # daemon down: wait for the restart
                    continue
                try:
                    if c.reply().code != 220 or c.cmd(f"EHLO s{n}.test").code != 250:
                        time.sleep(0.05)
                        continue
                    while sent < quota:
                        r = c.transaction(f"s{n}@src.test", [f"r{n}-{sent}@example.test"],
                                          make_message(subject=f"crash {n}/{sent}",
                                                       to=f"r{n}-{sent}@example.test"))
                        if r.code == 0:
                            break                  # killed mid-transaction: not acked
                        if r.code != 250 or not r.id:
                            errors.append(str(r))
                            if r.code >= 500:
                                return
                            break
                        with lock:
                            acked.append(r.id)
                        sent += 1
                except (OSError, socket.timeout):
                    pass
                finally:
                    c.close()

        threads = [threading.Thread(target=sender, args=(i,), daemon=True) for i in range(SENDERS)]
        t_start = time.monotonic()
        for t in threads:
            t.start()

        # pull the plug once delivery is well under way and mail is still pending
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            n_del = len(sink.delivered())
            with lock:
                n_ack = len(acked)
            if n_del >= TOTAL * 0.15 and n_ack - n_del >= 50:
                break
            if n_del >= TOTAL * 0.6:
                break
            time.sleep(0.005)
        open_at_kill = sink.active
        m.kill9()
        t_kill = time.monotonic()
        with lock:
            acked_at_kill = set(acked)
        # The sink records a message when it has it all, before its (delayed)
        # 250: let the messages that were complete at the kill be recorded.
        # After that nothing more can arrive from the dead process.
        time.sleep(sink.delay + 0.3)
        delivered_at_kill = collections.Counter(sink.delivered_ids())
        in_flight = len(acked_at_kill - set(delivered_at_kill))

        m.start()
        for t in threads:
            t.join(60)
        with lock:
            all_acked = list(acked)
        self.assertEqual(errors, [], "submissions refused")
        self.assertEqual(len(all_acked), TOTAL, "senders did not get all messages acknowledged")
        self.assertEqual(len(set(all_acked)), TOTAL, "an id was handed out twice")

        want = set(all_acked)
        deadline = time.monotonic() + 45
        while True:
            seen = collections.Counter(sink.delivered_ids())
            missing = [i for i in all_acked if i not in seen]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        # let anything stored-but-unacked go out too, then the queue is empty
        left = wait_queue_empty(m, None, timeout=20)
        seen = collections.Counter(sink.delivered_ids())
        dups = {i: c for i, c in seen.items() if c > 1}
        unacked = [i for i in seen if i not in want]
        sys.stderr.write(
            f"\n[crash] killed after {t_kill - t_start:.1f}s: acked {len(acked_at_kill)}, "
            f"at the sink {sum(delivered_at_kill.values())}, in flight (acked, not at the sink) "
            f"{in_flight}, sink connections open {open_at_kill}\n"
            f"[crash] end: acked {len(all_acked)}, delivered {len(seen)} distinct / "
            f"{sum(seen.values())} total, missing {len(missing)}, duplicates {len(dups)} "
            f"({sum(dups.values()) - len(dups)} extra copies), delivered but never acked "
            f"{len(unacked)}, still queued {len(left)}\n")
        self.assertGreater(sum(delivered_at_kill.values()), 0, "killed before any delivery")
        self.assertGreater(in_flight, 0, "killed after everything was delivered: nothing in flight")
        self.assertEqual(missing, [], f"{len(missing)} acknowledged messages never delivered")
        self.assertEqual(left, set(), "messages left in the queue")
        not_before = [i for i in dups if i not in delivered_at_kill]
        self.assertEqual(not_before, [], "duplicated although not delivered before the kill")
        self.assertLessEqual(max(dups.values(), default=1), 2, "delivered more than twice")
        self.assertLessEqual(len(dups), in_flight,
                             f"{len(dups)} duplicates > {in_flight} messages in flight at the kill")

    def test_sigterm_while_delivering(self):
        # SIGTERM with deliveries in flight: the daemon finishes or requeues
        # them, exits 0, and after a restart everything is delivered once.
        sink = self.sink(delay=0.05)
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")], intervals=["1s"],
                              max_connections=5)
        cfg["log_level"] = "info"
        m = self.mta(cfg)
        n = 300
        ids = []
        with m.connect() as c:
            c.expect(220)
            c.expect(250, "EHLO client.test")
            for i in range(n):
                ids.append(self.assertAccepted(c.transaction(
                    "s@src.test", [f"t{i}@example.test"], make_message(subject=f"term {i}"))))
            c.quit()
        sink.wait_for(40, timeout=20)
        t0 = time.monotonic()
        rc = m.stop(timeout=35)
        took = time.monotonic() - t0
        at_stop = len(sink.delivered())
        self.assertEqual(rc, 0, "SIGTERM while delivering did not exit 0")
        self.assertLess(took, 15, f"SIGTERM took {took:.1f}s with deliveries in flight")
        self.assertLess(at_stop, n, "everything was delivered before the stop: nothing tested")
        m.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            seen = collections.Counter(sink.delivered_ids())
            if all(i in seen for i in ids):
                break
            time.sleep(0.1)
        seen = collections.Counter(sink.delivered_ids())
        dups = {i: c for i, c in seen.items() if c > 1}
        sys.stderr.write(f"\n[sigterm] stop took {took:.1f}s, delivered before the stop {at_stop} of {n}, "
                         f"after restart {len(seen)} distinct, duplicates {len(dups)}\n")
        self.assertEqual([i for i in ids if i not in seen], [], "messages lost over SIGTERM")
        self.assertEqual(dups, {}, "a graceful stop caused duplicate deliveries")
        self.assertEqual(wait_queue_empty(m, ids), set())


if __name__ == "__main__":
    unittest.main(verbosity=2)
