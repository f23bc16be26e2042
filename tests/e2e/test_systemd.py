"""The systemd unit: it must pass `systemd-analyze verify`, keep the hardening
the README promises, and the daemon must speak sd_notify (READY=1 once
listening, STOPPING=1 on SIGTERM) to a real NOTIFY_SOCKET."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from mtatest import MTA_BIN, SOURCE_DIR, E2ETestCase, base_config, to_yaml, free_port

UNIT = os.path.join(SOURCE_DIR, "systemd", "mta.service")


class SystemdUnit(E2ETestCase):
    def test_unit_passes_systemd_analyze_verify(self):
        analyze = shutil.which("systemd-analyze")
        if not analyze:
            self.fail("systemd-analyze not installed (packaging/install-deps.sh test installs systemd)")
        tmp = tempfile.mkdtemp(prefix="mta-unit-")
        try:
            text = open(UNIT).read()
            # verify checks that ExecStart's binary exists: point it at the build.
            text = text.replace("/usr/bin/mta", MTA_BIN)
            path = os.path.join(tmp, "mta.service")
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([analyze, "verify", path], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertNotIn("mta.service:", r.stderr, r.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_unit_is_notify_type_with_hardening(self):
        text = open(UNIT).read()
        want = {
            "Type": "notify",
            "User": "mta",
            "ExecReload": "/bin/kill -HUP $MAINPID",
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "PrivateTmp": "yes",
            "StateDirectory": "mta",
            "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
        }
        for key, value in want.items():
            m = re.search(rf"^{key}=(.*)$", text, re.M)
            self.assertIsNotNone(m, f"{key}= missing")
            self.assertEqual(m.group(1).strip(), value, key)

    def test_daemon_notifies_ready_and_stopping(self):
        tmp = tempfile.mkdtemp(prefix="mta-notify-")
        sock_path = os.path.join(tmp, "notify")
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(sock_path)
        ns.settimeout(15)
        cfg = base_config()
        cfg["spool_dir"] = os.path.join(tmp, "spool")
        path = os.path.join(tmp, "mta.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg))
        env = dict(os.environ, NOTIFY_SOCKET=sock_path)
        p = subprocess.Popen([MTA_BIN, "serve", "--config", path], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            msgs = []
            deadline = time.time() + 15
            while time.time() < deadline and not any("READY=1" in m for m in msgs):
                msgs.append(ns.recv(4096).decode())
            self.assertTrue(any("READY=1" in m for m in msgs), msgs)
            # Once READY, the SMTP listener answers.
            host, port = cfg["smtp"]["listeners"][0]["listen"].rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=5) as c:
                self.assertTrue(c.recv(100).startswith(b"220 "))
            p.terminate()
            msgs = []
            deadline = time.time() + 15
            while time.time() < deadline and not any("STOPPING=1" in m for m in msgs):
                msgs.append(ns.recv(4096).decode())
            self.assertTrue(any("STOPPING=1" in m for m in msgs), msgs)
            self.assertEqual(p.wait(timeout=15), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            ns.close()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
