"""Connection-level trouble with the receiving server: a 421 that closes the
connection (at MAIL, at RCPT), a connection lost after the final dot
(outcome unknown: retried), a reply that is not SMTP, a banner that comes
later than timeouts.banner, a server that drops an idle connection the
daemon meant to reuse, and the dead-destination rule (a destination whose
hosts all failed is not contacted again for a while, its mail is deferred
without connecting).

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_delivery_connections.py
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import (DeliveryTestCase, Sink, delivery_config, ev_type, events,  # noqa: E402
                     route, wait_events)
from mtatest import require_binary  # noqa: E402


def setUpModule():
    require_binary()


class Connections(DeliveryTestCase):
    def test_421_closing_connection_then_delivered(self):
        sink = self.sink(script={
            ("mail", "busy@src.test"): ["421 4.7.0 Too many concurrent SMTP connections, closing"],
            ("rcpt", "closing@example.test"): ["421 4.4.2 Idle too long, closing connection"]})
        m = self.mta(delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")]))
        id1 = self.submit(m, ["r@example.test"], mail_from="busy@src.test")
        id2 = self.submit(m, ["closing@example.test"])
        got = self.assertDelivered(sink, 2, timeout=15)
        self.assertEqual(sorted(t.message_id for t in got), sorted([id1, id2]))
        for msg_id in (id1, id2):
            evs = [e["eventType"] for e in events(m) if e["mail"]["messageId"] == msg_id]
            self.assertEqual(evs, ["Send", "DeliveryDelay", "Delivery"], msg_id)
        self.assertGreaterEqual(len(sink.connections), 2, "the server closed, yet no new connection")

    def test_banner_timeout_then_delivered(self):
        def script(stage, arg, n):
            if stage == "banner" and n == 1:
                time.sleep(5)                 # longer than timeouts.banner
            return None

        sink = self.sink(script=script)
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")])
        cfg["delivery"] = {"timeouts": {"banner": "1s"}}
        m = self.mta(cfg)
        t0 = time.monotonic()
        msg_id = self.submit(m, ["slow@example.test"])
        d = wait_events(m, ev_type(msg_id, "DeliveryDelay"), timeout=10)
        self.assertTrue(d, "no deferral after a banner timeout")
        self.assertLess(time.monotonic() - t0, 4.5, "timeouts.banner 1s not applied")
        self.assertIn("timed out", d[0]["deliveryDelay"]["delayedRecipients"][0]["diagnosticCode"])
        tx, = self.assertDelivered(sink, 1, timeout=15)
        self.assertEqual(tx.message_id, msg_id)

    def test_connection_lost_at_final_dot(self):
        # the server takes the message and drops the connection instead of
        # answering: the outcome is unknown, so it is retried (and delivered)
        sink = self.sink(script={("data_end", "drop@example.test"): [Sink.DROP]})
        m = self.mta(delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")]))
        msg_id = self.submit(m, ["drop@example.test"])
        tx, = self.assertDelivered(sink, 1, timeout=15)
        self.assertEqual(tx.message_id, msg_id)
        evs = [e for e in events(m) if e["mail"]["messageId"] == msg_id]
        wait_events(m, ev_type(msg_id, "Delivery"))
        evs = [e["eventType"] for e in events(m) if e["mail"]["messageId"] == msg_id]
        self.assertEqual(evs, ["Send", "DeliveryDelay", "Delivery"])
        self.assertEqual(sink.attempts("data_end", ("drop@example.test",)), 2)

    def test_garbage_reply_defers(self):
        sink = self.sink(script={("rcpt", "junk@example.test"): ["this is not smtp"]})
        m = self.mta(delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")]))
        msg_id = self.submit(m, ["junk@example.test"])
        tx, = self.assertDelivered(sink, 1, timeout=15)
        self.assertEqual(tx.message_id, msg_id)
        self.assertTrue(wait_events(m, ev_type(msg_id, "DeliveryDelay")),
                        "a malformed reply was not treated as a temporary failure")
        self.assertFalse([e for e in events(m) if ev_type(msg_id, "Bounce")(e)])

    def test_server_closed_idle_connection(self):
        # The server drops an idle connection (its own timeout, 1s) while the
        # daemon keeps it for reuse (idle_timeout 5s).  The next message must
        # not pay for the stale connection with a deferral: the daemon opens
        # a fresh one and delivers on the first attempt.
        sink = self.sink(close_after=1.0)
        m = self.mta(delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")],
                                     intervals=["1s"], idle_timeout="5s"))
        self.submit(m, ["a@example.test"])
        self.assertDelivered(sink, 1)
        time.sleep(2.0)
        self.assertEqual(sink.active, 0, "sink did not drop the idle connection")
        id2 = self.submit(m, ["b@example.test"])
        got = self.assertDelivered(sink, 2)
        self.assertEqual(got[1].message_id, id2)
        wait_events(m, ev_type(id2, "Delivery"))
        evs = [e["eventType"] for e in events(m) if e["mail"]["messageId"] == id2]
        self.assertEqual(evs, ["Send", "Delivery"],
                         "a connection the server had closed cost the next message a deferral")

    def test_dead_destination_not_retried_per_message(self):
        # every connection is refused at the banner: the destination is dead
        # for min(first interval, 60s) = 4s
        sink = self.sink(script={"banner": "421 4.3.2 Service not available, closing channel"})
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")],
                              intervals=["4s"], max_age="1h")
        m = self.mta(cfg)
        id1 = self.submit(m, ["a@example.test"])
        self.assertTrue(wait_events(m, ev_type(id1, "DeliveryDelay"), timeout=10))
        n_conn = len(sink.connections)
        self.assertGreaterEqual(n_conn, 1)
        t0 = time.monotonic()
        ids = [self.submit(m, [f"b{i}@example.test"]) for i in range(3)]
        for msg_id in ids:
            d = wait_events(m, ev_type(msg_id, "DeliveryDelay"), timeout=3)
            self.assertTrue(d, f"{msg_id}: not deferred at once while the destination is dead")
            self.assertIn("421 4.3.2", d[0]["deliveryDelay"]["delayedRecipients"][0]["diagnosticCode"])
        if time.monotonic() - t0 < 3.0:
            self.assertEqual(len(sink.connections), n_conn,
                             "connected again while the destination was dead")


if __name__ == "__main__":
    unittest.main(verbosity=2)
