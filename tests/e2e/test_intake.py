"""SMTP intake: banner, EHLO, the accepted message as stored (headers added and
removed, configuration set, tags, envelope), dot-stuffing, bare LF, 8-bit,
pipelining in one write, and SMTP smuggling.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_intake.py
"""

import datetime
import email.utils
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mtatest import (HOSTNAME, E2ETestCase, base_config, has_bare_lf,  # noqa: E402
                     header_values, make_message, parse_rfc3339, require_binary,
                     split_message)


def setUpModule():
    require_binary()


class Intake(E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cfg = base_config(max_message_bytes=1048576,
                          users=[{"name": "app1", "password": "pw1",
                                  "configuration_set": "transactional"}])
        cls.m = cls.class_mta(cfg)

    # -- helpers ----------------------------------------------------------------

    def send_ok(self, data, **kw):
        r = self.m.send(data, **kw)
        return self.assertAccepted(r)

    def stored(self, msg_id):
        raw = self.m.queue_show(msg_id)
        self.assertFalse(has_bare_lf(raw), "stored message has a bare LF")
        self.assertTrue(raw.endswith(b"\r\n"), "stored message does not end with CRLF")
        return raw

    # -- greeting and commands ------------------------------------------------------

    def test_banner(self):
        with self.m.connect() as c:
            r = c.reply()
            self.assertEqual(r.code, 220)
            self.assertEqual(len(r.lines), 1, r)
            self.assertRegex(r.lines[0], rf"^{re.escape(HOSTNAME)} ESMTP mta\b")
            c.quit()

    def test_ehlo_extensions(self):
        with self.m.connect() as c:
            c.reply()
            r, ext = c.ehlo("client.test")
            self.assertEqual(r.code, 250, r)
            self.assertTrue(r.lines[0].startswith(HOSTNAME), r)
            self.assertIn("PIPELINING", ext)
            self.assertIn("SIZE 1048576", ext)
            self.assertIn("8BITMIME", ext)
            self.assertIn("ENHANCEDSTATUSCODES", ext)
            # loopback is in plaintext_auth_networks by default
            auth = [e for e in ext if e.startswith("AUTH ")]
            self.assertEqual(len(auth), 1, f"AUTH not advertised: {ext}")
            self.assertEqual(set(auth[0].split()[1:]) & {"PLAIN", "LOGIN"}, {"PLAIN", "LOGIN"})
            # the listener has no starttls section
            self.assertNotIn("STARTTLS", ext)
            c.quit()

    def test_helo_noop_rset_vrfy_quit(self):
        with self.m.connect() as c:
            c.reply()
            self.assertReply(c.cmd("HELO client.test"), 250)
            self.assertReply(c.cmd("NOOP"), 250)
            self.assertReply(c.cmd("RSET"), 250)
            self.assertReply(c.cmd("VRFY postmaster"), 252)
            self.assertReply(c.cmd("MAIL FROM:<a@src.test>"), 250)
            self.assertReply(c.cmd("RSET"), 250)
            # RSET cleared the transaction: RCPT now is out of sequence
            self.assertReply(c.cmd("RCPT TO:<b@dst.test>"), 503, "5.5.1")
            r = c.cmd("QUIT")
            self.assertReply(r, 221)
            self.assertTrue(c.closed(5), "connection not closed after QUIT")

    def test_helo_then_message(self):
        with self.m.connect() as c:
            c.reply()
            self.assertReply(c.cmd("HELO client.test"), 250)
            r = c.transaction("a@src.test", ["b@dst.test"], make_message(subject="via HELO"))
            self.assertAccepted(r)
            c.quit()

    def test_case_insensitive_commands(self):
        with self.m.connect() as c:
            c.reply()
            self.assertReply(c.cmd("ehlo client.test"), 250)
            self.assertReply(c.cmd("mail from:<a@src.test>"), 250)
            self.assertReply(c.cmd("rcpt to:<b@dst.test>"), 250)
            self.assertReply(c.cmd("data"), 354)
            self.assertAccepted(c.data(make_message()))
            c.quit()

    # -- the stored message ---------------------------------------------------------

    def test_message_stored_with_envelope(self):
        before = time.time()
        body = b"Line one.\r\nLine two.\r\n"
        data = make_message(subject="stored", body=body)
        r = self.m.send(data, mail_from="alice@src.test",
                        rcpts=["bob@dst.test", "carol@other.test", "dave@dst.test"])
        msg_id = self.assertAccepted(r)
        self.assertRegex(r.lines[-1], r"^2\.0\.0 Ok [0-9a-f]{32}$")
        e = self.m.queue_entry(msg_id)
        self.assertIsNotNone(e, f"{msg_id} not in queue list")
        self.assertRegex(e["id"], r"^[0-9a-f]{32}$")
        self.assertEqual(e["mail_from"], "alice@src.test")
        self.assertEqual(e["recipients"], ["bob@dst.test", "carol@other.test", "dave@dst.test"])
        self.assertEqual(e["configuration_set"], "default")
        self.assertEqual(e["tags"], {})
        self.assertEqual(e["client_ip"], "127.0.0.1")
        self.assertEqual(e["auth_user"], "")
        self.assertEqual(e["protocol"], "smtp")
        self.assertRegex(e["received"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")
        t = parse_rfc3339(e["received"]).timestamp()
        self.assertLess(abs(t - before), 30, f"received {e['received']} is far from now")

        raw = self.stored(msg_id)
        self.assertEqual(e["size"], len(raw))
        headers, stored_body = split_message(raw)
        self.assertEqual(stored_body, body)
        # Received: first, naming us and the id
        self.assertEqual(headers[0][0].lower(), "received", f"first header is {headers[0]}")
        self.assertIn(f"by {HOSTNAME}", headers[0][1])
        self.assertIn(msg_id, headers[0][1])
        self.assertRegex(headers[0][1], rf"\bid <?{msg_id}>?")
        # X-MTA-Message-ID carries the id
        xid = header_values(headers, "X-MTA-Message-ID")
        self.assertEqual(len(xid), 1, headers)
        self.assertEqual(xid[0].strip("<>"), msg_id)
        # Message-ID and Date were missing: added
        mid = header_values(headers, "Message-ID")
        self.assertEqual(mid, [f"<{msg_id}@{HOSTNAME}>"])
        date = header_values(headers, "Date")
        self.assertEqual(len(date), 1, headers)
        self.assertIsNotNone(email.utils.parsedate_to_datetime(date[0]))
        # original headers kept, in order
        names = [n.lower() for n, _ in headers]
        for h in ("from", "to", "subject"):
            self.assertEqual(names.count(h), 1, headers)
        self.assertLess(names.index("from"), names.index("to"))
        self.assertLess(names.index("to"), names.index("subject"))

    def test_existing_message_id_and_date_kept(self):
        data = make_message(subject="keep ids", headers=[
            ("Message-ID", "<original.123@client.test>"),
            ("Date", "Tue, 3 Nov 2026 10:00:00 +0000")])
        msg_id = self.send_ok(data)
        headers, _ = split_message(self.stored(msg_id))
        self.assertEqual(header_values(headers, "Message-ID"), ["<original.123@client.test>"])
        self.assertEqual(header_values(headers, "Date"), ["Tue, 3 Nov 2026 10:00:00 +0000"])
        xid = header_values(headers, "X-MTA-Message-ID")
        self.assertEqual([x.strip("<>") for x in xid], [msg_id])

    def test_configuration_set_header_selects_set_and_is_removed(self):
        for name, value, want in [("X-SES-CONFIGURATION-SET", "transactional", "transactional"),
                                  ("x-ses-configuration-set", "bulk", "bulk"),
                                  ("X-Configuration-Set", "transactional", "transactional"),
                                  ("x-configuration-set", "bulk", "bulk")]:
            with self.subTest(header=name):
                msg_id = self.send_ok(make_message(subject="set by header",
                                                   headers=[(name, value)]))
                self.assertEqual(self.m.queue_entry(msg_id)["configuration_set"], want)
                headers, _ = split_message(self.stored(msg_id))
                names = [n.lower() for n, _ in headers]
                self.assertNotIn("x-ses-configuration-set", names, headers)
                self.assertNotIn("x-configuration-set", names, headers)

    def test_unknown_configuration_set_rejected(self):
        n = len(self.m.queue_list())
        r = self.m.send(make_message(headers=[("X-SES-CONFIGURATION-SET", "nosuchset")]))
        self.assertReply(r, 554, "5.3.0")
        self.assertEqual(len(self.m.queue_list()), n, "rejected message was stored")

    def test_tags(self):
        msg_id = self.send_ok(make_message(headers=[
            ("X-SES-MESSAGE-TAGS", "campaign=spring, user_id=42,kind=welcome-mail")]))
        e = self.m.queue_entry(msg_id)
        self.assertEqual(e["tags"], {"campaign": "spring", "user_id": "42", "kind": "welcome-mail"})
        self.assertEqual(e["configuration_set"], "default")
        headers, _ = split_message(self.stored(msg_id))
        self.assertNotIn("x-ses-message-tags", [n.lower() for n, _ in headers], headers)

    def test_tags_and_set_together(self):
        msg_id = self.send_ok(make_message(headers=[
            ("X-SES-MESSAGE-TAGS", "a=1"), ("X-SES-CONFIGURATION-SET", "bulk")]))
        e = self.m.queue_entry(msg_id)
        self.assertEqual(e["tags"], {"a": "1"})
        self.assertEqual(e["configuration_set"], "bulk")

    def test_invalid_tags_rejected(self):
        n = len(self.m.queue_list())
        r = self.m.send(make_message(headers=[("X-SES-MESSAGE-TAGS", "campaign")]))
        self.assertReply(r, 554, "5.6.0")
        self.assertEqual(len(self.m.queue_list()), n, "rejected message was stored")

    def test_dot_stuffing(self):
        body = b"before\r\n.hidden line\r\n..two dots\r\n.\r\nafter\r\n"
        # send() dot-stuffs: ".hidden" goes out as "..hidden", "." as ".."
        msg_id = self.send_ok(make_message(body=body))
        _, stored_body = split_message(self.stored(msg_id))
        self.assertEqual(stored_body, body)

    def test_bare_lf_stored_as_crlf(self):
        # the last line ends in CRLF: only CRLF "." CRLF ends the data (see Smuggling)
        data = b"From: <a@src.test>\nTo: <b@dst.test>\nSubject: bare lf\n\nline 1\nline 2\r\nline 3\r\n"
        with self.m.connect() as c:
            c.reply()
            c.expect(250, "EHLO client.test")
            c.expect(250, "MAIL FROM:<a@src.test>")
            c.expect(250, "RCPT TO:<b@dst.test>")
            c.expect(354, "DATA")
            c.send(data + b".\r\n")
            msg_id = self.assertAccepted(c.reply())
            c.quit()
        headers, body = split_message(self.stored(msg_id))
        self.assertEqual(header_values(headers, "Subject"), ["bare lf"])
        self.assertEqual(body, b"line 1\r\nline 2\r\nline 3\r\n")

    def test_8bit_body_kept(self):
        body = "Grüße, ça va? 日本語\r\n".encode("utf-8") + bytes(range(0x80, 0x100)) + b"\r\n"
        msg_id = self.assertAccepted(self.m.send(make_message(body=body), mail_params=" BODY=8BITMIME"))
        _, stored_body = split_message(self.stored(msg_id))
        self.assertEqual(stored_body, body)

    def test_null_sender(self):
        msg_id = self.assertAccepted(self.m.send(make_message(subject="bounce"), mail_from=""))
        self.assertEqual(self.m.queue_entry(msg_id)["mail_from"], "")

    def test_mail_params_size_ok(self):
        msg_id = self.assertAccepted(self.m.send(make_message(), mail_params=" SIZE=500"))
        self.assertIn(msg_id, self.m.queue_ids())

    def test_several_messages_one_session(self):
        ids = []
        with self.m.connect() as c:
            c.reply()
            c.expect(250, "EHLO client.test")
            for i in range(5):
                r = c.transaction("a@src.test", [f"r{i}@dst.test"], make_message(subject=f"n{i}"))
                ids.append(self.assertAccepted(r))
            c.quit()
        self.assertEqual(len(set(ids)), 5)
        self.assertEqual(ids, sorted(ids), "ids of one session are not time-ordered")
        q = {e["id"]: e for e in self.m.queue_list()}
        for i, msg_id in enumerate(ids):
            self.assertEqual(q[msg_id]["recipients"], [f"r{i}@dst.test"])

    def test_pipelining_in_one_write(self):
        body = b"pipelined body\r\n"
        data = make_message(subject="pipelined", body=body)
        with self.m.connect() as c:
            c.reply()
            c.expect(250, "EHLO client.test")
            c.send(b"MAIL FROM:<p@src.test>\r\nRCPT TO:<q1@dst.test>\r\nRCPT TO:<q2@dst.test>\r\n"
                   b"DATA\r\n" + data + b".\r\nQUIT\r\n")
            rs = c.replies(6)
            self.assertEqual([r.code for r in rs], [250, 250, 250, 354, 250, 221], rs)
            msg_id = self.assertAccepted(rs[4])
        e = self.m.queue_entry(msg_id)
        self.assertEqual(e["mail_from"], "p@src.test")
        self.assertEqual(e["recipients"], ["q1@dst.test", "q2@dst.test"])
        headers, stored_body = split_message(self.stored(msg_id))
        self.assertEqual(stored_body, body)
        self.assertEqual(header_values(headers, "Subject"), ["pipelined"])

    def test_pipelining_two_transactions_in_one_write(self):
        d1 = make_message(subject="first", body=b"one\r\n")
        d2 = make_message(subject="second", body=b"two\r\n")
        with self.m.connect() as c:
            c.reply()
            c.expect(250, "EHLO client.test")
            c.send(b"MAIL FROM:<p@src.test>\r\nRCPT TO:<q1@dst.test>\r\nDATA\r\n" + d1 + b".\r\n"
                   b"MAIL FROM:<p@src.test>\r\nRCPT TO:<q2@dst.test>\r\nDATA\r\n" + d2 + b".\r\n"
                   b"QUIT\r\n")
            rs = c.replies(9)
            self.assertEqual([r.code for r in rs], [250, 250, 354, 250, 250, 250, 354, 250, 221], rs)
        id1, id2 = self.assertAccepted(rs[3]), self.assertAccepted(rs[7])
        self.assertNotEqual(id1, id2)
        self.assertEqual(split_message(self.stored(id1))[1], b"one\r\n")
        self.assertEqual(split_message(self.stored(id2))[1], b"two\r\n")
        self.assertEqual(self.m.queue_entry(id2)["recipients"], ["q2@dst.test"])


class Smuggling(E2ETestCase):
    """A '.' line that is not CRLF '.' CRLF must not end the data; what follows
    stays message content (https://www.postfix.org/smtp-smuggling.html)."""

    @classmethod
    def setUpClass(cls):
        cls.m = cls.class_mta(base_config())

    def smuggle(self, fake_end, may_reject=False):
        n0 = len(self.m.queue_list())
        data = (b"From: <a@src.test>\r\nTo: <b@dst.test>\r\nSubject: smuggle\r\n\r\n"
                b"visible line" + fake_end +
                b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@dst.test>\r\nDATA\r\n"
                b"From: <ceo@src.test>\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n")
        with self.m.connect() as c:
            c.reply()
            c.expect(250, "EHLO client.test")
            c.expect(250, "MAIL FROM:<a@src.test>")
            c.expect(250, "RCPT TO:<b@dst.test>")
            c.expect(354, "DATA")
            c.send(data + b".\r\nQUIT\r\n")
            rs = c.read_all(timeout=10)
        codes = [r.code for r in rs]
        if may_reject and codes and codes[0] == 554:
            # refusing the whole thing is safe too
            self.assertEqual(codes, [554, 221], f"the daemon split the data: {rs}")
            self.assertEqual(len(self.m.queue_list()), n0, "a message was stored")
            return
        self.assertEqual(codes, [250, 221], f"the daemon split the data: {rs}")
        msg_id = self.assertAccepted(rs[0])
        self.assertEqual(len(self.m.queue_list()), n0 + 1, "more than one message stored")
        raw = self.m.queue_show(msg_id)
        self.assertIn(b"MAIL FROM:<evil@attacker.test>", raw)
        self.assertIn(b"smuggled body", raw)
        self.assertEqual(self.m.queue_entry(msg_id)["recipients"], ["b@dst.test"])

    def test_lf_dot_lf(self):
        self.smuggle(b"\n.\n")

    def test_crlf_dot_lf(self):
        self.smuggle(b"\r\n.\n")

    def test_lf_dot_crlf(self):
        self.smuggle(b"\n.\r\n")

    def test_cr_dot_cr(self):
        self.smuggle(b"\r.\r", may_reject=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
