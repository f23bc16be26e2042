"""Outbound STARTTLS: used when offered (opportunistic, a self-signed
certificate is fine) with EHLO repeated after the handshake; `tls: required`
towards a server without STARTTLS defers and sends nothing; `tls: none`
never upgrades even when STARTTLS is offered.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_delivery_tls.py
"""

import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import (DeliveryTestCase, Sink, delivery_config, ev_type, events,  # noqa: E402
                     route, wait_events, wait_queue_empty)
from mtatest import make_cert, require_binary  # noqa: E402

CERT = None


def setUpModule():
    global CERT, _certdir
    require_binary()
    _certdir = tempfile.mkdtemp(prefix="mta-e2e-tls-")
    CERT = make_cert(_certdir)


def tearDownModule():
    shutil.rmtree(_certdir, ignore_errors=True)


class Tls(DeliveryTestCase):
    def daemon(self, sink, tls=None):
        return self.mta(delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}", tls=tls)],
                                        intervals=["1s"]))

    def ehlos(self, conn):
        return [c for c in conn.commands if c.upper().startswith(("EHLO", "HELO"))]

    def test_starttls_used_when_offered(self):
        sink = self.sink(starttls_cert=CERT)
        m = self.daemon(sink)                          # default: opportunistic
        ids = [self.submit(m, [f"r{i}@example.test"], subject=f"tls {i}") for i in range(3)]
        got = self.assertDelivered(sink, 3)
        self.assertEqual(sorted(t.message_id for t in got), sorted(ids))
        for t in got:
            self.assertTrue(t.tls, f"delivered in clear text although STARTTLS was offered: {t}")
        for c in sink.connections:
            cmds = [x.split(" ")[0].upper() for x in c.commands]
            self.assertEqual(cmds[:3], ["EHLO", "STARTTLS", "EHLO"], c.commands)
            self.assertEqual(len(set(self.ehlos(c))), 1, "different EHLO names before/after TLS")
        self.assertEqual(wait_queue_empty(m, ids), set())

    def test_required_with_starttls_delivers(self):
        sink = self.sink(starttls_cert=CERT)
        m = self.daemon(sink, tls="required")
        msg_id = self.submit(m, ["r@example.test"])
        tx, = self.assertDelivered(sink, 1)
        self.assertEqual(tx.message_id, msg_id)
        self.assertTrue(tx.tls)

    def test_required_without_starttls_defers(self):
        sink = self.sink()                             # no STARTTLS offered
        m = self.daemon(sink, tls="required")
        msg_id = self.submit(m, ["r@example.test"])
        d = wait_events(m, ev_type(msg_id, "DeliveryDelay"), n=2, timeout=10)
        self.assertGreaterEqual(len(d), 1, "no DeliveryDelay: " + str([e["eventType"] for e in events(m)]))
        r = d[0]["deliveryDelay"]["delayedRecipients"][0]
        self.assertEqual(r["emailAddress"], "r@example.test")
        self.assertTrue(r["status"].startswith("4."), r)
        self.assertIn("STARTTLS", r["diagnosticCode"])
        self.assertGreaterEqual(len(d), 2, "not retried")
        self.assertEqual(sink.transactions, [], "a transaction was started without TLS")
        for c in sink.connections:
            self.assertFalse([x for x in c.commands if x.upper().startswith(("MAIL", "RCPT", "DATA"))],
                             c.commands)
        self.assertFalse([e for e in events(m) if ev_type(msg_id, "Bounce")(e)])
        self.assertIn(msg_id, m.queue_ids())

    def test_none_never_upgrades(self):
        sink = self.sink(starttls_cert=CERT)
        m = self.daemon(sink, tls="none")
        msg_id = self.submit(m, ["r@example.test"])
        tx, = self.assertDelivered(sink, 1)
        self.assertEqual(tx.message_id, msg_id)
        self.assertFalse(tx.tls)
        for c in sink.connections:
            self.assertFalse([x for x in c.commands if x.upper().startswith("STARTTLS")],
                             f"STARTTLS sent with tls: none: {c.commands}")

    def test_starttls_refused_continues_in_clear(self):
        sink = self.sink(starttls_cert=CERT, script={"starttls": "454 4.7.0 TLS not available due to local problem"})
        m = self.daemon(sink)
        msg_id = self.submit(m, ["r@example.test"])
        tx, = self.assertDelivered(sink, 1)
        self.assertEqual(tx.message_id, msg_id)
        self.assertFalse(tx.tls)

    def test_starttls_refused_with_required_defers(self):
        sink = self.sink(starttls_cert=CERT, script={"starttls": "454 4.7.0 TLS not available due to local problem"})
        m = self.daemon(sink, tls="required")
        msg_id = self.submit(m, ["r@example.test"])
        d = wait_events(m, ev_type(msg_id, "DeliveryDelay"), timeout=10)
        self.assertTrue(d)
        self.assertIn("454 4.7.0", d[0]["deliveryDelay"]["delayedRecipients"][0]["diagnosticCode"])
        self.assertEqual(sink.transactions, [])

    def test_handshake_failure_opportunistic_falls_back_to_clear(self):
        # Opportunistic TLS (RFC 7435): a server whose TLS is broken still
        # gets the mail, in clear text, rather than never (Postfix at
        # security level "may" retries without STARTTLS).
        sink = self.sink(starttls_cert=CERT, script={"starttls": Sink.BAD_TLS})
        m = self.daemon(sink)
        msg_id = self.submit(m, ["r@example.test"])
        got = sink.wait_for(1, timeout=10)
        evs = [e["eventType"] for e in events(m) if e["mail"]["messageId"] == msg_id]
        self.assertEqual(len(got), 1, "never delivered to a server with a broken STARTTLS "
                                      f"(tls: opportunistic); events {evs}")
        self.assertFalse(got[0].tls)


if __name__ == "__main__":
    unittest.main(verbosity=2)
