"""Permanent failures: an unknown user (5.1.1) bounces, is suppressed, and a
later message to it is not attempted but bounced with subtype Suppressed;
reputation blocks (Gmail's multi-line 5.7.1 "unsolicited mail", "low
reputation of the sending IP") bounce without suppressing; 8-bit mail to a
server without 8BITMIME and mail larger than the server's SIZE bounce
without a transaction; in one multi-recipient transaction each recipient
gets its own outcome.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_delivery_bounces.py
"""

import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import (DeliveryTestCase, accounting, delivery_config, ev_type, events,  # noqa: E402
                     route, suppression_list, wait_accounting, wait_events, wait_queue_empty)
from mtatest import make_message, require_binary  # noqa: E402

USER_UNKNOWN = ("550 5.1.1 <bad@example.test>: Recipient address rejected: "
                "User unknown in virtual mailbox table")
GMAIL_SPAM = "\r\n".join([
    "550-5.7.1 [{ip}] Our system has detected that this message is",
    "550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,",
    "550-5.7.1 this message has been blocked. Please visit",
    "550-5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError",
    "550 5.7.1  for more information. d2si1234567abc.12 - gsmtp"])
LOW_REPUTATION = "550 5.7.1 Message rejected due to low reputation of the sending IP"


def setUpModule():
    require_binary()


class Bounces(DeliveryTestCase):
    def daemon(self, sink, accounting=None, **kw):
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")], intervals=["1s"], **kw)
        if accounting:
            cfg["accounting"] = accounting
        return self.mta(cfg)

    def bounce_of(self, m, msg_id, rcpt=None, timeout=15):
        pred = ev_type(msg_id, "Bounce")
        b = wait_events(m, lambda e: pred(e) and (
            rcpt is None or e["bounce"]["bouncedRecipients"][0]["emailAddress"] == rcpt),
            timeout=timeout)
        self.assertEqual(len(b), 1, f"Bounce events for {msg_id} {rcpt}: "
                                    f"{[e['eventType'] for e in events(m)]}")
        return b[0]

    def test_user_unknown_suppressed(self):
        sink = self.sink(script={("rcpt", "bad@example.test"): USER_UNKNOWN})
        acc = os.path.join(tempfile.mkdtemp(prefix="mta-e2e-acc-"), "acc.jsonl")
        self.addCleanup(shutil.rmtree, os.path.dirname(acc), True)
        m = self.daemon(sink, accounting={"path": acc})
        id1 = self.submit(m, ["bad@example.test"])
        ev = self.bounce_of(m, id1)
        b = ev["bounce"]
        self.assertEqual(b["bounceType"], "Permanent")
        self.assertIn(b["bounceSubType"], ("General", "NoEmail"))
        r, = b["bouncedRecipients"]
        self.assertEqual(r["emailAddress"], "bad@example.test")
        self.assertEqual(r["action"], "failed")
        self.assertEqual(r["status"], "5.1.1")
        self.assertIn("User unknown", r["diagnosticCode"])
        self.assertEqual(ev["mta"]["bounceCategory"], "bad-mailbox")
        self.assertEqual(ev["mta"]["attempts"], 1)
        self.assertEqual(wait_queue_empty(m, [id1]), set())
        self.assertEqual(sink.attempts("rcpt", "bad@example.test"), 1)

        sup = suppression_list(m)
        self.assertEqual([s["address"] for s in sup], ["bad@example.test"], sup)
        self.assertEqual(sup[0]["reason"], "BOUNCE")
        self.assertEqual(sup[0]["message_id"], id1)
        self.assertIn("5.1.1", sup[0]["detail"])

        # a later message: the suppressed address (any case) is not attempted,
        # the other recipient is delivered
        id2 = self.submit(m, ["good@example.test", "Bad@Example.TEST"])
        tx, = self.assertDelivered(sink, 1)
        self.assertEqual(tx.message_id, id2)
        self.assertEqual(tx.rcpts, ["good@example.test"])
        self.assertEqual(sink.attempts("rcpt", "Bad@Example.TEST"), 0, "suppressed address was attempted")
        ev2 = self.bounce_of(m, id2)
        b2 = ev2["bounce"]
        self.assertEqual(b2["bounceType"], "Permanent")
        self.assertEqual(b2["bounceSubType"], "Suppressed")
        self.assertEqual(b2["bouncedRecipients"][0]["emailAddress"].lower(), "bad@example.test")
        self.assertTrue(wait_events(m, ev_type(id2, "Delivery")))

        # a message to the suppressed address only: no connection at all
        conns = len(sink.connections)
        id3 = self.submit(m, ["bad@example.test"])
        ev3 = self.bounce_of(m, id3)
        self.assertEqual(ev3["bounce"]["bounceSubType"], "Suppressed")
        self.assertEqual(wait_queue_empty(m, [id2, id3]), set())
        self.assertEqual(sink.attempts("rcpt", "bad@example.test"), 1)
        self.assertEqual(len(sink.connections), conns, "connected for a suppressed-only message")
        self.assertEqual(len(suppression_list(m)), 1, "suppressed twice")

        # accounting: a "b" line per bounce, the suppressed ones marked
        lines = wait_accounting(acc, lambda a: a.get("type") == "b", n=3)
        by_id = {a["id"]: a for a in lines}
        self.assertEqual(set(by_id), {id1, id2, id3}, accounting(acc))
        self.assertEqual(by_id[id1]["category"], "bad-mailbox")
        self.assertIn("5.1.1", by_id[id1]["reply"])
        self.assertNotEqual(by_id[id1].get("bounce_subtype"), "Suppressed")
        self.assertEqual(by_id[id2].get("bounce_subtype"), "Suppressed")
        self.assertEqual(by_id[id3].get("bounce_subtype"), "Suppressed")
        self.assertEqual([a["rcpt"] for a in accounting(acc) if a["type"] == "d"], ["good@example.test"])

    def test_mail_from_rejected(self):
        sink = self.sink(script={("mail", "blocked@src.test"):
                                 "550 5.7.1 <blocked@src.test>: Sender address rejected: Access denied"})
        m = self.daemon(sink, max_connections=1)
        id1 = self.submit(m, ["a@example.test", "b@example.test"], mail_from="blocked@src.test")
        id2 = self.submit(m, ["c@example.test"], mail_from="fine@src.test")
        b = wait_events(m, ev_type(id1, "Bounce"), n=2)
        self.assertEqual(sorted(e["bounce"]["bouncedRecipients"][0]["emailAddress"] for e in b),
                         ["a@example.test", "b@example.test"])
        for e in b:
            self.assertEqual(e["bounce"]["bounceType"], "Permanent")
            self.assertIn("Sender address rejected", e["bounce"]["bouncedRecipients"][0]["diagnosticCode"])
        self.assertEqual(suppression_list(m), [], "a sender rejection suppressed the recipients")
        tx, = self.assertDelivered(sink, 1)
        self.assertEqual(tx.message_id, id2)
        self.assertEqual(tx.mail_from, "fine@src.test")
        self.assertEqual(wait_queue_empty(m, [id1, id2]), set())

    def test_reputation_blocks_not_suppressed(self):
        src = "127.0.0.1"
        sink = self.sink(script={("data_end", "g@example.test"): GMAIL_SPAM.format(ip=src),
                                 ("rcpt", "r@example.test"): LOW_REPUTATION})
        m = self.daemon(sink)
        id1 = self.submit(m, ["g@example.test"])
        id2 = self.submit(m, ["r@example.test"])
        for msg_id, rcpt, text in ((id1, "g@example.test", "likely unsolicited mail"),
                                   (id2, "r@example.test", "low reputation")):
            ev = self.bounce_of(m, msg_id)
            b = ev["bounce"]
            self.assertEqual(b["bounceType"], "Permanent", ev)
            self.assertNotEqual(b["bounceSubType"], "Suppressed")
            r, = b["bouncedRecipients"]
            self.assertEqual(r["emailAddress"], rcpt)
            self.assertEqual(r["status"], "5.7.1")
            self.assertIn(text, r["diagnosticCode"])
            self.assertNotEqual(ev["mta"].get("bounceCategory"), "bad-mailbox")
        # the whole multi-line Gmail reply is kept
        g = self.bounce_of(m, id1)["bounce"]["bouncedRecipients"][0]["diagnosticCode"]
        self.assertIn("gsmtp", g)
        self.assertEqual(suppression_list(m), [], "a reputation block suppressed the recipient")
        self.assertEqual(wait_queue_empty(m, [id1, id2]), set())
        # and a later message to the same addresses is attempted again
        self.submit(m, ["g@example.test"])
        self.submit(m, ["r@example.test"])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (sink.attempts("data_end", ("g@example.test",)) < 2 or
                                                sink.attempts("rcpt", "r@example.test") < 2):
            time.sleep(0.1)
        self.assertEqual(sink.attempts("data_end", ("g@example.test",)), 2)
        self.assertEqual(sink.attempts("rcpt", "r@example.test"), 2)

    def test_8bit_to_server_without_8bitmime(self):
        sink = self.sink(eightbitmime=False)
        m = self.daemon(sink)
        body8 = "Grüße aus Köln\r\n".encode("utf-8")
        id8 = self.assertAccepted(m.send(make_message(subject="8bit", body=body8, to="u@example.test"),
                                         rcpts=["u@example.test"], mail_params=" BODY=8BITMIME"))
        ev = self.bounce_of(m, id8)
        r, = ev["bounce"]["bouncedRecipients"]
        self.assertEqual(ev["bounce"]["bounceType"], "Permanent")
        self.assertEqual(r["status"], "5.6.3")
        self.assertIn("554 5.6.3", r["diagnosticCode"])
        self.assertIn("does not announce 8BITMIME", r["diagnosticCode"])
        self.assertEqual(suppression_list(m), [])
        # a 7-bit message goes through, without a BODY= parameter
        id7 = self.submit(m, ["u@example.test"], subject="7bit")
        tx, = self.assertDelivered(sink, 1)
        self.assertEqual(tx.message_id, id7)
        self.assertNotIn("BODY=", tx.mail_params.upper())
        self.assertEqual([t for t in sink.transactions if t.message_id == id8], [])
        self.assertEqual(wait_queue_empty(m, [id8, id7]), set())

    def test_8bit_to_server_with_8bitmime(self):
        sink = self.sink(eightbitmime=True)
        m = self.daemon(sink)
        body8 = "Grüße aus Köln\r\n".encode("utf-8")
        msg_id = self.assertAccepted(m.send(make_message(subject="8bit", body=body8, to="u@example.test"),
                                            rcpts=["u@example.test"], mail_params=" BODY=8BITMIME"))
        tx, = self.assertDelivered(sink, 1)
        self.assertEqual(tx.message_id, msg_id)
        self.assertIn("BODY=8BITMIME", tx.mail_params.upper())
        self.assertEqual(tx.body(), body8)

    def test_larger_than_server_size(self):
        sink = self.sink(size=4000)
        m = self.daemon(sink)
        big = self.submit(m, ["u@example.test"], subject="big", size=8000)
        ev = self.bounce_of(m, big)
        r, = ev["bounce"]["bouncedRecipients"]
        self.assertEqual(r["status"], "5.3.4")
        self.assertIn("552 5.3.4", r["diagnosticCode"])
        small = self.submit(m, ["u@example.test"], subject="small", size=1000)
        tx, = self.assertDelivered(sink, 1)
        self.assertEqual(tx.message_id, small)
        mm = re.search(r"SIZE=(\d+)", tx.mail_params, re.I)
        self.assertIsNotNone(mm, f"no SIZE= in MAIL FROM although SIZE was announced: {tx.mail_params!r}")
        self.assertEqual(int(mm.group(1)), len(tx.data), "SIZE= is not the message size")
        self.assertEqual([t for t in sink.transactions if t.message_id == big], [])
        self.assertEqual(suppression_list(m), [])

    def test_per_recipient_outcomes_in_one_transaction(self):
        sink = self.sink(script={
            ("rcpt", "bad@example.test"): USER_UNKNOWN,
            ("rcpt", "later@example.test"): ["450 4.2.1 Mailbox busy, try again"],
        })
        m = self.daemon(sink)
        rcpts = ["ok1@example.test", "bad@example.test", "later@example.test", "ok2@example.test"]
        msg_id = self.submit(m, rcpts)
        first = self.assertDelivered(sink, 1)[0]
        self.assertEqual(first.rcpts, ["ok1@example.test", "ok2@example.test"])
        self.assertEqual([a for a, _ in first.refused], ["bad@example.test", "later@example.test"])
        second = self.assertDelivered(sink, 2, timeout=15)[1]
        self.assertEqual(second.rcpts, ["later@example.test"], "retry resent to other recipients")
        self.assertEqual(second.message_id, msg_id)
        dl = wait_events(m, ev_type(msg_id, "Delivery"), n=3)
        self.assertEqual(sorted(e["delivery"]["recipients"][0] for e in dl),
                         ["later@example.test", "ok1@example.test", "ok2@example.test"])
        by = {e["delivery"]["recipients"][0]: e["mta"]["attempts"] for e in dl}
        self.assertEqual(by, {"ok1@example.test": 1, "ok2@example.test": 1, "later@example.test": 2})
        b = self.bounce_of(m, msg_id)
        self.assertEqual(b["bounce"]["bouncedRecipients"][0]["emailAddress"], "bad@example.test")
        dd = [e for e in events(m) if ev_type(msg_id, "DeliveryDelay")(e)]
        self.assertEqual([e["deliveryDelay"]["delayedRecipients"][0]["emailAddress"] for e in dd],
                         ["later@example.test"])
        self.assertEqual(wait_queue_empty(m, [msg_id]), set())
        self.assertEqual([s["address"] for s in suppression_list(m)], ["bad@example.test"])
        self.assertEqual(len(sink.delivered()), 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
