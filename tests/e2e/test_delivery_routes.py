"""Delivery through static routes to a recording sink: the sending IP and its
EHLO name, what the delivered message looks like (set/tag headers gone,
X-MTA-Message-ID present, dot-stuffing right), the Send and Delivery events
in SES format, the accounting line and metrics; connection reuse and its
limit, the connection limit per destination, PIPELINING, one transaction per
domain with all of that domain's recipients, route selection and hosts tried
in order.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_delivery_routes.py
"""

import math
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import (DeliveryTestCase, accounting, delivery_config, ev_type,  # noqa: E402
                     events, random_loopback, route, wait_accounting, wait_events,
                     wait_queue_empty)
from mtatest import free_port, make_message, parse_rfc3339, require_binary  # noqa: E402


def setUpModule():
    require_binary()


class Routes(DeliveryTestCase):
    def test_delivered_from_pool_ip_with_events_and_accounting(self):
        sink = self.sink()
        src = random_loopback()
        cfg = delivery_config(routes=[route("example.test", f"127.0.0.1:{sink.port}")],
                              source_ip=src, ehlo="o9.mta.test")
        cfg["ip_pools"].append({"name": "other", "ips": [{"address": "127.0.0.1", "ehlo": "wrong.mta.test"}]})
        cfg["configuration_sets"][0]["ip_pool"] = "other"      # the default set: not ours
        acc_path = os.path.join("/tmp", f"acc-{os.getpid()}-{time.monotonic_ns()}.jsonl")
        self.addCleanup(lambda: os.path.exists(acc_path) and os.unlink(acc_path))
        cfg["accounting"] = {"path": acc_path}
        m = self.mta(cfg)
        body = b"first line\r\n.leading dot\r\n..two dots\r\n.\r\nlast\r\n"
        data = make_message(
            subject="routed", body=body, to="alice@example.test",
            headers=[("X-SES-CONFIGURATION-SET", "transactional"),
                     ("X-SES-MESSAGE-TAGS", "campaign=spring, team=growth")])
        msg_id = self.submit(m, ["alice@example.test"], data=data, mail_from="bounce@src.test")

        tx, = self.assertDelivered(sink, 1)
        self.assertEqual(tx.peer, src, "not sent from the first IP of the set's pool")
        self.assertEqual(tx.ehlo, "o9.mta.test", "EHLO is not the sending IP's ehlo name")
        self.assertEqual(tx.mail_from, "bounce@src.test")
        self.assertEqual(tx.rcpts, ["alice@example.test"])
        names = [n.lower() for n, _ in tx.headers()]
        self.assertNotIn("x-ses-configuration-set", names)
        self.assertNotIn("x-ses-message-tags", names)
        self.assertEqual(tx.message_id, msg_id)
        self.assertIn("message-id", names)
        self.assertEqual(tx.header("Subject"), "routed")
        self.assertEqual(tx.body(), body, "body changed in transit (dot-stuffing?)")
        self.assertFalse(re.search(rb"(?<!\r)\n", tx.data), "bare LF in the delivered message")
        self.assertEqual(wait_queue_empty(m, [msg_id]), set(), "delivered message still queued")

        # events: Send at acceptance, then Delivery
        dl = wait_events(m, ev_type(msg_id, "Delivery"))
        self.assertEqual(len(dl), 1, [e["eventType"] for e in events(m)])
        evs = [e for e in events(m) if e["mail"]["messageId"] == msg_id]
        self.assertEqual([e["eventType"] for e in evs], ["Send", "Delivery"])
        send, dev = evs
        for e in evs:
            self.assertRegex(e.get("eventId", ""), r"^[0-9a-f]{32}$")
            mail = e["mail"]
            self.assertEqual(mail["source"], "bounce@src.test")
            self.assertEqual(mail["destination"], ["alice@example.test"])
            self.assertEqual(mail["tags"]["ses:configuration-set"], ["transactional"])
            self.assertEqual(mail["tags"]["campaign"], ["spring"])
            self.assertEqual(mail["tags"]["team"], ["growth"])
            self.assertEqual(mail["commonHeaders"]["subject"], "routed")
            parse_rfc3339(mail["timestamp"])
        self.assertNotEqual(send["eventId"], dev["eventId"])
        self.assertEqual(dev["mail"]["tags"]["ses:outgoing-ip"], [src])
        d = dev["delivery"]
        self.assertEqual(d["recipients"], ["alice@example.test"])
        self.assertTrue(d["smtpResponse"].startswith("250 "), d)
        self.assertEqual(d["smtpResponse"], tx.reply)
        self.assertEqual(d["remoteMtaIp"], "127.0.0.1")
        self.assertTrue(d["reportingMTA"])
        self.assertIsInstance(d["processingTimeMillis"], int)
        self.assertGreaterEqual(d["processingTimeMillis"], 0)
        parse_rfc3339(d["timestamp"])
        self.assertEqual(dev["mta"]["attempts"], 1)
        self.assertEqual(dev["mta"]["ip"], src)
        self.assertEqual(dev["mta"]["pool"], "main")
        self.assertEqual(dev["mta"]["domain"], "example.test")

        # accounting: one "d" line
        acc = wait_accounting(acc_path, lambda a: a.get("id") == msg_id)
        self.assertEqual(len(acc), 1, accounting(acc_path))
        a = acc[0]
        self.assertEqual(a["type"], "d")
        self.assertEqual(a["rcpt"], "alice@example.test")
        self.assertEqual(a["reply"], tx.reply)
        self.assertEqual(a["ip"], src)
        self.assertEqual(a["remote_ip"], "127.0.0.1")
        self.assertEqual(a["pool"], "main")
        self.assertEqual(a["attempts"], 1)

        # metrics
        deadline = time.monotonic() + 5
        while True:
            v = m.metric("mta_deliveries_total", pool="main", ip=src, result="delivered")
            if v or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(v, 1.0)
        self.assertIsNotNone(m.metric("mta_delivery_connections"))
        self.assertIsNotNone(m.metric("mta_queue_active"))
        self.assertIsNotNone(m.metric("mta_spool_messages"))

    def test_reuse_limit_and_pipelining(self):
        sink = self.sink()
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")],
                              max_connections=1, max_messages_per_connection=3, idle_timeout="5s")
        m = self.mta(cfg)
        n = 7
        ids = []
        with m.connect() as c:
            c.expect(220)
            c.expect(250, "EHLO client.test")
            for i in range(n):
                r = c.transaction("s@src.test", [f"r{i}@example.test"],
                                  make_message(subject=f"reuse {i}"))
                ids.append(self.assertAccepted(r))
            c.quit()
        got = self.assertDelivered(sink, n)
        self.assertEqual(sorted(t.message_id for t in got), sorted(ids))
        conns = {}
        for t in got:
            conns.setdefault(t.conn_id, []).append(t)
        sizes = sorted(len(v) for v in conns.values())
        self.assertLessEqual(max(sizes), 3, f"max_messages_per_connection 3 exceeded: {sizes}")
        self.assertEqual(len(conns), math.ceil(n / 3),
                         f"connections not reused up to the limit: messages per connection {sizes}")
        self.assertLessEqual(sink.peak, 1, "max_connections 1 exceeded")
        self.assertTrue(all(t.pipelined for t in got),
                        "PIPELINING offered but MAIL/RCPT/DATA not sent in one write: "
                        f"{[t.pipelined for t in got]}")

    def test_no_pipelining_when_not_offered(self):
        sink = self.sink(pipelining=False)
        m = self.mta(delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")]))
        self.submit(m, ["a@example.test", "b@example.test"])
        tx, = self.assertDelivered(sink, 1)
        self.assertFalse(tx.pipelined, "pipelined although the server did not offer PIPELINING")
        self.assertEqual(tx.rcpts, ["a@example.test", "b@example.test"])

    def test_connection_limit_per_destination(self):
        sink = self.sink(delay=0.3)          # a slow server: jobs pile up
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")],
                              max_connections=2, max_messages_per_connection=100)
        m = self.mta(cfg)
        n = 12
        with m.connect() as c:
            c.expect(220)
            c.expect(250, "EHLO client.test")
            for i in range(n):
                self.assertAccepted(c.transaction("s@src.test", [f"r{i}@example.test"],
                                                  make_message(subject=f"lim {i}")))
            c.quit()
        self.assertDelivered(sink, n, timeout=30)
        self.assertLessEqual(sink.peak, 2, f"{sink.peak} connections open at once (limit 2)")
        self.assertEqual(sink.peak, 2, "a backlog of 12 messages never used the second connection")

    def test_one_transaction_per_domain(self):
        sink1 = self.sink()
        sink2 = self.sink()
        cfg = delivery_config(routes=[route("two.test", f"127.0.0.1:{sink2.port}"),
                                      route("*", f"127.0.0.1:{sink1.port}")])
        m = self.mta(cfg)
        rcpts = ["a@one.test", "x@two.test", "b@one.test", "c@ONE.test", "y@two.test"]
        msg_id = self.submit(m, rcpts)
        t1, = self.assertDelivered(sink1, 1)
        t2, = self.assertDelivered(sink2, 1)
        time.sleep(0.5)
        self.assertEqual(len(sink1.transactions), 1, sink1.transactions)
        self.assertEqual(len(sink2.transactions), 1, sink2.transactions)
        self.assertEqual(sorted(a.lower() for a in t1.rcpts), ["a@one.test", "b@one.test", "c@one.test"])
        self.assertEqual(t2.rcpts, ["x@two.test", "y@two.test"])
        self.assertEqual(t1.message_id, msg_id)
        self.assertEqual(t2.message_id, msg_id)
        self.assertEqual(t1.data, t2.data)
        dl = wait_events(m, ev_type(msg_id, "Delivery"), n=5)
        self.assertEqual(sorted(e["delivery"]["recipients"][0] for e in dl), sorted(rcpts))
        self.assertEqual(wait_queue_empty(m, [msg_id]), set())

    def test_idle_timeout(self):
        sink = self.sink()
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")], idle_timeout="1s")
        m = self.mta(cfg)
        self.submit(m, ["a@example.test"])
        self.assertDelivered(sink, 1)
        t0 = time.monotonic()
        while sink.active and time.monotonic() - t0 < 5:
            time.sleep(0.05)
        idle = time.monotonic() - t0
        self.assertEqual(sink.active, 0, "idle connection not closed after idle_timeout 1s")
        self.assertLess(idle, 3.0)
        self.assertEqual(sink.connections[0].commands[-1].upper(), "QUIT", "closed without QUIT")
        self.assertEqual(m.metric("mta_delivery_connections"), 0.0)
        self.assertEqual(m.metric("mta_queue_active"), 0.0)
        self.assertEqual(m.metric("mta_spool_messages"), 0.0)
        self.submit(m, ["b@example.test"])
        self.assertDelivered(sink, 2)
        self.assertEqual(len(sink.connections), 2)

        # with a longer idle_timeout the next message reuses the connection
        sink2 = self.sink()
        m2 = self.mta(delivery_config(routes=[route("*", f"127.0.0.1:{sink2.port}")],
                                      idle_timeout="5s"), name="idle5")
        self.submit(m2, ["a@example.test"])
        self.assertDelivered(sink2, 1)
        time.sleep(1.5)
        self.submit(m2, ["b@example.test"])
        got = self.assertDelivered(sink2, 2)
        self.assertEqual(len({t.conn_id for t in got}), 1, "idle connection not reused")

    def test_large_message_intact(self):
        sink = self.sink()
        m = self.mta(delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")]))
        lines = []
        for i in range(20000):
            lead = "." * (i % 3)
            lines.append(f"{lead}line {i:05d} " + "x" * (i % 70))
        body = ("\r\n".join(lines) + "\r\n.\r\n..\r\nend\r\n").encode()
        msg_id = self.submit(m, ["big@example.test"], data=make_message(subject="big", body=body))
        tx, = self.assertDelivered(sink, 1, timeout=30)
        self.assertEqual(tx.message_id, msg_id)
        self.assertEqual(len(tx.body()), len(body))
        self.assertEqual(tx.body(), body, "large message altered in transit")

    def test_source_ip_per_configuration_set(self):
        sink = self.sink()
        ip_a, ip_b = random_loopback(), random_loopback()
        while ip_b == ip_a:
            ip_b = random_loopback()
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")], source_ip=ip_a,
                              ehlo="a.mta.test")
        cfg["ip_pools"].append({"name": "bulkpool", "ips": [{"address": ip_b, "ehlo": "b.mta.test"},
                                                             {"address": "127.0.0.1"}]})
        for s in cfg["configuration_sets"]:
            if s["name"] == "bulk":
                s["ip_pool"] = "bulkpool"
        m = self.mta(cfg)
        # Each set's mail leaves from its own pool's IPs (bulkpool has two,
        # used in turn), with each IP's EHLO name.
        ids = {}
        for i in range(3):
            ids[self.submit(m, [f"t{i}@example.test"])] = {ip_a}
            ids[self.submit(m, [f"b{i}@example.test"], headers=[("X-SES-CONFIGURATION-SET", "bulk")])] = {ip_b, "127.0.0.1"}
        got = self.assertDelivered(sink, 6)
        ehlo = {ip_a: "a.mta.test", ip_b: "b.mta.test", "127.0.0.1": "mta.test"}
        for t in got:
            self.assertIn(t.peer, ids[t.message_id], f"{t.message_id} sent from the wrong IP")
            self.assertEqual(t.ehlo, ehlo[t.peer])
        self.assertEqual({t.peer for t in got if ip_a not in ids[t.message_id]}, {ip_b, "127.0.0.1"})
        per_conn = {}
        for t in got:
            per_conn.setdefault(t.conn_id, set()).add(t.peer)
        self.assertTrue(all(len(v) == 1 for v in per_conn.values()))
        peer_of = {t.message_id: t.peer for t in got}
        dl = wait_events(m, lambda e: e["eventType"] == "Delivery", n=6)
        for e in dl:
            want = peer_of[e["mail"]["messageId"]]
            self.assertEqual(e["mta"]["ip"], want)
            self.assertEqual(e["mta"]["pool"], "main" if want == ip_a else "bulkpool")
            self.assertEqual(e["mail"]["tags"]["ses:outgoing-ip"], [want])

    def test_null_sender_and_helo_fallback(self):
        # a server that does not know EHLO: HELO, no extensions, no pipelining
        sink = self.sink(script={"ehlo": "502 5.5.2 Error: command not recognized"})
        m = self.mta(delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")]))
        msg_id = self.submit(m, ["a@example.test"], mail_from="")
        tx, = self.assertDelivered(sink, 1)
        self.assertEqual(tx.message_id, msg_id)
        self.assertEqual(tx.mail_from, "", "the null reverse path was not kept")
        self.assertFalse(tx.pipelined)
        self.assertEqual([c.split(" ")[0].upper() for c in sink.connections[0].commands][:2],
                         ["EHLO", "HELO"])

    def test_route_hosts_tried_in_order(self):
        sink = self.sink()
        dead = free_port()
        cfg = delivery_config(routes=[route("example.test", f"127.0.0.1:{dead}",
                                            f"127.0.0.1:{sink.port}")])
        m = self.mta(cfg)
        msg_id = self.submit(m, ["a@example.test"])
        tx, = self.assertDelivered(sink, 1)
        self.assertEqual(tx.message_id, msg_id)
        dev, = wait_events(m, ev_type(msg_id, "Delivery"))
        self.assertEqual(dev["mta"]["attempts"], 1, "second host not tried in the same attempt")
        self.assertEqual(events(m)[-1]["eventType"], "Delivery")
        self.assertFalse([e for e in events(m) if e["eventType"] == "DeliveryDelay"],
                         "deferred although the second route host was up")


if __name__ == "__main__":
    unittest.main(verbosity=2)
