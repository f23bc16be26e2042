"""Delivery by MX (no routes), against a real DNS server (dnsmasq) on a free
loopback port and sinks on port 25 of random loopback addresses: MX hosts in
preference order with a refusing first MX falling through to the next one in
the same attempt; the implicit MX (A record only); null MX (RFC 7505) and
NXDOMAIN bounce at once without connecting; a DNS server that refuses to
answer defers.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_delivery_mx.py
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import (DeliveryTestCase, delivery_config, ev_type, events,  # noqa: E402
                     random_loopback, wait_events, wait_queue_empty)
from mtatest import require_binary  # noqa: E402


def setUpModule():
    require_binary()


class Mx(DeliveryTestCase):
    def setUp(self):
        # distinct random addresses per test: parallel runs do not share port 25
        self.prefix = int.from_bytes(os.urandom(1), "big") % 150 + 64
        self.addrs = set()

    def addr(self):
        while True:
            a = random_loopback(self.prefix)
            if a not in self.addrs:
                self.addrs.add(a)
                return a

    def daemon(self, dns):
        cfg = delivery_config(routes=None, intervals=["1s"], max_age="1h")
        cfg["dns"] = {"servers": [dns.server], "timeout": "1s", "attempts": 1}
        return self.mta(cfg)

    def assertNoEvent(self, m, msg_id, etype):
        self.assertFalse([e for e in events(m) if ev_type(msg_id, etype)(e)],
                         f"unexpected {etype} event for {msg_id}")

    def test_preferred_mx_refused_next_mx_used(self):
        mx1, mx2, mx3 = self.addr(), self.addr(), self.addr()
        sink2 = self.sink(mx2, 25)
        sink3 = self.sink(mx3, 25)
        # mx1 (preference 10) has nothing on port 25: connection refused
        dns = self.dnsmasq("--mx-host=dom.test,mx1.dom.test,10",
                           "--mx-host=dom.test,mx3.dom.test,30",
                           "--mx-host=dom.test,mx2.dom.test,20",
                           f"--host-record=mx1.dom.test,{mx1}",
                           f"--host-record=mx2.dom.test,{mx2}",
                           f"--host-record=mx3.dom.test,{mx3}")
        m = self.daemon(dns)
        msg_id = self.submit(m, ["u@dom.test"])
        tx, = self.assertDelivered(sink2, 1)
        self.assertEqual(tx.message_id, msg_id)
        self.assertEqual(tx.rcpts, ["u@dom.test"])
        self.assertEqual(sink3.transactions, [], "MX preference order not followed")
        dev, = wait_events(m, ev_type(msg_id, "Delivery"))
        self.assertEqual(dev["delivery"]["remoteMtaIp"], mx2)
        self.assertEqual(dev["mta"]["attempts"], 1,
                         "the next MX was not tried in the same attempt")
        self.assertEqual(dev["mta"].get("remoteHost", "mx2.dom.test"), "mx2.dom.test")
        self.assertNoEvent(m, msg_id, "DeliveryDelay")
        self.assertEqual(wait_queue_empty(m, [msg_id]), set())

    def test_implicit_mx(self):
        a = self.addr()
        sink = self.sink(a, 25)
        dns = self.dnsmasq(f"--host-record=implicit.test,{a}")
        m = self.daemon(dns)
        msg_id = self.submit(m, ["u@implicit.test", "v@implicit.test"])
        tx, = self.assertDelivered(sink, 1)
        self.assertEqual(tx.message_id, msg_id)
        self.assertEqual(tx.rcpts, ["u@implicit.test", "v@implicit.test"])
        dl = wait_events(m, ev_type(msg_id, "Delivery"), n=2)
        self.assertEqual(len(dl), 2)
        self.assertEqual({e["delivery"]["remoteMtaIp"] for e in dl}, {a})

    def _bounced_without_connecting(self, domain, dns_args, status, text):
        watch = self.addr()
        sink = self.sink(watch, 25)      # would catch a misdirected attempt at the implicit MX
        dns = self.dnsmasq(*dns_args, f"--host-record={domain},{watch}" if domain == "nullmx.test" else
                           "--host-record=other.test,127.0.0.1")
        m = self.daemon(dns)
        msg_id = self.submit(m, [f"u@{domain}"])
        b = wait_events(m, ev_type(msg_id, "Bounce"))
        self.assertEqual(len(b), 1, [e["eventType"] for e in events(m)])
        bounce = b[0]["bounce"]
        self.assertEqual(bounce["bounceType"], "Permanent")
        r, = bounce["bouncedRecipients"]
        self.assertEqual(r["emailAddress"], f"u@{domain}")
        self.assertEqual(r["action"], "failed")
        self.assertEqual(r["status"], status)
        self.assertIn(text.lower(), r["diagnosticCode"].lower())
        self.assertEqual(b[0]["mta"]["attempts"], 1)
        self.assertNoEvent(m, msg_id, "DeliveryDelay")
        self.assertNoEvent(m, msg_id, "Delivery")
        self.assertEqual(wait_queue_empty(m, [msg_id]), set(), "bounced message still queued")
        self.assertEqual(sink.connections, [], "connected to a domain that takes no mail")
        return b[0]

    def test_null_mx_bounces(self):
        ev = self._bounced_without_connecting(
            "nullmx.test", ["--dns-rr=nullmx.test,15,000000"], "5.1.10", "556 5.1.10")
        self.assertIn("null MX", ev["bounce"]["bouncedRecipients"][0]["diagnosticCode"])

    def test_nxdomain_bounces(self):
        self._bounced_without_connecting(
            "nosuchdomain.test", [], "5.1.2", "550 5.1.2 Host or domain name not found")

    def test_route_host_name_resolved(self):
        # a route's host may be a name: resolved with A records, its port kept
        a = self.addr()
        sink = self.sink(a, 0)
        dns = self.dnsmasq(f"--host-record=relay.route.test,{a}")
        cfg = delivery_config(routes=[{"domain": "*", "hosts": [f"relay.route.test:{sink.port}"]}])
        cfg["dns"] = {"servers": [dns.server], "timeout": "1s", "attempts": 1}
        m = self.mta(cfg)
        msg_id = self.submit(m, ["u@anything.example"])
        tx, = self.assertDelivered(sink, 1, timeout=8)
        self.assertEqual(tx.message_id, msg_id)
        dev, = wait_events(m, ev_type(msg_id, "Delivery"))
        self.assertEqual(dev["delivery"]["remoteMtaIp"], a)

    def test_dns_failure_defers(self):
        # dnsmasq has no upstream for names outside .test: it answers REFUSED,
        # a temporary failure
        dns = self.dnsmasq()
        m = self.daemon(dns)
        msg_id = self.submit(m, ["u@unresolvable.example"])
        d = wait_events(m, ev_type(msg_id, "DeliveryDelay"), n=2, timeout=15)
        self.assertGreaterEqual(len(d), 2, "no retry after a temporary DNS failure")
        dd = d[0]["deliveryDelay"]
        self.assertEqual(dd["delayedRecipients"][0]["emailAddress"], "u@unresolvable.example")
        self.assertTrue(dd["delayedRecipients"][0]["status"].startswith("4."), dd)
        self.assertNoEvent(m, msg_id, "Bounce")
        self.assertIn(msg_id, m.queue_ids())


if __name__ == "__main__":
    unittest.main(verbosity=2)
