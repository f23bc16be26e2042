#!/usr/bin/python3
"""dkimpy (python3-dkim), an implementation independent of OpenDKIM, verifies
the keys, DNS records and signatures that mta::dkim makes: RSA-2048 and
Ed25519 (RFC 8463) on one message, and rejects tampered copies.

Usage: dkimpy_verify.py MTA_DKIM_TOOL"""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import dkim

TOOL = sys.argv[1]
MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: dkimpy check\r\n"
    b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <dkimpy@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain\r\n"
    b"List-Unsubscribe: <https://t.example.test/u/abc>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"\r\n"
    b"Hello  Bob,\r\n"
    b"\r\n"
    b".a line with a leading dot\r\n"
)

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(*args, stdin=None):
    p = subprocess.run([TOOL, *args], input=stdin, capture_output=True)
    if p.returncode != 0:
        sys.exit("%s failed: %s" % (" ".join(args), p.stderr.decode()))
    return p.stdout


tmp = tempfile.mkdtemp(prefix="mta-dkimpy-")
try:
    rsa = os.path.join(tmp, "rsa.pem")
    ed = os.path.join(tmp, "ed.pem")
    run("keygen", rsa, "rsa-sha256", "2048")
    run("keygen", ed, "ed25519-sha256")
    check(stat.S_IMODE(os.stat(rsa).st_mode) == 0o600, "keygen writes mode 0600")
    records = {
        b"r1._domainkey.example.test.": run("record", rsa, "rsa-sha256").strip(),
        b"e1._domainkey.example.test.": run("record", ed, "ed25519-sha256").strip(),
    }
    asked = []

    def dnsfunc(name, timeout=5):
        asked.append(name)
        return records.get(name, b"")

    signed = run("sign", "example.test", "r1:rsa-sha256:" + rsa, "e1:ed25519-sha256:" + ed,
                 stdin=MESSAGE)
    check(signed.endswith(MESSAGE), "the message follows the signatures unchanged")

    def results(msg):
        d = dkim.DKIM(msg)
        n = sum(1 for line in msg.split(b"\r\n\r\n")[0].split(b"\r\n")
                if line.lower().startswith(b"dkim-signature:"))
        out = []
        for i in range(n):
            try:
                out.append(d.verify(idx=i, dnsfunc=dnsfunc))
            except dkim.DKIMException:  # e.g. "body hash mismatch"
                out.append(False)
        return out

    check(results(signed) == [True, True], "dkimpy verifies both signatures: %s" % results(signed))
    check(b"a=rsa-sha256" in signed and b"a=ed25519-sha256" in signed, "one RSA, one Ed25519")
    check(sorted(set(asked)) == sorted(records), "dkimpy looked up both selectors")
    check(dkim.verify(signed, dnsfunc=dnsfunc), "dkim.verify() (first signature) is True")

    tampered = {
        "body": signed.replace(b"Hello  Bob", b"Hello  Eve"),
        "From": signed.replace(b"alice@example.test", b"ceo@example.test"),
        "an added List-Unsubscribe": signed.replace(
            b"\r\n\r\nHello", b"\r\nList-Unsubscribe: <mailto:x@evil.test>\r\n\r\nHello"),
        "a second From": signed.replace(b"From: Alice", b"From: Mallory <m@evil.test>\r\nFrom: Alice"),
    }
    for what, msg in tampered.items():
        r = results(msg)
        check(r == [False, False], "tampered %s fails both: %s" % (what, r))

    # A wrong published key fails too (the check is not vacuous).
    good = records[b"e1._domainkey.example.test."]
    other = os.path.join(tmp, "other.pem")
    run("keygen", other, "ed25519-sha256")
    records[b"e1._domainkey.example.test."] = run("record", other, "ed25519-sha256").strip()
    check(results(signed) == [True, False], "a wrong Ed25519 public key fails that signature")
    records[b"e1._domainkey.example.test."] = good
finally:
    shutil.rmtree(tmp)

if failures:
    sys.exit("%d check(s) failed" % len(failures))
print("all dkimpy checks passed")
