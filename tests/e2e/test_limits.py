"""Limits and protocol abuse: command line length, message size (at MAIL with
SIZE= and after the dot), recipients per message, commands out of order,
unknown commands, long message lines, NUL, the error limit, the idle timeout,
and connection limits per client address and in total.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_limits.py
"""

import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mtatest import (E2ETestCase, SmtpConn, base_config, make_message,  # noqa: E402
                     require_binary, smtp_dialog, split_message)


def setUpModule():
    require_binary()


MAX_BYTES = 20000
MAX_RCPTS = 3


class Limits(E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = cls.class_mta(base_config(max_message_bytes=MAX_BYTES,
                                          max_recipients=MAX_RCPTS,
                                          max_command_line=512,
                                          max_errors=50))

    def session(self):
        c = self.m.connect()
        self.addCleanup(c.close)
        c.expect(220)
        c.expect(250, "EHLO client.test")
        return c

    def count(self):
        return len(self.m.queue_list())

    # -- command lines ----------------------------------------------------------------

    def test_command_line_limit_boundary(self):
        c = self.session()
        # "NOOP " + pad + CRLF == 512 octets: allowed
        r = c.cmd("NOOP " + "x" * (512 - 5 - 2))
        self.assertReply(r, 250)
        # 513 octets: too long
        r = c.cmd("NOOP " + "x" * (512 - 5 - 2 + 1))
        self.assertReply(r, 500, "5.5.2")
        self.assertReply(c.cmd("NOOP"), 250)

    def test_huge_command_line_session_usable(self):
        c = self.session()
        r = c.cmd("MAIL FROM:<" + "a" * 200000 + "@src.test>")
        self.assertReply(r, 500, "5.5.2")
        # exactly one reply for the long line, then the session works normally
        r = c.transaction("a@src.test", ["b@dst.test"], make_message(subject="after long line"))
        self.assertAccepted(r)

    def test_unknown_command(self):
        c = self.session()
        self.assertReply(c.cmd("FOOBAR baz"), 500, "5.5.2")
        self.assertReply(c.cmd("NOOP"), 250)

    # -- sequence ---------------------------------------------------------------------------

    def test_mail_before_ehlo(self):
        rs = smtp_dialog(self.m.port, ["MAIL FROM:<a@src.test>", "QUIT"])
        self.assertReply(rs[1], 503, "5.5.1")
        self.assertReply(rs[2], 221)

    def test_rcpt_before_mail(self):
        c = self.session()
        self.assertReply(c.cmd("RCPT TO:<b@dst.test>"), 503, "5.5.1")

    def test_data_before_rcpt(self):
        c = self.session()
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        self.assertReply(c.cmd("MAIL FROM:<a@src.test>"), 250)
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")

    def test_mail_twice(self):
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<a@src.test>"), 250)
        self.assertReply(c.cmd("MAIL FROM:<a2@src.test>"), 503, "5.5.1")
        # the first transaction is still open and completes
        self.assertReply(c.cmd("RCPT TO:<b@dst.test>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        msg_id = self.assertAccepted(c.data(make_message()))
        self.assertEqual(self.m.queue_entry(msg_id)["mail_from"], "a@src.test")

    def test_rejected_data_rset_state(self):
        # after a rejected DATA the transaction is over: DATA again is out of sequence
        c = self.session()
        n = self.count()
        r = c.transaction("a@src.test", ["b@dst.test"], b"Subject: x\r\n\r\n" + b"z" * 2000 + b"\r\n")
        self.assertReply(r, 554, "5.6.0")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        self.assertEqual(self.count(), n)

    # -- size -------------------------------------------------------------------------------

    def test_size_param_over_limit(self):
        c = self.session()
        self.assertReply(c.cmd(f"MAIL FROM:<a@src.test> SIZE={MAX_BYTES + 1}"), 552, "5.3.4")
        self.assertReply(c.cmd(f"MAIL FROM:<a@src.test> SIZE={MAX_BYTES // 2}"), 250)

    def test_message_over_limit(self):
        n = self.count()
        c = self.session()
        r = c.transaction("a@src.test", ["b@dst.test"], make_message(size=MAX_BYTES * 3))
        self.assertReply(r, 552, "5.3.4")
        self.assertEqual(self.count(), n, "oversize message stored")
        # the session goes on
        self.assertAccepted(c.transaction("a@src.test", ["b@dst.test"],
                                          make_message(size=MAX_BYTES // 2)))

    def test_message_far_over_limit(self):
        # 2 MB against a 20 kB limit: the daemon must read and drop it, not buffer or hang
        c = self.session()
        r = c.transaction("a@src.test", ["b@dst.test"], make_message(size=2 * 1024 * 1024),
                          timeout=30)
        self.assertReply(r, 552, "5.3.4")
        self.assertReply(c.cmd("NOOP"), 250)

    def test_message_under_limit(self):
        msg_id = self.assertAccepted(self.m.send(make_message(size=MAX_BYTES - 2000)))
        self.assertIn(msg_id, self.m.queue_ids())

    # -- recipients -------------------------------------------------------------------------

    def test_too_many_recipients(self):
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<a@src.test>"), 250)
        rcpts = [f"r{i}@dst.test" for i in range(MAX_RCPTS + 2)]
        rs = [c.cmd(f"RCPT TO:<{a}>") for a in rcpts]
        for r in rs[:MAX_RCPTS]:
            self.assertReply(r, 250)
        for r in rs[MAX_RCPTS:]:
            self.assertReply(r, 452, "4.5.3")
        self.assertReply(c.cmd("DATA"), 354)
        msg_id = self.assertAccepted(c.data(make_message()))
        self.assertEqual(self.m.queue_entry(msg_id)["recipients"], rcpts[:MAX_RCPTS])

    # -- message content --------------------------------------------------------------------

    def test_line_998_ok_999_rejected(self):
        c = self.session()
        ok = b"Subject: long\r\n\r\n" + b"a" * 998 + b"\r\n"
        msg_id = self.assertAccepted(c.transaction("a@src.test", ["b@dst.test"], ok))
        self.assertEqual(split_message(self.m.queue_show(msg_id))[1], b"a" * 998 + b"\r\n")
        n = self.count()
        bad = b"Subject: long\r\n\r\n" + b"a" * 999 + b"\r\n"
        self.assertReply(c.transaction("a@src.test", ["b@dst.test"], bad), 554, "5.6.0")
        self.assertEqual(self.count(), n, "message with a 999-octet line stored")

    def test_long_header_line_rejected(self):
        n = self.count()
        bad = b"Subject: " + b"s" * 5000 + b"\r\n\r\nbody\r\n"
        self.assertReply(self.m.send(bad), 554, "5.6.0")
        self.assertEqual(self.count(), n)

    def test_nul_rejected(self):
        n = self.count()
        self.assertReply(self.m.send(b"Subject: nul\r\n\r\nbefore\x00after\r\n"), 554, "5.6.0")
        self.assertEqual(self.count(), n, "message with NUL stored")
        # the same connection pattern works with clean data
        self.assertAccepted(self.m.send(b"Subject: clean\r\n\r\nbefore after\r\n"))


class ErrorsAndTimeout(E2ETestCase):
    MAX_ERRORS = 3

    @classmethod
    def setUpClass(cls):
        cls.m = cls.class_mta(base_config(max_errors=cls.MAX_ERRORS, command_timeout="2s"))

    def test_max_errors_closes(self):
        c = self.m.connect()
        self.addCleanup(c.close)
        c.expect(220)
        c.expect(250, "EHLO client.test")
        got = []
        for i in range(self.MAX_ERRORS + 2):
            try:
                r = c.cmd(f"BOGUS{i}")
            except OSError:
                break
            got.append(r)
            if r.code in (421, 0):
                break
            # the 421 may follow the last 500 without another command
            if i == self.MAX_ERRORS - 1:
                try:
                    r2 = c.reply(timeout=1)
                    got.append(r2)
                    if r2.code in (421, 0):
                        break
                except socket.timeout:
                    pass
        codes = [r.code for r in got]
        self.assertIn(421, codes, f"no 421 after {len(got)} errors: {got}")
        i421 = codes.index(421)
        self.assertEqual(got[i421].enh, "4.7.0", got[i421])
        self.assertTrue(all(x == 500 for x in codes[:i421]), got)
        self.assertGreaterEqual(i421, self.MAX_ERRORS - 1, f"421 too early: {got}")
        self.assertLessEqual(i421, self.MAX_ERRORS, f"421 too late: {got}")
        self.assertTrue(c.closed(5), "connection still open after 421")

    def test_errors_counted_per_session(self):
        # MAX_ERRORS - 1 errors in each of two sessions: neither is closed
        for _ in range(2):
            c = self.m.connect()
            c.expect(220)
            c.expect(250, "EHLO client.test")
            for i in range(self.MAX_ERRORS - 1):
                self.assertReply(c.cmd(f"BOGUS{i}"), 500)
            self.assertReply(c.cmd("NOOP"), 250)
            c.quit()

    def test_idle_timeout(self):
        c = self.m.connect()
        self.addCleanup(c.close)
        c.expect(220)
        c.expect(250, "EHLO client.test")
        t0 = time.monotonic()
        r = c.reply(timeout=15)
        took = time.monotonic() - t0
        self.assertReply(r, 421, "4.4.2")
        self.assertGreater(took, 1.0, "closed before command_timeout")
        self.assertTrue(c.closed(5), "connection still open after 421")

    def test_idle_timeout_before_ehlo(self):
        c = self.m.connect()
        self.addCleanup(c.close)
        c.expect(220)
        r = c.reply(timeout=15)
        self.assertReply(r, 421, "4.4.2")
        self.assertTrue(c.closed(5))

    def test_slow_but_active_client_not_cut(self):
        # a command every second keeps the session alive past command_timeout
        c = self.m.connect()
        self.addCleanup(c.close)
        c.expect(220)
        for _ in range(4):
            time.sleep(1.0)
            self.assertReply(c.cmd("NOOP"), 250)
        c.quit()


class DataTimeout(E2ETestCase):
    """data_timeout bounds the whole DATA phase, even for a client that
    trickles a byte a second (well within command_timeout each time)."""

    @classmethod
    def setUpClass(cls):
        cls.m = cls.class_mta(base_config(command_timeout="2s", data_timeout="3s"))

    def test_trickling_data_cut(self):
        n = len(self.m.queue_list())
        c = self.m.connect()
        self.addCleanup(c.close)
        c.expect(220)
        c.expect(250, "EHLO client.test")
        c.expect(250, "MAIL FROM:<a@src.test>")
        c.expect(250, "RCPT TO:<b@dst.test>")
        c.expect(354, "DATA")
        t0 = time.monotonic()
        r = None
        while time.monotonic() - t0 < 12:
            try:
                c.send(b"x")
            except OSError:
                break
            try:
                r = c.reply(timeout=1.0)
                break
            except socket.timeout:
                pass
        took = time.monotonic() - t0
        self.assertIsNotNone(r, "still in DATA after 12 s of trickling")
        if r.code != 0:
            self.assertReply(r, 421)
        self.assertLess(took, 8, f"DATA phase lasted {took:.1f} s with data_timeout 3s")
        self.assertTrue(c.closed(5))
        self.assertEqual(len(self.m.queue_list()), n)

    def test_stalled_data_cut(self):
        c = self.m.connect()
        self.addCleanup(c.close)
        c.expect(220)
        c.expect(250, "EHLO client.test")
        c.expect(250, "MAIL FROM:<a@src.test>")
        c.expect(250, "RCPT TO:<b@dst.test>")
        c.expect(354, "DATA")
        c.send(b"Subject: stalled\r\n\r\npartial")
        r = c.reply(timeout=15)
        if r.code != 0:
            self.assertReply(r, 421)
        self.assertTrue(c.closed(5))


class ConnectionLimits(E2ETestCase):
    PER_IP = 3
    TOTAL = 5

    @classmethod
    def setUpClass(cls):
        cls.m = cls.class_mta(base_config(max_connections_per_ip=cls.PER_IP,
                                          max_connections=cls.TOTAL))

    def open(self, source):
        c = SmtpConn(self.m.port, source=source, timeout=10)
        self.addCleanup(c.close)
        return c, c.reply()

    def wait_admitted(self, source, timeout=5.0):
        """Retry until a new connection from `source` gets a 220 (the daemon may
        notice closed sessions a little later)."""
        deadline = time.monotonic() + timeout
        while True:
            c, r = self.open(source)
            if r.code == 220:
                return c
            c.close()
            if time.monotonic() > deadline:
                self.fail(f"no 220 for {source} within {timeout}s: {r}")
            time.sleep(0.2)

    def test_limits(self):
        held = [self.wait_admitted("127.0.0.1") for _ in range(self.PER_IP)]
        # one more from the same address: refused
        c, r = self.open("127.0.0.1")
        self.assertReply(r, 421, "4.7.0")
        self.assertTrue(c.closed(5), "refused connection not closed")
        # another address still gets in
        c5a = self.wait_admitted("127.0.0.5", timeout=1)
        self.assertReply(c5a.cmd("EHLO other.test"), 250)
        c5b = self.wait_admitted("127.0.0.5", timeout=1)   # 5 sessions in total now
        # the total is reached: a third address is refused too
        c, r = self.open("127.0.0.6")
        self.assertReply(r, 421, "4.7.0")
        self.assertTrue(c.closed(5))
        # the held sessions still work
        for h in held:
            self.assertReply(h.cmd("NOOP"), 250)
        # closing one frees a slot for its address
        held[0].quit()
        c = self.wait_admitted("127.0.0.1")
        self.assertReply(c.cmd("EHLO x.test"), 250)
        self.assertAccepted(c.transaction("a@src.test", ["b@dst.test"], make_message()))
        for x in held[1:] + [c5a, c5b, c]:
            x.quit()

    def test_aborted_sessions_release_slots(self):
        # clients that vanish mid-DATA (RST) must not leak per-address slots
        n = len(self.m.queue_list())
        for _ in range(2):
            conns = [self.wait_admitted("127.0.0.7") for _ in range(self.PER_IP)]
            for c in conns:
                c.expect(250, "EHLO client.test")
                c.expect(250, "MAIL FROM:<a@src.test>")
                c.expect(250, "RCPT TO:<b@dst.test>")
                c.expect(354, "DATA")
                c.send(b"Subject: aborted\r\n\r\nhalf a message\r\n")
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
        c = self.wait_admitted("127.0.0.7")
        c.quit()
        self.assertEqual(len(self.m.queue_list()), n, "a half-sent message was stored")


if __name__ == "__main__":
    unittest.main(verbosity=2)
