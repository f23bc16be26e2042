"""`mta classify` end to end: the shipped rules, stdin mode, an operator's
local rules overriding a shipped one, and check-config refusing a bad rule
with FILE:LINE:COL."""

import json
import os
import subprocess
import tempfile
import unittest

from mtatest import MTA_BIN, E2ETestCase, base_config, to_yaml


def classify(*args, stdin=None):
    p = subprocess.run([MTA_BIN, "classify", *args], input=stdin, capture_output=True,
                       text=True, timeout=30)
    return p.returncode, [json.loads(l) for l in p.stdout.splitlines() if l.strip()], p.stderr


class Classify(E2ETestCase):
    def test_unknown_user_suppresses_and_a_reputation_block_does_not(self):
        rc, out, err = classify(
            "550 5.1.1 <x@example.org>: Recipient address rejected: User unknown in local "
            "recipient table",
            "550-5.7.1 [192.0.2.10] Our system has detected that this message is likely "
            "unsolicited mail. To reduce the amount of spam sent to Gmail, this message has "
            "been blocked.")
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(out), 2)
        bad, rep = out
        self.assertEqual((bad["bounceType"], bad["bounceSubType"], bad["category"]),
                         ("Permanent", "NoEmail", "bad-mailbox"))
        self.assertTrue(bad["suppress"])
        self.assertEqual(rep["bounceType"], "Permanent")
        self.assertFalse(rep["suppress"], rep)
        self.assertIn(rep["category"], ("spam-related", "policy-related"))
        for o in out:
            for k in ("reply", "stage", "bounceType", "bounceSubType", "category", "suppress",
                      "throttle", "rule"):
                self.assertIn(k, o)

    def test_replies_on_stdin_one_per_line(self):
        rc, out, err = classify("--stage", "rcpt", "--mx", "gmail-smtp-in.l.google.com",
                                stdin="421 4.7.0 Try again later, closing connection.\n"
                                      "452 4.2.2 The email account that you tried to reach is "
                                      "over quota.\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(out), 2)
        self.assertTrue(out[0]["throttle"])
        self.assertEqual(out[0]["bounceType"], "Transient")
        self.assertEqual(out[1]["bounceSubType"], "MailboxFull")
        self.assertFalse(out[1]["suppress"])
        self.assertEqual(out[1]["provider"], "gmail")

    def test_local_rules_override_a_shipped_rule_by_id(self):
        tmp = tempfile.mkdtemp(prefix="mta-classify-")
        rules = os.path.join(tmp, "local.yaml")
        with open(rules, "w") as f:
            f.write("rules:\n"
                    "  - id: unknown-recipient\n"
                    "    pattern: 'user unknown'\n"
                    "    type: Transient\n"
                    "    category: other\n")
        cfg = base_config()
        cfg["spool_dir"] = os.path.join(tmp, "spool")
        cfg["bounces"] = {"local_rules_file": rules}
        path = os.path.join(tmp, "mta.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg))
        reply = "550 5.1.1 <x@example.org>: Recipient address rejected: User unknown"
        rc, out, err = classify("--config", path, reply)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out[0]["rule"], "unknown-recipient")
        self.assertEqual(out[0]["bounceType"], "Transient")
        self.assertFalse(out[0]["suppress"])
        rc, out, err = classify(reply)  # without the config: the shipped rule
        self.assertTrue(out[0]["suppress"])

    def test_check_config_refuses_a_bad_local_rule_with_its_position(self):
        tmp = tempfile.mkdtemp(prefix="mta-classify-")
        rules = os.path.join(tmp, "local.yaml")
        with open(rules, "w") as f:
            f.write("rules:\n"
                    "  - id: broken\n"
                    "    pattern: 'unclosed (group'\n"
                    "    category: bad-mailbox\n")
        cfg = base_config()
        cfg["spool_dir"] = os.path.join(tmp, "spool")
        cfg["bounces"] = {"local_rules_file": rules}
        path = os.path.join(tmp, "mta.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg))
        p = subprocess.run([MTA_BIN, "check-config", "--config", path], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertRegex(p.stderr, rf"^{rules}:3:\d+: ")
        # an unknown category too
        with open(rules, "w") as f:
            f.write("rules:\n  - id: x\n    pattern: 'y'\n    category: nonsense\n")
        p = subprocess.run([MTA_BIN, "check-config", "--config", path], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr, rf"^{rules}:4:\d+: ")
        # and serve refuses to start on it
        p = subprocess.run([MTA_BIN, "serve", "--config", path], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("nonsense", p.stderr)


if __name__ == "__main__":
    unittest.main()
