"""Durability: a message answered 250 survives kill -9 (alone, and under load
from 8 concurrent senders); SIGTERM finishes the in-flight transaction, closes
the listener and exits 0; the queue is readable while running and after stop.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_durability.py
"""

import os
import random
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mtatest import (E2ETestCase, SmtpConn, base_config, make_message,  # noqa: E402
                     require_binary, split_message)


def setUpModule():
    require_binary()


class Durability(E2ETestCase):
    def test_kill9_single_message(self):
        m = self.mta(base_config())
        body = b"must survive kill -9\r\n"
        msg_id = self.assertAccepted(m.send(make_message(subject="durable", body=body),
                                            rcpts=["x@dst.test", "y@dst.test"]))
        m.kill9()
        # the spool is readable with the daemon dead (a crashed RocksDB, no clean close)
        e = m.queue_entry(msg_id)
        self.assertIsNotNone(e, "250'd message missing after kill -9 (daemon down)")
        m.start()
        e = m.queue_entry(msg_id)
        self.assertIsNotNone(e, "250'd message missing after kill -9 and restart")
        self.assertEqual(e["recipients"], ["x@dst.test", "y@dst.test"])
        self.assertEqual(split_message(m.queue_show(msg_id))[1], body)
        # and the restarted daemon keeps accepting
        self.assertAccepted(m.send(make_message(subject="after restart")))

    def test_kill9_under_concurrent_load(self):
        cfg = base_config()
        cfg["log_level"] = "info"
        m = self.mta(cfg)
        acked = []            # ids answered 250
        acked_lock = threading.Lock()
        errors = []
        stop = threading.Event()
        started = threading.Barrier(9)

        def sender(n):
            rnd = random.Random(n)
            try:
                started.wait(10)
            except threading.BrokenBarrierError:
                return
            while not stop.is_set():
                try:
                    c = SmtpConn(m.port, timeout=10)
                except OSError:
                    return  # daemon gone
                try:
                    if c.reply().code != 220 or c.cmd(f"EHLO s{n}.test").code != 250:
                        return
                    while not stop.is_set():
                        size = rnd.choice([300, 2000, 8000, 40000])
                        data = make_message(subject=f"load {n}", size=size)
                        r = c.transaction(f"s{n}@src.test", [f"r{n}@dst.test"], data)
                        if r.code == 0:
                            return
                        if r.code == 250 and r.id:
                            with acked_lock:
                                acked.append(r.id)
                        elif r.code != 250:
                            errors.append(str(r))
                            return
                except (OSError, socket.timeout):
                    return
                finally:
                    c.close()

        threads = [threading.Thread(target=sender, args=(i,), daemon=True) for i in range(8)]
        for t in threads:
            t.start()
        started.wait(10)
        # let them run, then pull the plug while they are sending
        deadline = time.monotonic() + 20
        time.sleep(2.0)
        while time.monotonic() < deadline:
            with acked_lock:
                if len(acked) >= 100:
                    break
            time.sleep(0.2)
        m.kill9()
        stop.set()
        for t in threads:
            t.join(15)
        with acked_lock:
            ids = list(acked)
        self.assertGreater(len(ids), 0, f"no message accepted before the kill; errors {errors[:5]}")
        self.assertEqual(len(ids), len(set(ids)), "duplicate ids handed out")
        m.start()
        stored = m.queue_list()
        stored_ids = {e["id"] for e in stored}
        lost = [i for i in ids if i not in stored_ids]
        sys.stderr.write(f"\n[durability] acked {len(ids)}, stored after restart {len(stored_ids)}, "
                         f"lost {len(lost)}, stored-but-not-acked {len(stored_ids) - (len(ids) - len(lost))}\n")
        self.assertEqual(lost, [], f"{len(lost)} of {len(ids)} acked messages lost")
        self.assertEqual(errors, [], "unexpected rejections under load")
        # spot-check content
        by_id = {e["id"]: e for e in stored}
        for msg_id in random.Random(1).sample(ids, min(10, len(ids))):
            raw = m.queue_show(msg_id)
            self.assertEqual(by_id[msg_id]["size"], len(raw))
            self.assertIn(b"Subject: load ", raw)
            self.assertTrue(raw.endswith(b"x" * 76 + b"\r\n"), raw[-100:])

    def test_sigterm_finishes_inflight_transaction(self):
        m = self.mta(base_config())
        c = SmtpConn(m.port, timeout=10)
        self.addCleanup(c.close)
        c.expect(220)
        c.expect(250, "EHLO client.test")
        c.expect(250, "MAIL FROM:<a@src.test>")
        c.expect(250, "RCPT TO:<b@dst.test>")
        c.expect(354, "DATA")
        data = make_message(subject="in flight", body=b"first half\r\n")
        c.send(data)
        os.kill(m.pid, 15)
        # listener closes promptly
        deadline = time.monotonic() + 5
        refused = False
        while time.monotonic() < deadline:
            try:
                s = socket.create_connection((m.host, m.port), timeout=1)
                s.close()
            except OSError:
                refused = True
                break
            time.sleep(0.1)
        self.assertTrue(refused, "listener still accepting 5 s after SIGTERM")
        self.assertIsNone(m.proc.poll(), "exited before the in-flight transaction finished")
        c.send(b"second half\r\n.\r\n")
        r = c.reply(timeout=10)
        msg_id = self.assertAccepted(r)
        try:
            c.cmd("QUIT", timeout=5)
        except OSError:
            pass
        c.close()
        try:
            rc = m.proc.wait(10)
        except Exception:
            rc = None
        self.assertEqual(rc, 0, "did not exit 0 within 10 s of SIGTERM")
        m.start()
        e = m.queue_entry(msg_id)
        self.assertIsNotNone(e)
        self.assertEqual(split_message(m.queue_show(msg_id))[1], b"first half\r\nsecond half\r\n")

    def test_sigterm_idle_exits_0_and_queue_readable(self):
        m = self.mta(base_config())
        ids = [self.assertAccepted(m.send(make_message(subject=f"q{i}"))) for i in range(3)]
        # read-only listing while the daemon runs
        self.assertTrue(set(ids) <= m.queue_ids())
        t0 = time.monotonic()
        rc = m.stop()
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 5, "SIGTERM with nothing in flight took > 5 s")
        # and with it stopped
        self.assertTrue(set(ids) <= m.queue_ids())
        m.start()
        self.assertTrue(set(ids) <= m.queue_ids())
        self.assertEqual(m.stop(), 0)

    def test_queue_show_unknown_id(self):
        m = self.mta(base_config())
        p = m.cli("queue", "show", "--config", m.config_path, "0" * 32)
        self.assertEqual(p.returncode, 1, p.stderr)
        p = m.cli("queue", "show", "--config", m.config_path, "not-an-id")
        self.assertNotEqual(p.returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
