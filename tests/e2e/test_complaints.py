"""Complaints (feedback loops): a provider's ARF report (RFC 5965) sent to a
configured feedback address, from a client outside relay_networks and
without AUTH, about a message delivered to a recording sink.  Checks the
Complaint event (SES format, with the message's mail object), the COMPLAINT
suppression entry and that the next message to the address is not delivered
(Bounce, subtype Suppressed), and that the Complaint reaches the
configuration set's webhook, signed; that the report itself goes nowhere; that a
feedback address cannot be mixed with other recipients nor used to relay;
that a report which is not ARF, or is about no message of ours, is answered
250, counted and changes nothing; and the Message-ID fallback after a
restart.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_complaints.py
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import (DeliveryTestCase, delivery_config, ev_type, events,  # noqa: E402
                     route, suppression_list, wait_events)
from mtatest import make_message, parse_rfc3339, require_binary  # noqa: E402
from webhooktest import Receiver, of  # noqa: E402

FBL = "fbl@mta.test"
PROVIDER_IP = "127.0.0.77"      # the provider's client address: not in relay_networks


def setUpModule():
    require_binary()


def arf(original, rcpt_to=None, feedback_type="abuse", part_type="message/rfc822",
        source_ip="127.0.0.1"):
    """A Yahoo-shaped ARF report (multipart/report, message/feedback-report,
    then the reported message) about `original` (bytes)."""
    fields = [
        f"Feedback-Type: {feedback_type}",
        "User-Agent: Yahoo!-Mail-Feedback/2.0",
        "Version: 0.1",
        "Original-Mail-From: <bounce@src.test>",
    ]
    if rcpt_to:
        fields.append(f"Original-Rcpt-To: {rcpt_to}")
    fields += [
        "Arrival-Date: Tue, 03 Mar 2026 09:59:58 +0000",
        f"Source-IP: {source_ip}",
        "Reported-Domain: src.test",
    ]
    head = "\r\n".join([
        "From: Yahoo! Mail AntiSpam Feedback <feedback@arf.isp.test>",
        f"To: {FBL}",
        "Subject: FW: report",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=feedback-report; boundary="==ARF=="',
        "",
        "--==ARF==",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "This is an email abuse report.",
        "",
        "--==ARF==",
        "Content-Type: message/feedback-report",
        "",
        *fields,
        "",
        "--==ARF==",
        f"Content-Type: {part_type}",
        "Content-Disposition: inline",
        "",
        "",
    ]).encode()
    return head + original.rstrip(b"\r\n") + b"\r\n--==ARF==--\r\n"


class Complaints(DeliveryTestCase):
    def setUp(self):
        self.sink_ = self.sink()
        self.hook = None
        cfg = delivery_config(routes=[route("example.test", f"127.0.0.1:{self.sink_.port}")])
        cfg["smtp"]["relay_networks"] = ["127.0.0.1/32"]
        cfg["feedback"] = {"addresses": [FBL, "Abuse-Reports@mta.test"], "retention": "30d"}
        if self._testMethodName.endswith("_webhook"):
            # The transactional set publishes complaints to a signed webhook
            # (published events leave the outbox: `events tail` no longer
            # shows them, hence a test of its own).
            self.hook = Receiver("whsec-complaints")
            self.hook.start()
            self.addCleanup(self.hook.stop)
            cfg["event_destinations"] = [{"name": "complaints", "events": ["complaint"],
                                          "webhook": {"url": self.hook.url,
                                                      "secret": "whsec-complaints"}}]
            for s in cfg["configuration_sets"]:
                if s["name"] == "transactional":
                    s["event_destinations"] = ["complaints"]
        self.m = self.mta(cfg)

    def deliver(self, rcpts, subject="spring sale"):
        """Submit from the relay network; returns (id, the delivered copy)."""
        data = make_message(subject=subject, to=rcpts[0], from_="news@src.test",
                            headers=[("X-SES-CONFIGURATION-SET", "transactional"),
                                     ("X-SES-MESSAGE-TAGS", "campaign=spring")])
        msg_id = self.submit(self.m, rcpts, data=data, mail_from="bounce@src.test")
        tx, = self.assertDelivered(self.sink_, 1, pred=lambda t: t.message_id == msg_id)
        self.assertEqual(tx.message_id, msg_id)
        return msg_id, tx.data

    def report(self, data, rcpt=FBL, source=PROVIDER_IP):
        """Send a report as a provider would; returns the final reply."""
        with self.m.connect(source=source) as c:
            c.expect(220)
            c.expect(250, "EHLO feedback.isp.test")
            r = c.transaction("feedback@isp.test", [rcpt], data)
            c.quit()
            return r

    def metric(self, result):
        return self.m.metric("mta_feedback_reports_total", result=result) or 0

    def test_arf_report_publishes_complaint_suppresses_and_stops_delivery(self):
        msg_id, copy = self.deliver(["alice@example.test", "bob@example.test"])
        r = self.report(arf(copy, rcpt_to="Alice@Example.test"))
        self.assertReply(r, 250, "2.0.0")
        self.assertIn(f"complaint about {msg_id} recorded (1 address(es) suppressed)", r.text)

        ev, = wait_events(self.m, ev_type(msg_id, "Complaint"))
        mail = ev["mail"]
        self.assertEqual(mail["source"], "bounce@src.test")
        self.assertEqual(mail["destination"], ["alice@example.test", "bob@example.test"])
        self.assertEqual(mail["tags"]["ses:configuration-set"], ["transactional"])
        self.assertEqual(mail["tags"]["campaign"], ["spring"])
        self.assertEqual(mail["tags"]["ses:outgoing-ip"], ["127.0.0.1"])
        self.assertEqual(mail["tags"]["ses:from-domain"], ["src.test"])
        self.assertEqual(mail["commonHeaders"]["subject"], "spring sale")
        self.assertEqual(mail["commonHeaders"]["from"], ["<news@src.test>"])
        self.assertIn({"name": "X-MTA-Message-ID", "value": msg_id}, mail["headers"])
        parse_rfc3339(mail["timestamp"])
        c = ev["complaint"]
        self.assertEqual(c["complainedRecipients"], [{"emailAddress": "alice@example.test"}])
        self.assertEqual(c["complaintFeedbackType"], "abuse")
        self.assertEqual(c["userAgent"], "Yahoo!-Mail-Feedback/2.0")
        self.assertEqual(c["arrivalDate"], "2026-03-03T09:59:58.000Z")
        self.assertIsNone(c["complaintSubType"])
        self.assertRegex(c["feedbackId"], r"^[0-9a-f]{32}$")
        self.assertRegex(ev["eventId"], r"^[0-9a-f]{32}$")
        parse_rfc3339(c["timestamp"])
        self.assertEqual(ev["mta"]["feedback"]["matchedBy"], "X-MTA-Message-ID")
        self.assertEqual(ev["mta"]["feedback"]["reportingClient"], PROVIDER_IP)

        sup = {e["address"]: e for e in suppression_list(self.m)}
        self.assertEqual(set(sup), {"alice@example.test"})
        self.assertEqual(sup["alice@example.test"]["reason"], "COMPLAINT")
        self.assertEqual(sup["alice@example.test"]["message_id"], msg_id)
        self.assertIn(c["feedbackId"], sup["alice@example.test"]["detail"])
        self.assertEqual(self.metric("complaint"), 1)

        # The report itself was neither queued nor delivered, and sent no event.
        self.assertEqual([e for e in events(self.m) if e["eventType"] == "Send"
                          and FBL in e["mail"]["destination"]], [])
        self.assertEqual(self.m.queue_ids(), set())

        # The next message to the complainer is not delivered: Suppressed.
        data = make_message(subject="again", to="alice@example.test")
        again = self.submit(self.m, ["alice@example.test"], data=data)
        bounce, = wait_events(self.m, ev_type(again, "Bounce"))
        self.assertEqual(bounce["bounce"]["bounceSubType"], "Suppressed")
        self.assertEqual(bounce["bounce"]["bouncedRecipients"][0]["emailAddress"],
                         "alice@example.test")
        time.sleep(0.5)
        self.assertEqual([t for t in self.sink_.transactions if t.message_id == again], [],
                         "a suppressed address got mail")
        self.assertEqual(len(self.sink_.delivered()), 1, self.sink_.transactions)

    def test_complaint_reaches_the_sets_webhook(self):
        msg_id, copy = self.deliver(["erin@example.test"])
        self.assertReply(self.report(arf(copy)), 250, "2.0.0")
        # Signed, with the mail object of the message; nothing else was
        # posted: the destination asked for complaints only.
        ev, = self.hook.wait_for(of(msg_id, "Complaint"))
        self.assertTrue(ev["_signed"], "bad X-MTA-Signature")
        self.assertEqual(ev["complaint"]["complainedRecipients"],
                         [{"emailAddress": "erin@example.test"}])
        self.assertEqual(ev["mail"]["tags"]["ses:configuration-set"], ["transactional"])
        self.assertEqual(ev["mail"]["destination"], ["erin@example.test"])
        time.sleep(0.5)
        self.assertEqual([e["eventType"] for e in self.hook.events()], ["Complaint"])
        self.assertEqual([e["reason"] for e in suppression_list(self.m)], ["COMPLAINT"])

    def test_feedback_address_takes_no_other_recipient(self):
        # A relay client may send to both, but not in one transaction.
        with self.m.connect() as c:
            c.expect(220)
            c.expect(250, "EHLO app.test")
            c.expect(250, "MAIL FROM:<a@src.test>")
            c.expect(250, "RCPT TO:<alice@example.test>")
            r = c.cmd(f"RCPT TO:<{FBL}>")
            self.assertReply(r, 452, "4.5.3")
            self.assertIn("feedback address", r.text)
            c.expect(250, "RSET")
            c.expect(250, "MAIL FROM:<a@src.test>")
            c.expect(250, "RCPT TO:<ABUSE-REPORTS@mta.test>")
            r = c.cmd("RCPT TO:<alice@example.test>")
            self.assertReply(r, 452, "4.5.3")
            c.expect(250, f"RCPT TO:<{FBL}>")   # two feedback addresses are fine
            c.expect(354, "DATA")
            r = c.data(b"Subject: not a report\r\n\r\nhello\r\n")
            self.assertReply(r, 250)
            self.assertIn("not a feedback report", r.text)
        # Outside relay_networks, without AUTH: feedback addresses only.
        with self.m.connect(source=PROVIDER_IP) as c:
            c.expect(220)
            c.expect(250, "EHLO isp.test")
            c.expect(250, "MAIL FROM:<x@isp.test>")
            self.assertReply(c.cmd("RCPT TO:<alice@example.test>"), 530, "5.7.0")
            self.assertReply(c.cmd("RCPT TO:<postmaster>"), 530, "5.7.0")
            c.expect(250, f"RCPT TO:<{FBL}>")
            self.assertReply(c.cmd("RCPT TO:<alice@example.test>"), 530, "5.7.0")
            c.expect(354, "DATA")
            self.assertReply(c.data(b"Subject: x\r\n\r\nnot a report\r\n"), 250)
        time.sleep(0.5)
        self.assertEqual(self.sink_.transactions, [], "something was relayed")
        self.assertEqual(self.m.queue_ids(), set())
        self.assertEqual(self.m.metric("mta_smtp_rejections_total", reason="feedback_mixed"), 2)
        self.assertEqual(self.m.metric("mta_smtp_rejections_total", reason="relay_denied"), 3)

    def test_garbage_report_is_answered_counted_and_changes_nothing(self):
        for data in (b"Subject: unsubscribe me\r\n\r\nplease\r\n",
                     b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n"
                     b"\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nX: y\r\n--x--\r\n",
                     b"Content-Type: multipart/report; report-type=feedback-report; boundary=x\r\n"
                     b"\r\n--x\r\nContent-Type: message/feedback-report\r\n\r\nVersion: 1\r\n--x--\r\n",
                     b"\x7f\x01garbage\r\n"):
            r = self.report(data)
            self.assertReply(r, 250, "2.0.0")
            self.assertIn("not a feedback report", r.text)
        self.assertEqual(self.metric("not_arf"), 4)
        self.assertEqual(self.metric("complaint"), 0)
        self.assertEqual([e for e in events(self.m)], [])
        self.assertEqual(suppression_list(self.m), [])
        self.assertEqual(self.m.queue_ids(), set())
        self.assertIn("feedback=discarded reason=not_arf", self.m.log())

    def test_report_about_unknown_message_is_answered_and_counted(self):
        msg_id, copy = self.deliver(["carol@example.test"])
        stranger = copy.replace(msg_id.encode(), b"0" * 32)
        self.assertNotIn(msg_id.encode(), stranger.split(b"\r\n\r\n")[0])
        stranger = b"\r\n".join(l for l in stranger.split(b"\r\n")
                                if not l.lower().startswith(b"message-id:"))
        r = self.report(arf(stranger, rcpt_to="carol@example.test"))
        self.assertReply(r, 250, "2.0.0")
        self.assertIn("matches no message", r.text)
        self.assertEqual(self.metric("unknown_message"), 1)
        self.assertEqual([e for e in events(self.m) if e["eventType"] == "Complaint"], [])
        self.assertEqual(suppression_list(self.m), [])

    def test_matched_by_message_id_after_restart(self):
        # The provider stripped our header (text/rfc822-headers without
        # X-MTA-Message-ID); the Message-ID record survives a restart.
        msg_id, copy = self.deliver(["dave@example.test"], subject="only header")
        head = copy.split(b"\r\n\r\n")[0]
        stripped = b"\r\n".join(l for l in head.split(b"\r\n")
                                if not l.lower().startswith(b"x-mta-message-id:")) + b"\r\n"
        self.assertIn(f"Message-ID: <{msg_id}@mta.test>".encode(), stripped)
        self.assertNotIn(b"x-mta-message-id", stripped.lower())
        self.m.restart(kill=True)
        r = self.report(arf(stripped, part_type="text/rfc822-headers", feedback_type="fraud"))
        self.assertReply(r, 250, "2.0.0")
        ev, = wait_events(self.m, ev_type(msg_id, "Complaint"))
        self.assertEqual(ev["mta"]["feedback"]["matchedBy"], "Message-ID")
        self.assertEqual(ev["complaint"]["complaintFeedbackType"], "fraud")
        self.assertEqual(ev["complaint"]["complainedRecipients"],
                         [{"emailAddress": "dave@example.test"}])
        self.assertEqual([e["reason"] for e in suppression_list(self.m)], ["COMPLAINT"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
