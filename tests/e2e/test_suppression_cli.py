"""`mta suppression`: list works while the daemon runs (and after a hard
bounce shows the address); add/remove edit the list while the daemon is
stopped and the daemon honours the edit; add/remove while it runs exit 1
with a message that says why; bad input exits 2.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_suppression_cli.py
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import (DeliveryTestCase, delivery_config, ev_type, route,  # noqa: E402
                     suppression_list, wait_events, wait_queue_empty)
from mtatest import parse_rfc3339, require_binary, run_cli  # noqa: E402


def setUpModule():
    require_binary()


class SuppressionCli(DeliveryTestCase):
    def setUp(self):
        self.s = self.sink(script={("rcpt", "gone@example.test"):
                                   "550 5.1.1 <gone@example.test>: Recipient address rejected: User unknown"})
        self.m = self.mta(delivery_config(routes=[route("*", f"127.0.0.1:{self.s.port}")]))

    def cli(self, *args):
        p = run_cli("suppression", *args, "--config", self.m.config_path)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def test_list_while_running(self):
        self.assertEqual(suppression_list(self.m), [])
        rc, out, err = self.cli("list")
        self.assertEqual(rc, 0, err)
        msg_id = self.submit(self.m, ["gone@example.test"])
        self.assertTrue(wait_events(self.m, ev_type(msg_id, "Bounce")))
        sup = suppression_list(self.m)                 # daemon still running
        self.assertTrue(self.m.alive())
        self.assertEqual(len(sup), 1, sup)
        e = sup[0]
        self.assertEqual(e["address"], "gone@example.test")
        self.assertEqual(e["reason"], "BOUNCE")
        self.assertEqual(e["message_id"], msg_id)
        self.assertIn("5.1.1", e["detail"])
        parse_rfc3339(e["created"])
        rc, out, err = self.cli("list")
        self.assertEqual(rc, 0, err)
        self.assertIn("gone@example.test", out)

    def test_add_remove_while_stopped(self):
        self.assertEqual(self.m.stop(), 0)
        rc, out, err = self.cli("add", "Manual@Example.test")
        self.assertEqual(rc, 0, err)
        sup = suppression_list(self.m)
        self.assertEqual([x["address"] for x in sup], ["manual@example.test"])
        self.assertEqual(sup[0]["reason"], "MANUAL")
        rc, _, err = self.cli("add", "--reason", "COMPLAINT", "c@example.test")
        self.assertEqual(rc, 0, err)
        self.m.start()
        reasons = {x["address"]: x["reason"] for x in suppression_list(self.m)}
        self.assertEqual(reasons, {"manual@example.test": "MANUAL", "c@example.test": "COMPLAINT"})

        # the daemon honours it: not attempted, Bounce with subtype Suppressed
        id1 = self.submit(self.m, ["manual@example.test"])
        b = wait_events(self.m, ev_type(id1, "Bounce"))
        self.assertEqual(len(b), 1)
        self.assertEqual(b[0]["bounce"]["bounceSubType"], "Suppressed")
        self.assertEqual(self.s.transactions, [])
        self.assertEqual(wait_queue_empty(self.m, [id1]), set())

        self.assertEqual(self.m.stop(), 0)
        rc, out, err = self.cli("remove", "MANUAL@example.test")
        self.assertEqual(rc, 0, err)
        self.assertEqual([x["address"] for x in suppression_list(self.m)], ["c@example.test"])
        self.m.start()
        id2 = self.submit(self.m, ["manual@example.test"])
        tx, = self.assertDelivered(self.s, 1)
        self.assertEqual(tx.message_id, id2)
        self.assertEqual(tx.rcpts, ["manual@example.test"])

    def test_edit_while_running_refused(self):
        for args in (("add", "x@example.test"), ("remove", "x@example.test")):
            rc, out, err = self.cli(*args)
            self.assertEqual(rc, 1, f"{args}: exit {rc}, stdout {out!r}, stderr {err!r}")
            self.assertRegex(err.lower(), r"running|stop|lock",
                             f"{args}: the message does not say the daemon must be stopped: {err!r}")
        self.assertTrue(self.m.alive())
        self.assertEqual(suppression_list(self.m), [])
        # and the daemon is unharmed
        msg_id = self.submit(self.m, ["x@example.test"])
        tx, = self.assertDelivered(self.s, 1)
        self.assertEqual(tx.message_id, msg_id)

    def test_bad_input(self):
        self.m.stop()
        rc, _, err = self.cli("add", "not-an-address")
        self.assertEqual(rc, 2, err)
        rc, _, err = self.cli("add", "--reason", "WHATEVER", "a@example.test")
        self.assertEqual(rc, 2, err)
        self.assertEqual(suppression_list(self.m), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
