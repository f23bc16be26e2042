"""Temporary failures and retries: 4xx (at RCPT, at the final dot) twice and
then 2xx is delivered on the third attempt, after the configured intervals,
with a DeliveryDelay event per deferral before the Delivery (and the
deferred/delivered metrics); recipients deferred together are retried
together; a server's recipient limit (452) only postpones the rest; a
recipient still failing after retry.max_age expires (Bounce, bounceCategory
message-expired, accounting "e", not suppressed); a server that is down when
the message arrives gets it once it comes up; deferred mail and its attempt
count survive kill -9.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_delivery_retry.py
"""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import (DeliveryTestCase, Sink, accounting, delivery_config,  # noqa: E402
                     ev_type, events, route, wait_accounting, wait_events, wait_queue_empty)
from mtatest import free_port, parse_rfc3339, require_binary  # noqa: E402


def setUpModule():
    require_binary()


class Retry(DeliveryTestCase):
    def test_4xx_twice_then_delivered(self):
        times = {}
        lock = threading.Lock()

        def script(stage, arg, attempt):
            key = None
            if stage == "rcpt" and arg == "rcpt-level@a.test":
                key = arg
            if stage == "data_end" and arg == ("dot-level@b.test",):
                key = arg[0]
            if key is None:
                return None
            with lock:
                times.setdefault(key, []).append(time.monotonic())
            if attempt <= 2:
                return "451 4.3.0 Temporary local problem, try again" if stage == "rcpt" else \
                       "452 4.3.1 Insufficient system storage"
            return None

        sink = self.sink(script=script)
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")],
                              intervals=["1s", "2s"], max_age="1h")
        m = self.mta(cfg)
        id_a = self.submit(m, ["rcpt-level@a.test"])
        id_b = self.submit(m, ["dot-level@b.test"])
        got = self.assertDelivered(sink, 2, timeout=25)
        self.assertEqual(sorted(t.message_id for t in got), sorted([id_a, id_b]))
        for key, msg_id in (("rcpt-level@a.test", id_a), ("dot-level@b.test", id_b)):
            ts = times[key]
            self.assertEqual(len(ts), 3, f"{key}: {len(ts)} attempts, expected 3")
            g1, g2 = ts[1] - ts[0], ts[2] - ts[1]
            # intervals 1s then 2s, +-10% jitter, plus the scheduler's own pace
            self.assertGreaterEqual(g1, 0.85, f"{key}: retried after {g1:.2f}s (interval 1s)")
            self.assertGreaterEqual(g2, 1.75, f"{key}: retried after {g2:.2f}s (interval 2s)")
            self.assertLess(g1, 4.0, f"{key}: first retry only after {g1:.2f}s")
            self.assertLess(g2, 5.0, f"{key}: second retry only after {g2:.2f}s")

            wait_events(m, ev_type(msg_id, "Delivery"))
            evs = [e for e in events(m) if e["mail"]["messageId"] == msg_id]
            self.assertEqual([e["eventType"] for e in evs],
                             ["Send", "DeliveryDelay", "DeliveryDelay", "Delivery"], key)
            recv = parse_rfc3339(evs[0]["mail"]["timestamp"])
            for n, e in enumerate(evs[1:3], 1):
                dd = e["deliveryDelay"]
                self.assertTrue(dd["delayType"], dd)
                r, = dd["delayedRecipients"]
                self.assertEqual(r["emailAddress"], key)
                self.assertTrue(r["status"].startswith("4.3."), r)
                self.assertIn("4.3.", r["diagnosticCode"])
                exp = parse_rfc3339(dd["expirationTime"])
                self.assertAlmostEqual((exp - recv).total_seconds(), 3600, delta=2)
                self.assertEqual(e["mta"]["attempts"], n)
                self.assertGreater(parse_rfc3339(e["mta"]["nextAttempt"]), parse_rfc3339(dd["timestamp"]))
            self.assertEqual(evs[3]["mta"]["attempts"], 3)
            self.assertTrue(evs[3]["delivery"]["smtpResponse"].startswith("250"))
        self.assertEqual(wait_queue_empty(m, [id_a, id_b]), set())
        # the dot-level deferrals sent the whole message three times
        self.assertEqual(len([t for t in sink.transactions if t.rcpts == ["dot-level@b.test"]]), 3)
        self.assertEqual(m.metric("mta_deliveries_total", result="deferred"), 4.0)
        self.assertEqual(m.metric("mta_deliveries_total", result="delivered"), 2.0)

    def test_deferred_mail_survives_kill9(self):
        port = free_port()
        m = self.mta(delivery_config(routes=[route("*", f"127.0.0.1:{port}")], intervals=["1s"]))
        msg_id = self.submit(m, ["later@example.test"])
        self.assertTrue(wait_events(m, ev_type(msg_id, "DeliveryDelay"), timeout=10))
        m.kill9()
        sink = Sink("127.0.0.1", port)
        sink.start()
        self.addCleanup(sink.stop)
        m.start()
        tx, = self.assertDelivered(sink, 1, timeout=15)
        self.assertEqual(tx.message_id, msg_id)
        dev = wait_events(m, ev_type(msg_id, "Delivery"))
        self.assertTrue(dev)
        self.assertGreaterEqual(dev[0]["mta"]["attempts"], 2, "attempt count lost over the restart")
        self.assertEqual(wait_queue_empty(m, [msg_id]), set())

    def test_too_many_recipients_rest_retried(self):
        # Postfix's smtpd_recipient_limit: 452 4.5.3 beyond 10 recipients
        state = {"n": 0}

        def script(stage, arg, attempt):
            if stage == "mail":
                state["n"] = 0
            if stage == "rcpt":
                state["n"] += 1
                if state["n"] > 10:
                    return "452 4.5.3 Error: too many recipients"
            return None

        sink = self.sink(script=script)
        m = self.mta(delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")]))
        rcpts = [f"r{i:02d}@example.test" for i in range(25)]
        msg_id = self.submit(m, rcpts)
        dl = wait_events(m, ev_type(msg_id, "Delivery"), n=25)
        got = sink.delivered()
        self.assertEqual(len(got[0].rcpts), 10)
        self.assertTrue(all(len(t.rcpts) <= 10 for t in got))
        self.assertEqual(sorted(a for t in got for a in t.rcpts), rcpts)
        self.assertEqual(len(dl), 25)
        self.assertFalse([e for e in events(m) if ev_type(msg_id, "Bounce")(e)])
        self.assertEqual(wait_queue_empty(m, [msg_id]), set())

    def test_deferred_recipients_retried_together(self):
        # One transaction, six recipients, each deferred once at RCPT: the
        # retry is one job for the domain, so one transaction for all six
        # (delivery groups recipients by domain; the retry should too).
        rcpts = [f"d{i}@example.test" for i in range(6)]
        sink = self.sink(script={("rcpt", a): ["450 4.2.0 Mailbox temporarily unavailable"]
                                 for a in rcpts})
        m = self.mta(delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")],
                                     intervals=["2s"]))
        msg_id = self.submit(m, rcpts)
        self.assertEqual(len(wait_events(m, ev_type(msg_id, "Delivery"), n=6)), 6)
        got = sink.delivered()
        sizes = [len(t.rcpts) for t in got]
        self.assertEqual(sorted(a for t in got for a in t.rcpts), rcpts)
        self.assertEqual(sizes, [6], "the recipients deferred together were retried in "
                                     f"{len(sizes)} transactions {sizes}")

    def test_expires_after_max_age(self):
        sink = self.sink(script={"rcpt": "421 4.7.0 Try again later, closing connection."})
        acc = os.path.join(self.tmpdir(), "acc.jsonl")
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")],
                              intervals=["1s"], max_age="3s")
        cfg["accounting"] = {"path": acc}
        m = self.mta(cfg)
        t0 = time.monotonic()
        msg_id = self.submit(m, ["never@example.test"])
        b = wait_events(m, ev_type(msg_id, "Bounce"), timeout=15)
        took = time.monotonic() - t0
        self.assertEqual(len(b), 1, [e["eventType"] for e in events(m)])
        self.assertGreaterEqual(took, 2.5, "expired before max_age")
        ev = b[0]
        self.assertEqual(ev["bounce"]["bounceType"], "Permanent")
        self.assertEqual(ev["mta"]["bounceCategory"], "message-expired")
        r, = ev["bounce"]["bouncedRecipients"]
        self.assertEqual(r["emailAddress"], "never@example.test")
        self.assertIn("421 4.7.0", r["diagnosticCode"], "expiry should quote the last reply")
        self.assertGreaterEqual(ev["mta"]["attempts"], 2)
        delays = [e for e in events(m) if ev_type(msg_id, "DeliveryDelay")(e)]
        self.assertEqual(len(delays), ev["mta"]["attempts"] - 1,
                         "one DeliveryDelay per deferral before the expiry")
        self.assertEqual(wait_queue_empty(m, [msg_id]), set(), "expired message still queued")
        self.assertEqual(sink.delivered(), [])
        a = wait_accounting(acc, lambda a: a.get("id") == msg_id)
        self.assertEqual([x["type"] for x in a], ["e"], accounting(acc))
        # not suppressed: an expiry says nothing about the address
        from dlvtest import suppression_list
        self.assertEqual(suppression_list(m), [])

    def test_server_down_then_up(self):
        port = free_port()
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{port}")], intervals=["1s"])
        m = self.mta(cfg)
        ids = [self.submit(m, [f"r{i}@example.test"], subject=f"down {i}") for i in range(3)]
        for msg_id in ids:
            d = wait_events(m, ev_type(msg_id, "DeliveryDelay"), timeout=10)
            self.assertTrue(d, f"{msg_id}: no DeliveryDelay while the server was down")
            r = d[0]["deliveryDelay"]["delayedRecipients"][0]
            self.assertTrue(r["status"].startswith("4."), r)
        self.assertTrue(set(ids) <= m.queue_ids())
        sink = Sink("127.0.0.1", port)
        sink.start()
        self.addCleanup(sink.stop)
        got = self.assertDelivered(sink, 3, timeout=15)
        self.assertEqual(sorted(t.message_id for t in got), sorted(ids))
        for msg_id in ids:
            dev = wait_events(m, ev_type(msg_id, "Delivery"))
            self.assertTrue(dev)
            self.assertGreaterEqual(dev[0]["mta"]["attempts"], 2)
        self.assertEqual(wait_queue_empty(m, ids), set())

    def tmpdir(self):
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix="mta-e2e-retry-")
        self.addCleanup(shutil.rmtree, d, True)
        return d


if __name__ == "__main__":
    unittest.main(verbosity=2)
