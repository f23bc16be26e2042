"""`mta dkim keygen` and `mta dkim check` (the daemon's signing is
test_dkim.py): keygen writes a 0600 key in the current directory by default,
prints the TXT record in 255-character strings and a config line, and refuses
to overwrite a key; bad arguments exit 2; check prints each key's record and
a test signature, and a world-readable or missing key is an error (exit 2).

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_dkim_cli.py
"""

import base64
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtatest  # noqa: E402
from mtatest import base_config, require_binary, run_cli, to_yaml  # noqa: E402


def setUpModule():
    require_binary()


def txt_strings(out, name):
    """The quoted strings of the TXT line for `name` in keygen/check output."""
    lines = [ln for ln in out.splitlines() if ln.strip().startswith(name + ". IN TXT ")]
    assert len(lines) == 1, out
    return re.findall(r'"([^"]*)"', lines[0])


class Keygen(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mta-dkim-cli-")
        self.addCleanup(shutil.rmtree, self.dir)

    def keygen(self, *args):
        p = subprocess.run([mtatest.MTA_BIN, "dkim", "keygen", *args], cwd=self.dir,
                           capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def test_default_path_record_and_config_line(self):
        rc, out, err = self.keygen("--domain", "Example.COM.", "--selector", "s1",
                                   "--algorithm", "ed25519")
        self.assertEqual(rc, 0, err)
        path = os.path.join(self.dir, "example.com.s1.pem")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            self.assertTrue(f.read().startswith("-----BEGIN PRIVATE KEY-----"))
        strings = txt_strings(out, "s1._domainkey.example.com")
        self.assertEqual(len(strings), 1)
        der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.assertEqual(strings[0], "v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:]).decode())
        self.assertIn("  - { domain: example.com, selector: s1, private_key: " + path +
                      ", algorithm: ed25519-sha256 }", out)

    def test_long_rsa_record_is_split_into_255_character_strings(self):
        rc, out, err = self.keygen("--domain", "example.com", "--selector", "big", "--bits", "4096")
        self.assertEqual(rc, 0, err)
        strings = txt_strings(out, "big._domainkey.example.com")
        self.assertGreater(len(strings), 1)
        self.assertTrue(all(len(s) <= 255 for s in strings))
        self.assertTrue(all(len(s) == 255 for s in strings[:-1]))
        self.assertTrue("".join(strings).startswith("v=DKIM1; k=rsa; p=MIIC"))

    def test_refuses_to_overwrite(self):
        path = os.path.join(self.dir, "k.pem")
        with open(path, "w") as f:
            f.write("published key\n")
        rc, out, err = self.keygen("--domain", "example.com", "--selector", "s1", "--out", path)
        self.assertEqual(rc, 1)
        self.assertIn("already exists", err)
        with open(path) as f:
            self.assertEqual(f.read(), "published key\n")

    def test_bad_arguments_exit_2(self):
        cases = [
            (["--domain", "example.com", "--selector", "s1", "--algorithm", "rsa-sha1"],
             "--algorithm"),
            (["--domain", "example.com", "--selector", "s1", "--bits", "512"], "--bits"),
            (["--domain", "example.com", "--selector", "s1", "--bits", "16384"], "--bits"),
            (["--domain", "exa mple.com", "--selector", "s1"], "not a domain name"),
            (["--domain", "example..com", "--selector", "s1"], "not a domain name"),
            (["--domain", "example.com", "--selector", "s;1"], "selector"),
        ]
        for args, want in cases:
            with self.subTest(args=args):
                rc, out, err = self.keygen(*args)
                self.assertEqual(rc, 2, (out, err))
                self.assertIn(want, err)
        self.assertEqual(os.listdir(self.dir), [])


class Check(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mta-dkim-check-")
        self.addCleanup(shutil.rmtree, self.dir)
        self.keys = []
        for sel, alg in (("r1", "rsa-sha256"), ("e1", "ed25519-sha256")):
            path = os.path.join(self.dir, f"{sel}.pem")
            p = run_cli("dkim", "keygen", "--domain", "example.com", "--selector", sel,
                        "--algorithm", alg, "--bits", "1024", "--out", path)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.keys.append({"domain": "example.com", "selector": sel, "private_key": path,
                              "algorithm": alg})

    def config(self, keys):
        cfg = base_config()
        cfg["spool_dir"] = os.path.join(self.dir, "spool")
        if keys is not None:
            cfg["dkim"] = keys
        path = os.path.join(self.dir, "mta.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg))
        return path

    def test_prints_each_record_and_a_test_signature(self):
        p = run_cli("dkim", "check", "--config", self.config(self.keys))
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, (out, p.stderr))
        self.assertEqual(out.count("key: ok"), 2, out)
        self.assertTrue(txt_strings(out, "r1._domainkey.example.com")[0].startswith(
            "v=DKIM1; k=rsa; p="))
        self.assertTrue(txt_strings(out, "e1._domainkey.example.com")[0].startswith(
            "v=DKIM1; k=ed25519; p="))
        self.assertIn("test signature for example.com: ok", out)

    def test_no_keys(self):
        p = run_cli("dkim", "check", "--config", self.config(None))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("No dkim keys", p.stdout.decode())

    def test_unusable_key_exits_2_naming_it(self):
        os.chmod(self.keys[1]["private_key"], 0o644)
        p = run_cli("dkim", "check", "--config", self.config(self.keys))
        self.assertEqual(p.returncode, 2)
        err = p.stderr.decode() + p.stdout.decode()
        self.assertIn(self.keys[1]["private_key"] + " is world-readable (mode 0644); chmod 600 it",
                      err)
        os.remove(self.keys[0]["private_key"])
        p = run_cli("dkim", "check", "--config", self.config(self.keys))
        self.assertEqual(p.returncode, 2)
        self.assertIn(self.keys[0]["private_key"], p.stderr.decode() + p.stdout.decode())


if __name__ == "__main__":
    unittest.main()
