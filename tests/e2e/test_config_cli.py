"""`mta check-config`, `mta serve` with a bad config, and CLI basics.

Every bad file is written here line by line, so the expected line number of
the error is known exactly: errors must read "FILE:LINE:COL: message", exit 2.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_config_cli.py
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mtatest import (MTA_BIN, SOURCE_DIR, E2ETestCase, base_config,  # noqa: E402
                     check_config, check_config_full, free_port, require_binary,
                     run_cli)


def setUpModule():
    require_binary()


def good_lines(d, port):
    return [
        "# a minimal valid config",                         # 1
        "hostname: mta.test",                               # 2
        f'spool_dir: "{d}/spool"',                          # 3
        "smtp:",                                            # 4
        "  listeners:",                                     # 5
        f'    - listen: "127.0.0.1:{port}"',                # 6
        "  max_recipients: 10",                             # 7
        "ip_pools:",                                        # 8
        "  - name: main",                                   # 9
        "    ips:",                                         # 10
        "      - { address: 127.0.0.1, ehlo: o1.mta.test }",  # 11
        "configuration_sets:",                              # 12
        "  - { name: default, ip_pool: main, priority: normal }",  # 13
        "default_configuration_set: default",               # 14
    ]


class CheckConfig(E2ETestCase):
    def setUp(self):
        self.d = tempfile.mkdtemp(prefix="mta-e2e-cfg-")
        self.addCleanup(shutil.rmtree, self.d, True)
        self.port = free_port()
        self.n = 0

    def write(self, lines):
        self.n += 1
        path = os.path.join(self.d, f"c{self.n}.yaml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def variant(self, line_no, new_line):
        """The good file with line `line_no` (1-based) replaced."""
        lines = good_lines(self.d, self.port)
        lines[line_no - 1] = new_line
        return self.write(lines)

    def inserted(self, line_no, new_line):
        """The good file with `new_line` inserted so that it becomes line `line_no`."""
        lines = good_lines(self.d, self.port)
        lines.insert(line_no - 1, new_line)
        return self.write(lines)

    def assertConfigError(self, path, line, col=None, words=()):
        rc, err = check_config(path)
        self.assertEqual(rc, 2, f"exit {rc}, stderr: {err!r}")
        m = re.search(rf"^{re.escape(path)}:(\d+):(\d+): (.+)$", err, re.M)
        self.assertIsNotNone(m, f"no '{path}:LINE:COL: message' in stderr: {err!r}")
        self.assertEqual(int(m.group(1)), line, err)
        self.assertGreaterEqual(int(m.group(2)), 1, err)
        if col is not None:
            self.assertEqual(int(m.group(2)), col, err)
        for w in words:
            self.assertIn(w, m.group(3), err)
        return m.group(0)

    # -- good -----------------------------------------------------------------------

    def test_good_file(self):
        path = self.write(good_lines(self.d, self.port))
        p = check_config_full(path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().strip(), f"{path}: ok")
        self.assertFalse(os.path.exists(os.path.join(self.d, "spool")),
                         "check-config created the spool")

    def test_generated_config_is_good(self):
        from mtatest import to_yaml
        cfg = base_config(users=[{"name": "u", "password": "p", "configuration_set": "bulk"}],
                          max_message_bytes=100000, command_timeout="30s")
        cfg["spool_dir"] = os.path.join(self.d, "spool")
        path = os.path.join(self.d, "gen.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg))
        rc, err = check_config(path)
        self.assertEqual(rc, 0, err)

    def test_repo_configs(self):
        for name in ("dev.yaml", "mta.yaml"):
            path = os.path.join(SOURCE_DIR, "config", name)
            with self.subTest(config=name):
                if not os.path.exists(path):
                    self.skipTest(f"{path} not written yet")
                p = check_config_full(path)
                self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
                self.assertEqual(p.stdout.decode().strip(), f"{path}: ok")

    # -- bad ------------------------------------------------------------------------

    def test_syntax_error(self):
        path = self.variant(7, "  max_recipients: 10: 20")
        self.assertConfigError(path, 7)

    def test_unclosed_quote_reports_a_line(self):
        path = self.variant(2, 'hostname: "mta.test')
        rc, err = check_config(path)
        self.assertEqual(rc, 2, err)
        self.assertRegex(err, rf"^{re.escape(path)}:\d+:\d+: ", err)

    def test_unknown_key(self):
        path = self.variant(7, "  max_recipent: 10")
        self.assertConfigError(path, 7, col=3, words=("max_recipent",))

    def test_unknown_top_level_key(self):
        path = self.inserted(3, "hostnmae: typo.test")
        self.assertConfigError(path, 3, col=1, words=("hostnmae",))

    def test_unknown_key_in_listener(self):
        path = self.inserted(7, "      requre_auth: true")
        self.assertConfigError(path, 7, words=("requre_auth",))

    def test_set_names_missing_pool(self):
        path = self.variant(13, "  - { name: default, ip_pool: nosuchpool, priority: normal }")
        self.assertConfigError(path, 13, words=("nosuchpool",))

    def test_default_set_missing(self):
        path = self.variant(14, "default_configuration_set: nosuchset")
        self.assertConfigError(path, 14, words=("nosuchset",))

    def test_user_names_missing_set(self):
        path = self.inserted(8, "  users: [{ name: u1, password: pw, configuration_set: ghost }]")
        self.assertConfigError(path, 8, words=("ghost",))

    def test_bad_type(self):
        path = self.variant(7, "  max_recipients: lots")
        self.assertConfigError(path, 7)

    def test_bad_duration(self):
        path = self.inserted(8, "  command_timeout: 5 minutes")
        self.assertConfigError(path, 8)

    def test_bad_priority(self):
        path = self.variant(13, "  - { name: default, ip_pool: main, priority: urgent }")
        self.assertConfigError(path, 13)

    def test_bad_listen_address(self):
        path = self.variant(6, '    - listen: "127.0.0.1"')
        self.assertConfigError(path, 6)

    def test_missing_required_sections(self):
        lines = good_lines(self.d, self.port)[:7]          # no pools, no sets
        path = self.write(lines)
        rc, err = check_config(path)
        self.assertEqual(rc, 2, err)
        self.assertIn(path, err)

    def test_missing_file(self):
        path = os.path.join(self.d, "nope.yaml")
        rc, err = check_config(path)
        self.assertNotEqual(rc, 0)
        self.assertIn(path, err)

    # -- serve with a bad config ------------------------------------------------------

    def test_serve_bad_config_exits_2(self):
        path = self.variant(7, "  max_recipent: 10")
        expected = self.assertConfigError(path, 7)
        p = subprocess.run([MTA_BIN, "serve", "--config", path], capture_output=True,
                           timeout=15, stdin=subprocess.DEVNULL)
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 2, err)
        self.assertIn(expected, err)
        with self.assertRaises(OSError, msg="something listens on the configured port"):
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        self.assertFalse(os.path.exists(os.path.join(self.d, "spool")),
                         "serve created the spool despite the bad config")


class Cli(E2ETestCase):
    def test_unknown_subcommand(self):
        p = run_cli("frobnicate")
        self.assertNotEqual(p.returncode, 0)

    def test_serve_without_config(self):
        p = run_cli("serve", timeout=15)
        self.assertNotEqual(p.returncode, 0)

    def test_queue_list_empty_spool(self):
        m = self.mta(base_config())
        self.assertEqual(m.queue_list(), [])       # while running
        self.assertEqual(m.stop(), 0)
        self.assertEqual(m.queue_list(), [])       # and stopped
        p = m.cli("queue", "list", "--config", m.config_path)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_queue_list_text_format(self):
        m = self.mta(base_config())
        r = m.send()
        msg_id = self.assertAccepted(r)
        p = m.cli("queue", "list", "--config", m.config_path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(msg_id, p.stdout.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
