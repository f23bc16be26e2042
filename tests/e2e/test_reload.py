"""SIGHUP reloads the config in place: same PID, same spool, new settings for
new mail; a broken new config is refused and the running one kept."""

import os
import signal
import time
import unittest

from mtatest import E2ETestCase, base_config, make_message, to_yaml


class Reload(E2ETestCase):
    def wait_log(self, m, needle, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in m.log():
                return
            time.sleep(0.1)
        self.fail(f"{needle!r} not in the log:\n{m.log_tail(30)}")

    def test_sighup_adds_a_configuration_set_without_restarting(self):
        cfg = base_config()
        m = self.mta(cfg)
        pid = m.proc.pid
        msg = make_message(headers=[("X-SES-CONFIGURATION-SET", "newset")])
        r = m.send(msg)
        self.assertReply(r, 554, "5.3.0")
        before = m.send()  # queued under the old config
        self.assertAccepted(before)

        cfg = m.config  # as written, with its spool_dir
        cfg["configuration_sets"].append({"name": "newset", "ip_pool": "main"})
        with open(m.config_path, "w") as f:
            f.write(to_yaml(cfg))
        os.kill(pid, signal.SIGHUP)
        self.wait_log(m, "mta=reloaded")

        r = m.send(msg)
        new_id = self.assertAccepted(r)
        self.assertEqual(m.proc.pid, pid)
        self.assertIsNone(m.proc.poll())
        q = {e["id"]: e for e in m.queue_list()}
        self.assertIn(before.id, q, "mail queued before the reload is still there")
        self.assertEqual(q[new_id]["configuration_set"], "newset")

    def test_a_broken_config_on_sighup_keeps_the_running_one(self):
        cfg = base_config()
        m = self.mta(cfg)
        pid = m.proc.pid
        with open(m.config_path, "w") as f:
            f.write(to_yaml(m.config) + "\nnot_a_key: 1\n")
        os.kill(pid, signal.SIGHUP)
        self.wait_log(m, "mta=reload_failed")
        self.assertIn("unknown key", m.log())
        self.assertIsNone(m.proc.poll())
        self.assertAccepted(m.send())
        self.assertEqual(m.stop(), 0)


if __name__ == "__main__":
    unittest.main()
