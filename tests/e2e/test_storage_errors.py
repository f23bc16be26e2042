"""Storage errors: with the spool on a small tmpfs that gets filled, a message
gets `451 4.3.0` (not a 250, not a crash), the daemon keeps serving, and it
recovers once space is freed; every message answered 250 stays in the spool.

Needs root (mount -t tmpfs); skipped otherwise.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_storage_errors.py
"""

import errno
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mtatest import E2ETestCase, base_config, make_message, require_binary  # noqa: E402


def setUpModule():
    require_binary()


def fill(path):
    """Write `path` until the file system is full; returns bytes written."""
    total = 0
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 20, 1 << 16, 4096, 512, 64, 1):
            chunk = b"\xa5" * size
            while True:
                try:
                    n = f.write(chunk)
                except OSError as e:
                    if e.errno in (errno.ENOSPC, errno.EDQUOT):
                        break
                    raise
                if not n:
                    break
                total += n
    return total


class StorageErrors(E2ETestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a tmpfs")
        self.mnt = tempfile.mkdtemp(prefix="mta-e2e-tmpfs-")
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", self.mnt],
                           capture_output=True, timeout=30)
        if p.returncode != 0:
            os.rmdir(self.mnt)
            self.skipTest(f"mount tmpfs failed: {p.stderr.decode(errors='replace')}")
        # cleanups run last-in first-out: this one runs after the daemon's stop
        self.addCleanup(self.unmount)
        self.m = None

    def unmount(self):
        if self.m is not None:
            self.m.stop()
        for args in (["umount", self.mnt], ["umount", "-l", self.mnt]):
            if subprocess.run(args, capture_output=True, timeout=30).returncode == 0:
                break
        shutil.rmtree(self.mnt, ignore_errors=True)

    def test_disk_full_451_then_recovery(self):
        cfg = base_config()
        cfg["spool_dir"] = os.path.join(self.mnt, "spool")
        self.m = m = self.mta(cfg)
        ok_ids = [self.assertAccepted(m.send(make_message(subject="before fill")))]

        filler = os.path.join(self.mnt, "filler")
        written = fill(filler)
        sys.stderr.write(f"\n[storage] filler {written >> 20} MiB\n")

        # Whatever space the store had reserved (WAL preallocation) runs out
        # within the tmpfs size, so keep sending 1 MB messages: each is either
        # stored (250) or refused with 451 4.3.0, and a 451 must come.
        replies = []
        for i in range(80):
            r = m.send(make_message(subject=f"while full {i}", size=1 << 20))
            replies.append(r)
            if r.code == 250:
                ok_ids.append(self.assertAccepted(r))
            else:
                break
        last = replies[-1]
        self.assertNotEqual(last.code, 250, "80 MB accepted on a full 64 MB file system")
        self.assertReply(last, 451, "4.3.0")
        sys.stderr.write(f"[storage] {len(ok_ids) - 1} accepted after the fill before the 451\n")

        # still alive, still talking, still refusing while full
        self.assertTrue(m.alive(), "daemon died on a full disk")
        r = m.send(make_message(subject="still full"))
        self.assertIn(r.code, (250, 451), r)
        if r.code == 250:
            ok_ids.append(self.assertAccepted(r))
        self.assertTrue(m.alive(), "daemon died on a full disk")

        # free the space: the daemon recovers by itself
        os.unlink(filler)
        deadline = time.monotonic() + 20
        while True:
            r = m.send(make_message(subject="after free"))
            if r.code == 250:
                ok_ids.append(self.assertAccepted(r))
                break
            self.assertEqual(r.code, 451, r)
            if time.monotonic() > deadline:
                self.fail(f"no 250 within 20 s of freeing space; last reply {r}")
            time.sleep(0.5)
        self.assertAccepted(m.send(make_message(subject="after free 2")))

        # nothing answered 250 was lost, before or after a restart
        have = m.queue_ids()
        self.assertEqual([i for i in ok_ids if i not in have], [])
        self.assertEqual(m.stop(), 0)
        m.start()
        have = m.queue_ids()
        self.assertEqual([i for i in ok_ids if i not in have], [])

    def test_disk_fills_while_idle(self):
        # the daemon starts with a healthy spool, then the disk fills while idle
        cfg = base_config()
        cfg["spool_dir"] = os.path.join(self.mnt, "spool")
        self.m = m = self.mta(cfg)
        fill(os.path.join(self.mnt, "filler"))
        time.sleep(1)
        self.assertTrue(m.alive())
        with m.connect() as c:
            self.assertReply(c.reply(), 220)
            self.assertReply(c.cmd("EHLO client.test"), 250)
            c.quit()
        # SIGTERM on a full disk still exits cleanly
        self.assertEqual(m.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
