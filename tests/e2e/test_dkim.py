"""DKIM signing end to end: keys made with `mta dkim keygen` (RSA-2048 and
Ed25519), the daemon signs what it delivers to a recording sink, and
python3-dkim (dkimpy, the verifier many receivers' tooling uses) checks each
signature against the TXT records keygen printed, served through its
dnsfunc.

Checks: dual signatures (RSA + Ed25519, RFC 8463) that verify, also with
tracking and List-Unsubscribe on (the signature covers the rewritten body
and the List-Unsubscribe fields); From of a subdomain signed by the parent
domain's keys; an unconfigured From domain unsigned, or signed with the
set's dkim_domain; a tampered body or From fails; a bad key file is a config
error (check-config and serve) naming the file; keys reload on SIGHUP (new
selector); `mta dkim check` prints the records; the metrics.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_dkim.py
"""

import base64
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import dkim  # python3-dkim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import DeliveryTestCase, delivery_config, route  # noqa: E402
from mtatest import free_port, make_message, require_binary, run_cli, to_yaml  # noqa: E402
from test_tracking import html_message, parts  # noqa: E402


def setUpModule():
    require_binary()


def keygen(directory, domain, selector, algorithm="rsa-sha256"):
    """Runs `mta dkim keygen`; returns (path, TXT record value it printed)."""
    path = os.path.join(directory, f"{domain}.{selector}.pem")
    p = run_cli("dkim", "keygen", "--domain", domain, "--selector", selector,
                "--algorithm", algorithm, "--out", path)
    out = p.stdout.decode()
    assert p.returncode == 0, (out, p.stderr.decode())
    assert os.stat(path).st_mode & 0o777 == 0o600, oct(os.stat(path).st_mode)
    txt = [ln for ln in out.splitlines() if f"{selector}._domainkey.{domain}" in ln and "TXT" in ln]
    assert len(txt) == 1, out
    record = "".join(re.findall(r'"([^"]*)"', txt[0]))
    return path, record


def openssl_record(path, algorithm):
    """The record computed independently with the openssl tool."""
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    if algorithm == "ed25519-sha256":
        return "v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:]).decode()
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def signatures(raw):
    return [ln for ln in re.split(rb"\r\n(?![ \t])", raw.split(b"\r\n\r\n", 1)[0])
            if ln.lower().startswith(b"dkim-signature:")]


def tag(sig, name):
    v = re.sub(rb"\s+", b"", sig.split(b":", 1)[1])
    m = re.search(rb"(?:^|;)" + name.encode() + rb"=([^;]*)", v)
    return m.group(1).decode() if m else None


class Dkim(DeliveryTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mta-dkim-")
        cls.keys = {}
        for sel, alg in (("rsa1", "rsa-sha256"), ("ed1", "ed25519-sha256"),
                         ("rsa2", "rsa-sha256")):
            cls.keys[sel] = keygen(cls.dir, "example.test", sel, alg)
            assert cls.keys[sel][1] == openssl_record(cls.keys[sel][0], alg), sel
        cls.keys["set"] = keygen(cls.dir, "mta-sign.test", "m1")
        cls.dns = {f"{sel}._domainkey.example.test.": rec for sel, (_, rec) in cls.keys.items()}
        cls.dns["m1._domainkey.mta-sign.test."] = cls.keys["set"][1]

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(cls.dir, ignore_errors=True)

    def dnsfunc(self, name, timeout=5):
        return self.dns.get(name.decode(), "").encode()

    def verifies(self, raw, idx):
        """dkimpy raises on some failures (a body hash mismatch) and returns
        False on others."""
        try:
            return dkim.DKIM(raw).verify(idx=idx, dnsfunc=self.dnsfunc)
        except dkim.DKIMException:
            return False

    def verify_all(self, raw):
        """Verifies every DKIM-Signature; returns [(d, s, a)]."""
        sigs = signatures(raw)
        out = []
        d = dkim.DKIM(raw)
        for i in range(len(sigs)):
            self.assertTrue(d.verify(idx=i, dnsfunc=self.dnsfunc), f"signature {i} failed: {sigs[i]}")
            out.append((tag(sigs[i], "d"), tag(sigs[i], "s"), tag(sigs[i], "a")))
        return out

    def config(self, keys=("rsa1", "ed1"), tracking=False):
        self.sink_ = self.sink()
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{self.sink_.port}")])
        cfg["dkim"] = []
        for sel in keys:
            alg = "ed25519-sha256" if sel.startswith("ed") else "rsa-sha256"
            cfg["dkim"].append({"domain": "example.test", "selector": sel,
                                "private_key": self.keys[sel][0], "algorithm": alg})
        cfg["dkim"].append({"domain": "mta-sign.test", "selector": "m1",
                            "private_key": self.keys["set"][0]})
        if tracking:
            tport = free_port()
            cfg["tracking"] = {"listen": f"127.0.0.1:{tport}",
                               "base_url": f"http://127.0.0.1:{tport}", "secret": "s" * 20}
        for s in cfg["configuration_sets"]:
            if s["name"] == "transactional" and tracking:
                s["tracking"] = {"opens": True, "clicks": True}
                s["list_unsubscribe"] = {"enabled": True}
            if s["name"] == "bulk":
                s["dkim_domain"] = "mta-sign.test"
        return cfg

    def deliver(self, m, data, rcpt="rcpt@dst.test"):
        msg_id = self.submit(m, [rcpt], data=data)
        t, = self.assertDelivered(self.sink_, 1, pred=lambda t: t.message_id == msg_id)
        return t.data

    def test_rsa_and_ed25519_signatures_verify_and_tampering_fails(self):
        m = self.mta(self.config())
        raw = self.deliver(m, make_message(subject="signed", from_="news@example.test",
                                           body="Hello.\r\n" * 50))
        got = self.verify_all(raw)
        self.assertEqual(sorted(got), [("example.test", "ed1", "ed25519-sha256"),
                                       ("example.test", "rsa1", "rsa-sha256")])
        sig = signatures(raw)[0]
        self.assertEqual(tag(sig, "c"), "relaxed/relaxed")
        h = tag(sig, "h").lower().split(":")
        # From is over-signed (listed once more than it appears).
        self.assertEqual(h.count("from"), 2, h)
        for name in ("subject", "to", "date", "message-id", "x-mta-message-id"):
            self.assertIn(name, h)
        # Tampering breaks every signature.
        for bad in (raw.replace(b"Hello.", b"Hellp.", 1),
                    raw.replace(b"From: <news@example.test>", b"From: <ceo@example.test>"),
                    raw.replace(b"Subject: signed", b"Subject: signed\r\nSubject: second")):
            self.assertNotEqual(bad, raw)
            for i in range(2):
                self.assertFalse(self.verifies(bad, i))
        for alg in ("rsa-sha256", "ed25519-sha256"):
            self.assertEqual(m.metric("mta_dkim_signatures_total", domain="example.test",
                                      algorithm=alg), 1)

    def test_opendkim_engine_makes_the_same_kind_of_signature(self):
        # libopendkim itself signs (RSA: its Ed25519 path leaks, see mta.yaml).
        cfg = self.config(keys=("rsa1", "rsa2"))
        cfg["dkim_engine"] = "opendkim"
        m = self.mta(cfg)
        raw = self.deliver(m, make_message(subject="by opendkim", from_="news@example.test"))
        self.assertEqual(sorted(self.verify_all(raw)), [("example.test", "rsa1", "rsa-sha256"),
                                                        ("example.test", "rsa2", "rsa-sha256")])
        sig = signatures(raw)[0]
        self.assertEqual(tag(sig, "c"), "relaxed/relaxed")
        self.assertEqual(tag(sig, "h").lower().split(":").count("from"), 2)
        self.assertFalse(self.verifies(raw.replace(b"Hello.", b"Hellp."), 0))

    def test_subdomain_uses_parent_keys_set_domain_and_unconfigured(self):
        m = self.mta(self.config())
        raw = self.deliver(m, make_message(from_="a@mail.example.test"))
        self.assertEqual({d for d, _, _ in self.verify_all(raw)}, {"example.test"})
        # No key for other.test: unsigned in the default set...
        raw = self.deliver(m, make_message(from_="a@other.test"))
        self.assertEqual(signatures(raw), [])
        # ...and signed with the set's dkim_domain in `bulk`.
        raw = self.deliver(m, make_message(from_="a@other.test",
                                           headers=[("X-SES-CONFIGURATION-SET", "bulk")]))
        self.assertEqual(self.verify_all(raw), [("mta-sign.test", "m1", "rsa-sha256")])
        # "badexample.test" is not a subdomain of example.test.
        raw = self.deliver(m, make_message(from_="a@badexample.test"))
        self.assertEqual(signatures(raw), [])

    def test_signature_covers_tracking_rewrite_and_list_unsubscribe(self):
        m = self.mta(self.config(tracking=True))
        html = '<html><body><a href="https://shop.example/?a=1&amp;b=2">x</a></body></html>'
        data = html_message(html, "rcpt@dst.test",
                            headers=[("X-SES-CONFIGURATION-SET", "transactional")])
        data = data.replace(b"News <news@src.test>", b"News <news@example.test>")
        raw = self.deliver(m, data)
        p, _ = parts(raw)
        self.assertIn("/c/", p["text/html"])
        self.assertIn(b"List-Unsubscribe:", raw)
        got = self.verify_all(raw)
        self.assertEqual(len(got), 2)
        h = tag(signatures(raw)[0], "h").lower().split(":")
        self.assertIn("list-unsubscribe", h)
        self.assertIn("list-unsubscribe-post", h)

    def test_signing_failure_defers_unless_send_unsigned(self):
        # A message without From cannot be signed (RFC 6376 signs From); in
        # the set with a dkim_domain it must be signed.
        no_from = b"To: <rcpt@dst.test>\r\nSubject: who\r\nX-SES-CONFIGURATION-SET: bulk\r\n\r\nx\r\n"
        m = self.mta(self.config())
        msg_id = self.submit(m, ["rcpt@dst.test"], data=no_from)
        deadline = time.monotonic() + 10
        reply = ""
        while time.monotonic() < deadline and "DKIM" not in reply:
            time.sleep(0.2)
            entry = m.queue_entry(msg_id) or {}
            reply = " ".join(str(r.get("last_reply", "")) for r in entry.get("envelopes", []))
        self.assertIn("451 4.3.0 DKIM signing with mta-sign.test failed", reply)
        self.assertIn("no From header field", reply)
        self.assertEqual([t for t in self.sink_.transactions if t.message_id == msg_id], [])
        self.assertGreaterEqual(m.metric("mta_dkim_failures_total"), 1)
        m.stop()
        # send_unsigned: it goes out, unsigned, and is counted.
        cfg = self.config()
        cfg["dkim_failure"] = "send_unsigned"
        m = self.mta(cfg)
        raw = self.deliver(m, no_from)
        self.assertEqual(signatures(raw), [])
        self.assertEqual(m.metric("mta_dkim_failures_total"), 1)

    def test_keys_reload_on_sighup(self):
        cfg = self.config(keys=("rsa1",))
        m = self.mta(cfg)
        raw = self.deliver(m, make_message(from_="a@example.test"))
        self.assertEqual([s for _, s, _ in self.verify_all(raw)], ["rsa1"])
        cfg = m.config  # with its spool_dir
        cfg["dkim"][0]["selector"] = "rsa2"
        cfg["dkim"][0]["private_key"] = self.keys["rsa2"][0]
        with open(m.config_path, "w") as f:
            f.write(to_yaml(cfg))
        os.kill(m.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "mta=reloaded" not in m.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        raw = self.deliver(m, make_message(from_="b@example.test"))
        self.assertEqual([s for _, s, _ in self.verify_all(raw)], ["rsa2"])

    def test_bad_key_files_are_config_errors(self):
        cfg = self.config(keys=("rsa1",))
        cfg["spool_dir"] = os.path.join(self.dir, "spool")
        open_key = os.path.join(self.dir, "open.pem")
        with open(self.keys["rsa1"][0], "rb") as src, open(open_key, "wb") as dst:
            dst.write(src.read())
        os.chmod(open_key, 0o644)
        small = os.path.join(self.dir, "small.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512",
                        "-out", small], check=True, capture_output=True)
        os.chmod(small, 0o600)
        garbage = os.path.join(self.dir, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("not a key\n")
        os.chmod(garbage, 0o600)
        for path, words in ((open_key, "world-readable"), (small, "512"),
                            (garbage, "garbage.pem"), ("/nonexistent/k.pem", "/nonexistent/k.pem")):
            cfg["dkim"][0]["private_key"] = path
            fd, cpath = tempfile.mkstemp(suffix=".yaml", dir=self.dir)
            with os.fdopen(fd, "w") as f:
                f.write(to_yaml(cfg))
            p = run_cli("check-config", "--config", cpath)
            err = p.stderr.decode() + p.stdout.decode()
            self.assertEqual(p.returncode, 2, err)
            self.assertRegex(err, re.escape(cpath) + r":\d+:\d+: ")
            self.assertIn(words, err)
            p = run_cli("serve", "--config", cpath, timeout=20)
            self.assertEqual(p.returncode, 2)

    def test_dkim_check_prints_each_record(self):
        cfg = self.config()
        cfg["spool_dir"] = os.path.join(self.dir, "spool")
        fd, cpath = tempfile.mkstemp(suffix=".yaml", dir=self.dir)
        with os.fdopen(fd, "w") as f:
            f.write(to_yaml(cfg))
        p = run_cli("dkim", "check", "--config", cpath)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, out + p.stderr.decode())
        for sel in ("rsa1", "ed1"):
            self.assertIn(f"{sel}._domainkey.example.test", out)
            joined = "".join(re.findall(r'"([^"]*)"', out.split(f"{sel}._domainkey.example.test", 1)[1]
                                        .split("\n", 1)[0]))
            self.assertEqual(joined, self.keys[sel][1])


if __name__ == "__main__":
    unittest.main(verbosity=2)
