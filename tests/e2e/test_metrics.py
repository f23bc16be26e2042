"""Prometheus metrics: the exposition parses, and the intake counters and gauges
move as expected (received by set, rejections by reason, open sessions, spool).

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_metrics.py
"""

import os
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mtatest import (E2ETestCase, SmtpConn, base_config, make_message,  # noqa: E402
                     metric_value, parse_metrics, require_binary)


def setUpModule():
    require_binary()


class Metrics(E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = cls.class_mta(base_config(
            relay_networks=["127.0.0.1/32"],          # 127.0.0.9 is not a relay client
            users=[{"name": "app1", "password": "pw1"}],
            max_recipients=2, max_message_bytes=10000, max_command_line=512,
            max_errors=50))

    def value(self, name, **labels):
        return metric_value(self.m.metrics(), name, **labels) or 0.0

    def wait_value(self, name, pred, timeout=5.0, **labels):
        deadline = time.monotonic() + timeout
        while True:
            v = self.value(name, **labels)
            if pred(v) or time.monotonic() > deadline:
                return v
            time.sleep(0.1)

    def session(self, source=None):
        c = SmtpConn(self.m.port, source=source, timeout=10)
        self.addCleanup(c.close)
        c.expect(220)
        c.expect(250, "EHLO client.test")
        return c

    def test_exposition_format(self):
        h, p = self.m.metrics_addr
        with urllib.request.urlopen(f"http://{h}:{p}/metrics", timeout=5) as r:
            self.assertEqual(r.status, 200)
            ctype = r.headers.get("Content-Type", "")
            text = r.read().decode()
        self.assertTrue(ctype.startswith("text/plain"), ctype)
        samples = parse_metrics(text)          # raises on a malformed line
        names = {n for n, _, _ in samples}
        for n in ("mta_smtp_connections", "mta_spool_messages"):
            self.assertIn(n, names)
        for n, _, _ in samples:
            if not n.startswith(("mta_", "process_", "exposer_")):
                self.fail(f"metric without mta_ prefix: {n}")

    def test_messages_received(self):
        lab_d = dict(configuration_set="default", protocol="smtp")
        lab_t = dict(configuration_set="transactional", protocol="smtp")
        d0 = self.value("mta_messages_received_total", **lab_d)
        t0 = self.value("mta_messages_received_total", **lab_t)
        s0 = self.value("mta_spool_messages")
        q0 = len(self.m.queue_list())
        for _ in range(2):
            self.assertAccepted(self.m.send(make_message()))
        self.assertAccepted(self.m.send(make_message(
            headers=[("X-SES-CONFIGURATION-SET", "transactional")])))
        self.assertEqual(self.wait_value("mta_messages_received_total", lambda v: v >= d0 + 2, **lab_d),
                         d0 + 2)
        self.assertEqual(self.wait_value("mta_messages_received_total", lambda v: v >= t0 + 1, **lab_t),
                         t0 + 1)
        # a rejected message is not counted
        self.assertReply(self.m.send(make_message(headers=[("X-SES-CONFIGURATION-SET", "ghost")])),
                         554)
        self.assertEqual(self.value("mta_messages_received_total", **lab_d), d0 + 2)
        # the spool gauge follows the queue (nothing is delivered in this setup)
        s1 = self.wait_value("mta_spool_messages", lambda v: v >= s0 + 3)
        self.assertEqual(s1, s0 + 3)
        self.assertEqual(s1 - s0, len(self.m.queue_list()) - q0)

    def test_connections_gauge(self):
        base = self.wait_value("mta_smtp_connections", lambda v: v == 0, timeout=3)
        conns = []
        for _ in range(3):
            c = SmtpConn(self.m.port, timeout=10)
            self.addCleanup(c.close)
            c.expect(220)
            conns.append(c)
        v = self.wait_value("mta_smtp_connections", lambda v: v >= base + 3)
        self.assertEqual(v, base + 3)
        for c in conns:
            c.quit()
        v = self.wait_value("mta_smtp_connections", lambda v: v <= base)
        self.assertEqual(v, base)

    def rejection(self, reason):
        return self.value("mta_smtp_rejections_total", reason=reason)

    def check_reason(self, reason, action):
        before = self.rejection(reason)
        action()
        after = self.wait_value("mta_smtp_rejections_total", lambda v: v > before, reason=reason)
        self.assertGreater(after, before, f"rejections{{reason={reason}}} did not move")
        self.assertLessEqual(after, before + 2, f"rejections{{reason={reason}}} jumped {before} -> {after}")

    def test_rejections_by_reason(self):
        def too_many_rcpts():
            c = self.session()
            c.expect(250, "MAIL FROM:<a@src.test>")
            c.expect(250, "RCPT TO:<r1@dst.test>")
            c.expect(250, "RCPT TO:<r2@dst.test>")
            self.assertReply(c.cmd("RCPT TO:<r3@dst.test>"), 452)

        def too_big():
            self.assertReply(self.m.send(make_message(size=30000)), 552)

        def line_too_long():
            c = self.session()
            self.assertReply(c.cmd("NOOP " + "x" * 1000), 500)

        def relay_denied():
            c = self.session(source="127.0.0.9")
            self.assertReply(c.cmd("MAIL FROM:<a@src.test>"), 530)

        def auth_failed():
            c = self.session()
            self.assertReply(c.auth_plain("app1", "nope"), 535)

        def unknown_set():
            self.assertReply(self.m.send(make_message(headers=[("X-SES-CONFIGURATION-SET", "ghost")])),
                             554)

        def bad_sequence():
            c = self.session()
            self.assertReply(c.cmd("RCPT TO:<b@dst.test>"), 503)

        for reason, action in [("too_many_recipients", too_many_rcpts),
                               ("message_too_big", too_big),
                               ("line_too_long", line_too_long),
                               ("relay_denied", relay_denied),
                               ("auth_failed", auth_failed),
                               ("unknown_configuration_set", unknown_set),
                               ("bad_sequence", bad_sequence)]:
            with self.subTest(reason=reason):
                self.check_reason(reason, action)

    def test_metrics_not_found_path(self):
        h, p = self.m.metrics_addr
        try:
            urllib.request.urlopen(f"http://{h}:{p}/nope", timeout=5)
            self.fail("GET /nope answered 2xx")
        except urllib.error.HTTPError as e:
            self.assertEqual(e.code, 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
