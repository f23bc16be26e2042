"""Operator pauses and bounce-all through the admin API and `mta ctl`, end to
end: suspending an IP moves its pool's mail to the other IP; suspending a
pool or a destination holds its mail (queued, not an attempt) until resumed,
then it goes out at once; pauses survive a restart; bounce-all bounces
what is queued for a domain (Bounce events) and nothing else; unknown names
are 404.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_suspend.py
"""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import (DeliveryTestCase, delivery_config, ev_type, events,  # noqa: E402
                     route, wait_events)
from mtatest import free_port, make_message, require_binary, run_cli  # noqa: E402

ADMIN_ID, ADMIN_SECRET = "AKIDADMIN", "admin-secret-0123456789"


def setUpModule():
    require_binary()


class Suspend(DeliveryTestCase):
    def daemon(self, sink, extra_routes=()):
        cfg = delivery_config(routes=[*extra_routes, route("*", f"127.0.0.1:{sink.port}")],
                              intervals=["1s"], max_age="1h")
        cfg["ip_pools"] = [{"name": "main", "ips": [{"address": "127.0.0.120"},
                                                    {"address": "127.0.0.121"}]}]
        cfg["http"] = {"listen": f"127.0.0.1:{free_port()}",
                       "api_keys": [{"id": ADMIN_ID, "secret": ADMIN_SECRET, "admin": True}]}
        return self.mta(cfg)

    def ctl(self, m, *args):
        p = run_cli("ctl", "--config", m.config_path, *args)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def send(self, m, n, rcpt="u{}@dst.test"):
        return [self.submit(m, [rcpt.format(i)], data=make_message(to=rcpt.format(i)))
                for i in range(n)]

    def test_suspend_ip_moves_mail_to_the_other_ip(self):
        sink = self.sink()
        m = self.daemon(sink)
        rc, out, err = self.ctl(m, "suspend", "ip", "127.0.0.121")
        self.assertEqual(rc, 0, err)
        self.send(m, 6)
        self.assertDelivered(sink, 6)
        self.assertEqual({t.peer for t in sink.delivered()}, {"127.0.0.120"})
        rc, out, err = self.ctl(m, "resume", "ip", "127.0.0.121")
        self.assertEqual(rc, 0, err)
        self.send(m, 6, rcpt="w{}@dst.test")
        self.assertDelivered(sink, 12)
        self.assertEqual({t.peer for t in sink.delivered()}, {"127.0.0.120", "127.0.0.121"})

    def test_suspended_pool_holds_mail_until_resumed_and_survives_restart(self):
        sink = self.sink()
        m = self.daemon(sink)
        rc, out, err = self.ctl(m, "suspend", "pool", "main")
        self.assertEqual(rc, 0, err)
        ids = self.send(m, 3)
        time.sleep(2)
        self.assertEqual(sink.delivered(), [])
        listed = run_cli("queue", "list", "--config", m.config_path, "--json")
        envs = [e for ln in listed.stdout.decode().splitlines() if ln.strip()
                for e in json.loads(ln)["envelopes"]]
        self.assertEqual(len(envs), 3)
        for e in envs:
            self.assertIn("suspended by the operator", e["last_reply"])
            self.assertEqual(e["attempts"], 0)
        for i in ids:
            self.assertFalse([e for e in events(m) if ev_type(i, "DeliveryDelay")(e)])
        m.restart()  # the pause is kept in the spool
        time.sleep(2)
        self.assertEqual(sink.delivered(), [])
        self.assertIn("delivery=paused pool=main", m.log())
        t0 = time.monotonic()
        rc, out, err = self.ctl(m, "resume", "pool", "main")
        self.assertEqual(rc, 0, err)
        self.assertDelivered(sink, 3, timeout=20)
        self.assertLess(time.monotonic() - t0, 15, "resumed mail waited for its old due time")

    def test_suspended_destination_and_bounce_all(self):
        sink = self.sink()
        m = self.daemon(sink)
        rc, out, err = self.ctl(m, "suspend", "destination", "Held.Test")
        self.assertEqual(rc, 0, err)
        held = self.send(m, 3, rcpt="h{}@held.test")
        other = self.send(m, 2)
        self.assertDelivered(sink, 2)
        time.sleep(1.5)
        self.assertEqual(len(sink.delivered()), 2, "mail to a suspended destination went out")
        rc, out, err = self.ctl(m, "bounce-all", "held.test", "--json")
        self.assertEqual(rc, 0, err)
        self.assertIn("3", out)
        for i in held:
            got = wait_events(m, ev_type(i, "Bounce"))
            self.assertTrue(got, f"no Bounce for {i}")
            b = got[0]["bounce"]
            self.assertEqual(b["bounceType"], "Permanent")
            self.assertIn("bounce-all", b["bouncedRecipients"][0]["diagnosticCode"])
        for i in other:
            self.assertFalse([e for e in events(m) if ev_type(i, "Bounce")(e)])
        self.assertEqual(m.queue_ids() & set(held), set())
        rc, out, err = self.ctl(m, "resume", "destination", "held.test")
        self.assertEqual(rc, 0, err)

    def test_unknown_names_are_refused(self):
        sink = self.sink()
        m = self.daemon(sink)
        for args in (("suspend", "pool", "nope"), ("suspend", "ip", "10.9.9.9"),
                     ("resume", "ip", "not-an-ip"), ("suspend", "destination", "a b")):
            rc, out, err = self.ctl(m, *args)
            self.assertNotEqual(rc, 0, args)
            self.assertTrue(err.strip(), args)


if __name__ == "__main__":
    unittest.main(verbosity=2)
