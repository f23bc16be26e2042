"""Dedicated IP pools, configuration sets, warm-up and adaptive backoff,
end to end: the real daemon sends from 127.0.0.x source addresses (all of
127/8 is loopback) to a recording sink that notes the peer address of each
message.

  - two sets on two pools: every message leaves from its own pool's IPs,
    with that IP's EHLO name; a 2-IP pool splits its mail evenly
  - a warming IP delivers at most its paced allowance, the warm IP the rest
  - only warming IPs and overflow: defer -> the excess waits (no attempt,
    no DeliveryDelay) and goes out once the clock (MTA_CLOCK_OFFSET) has
    moved to the next warm-up day
  - overflow: pool:other -> the excess leaves from the other pool
  - warm-up counters survive a restart
  - a provider answering 421 4.7.0 to one IP -> that IP backs off, the
    other carries the load
  - high-priority mail is not queued behind a bulk backlog
  - SIGHUP adds a pool and a set; mail of a removed set falls back to the
    default set (logged)
  - `mta warmup plan` and `mta warmup status`

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_warmup.py
"""

import datetime
import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import (DeliveryTestCase, delivery_config, ev_type, events,  # noqa: E402
                     random_loopback, route, wait_queue_empty)
from mtatest import make_message, metric_value, require_binary, run_cli, to_yaml  # noqa: E402


def setUpModule():
    require_binary()


def today_utc():
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def pool(name, *ips, **extra):
    p = {"name": name, "ips": [dict(ip) if isinstance(ip, dict) else
                               {"address": ip, "ehlo": f"o{ip.rsplit('.', 1)[1]}.mta.test"}
                               for ip in ips]}
    p.update(extra)
    return p


def warming(ip, schedule, started=None):
    return {"address": ip, "ehlo": f"o{ip.rsplit('.', 1)[1]}.mta.test",
            "warmup": {"schedule": schedule, "started": started or today_utc()}}


class Warmup(DeliveryTestCase):
    def config(self, sink, pools, sets, default=None, **extra):
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")], intervals=["1s"],
                              max_age="3d")
        cfg["ip_pools"] = pools
        cfg["configuration_sets"] = sets
        cfg["default_configuration_set"] = default or sets[0]["name"]
        cfg.update(extra)
        return cfg

    def send_set(self, m, cset, n, rcpt="u{}@dst.test"):
        ids = []
        for i in range(n):
            data = make_message(subject=f"{cset} {i}", to=rcpt.format(i),
                                headers=[("X-SES-CONFIGURATION-SET", cset)])
            ids.append(self.submit(m, [rcpt.format(i)], data=data))
        return ids

    def by_peer(self, sink, ids=None):
        out = {}
        for t in sink.delivered():
            if ids is None or t.message_id in ids:
                out[t.peer] = out.get(t.peer, 0) + 1
        return out

    def metric(self, m, name, **labels):
        return metric_value(m.metrics(), name, **labels)

    def wait_metric(self, m, want, name, **labels):
        """The warm-up gauges are refreshed every second."""
        deadline = time.monotonic() + 5
        while (got := self.metric(m, name, **labels)) != want:
            self.assertLess(time.monotonic(), deadline, f"{name}{labels} = {got}, want {want}")
            time.sleep(0.2)

    def test_sets_use_their_own_pools_evenly(self):
        sink = self.sink()
        cfg = self.config(sink, [pool("a", "127.0.0.10", "127.0.0.11"), pool("b", "127.0.0.12")],
                          [{"name": "seta", "ip_pool": "a"}, {"name": "setb", "ip_pool": "b"}])
        m = self.mta(cfg)
        ids_a = set(self.send_set(m, "seta", 20))
        ids_b = set(self.send_set(m, "setb", 10))
        self.assertDelivered(sink, 30)
        a, b = self.by_peer(sink, ids_a), self.by_peer(sink, ids_b)
        self.assertEqual(set(a), {"127.0.0.10", "127.0.0.11"}, a)
        self.assertEqual(b, {"127.0.0.12": 10})
        # Deterministic smooth round-robin between two equal IPs.
        self.assertLessEqual(abs(a["127.0.0.10"] - a["127.0.0.11"]), 2, a)
        for t in sink.delivered():
            self.assertEqual(t.ehlo, "o" + t.peer.rsplit(".", 1)[1] + ".mta.test", t)
        self.wait_metric(m, 10, "mta_deliveries_total", pool="b", ip="127.0.0.12",
                         result="delivered")

    def test_warming_ip_sends_its_allowance_warm_ip_the_rest(self):
        sink = self.sink()
        sched = {"name": "tiny", "daily_limits": [5, 10]}
        cfg = self.config(sink, [pool("a", "127.0.0.20", warming("127.0.0.21", "tiny"))],
                          [{"name": "seta", "ip_pool": "a"}], warmup_schedules=[sched])
        m = self.mta(cfg)
        self.send_set(m, "seta", 30)
        self.assertDelivered(sink, 30)
        got = self.by_peer(sink)
        # Paced: this hour's cap is ceil(5 / hours left today), at least 1.
        self.assertGreaterEqual(got.get("127.0.0.21", 0), 1, got)
        self.assertLessEqual(got.get("127.0.0.21", 0), 5, got)
        self.assertEqual(got.get("127.0.0.20", 0) + got.get("127.0.0.21", 0), 30, got)
        self.wait_metric(m, 5, "mta_warmup_daily_limit", ip="127.0.0.21")
        self.wait_metric(m, got["127.0.0.21"], "mta_warmup_sent_today", ip="127.0.0.21")

    def test_defer_waits_for_room_and_goes_out_the_next_day(self):
        sink = self.sink()
        # One message on day 1, 100 on day 2, then warm.
        sched = {"name": "slow", "daily_limits": [1, 100], "overflow": "defer"}
        cfg = self.config(sink, [pool("w", warming("127.0.0.31", "slow"))],
                          [{"name": "setw", "ip_pool": "w"}], warmup_schedules=[sched])
        m = self.mta(cfg)
        ids = self.send_set(m, "setw", 4)
        self.assertDelivered(sink, 1)
        time.sleep(2)
        self.assertEqual(len(sink.delivered()), 1, "the warming IP sent past its daily limit")
        waiting = m.queue_ids()
        self.assertEqual(len(waiting), 3, waiting)
        # Waiting for room is not a failure: no DeliveryDelay, no attempt.
        for i in waiting:
            self.assertFalse([e for e in events(m) if ev_type(i, "DeliveryDelay")(e)])
        listed = run_cli("queue", "list", "--config", m.config_path, "--json")
        envs = [e for ln in listed.stdout.decode().splitlines() if ln.strip()
                for e in json.loads(ln)["envelopes"]]
        self.assertEqual(len(envs), 3, envs)
        for e in envs:
            self.assertEqual(e["state"], "queued", e)
            self.assertEqual(e["attempts"], 0, e)
            self.assertIn("no room: every IP of pool w has reached its warm-up or hourly limit",
                          e["last_reply"])
            self.assertGreater(e["warmup_waited_ms"], 0)
        # The next warm-up day: the daemon's clock moves one day on.
        os.environ["MTA_CLOCK_OFFSET"] = str(86400)
        try:
            m.restart()
        finally:
            del os.environ["MTA_CLOCK_OFFSET"]
        self.assertDelivered(sink, 4, timeout=30)
        self.assertEqual(self.by_peer(sink), {"127.0.0.31": 4})
        self.assertFalse(wait_queue_empty(m, ids))

    def test_overflow_to_another_pool(self):
        sink = self.sink()
        sched = {"name": "one", "daily_limits": [1, 1, 1], "overflow": "pool:spare"}
        cfg = self.config(sink, [pool("w", warming("127.0.0.41", "one")),
                                 pool("spare", "127.0.0.42")],
                          [{"name": "setw", "ip_pool": "w"}], warmup_schedules=[sched])
        m = self.mta(cfg)
        self.send_set(m, "setw", 6)
        self.assertDelivered(sink, 6)
        self.assertEqual(self.by_peer(sink), {"127.0.0.41": 1, "127.0.0.42": 5})
        self.wait_metric(m, 5, "mta_deliveries_total", pool="spare", result="delivered")

    def test_counters_survive_a_restart(self):
        sink = self.sink()
        sched = {"name": "one", "daily_limits": [1, 1, 1]}
        cfg = self.config(sink, [pool("w", warming("127.0.0.51", "one"))],
                          [{"name": "setw", "ip_pool": "w"}], warmup_schedules=[sched])
        m = self.mta(cfg)
        self.send_set(m, "setw", 1)
        self.assertDelivered(sink, 1)
        time.sleep(1.5)  # counters are flushed every second
        m.restart()
        self.wait_metric(m, 1, "mta_warmup_sent_today", ip="127.0.0.51")
        st = run_cli("warmup", "status", "--config", m.config_path, "--json")
        self.assertEqual(st.returncode, 0, st.stderr)
        ips = {s["ip"]: s for s in json.loads(st.stdout)}
        self.assertEqual(ips["127.0.0.51"]["sent_today"], 1, ips)
        self.assertEqual(ips["127.0.0.51"]["state"], "IN_PROGRESS")
        self.assertEqual(ips["127.0.0.51"]["day"], 1)
        # Today's one message is spent: a new one waits.
        self.send_set(m, "setw", 1, rcpt="late{}@dst.test")
        time.sleep(2)
        self.assertEqual(len(sink.delivered()), 1)

    def test_throttled_ip_backs_off_and_the_other_carries_the_load(self):
        def script(stage, arg, n):
            if stage == "banner" and arg == "127.0.0.61":
                return "421 4.7.0 [127.0.0.61] Try again later, closing connection (throttled)"
            return None

        sink = self.sink(script=script)
        cfg = self.config(sink, [pool("a", "127.0.0.60", "127.0.0.61")],
                          [{"name": "seta", "ip_pool": "a"}],
                          shaping={"backoff": {"window": "1s", "floor": 0.1}})
        m = self.mta(cfg)
        self.send_set(m, "seta", 40)
        self.assertDelivered(sink, 40, timeout=60)
        self.assertEqual(self.by_peer(sink), {"127.0.0.60": 40})
        mult = self.metric(m, "mta_backoff_multiplier", ip="127.0.0.61", provider="other")
        self.assertIsNotNone(mult)
        self.assertLessEqual(mult, 0.5)
        before = self.metric(m, "mta_deliveries_total", ip="127.0.0.61") or 0
        # A second wave: the throttled IP now gets a small share of the picks.
        self.send_set(m, "seta", 40, rcpt="w2-{}@dst.test")
        self.assertDelivered(sink, 80, timeout=60)
        after = self.metric(m, "mta_deliveries_total", ip="127.0.0.61") or 0
        self.assertLessEqual(after - before, 16, f"{after - before} of 40 still tried on the "
                                                 f"throttled IP (multiplier {mult})")

    def test_high_priority_is_not_queued_behind_bulk(self):
        sink = self.sink(delay=0.2)
        cfg = self.config(sink, [pool("a", "127.0.0.70")],
                          [{"name": "bulk", "ip_pool": "a", "priority": "bulk"},
                           {"name": "tx", "ip_pool": "a", "priority": "high"}],
                          shaping={"default": {"max_connections": 1}})
        m = self.mta(cfg)
        self.send_set(m, "bulk", 30, rcpt="b{}@dst.test")
        high = set(self.send_set(m, "tx", 3, rcpt="h{}@dst.test"))
        self.assertDelivered(sink, 33, timeout=60)
        order = [t.message_id for t in sink.delivered()]
        pos = [order.index(i) for i in high]
        # 30 bulk messages were queued first; one connection, 0.2 s each.
        self.assertLess(max(pos), 12, f"high-priority messages delivered at {sorted(pos)}")

    def test_sighup_adds_pool_and_set_removed_set_falls_back(self):
        sink = self.sink()
        cfg = self.config(sink, [pool("a", "127.0.0.80"), pool("old", "127.0.0.82")],
                          [{"name": "seta", "ip_pool": "a"}, {"name": "oldset", "ip_pool": "old"}])
        # Nothing listens here: mail of oldset waits for a retry.
        cfg["routes"] = [route("*", f"127.0.0.1:{sink.port}"),
                         route("parked.test", "127.0.0.1:1")]
        m = self.mta(cfg)
        pid = m.pid
        parked, = self.send_set(m, "oldset", 1, rcpt="p{}@parked.test")
        cfg = m.config  # with the spool_dir the harness added
        cfg["ip_pools"] = [pool("a", "127.0.0.80"), pool("b", "127.0.0.81")]
        cfg["configuration_sets"] = [{"name": "seta", "ip_pool": "a"},
                                     {"name": "setb", "ip_pool": "b"}]
        cfg["routes"] = [route("*", f"127.0.0.1:{sink.port}")]
        with open(m.config_path, "w") as f:
            f.write(to_yaml(cfg))
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "mta=reloaded" not in m.log():
            self.assertLess(time.monotonic(), deadline, "no reload in the log")
            time.sleep(0.1)
        ids_b = set(self.send_set(m, "setb", 4))
        self.assertDelivered(sink, 5, timeout=30)
        self.assertEqual(self.by_peer(sink, ids_b), {"127.0.0.81": 4})
        self.assertEqual(self.by_peer(sink, {parked}), {"127.0.0.80": 1})
        self.assertEqual(m.pid, pid)
        log = m.log()
        self.assertIn('delivery=set_missing set="oldset" fallback="seta"', log)

    def test_provider_limits_apply_per_ip_and_provider(self):
        # Two domains whose MX hosts belong to one provider (by MX suffix).
        prefix = int.from_bytes(os.urandom(1), "big") % 150 + 64
        addr = random_loopback(prefix)
        sink = self.sink(addr, 25, delay=0.2)
        dns = self.dnsmasq("--mx-host=d1.test,mx1.prov.test,10",
                           "--mx-host=d2.test,mx2.prov.test,10",
                           f"--host-record=mx1.prov.test,{addr}",
                           f"--host-record=mx2.prov.test,{addr}")
        cfg = self.config(sink, [pool("a", "127.0.0.95")], [{"name": "seta", "ip_pool": "a"}])
        cfg.pop("routes")
        cfg["dns"] = {"servers": [dns.server], "timeout": "1s", "attempts": 1}
        cfg["shaping"] = {"default": {"max_connections": 10},
                          "providers": [{"name": "prov", "mx_suffixes": ["prov.test"],
                                         "max_connections": 2, "max_messages_per_connection": 2,
                                         "max_messages_per_hour": 6}]}
        m = self.mta(cfg)
        self.send_set(m, "seta", 5, rcpt="a{}@d1.test")
        self.send_set(m, "seta", 5, rcpt="b{}@d2.test")
        self.assertDelivered(sink, 6, timeout=30)
        time.sleep(2)
        self.assertEqual(len(sink.delivered()), 6, "more than max_messages_per_hour went out")
        self.assertLessEqual(sink.peak, 2, "connections per (IP, provider) above max_connections")
        for c in sink.connections:
            self.assertLessEqual(c.transactions, 2, c.commands)
        self.wait_metric(m, 6, "mta_deliveries_total", provider="prov", result="delivered")
        self.assertEqual(len(m.queue_ids()), 4)

    def test_warmup_plan_and_status(self):
        sink = self.sink()
        cfg = self.config(sink, [pool("a", "127.0.0.90",
                                      warming("127.0.0.91", "standard", "2026-01-01"))],
                          [{"name": "seta", "ip_pool": "a"}])
        m = self.mta(cfg, start=False)
        p = run_cli("warmup", "plan", "--config", m.config_path, "--ip", "127.0.0.91")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertIn('schedule "standard", 45 days from 2026-01-01', out)
        self.assertIn("warm on 2026-02-15", out)
        self.assertRegex(out, r"\n\s+45\s+2026-02-14\s+50,000\s")
        bad = run_cli("warmup", "plan", "--config", m.config_path, "--ip", "127.0.0.90")
        self.assertEqual(bad.returncode, 2)
        self.assertIn(b"127.0.0.90 has no warm-up", bad.stderr)
        unknown = run_cli("warmup", "plan", "--config", m.config_path, "--ip", "10.9.9.9")
        self.assertEqual(unknown.returncode, 2)
        m.start()
        st = run_cli("warmup", "status", "--config", m.config_path)
        self.assertEqual(st.returncode, 0, st.stderr)
        self.assertIn(b"127.0.0.91", st.stdout)
        self.assertIn(b"DONE", st.stdout)  # started long enough ago


if __name__ == "__main__":
    unittest.main(verbosity=2)
