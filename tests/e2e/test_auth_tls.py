"""Relay control, AUTH PLAIN/LOGIN, STARTTLS, plaintext_auth_networks and
require_auth listeners.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_auth_tls.py
"""

import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mtatest import (E2ETestCase, base_config, free_port, make_cert,  # noqa: E402
                     make_message, message_id_of, require_binary, split_message,
                     unverified_tls_context)

USERS = [
    {"name": "app1", "password": "s3cret", "configuration_set": "transactional"},
    {"name": "app2", "password": "pw two"},   # no set: the default one
]

CERT_DIR = None


def setUpModule():
    global CERT_DIR
    require_binary()
    CERT_DIR = tempfile.mkdtemp(prefix="mta-e2e-cert-")
    make_cert(CERT_DIR)


def tearDownModule():
    if CERT_DIR:
        shutil.rmtree(CERT_DIR, ignore_errors=True)


def swaks_has_tls():
    try:
        out = subprocess.run(["swaks", "--support"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    text = (out.stdout + out.stderr).decode(errors="replace")
    return re.search(r"^=== TLS supported", text, re.M) is not None


def smtplib_send(s, data=None, rcpts=("b@dst.test",), mail_from="a@src.test"):
    """mail/rcpt/data on an smtplib.SMTP; returns (code, text) of the last step."""
    code, msg = s.mail(mail_from)
    if code != 250:
        return code, msg.decode(errors="replace")
    for r in rcpts:
        code, msg = s.rcpt(r)
        if code != 250:
            return code, msg.decode(errors="replace")
    try:
        code, msg = s.data(data if data is not None else make_message())
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error.decode(errors="replace")
    return code, msg.decode(errors="replace")


class Relay(E2ETestCase):
    """The client (loopback) is not in relay_networks but may AUTH in clear text."""

    @classmethod
    def setUpClass(cls):
        cls.m = cls.class_mta(base_config(relay_networks=["10.0.0.0/8"], users=USERS))

    def session(self):
        c = self.m.connect()
        self.addCleanup(c.close)
        c.expect(220)
        c.expect(250, "EHLO client.test")
        return c

    def test_relay_denied_without_auth(self):
        n = len(self.m.queue_list())
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<a@src.test>"), 530, "5.7.0")
        self.assertReply(c.cmd("RCPT TO:<b@dst.test>"), 503)
        self.assertEqual(len(self.m.queue_list()), n)

    def test_auth_plain(self):
        c = self.session()
        self.assertReply(c.auth_plain("app1", "s3cret"), 235, "2.7.0")
        msg_id = self.assertAccepted(c.transaction("a@src.test", ["b@dst.test"], make_message()))
        e = self.m.queue_entry(msg_id)
        self.assertEqual(e["auth_user"], "app1")
        self.assertEqual(e["configuration_set"], "transactional")

    def test_auth_plain_two_step(self):
        c = self.session()
        self.assertReply(c.cmd("AUTH PLAIN"), 334)
        import base64
        r = c.cmd(base64.b64encode(b"\0app1\0s3cret").decode())
        self.assertReply(r, 235, "2.7.0")
        self.assertAccepted(c.transaction("a@src.test", ["b@dst.test"], make_message()))

    def test_auth_login(self):
        c = self.session()
        self.assertReply(c.auth_login("app2", "pw two"), 235, "2.7.0")
        msg_id = self.assertAccepted(c.transaction("a@src.test", ["b@dst.test"], make_message()))
        e = self.m.queue_entry(msg_id)
        self.assertEqual(e["auth_user"], "app2")
        self.assertEqual(e["configuration_set"], "default")

    def test_smtplib_login_plain_and_login(self):
        # smtplib sends AUTH PLAIN and AUTH LOGIN with an initial response
        for mech, fn in (("PLAIN", "auth_plain"), ("LOGIN", "auth_login")):
            with self.subTest(mech=mech):
                with smtplib.SMTP(self.m.host, self.m.port, timeout=10) as s:
                    s.ehlo("client.test")
                    s.user, s.password = "app1", "s3cret"
                    code, _ = s.auth(mech, getattr(s, fn))
                    self.assertEqual(code, 235)
                    code, text = smtplib_send(s)
                    self.assertEqual(code, 250, text)
                    msg_id = message_id_of(text)
                    self.assertIsNotNone(msg_id, text)
                    self.assertEqual(self.m.queue_entry(msg_id)["auth_user"], "app1")

    def test_header_set_wins_over_user_set(self):
        c = self.session()
        self.assertReply(c.auth_plain("app1", "s3cret"), 235)
        msg_id = self.assertAccepted(c.transaction(
            "a@src.test", ["b@dst.test"],
            make_message(headers=[("X-SES-CONFIGURATION-SET", "bulk")])))
        self.assertEqual(self.m.queue_entry(msg_id)["configuration_set"], "bulk")

    def test_wrong_password(self):
        c = self.session()
        self.assertReply(c.auth_plain("app1", "wrong"), 535, "5.7.8")
        self.assertReply(c.auth_login("app1", "wrong"), 535, "5.7.8")
        self.assertReply(c.auth_plain("nosuchuser", "s3cret"), 535, "5.7.8")
        # still not allowed to relay
        self.assertReply(c.cmd("MAIL FROM:<a@src.test>"), 530, "5.7.0")
        # and a correct AUTH afterwards works
        self.assertReply(c.auth_plain("app1", "s3cret"), 235)
        self.assertReply(c.cmd("MAIL FROM:<a@src.test>"), 250)

    def test_malformed_auth(self):
        c = self.session()
        r = c.cmd("AUTH PLAIN !!!not-base64!!!")
        self.assertTrue(500 <= r.code < 600, r)
        r = c.cmd("AUTH CRAM-SHA9")
        self.assertTrue(500 <= r.code < 600, r)
        self.assertReply(c.cmd("NOOP"), 250)

    def test_auth_twice(self):
        c = self.session()
        self.assertReply(c.auth_plain("app1", "s3cret"), 235)
        self.assertReply(c.auth_plain("app1", "s3cret"), 503)

    def test_swaks_auth(self):
        p = subprocess.run(["swaks", "--server", f"{self.m.host}:{self.m.port}",
                            "--from", "a@src.test", "--to", "b@dst.test",
                            "--auth", "LOGIN", "--auth-user", "app1", "--auth-password", "s3cret",
                            "--header", "Subject: swaks", "--body", "from swaks"],
                           capture_output=True, timeout=30)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out + p.stderr.decode(errors="replace"))
        msg_id = message_id_of(out)
        self.assertIsNotNone(msg_id, out)
        self.assertEqual(self.m.queue_entry(msg_id)["auth_user"], "app1")


class StartTls(E2ETestCase):
    """plaintext_auth_networks is empty: AUTH only after STARTTLS."""

    @classmethod
    def setUpClass(cls):
        cert, key = os.path.join(CERT_DIR, "cert.pem"), os.path.join(CERT_DIR, "key.pem")
        cfg = base_config(
            listeners=[{"listen": f"127.0.0.1:{free_port()}",
                        "starttls": {"cert": cert, "key": key}}],
            relay_networks=["10.0.0.0/8"], plaintext_auth_networks=[], users=USERS)
        cls.m = cls.class_mta(cfg)

    def test_ehlo_before_and_after_tls(self):
        with self.m.connect() as c:
            c.expect(220)
            r, ext = c.ehlo()
            self.assertIn("STARTTLS", ext)
            self.assertFalse(any(e.startswith("AUTH") for e in ext), ext)
            self.assertReply(c.starttls(), 220)
            r, ext = c.ehlo()
            self.assertEqual(r.code, 250)
            self.assertNotIn("STARTTLS", ext)
            auth = [e for e in ext if e.startswith("AUTH ")]
            self.assertEqual(len(auth), 1, ext)
            self.assertTrue({"PLAIN", "LOGIN"} <= set(auth[0].split()[1:]), ext)
            c.quit()

    def test_auth_before_tls_refused(self):
        with self.m.connect() as c:
            c.expect(220)
            c.expect(250, "EHLO client.test")
            self.assertReply(c.auth_plain("app1", "s3cret"), 538, "5.7.11")
            self.assertReply(c.cmd("AUTH LOGIN"), 538, "5.7.11")
            self.assertReply(c.cmd("MAIL FROM:<a@src.test>"), 530, "5.7.0")

    def test_smtplib_starttls_auth_send(self):
        with smtplib.SMTP(self.m.host, self.m.port, timeout=10) as s:
            s.ehlo("client.test")
            s.starttls(context=unverified_tls_context())
            s.ehlo("client.test")
            s.login("app1", "s3cret")
            code, text = smtplib_send(s, make_message(subject="over tls", body=b"secret body\r\n"))
            self.assertEqual(code, 250, text)
            msg_id = message_id_of(text)
        self.assertIsNotNone(msg_id, text)
        e = self.m.queue_entry(msg_id)
        self.assertEqual(e["auth_user"], "app1")
        self.assertEqual(e["configuration_set"], "transactional")
        self.assertEqual(split_message(self.m.queue_show(msg_id))[1], b"secret body\r\n")

    def test_raw_starttls_auth_login(self):
        with self.m.connect() as c:
            c.expect(220)
            c.expect(250, "EHLO client.test")
            self.assertReply(c.starttls(), 220)
            c.expect(250, "EHLO client.test")
            self.assertReply(c.auth_login("app2", "pw two"), 235)
            msg_id = self.assertAccepted(c.transaction("a@src.test", ["b@dst.test"], make_message()))
            c.quit()
        self.assertEqual(self.m.queue_entry(msg_id)["auth_user"], "app2")

    def test_starttls_command_injection(self):
        # CVE-2011-0411 class: plaintext pipelined after STARTTLS must be dropped
        with self.m.connect() as c:
            c.expect(220)
            c.expect(250, "EHLO client.test")
            c.send(b"STARTTLS\r\nNOOP injected\r\n")
            r = c.reply()
            self.assertReply(r, 220)
            self.assertEqual(c.buf, b"", "reply to the injected command before the TLS handshake")
            c.pre_tls_leftover = b""
            try:
                c.sock = unverified_tls_context().wrap_socket(c.sock, server_hostname="localhost")
            except (OSError, ValueError):
                return  # refusing the session is fine
            try:
                r = c.cmd("EHLO client.test")
            except OSError:
                return
            if r.code == 0:
                return
            self.assertEqual(r.code, 250)
            self.assertGreater(len(r.lines), 1, f"first reply inside TLS is not the EHLO reply: {r}")
            self.assertTrue(any(l.upper().startswith("AUTH") for l in r.lines), r)

    def test_tls_handshake_garbage(self):
        # a client that says STARTTLS and then sends garbage must not hurt the daemon
        with self.m.connect() as c:
            c.expect(220)
            c.expect(250, "EHLO client.test")
            c.expect(220, "STARTTLS")
            c.send(b"this is not a TLS client hello\r\n" * 10)
            c.closed(5)
        with self.m.connect() as c:
            self.assertReply(c.reply(), 220)
            c.quit()

    @unittest.skipUnless(swaks_has_tls(), "swaks without TLS support (needs libnet-ssleay-perl)")
    def test_swaks_tls(self):
        p = subprocess.run(["swaks", "--server", f"{self.m.host}:{self.m.port}", "--tls",
                            "--from", "a@src.test", "--to", "b@dst.test",
                            "--auth", "PLAIN", "--auth-user", "app1", "--auth-password", "s3cret"],
                           capture_output=True, timeout=30)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out + p.stderr.decode(errors="replace"))
        self.assertIsNotNone(message_id_of(out), out)


class RequireAuth(E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cfg = base_config(
            listeners=[{"listen": f"127.0.0.1:{free_port()}"},
                       {"listen": f"127.0.0.1:{free_port()}", "require_auth": True}],
            users=USERS)
        cls.m = cls.class_mta(cfg)

    def test_plain_listener_relays(self):
        self.assertAccepted(self.m.send(make_message(), listener=0))

    def test_require_auth_listener(self):
        with self.m.connect(listener=1) as c:
            c.expect(220)
            c.expect(250, "EHLO client.test")
            self.assertReply(c.cmd("MAIL FROM:<a@src.test>"), 530, "5.7.0")
            self.assertReply(c.auth_plain("app1", "s3cret"), 235)
            msg_id = self.assertAccepted(c.transaction("a@src.test", ["b@dst.test"], make_message()))
            c.quit()
        self.assertEqual(self.m.queue_entry(msg_id)["auth_user"], "app1")


if __name__ == "__main__":
    unittest.main(verbosity=2)
