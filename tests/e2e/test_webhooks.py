"""Event publishing to webhooks: SES-format events POSTed, signed, to the
destinations of a message's configuration set, at least once.

A recording HTTP receiver (webhooktest.Receiver) checks every signature.
Covered: Send and Delivery with SES's fields; Bounce (Permanent/General from
a 550 5.1.1, Permanent/Suppressed for a suppressed address) and a
destination that only wants bounces; DeliveryDelay before a late Delivery;
a receiver answering 500 and then timing out (every event still arrives,
delivery is not slowed); a receiver down past the retry window (dead
letters listed by `mta events dead`, replayed by `mta events replay` once it
is back); kill -9 while publishing (no event lost); two destinations, one
hanging (the other still gets its events promptly); batching as JSON
arrays; HTTPS with an unverifiable certificate refused; SIGHUP adding a
destination; bad destination config refused.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_webhooks.py
"""

import json
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import (DeliveryTestCase, delivery_config, events, random_loopback,  # noqa: E402
                     route, wait_queue_empty)
from mtatest import (check_config, free_port, make_cert, make_message, metric_value,  # noqa: E402
                     parse_rfc3339, require_binary, run_cli, to_yaml)
from webhooktest import Receiver, of  # noqa: E402

SECRET = "whsec-test-1"


def setUpModule():
    require_binary()


def destination(name, url, secret=SECRET, events=None, **webhook):
    d = {"name": name, "webhook": dict({"url": url, "secret": secret}, **webhook)}
    if events is not None:
        d["events"] = list(events)
    return d


class Webhooks(DeliveryTestCase):
    def receiver(self, **kw):
        r = Receiver(SECRET, **kw)
        r.start()
        self.addCleanup(r.stop)
        return r

    def config(self, sink, dests, sets=("default",), **kw):
        """delivery_config() routing everything to `sink`, with `dests` as
        event_destinations and every one of them on the sets `sets`."""
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")], **kw)
        cfg["event_destinations"] = dests
        for s in cfg["configuration_sets"]:
            if s["name"] in sets:
                s["event_destinations"] = [d["name"] for d in dests]
        return cfg

    def cli(self, m, *args):
        p = run_cli("events", *args, "--config", m.config_path)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def wait_metric(self, m, name, want, timeout=10.0, **labels):
        """The metric once it equals want (or its last value after timeout):
        the daemon counts a POST after the receiver has answered it."""
        deadline = time.monotonic() + timeout
        while True:
            v = metric_value(m.metrics(), name, **labels)
            if v == want or time.monotonic() > deadline:
                return v
            time.sleep(0.1)

    def assertSignedEvents(self, r):
        bad = [p for p in r.posts if not p.signed]
        self.assertEqual(bad, [], "POSTs whose X-MTA-Signature does not verify")

    # ------------------------------------------------------------------

    def test_send_and_delivery_with_ses_fields(self):
        sink = self.sink()
        r = self.receiver()
        src = random_loopback()
        m = self.mta(self.config(sink, [destination("hooks", r.url)], source_ip=src))
        data = make_message(subject="hello hooks", to="alice@example.test",
                            from_="news@Brand.Example",
                            headers=[("X-SES-MESSAGE-TAGS", "campaign=autumn")])
        msg_id = self.submit(m, ["alice@example.test"], data=data, mail_from="bounce@src.test")
        self.assertDelivered(sink, 1)
        got = r.wait_for(of(msg_id), n=2)
        self.assertEqual([e["eventType"] for e in got], ["Send", "Delivery"],
                         "Send and Delivery, in that order")
        self.assertSignedEvents(r)
        send, dl = got
        for e in got:
            h = e["_headers"]
            self.assertEqual(h.get("Content-Type"), "application/json")
            self.assertRegex(h.get("X-MTA-Event-Id", ""), r"^[0-9a-f]{32}$")
            self.assertEqual(h["X-MTA-Event-Id"], e["mta"]["eventId"])
            self.assertLess(abs(int(h["X-MTA-Timestamp"]) - time.time()), 60)
            mail = e["mail"]
            self.assertEqual(mail["messageId"], msg_id)
            self.assertEqual(mail["source"], "bounce@src.test")
            self.assertEqual(mail["destination"], ["alice@example.test"])
            self.assertIs(mail["headersTruncated"], False)
            self.assertIn({"name": "Subject", "value": "hello hooks"}, mail["headers"])
            self.assertEqual(mail["commonHeaders"]["subject"], "hello hooks")
            self.assertEqual(mail["commonHeaders"]["to"], ["<alice@example.test>"])
            parse_rfc3339(mail["timestamp"])
            tags = mail["tags"]
            self.assertEqual(tags["ses:configuration-set"], ["default"])
            self.assertEqual(tags["ses:source-ip"], ["127.0.0.1"])
            self.assertEqual(tags["ses:from-domain"], ["brand.example"], "From header's domain")
            self.assertEqual(tags["campaign"], ["autumn"])
        self.assertNotIn("ses:outgoing-ip", send["mail"]["tags"], "not sent yet at Send")
        self.assertEqual(dl["mail"]["tags"]["ses:outgoing-ip"], [src])
        d = dl["delivery"]
        self.assertEqual(d["recipients"], ["alice@example.test"])
        self.assertTrue(d["smtpResponse"].startswith("250"), d)
        self.assertEqual(d["remoteMtaIp"], "127.0.0.1")
        self.assertEqual(d["reportingMTA"], "mta.test")
        self.assertIsInstance(d["processingTimeMillis"], int)
        self.assertGreaterEqual(parse_rfc3339(d["timestamp"]), parse_rfc3339(dl["mail"]["timestamp"]))
        self.assertEqual(dl["mta"]["pool"], "main")
        self.assertEqual(dl["mta"]["ip"], src)
        self.assertEqual(dl["mta"]["attempts"], 1)
        self.assertEqual(dl["mta"]["provider"], "other")     # example.test: no listed provider
        self.assertNotEqual(send["mta"]["eventId"], dl["mta"]["eventId"])
        # Published events leave the outbox; the metrics count them.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and [e for e in events(m) if e["mail"]["messageId"] == msg_id]:
            time.sleep(0.2)
        self.assertEqual([e for e in events(m) if e["mail"]["messageId"] == msg_id], [],
                         "published events still in the outbox")
        self.assertEqual(self.wait_metric(m, "mta_events_published_total", 1, destination="hooks",
                                          type="delivery"), 1)
        text = m.metrics()
        self.assertEqual(metric_value(text, "mta_events_published_total", destination="hooks",
                                      type="send"), 1)
        self.assertEqual(metric_value(text, "mta_events_published_total", destination="hooks",
                                      type="delivery"), 1)
        self.assertEqual(metric_value(text, "mta_events_backlog", destination="hooks"), 0)
        self.assertEqual(metric_value(text, "mta_events_dead", destination="hooks"), 0)
        self.assertEqual(metric_value(text, "mta_events_failed_total", destination="hooks"), 0)
        self.assertGreaterEqual(metric_value(text, "mta_event_publish_seconds_count",
                                             destination="hooks"), 2)

    def test_bounces_general_and_suppressed_and_an_event_filter(self):
        sink = self.sink(script={("rcpt", "gone@example.test"):
                                 "550 5.1.1 <gone@example.test>: Recipient address rejected: User unknown",
                                 ("rcpt", "policy@example.test"): "554 5.7.1 rejected by policy"})
        r_all = self.receiver()
        r_bounces = self.receiver()
        cfg = self.config(sink, [destination("all", r_all.url),
                                 destination("bounces", r_bounces.url, events=["bounce", "complaint"])])
        m = self.mta(cfg, start=False)
        p = run_cli("suppression", "add", "--config", m.config_path, "blocked@example.test")
        self.assertEqual(p.returncode, 0, p.stderr)
        m.start()
        gone = self.submit(m, ["gone@example.test"])
        blocked = self.submit(m, ["blocked@example.test"])
        ok = self.submit(m, ["fine@example.test"])
        policy = self.submit(m, ["policy@example.test"])
        b1, = r_all.wait_for(of(gone, "Bounce"))
        b = b1["bounce"]
        # config/bounce-rules.yaml calls an unknown user NoEmail (SES's
        # "address does not exist"); a policy refusal is General.
        self.assertEqual((b["bounceType"], b["bounceSubType"]), ("Permanent", "NoEmail"))
        rc, = b["bouncedRecipients"]
        self.assertEqual(rc["emailAddress"], "gone@example.test")
        self.assertEqual(rc["action"], "failed")
        self.assertEqual(rc["status"], "5.1.1")
        self.assertIn("550 5.1.1", rc["diagnosticCode"])
        self.assertEqual(b["reportingMTA"], "dsn; mta.test")
        self.assertTrue(b["feedbackId"])
        parse_rfc3339(b["timestamp"])
        self.assertEqual(b1["mta"]["bounceCategory"], "bad-mailbox")
        b2, = r_all.wait_for(of(blocked, "Bounce"))
        self.assertEqual((b2["bounce"]["bounceType"], b2["bounce"]["bounceSubType"]),
                         ("Permanent", "Suppressed"))
        self.assertEqual(b2["bounce"]["bouncedRecipients"][0]["emailAddress"], "blocked@example.test")
        r_all.wait_for(of(ok, "Delivery"))
        b3, = r_all.wait_for(of(policy, "Bounce"))
        self.assertEqual((b3["bounce"]["bounceType"], b3["bounce"]["bounceSubType"]),
                         ("Permanent", "General"))
        self.assertEqual(b3["bounce"]["bouncedRecipients"][0]["status"], "5.7.1")
        # The bounce-only destination got exactly the two bounces.
        got = r_bounces.wait_for(lambda e: e["eventType"] == "Bounce", n=3)
        time.sleep(0.5)
        self.assertEqual(sorted((e["eventType"], e["mail"]["messageId"]) for e in r_bounces.events()),
                         sorted([("Bounce", gone), ("Bounce", blocked), ("Bounce", policy)]), got)
        self.assertSignedEvents(r_all)
        self.assertSignedEvents(r_bounces)

    def test_delivery_delay_before_late_delivery(self):
        sink = self.sink(script={("rcpt", "late@example.test"): ["451 4.3.0 try again later"]})
        r = self.receiver()
        m = self.mta(self.config(sink, [destination("hooks", r.url)], intervals=("1s",)))
        msg_id = self.submit(m, ["late@example.test"])
        got = r.wait_for(of(msg_id), n=3)
        self.assertEqual([e["eventType"] for e in got], ["Send", "DeliveryDelay", "Delivery"])
        dd = got[1]["deliveryDelay"]
        self.assertEqual(dd["delayType"], "TransientCommunicationFailure")
        self.assertGreater(parse_rfc3339(dd["expirationTime"]), parse_rfc3339(dd["timestamp"]))
        rc, = dd["delayedRecipients"]
        self.assertEqual(rc["emailAddress"], "late@example.test")
        self.assertEqual(rc["status"], "4.3.0")
        self.assertIn("451 4.3.0", rc["diagnosticCode"])
        self.assertEqual(got[2]["mta"]["attempts"], 2)
        self.assertSignedEvents(r)

    def test_500s_then_timeouts_every_event_arrives_and_delivery_is_not_slowed(self):
        # POSTs 1-4 get 500, 5-7 answer after the client's timeout, then 200.
        def script(n, body):
            if n <= 4:
                return 500
            if n <= 7:
                return ("sleep", 1.5)
            return 200

        sink = self.sink()
        r = self.receiver(script=script, timeout=0.5)
        m = self.mta(self.config(sink, [destination("hooks", r.url, timeout="500ms", max_in_flight=4)]))
        t0 = time.monotonic()
        ids = [self.submit(m, [f"r{i}@example.test"]) for i in range(20)]
        self.assertDelivered(sink, 20, timeout=20)
        delivered_in = time.monotonic() - t0
        for msg_id in ids:
            got = r.wait_for(of(msg_id), n=2, timeout=60)
            self.assertEqual(sorted(e["eventType"] for e in got), ["Delivery", "Send"], msg_id)
        self.assertSignedEvents(r)
        self.assertLess(delivered_in, 15, "delivery slowed down by a failing webhook")
        statuses = [p.status for p in r.posts]
        self.assertEqual(statuses[:4], [500] * 4)
        self.assertEqual(self.wait_metric(m, "mta_events_backlog", 0, destination="hooks"), 0)
        text = m.metrics()
        self.assertGreaterEqual(metric_value(text, "mta_events_failed_total", destination="hooks"), 7)
        self.assertEqual(metric_value(text, "mta_events_published_total", destination="hooks"),
                         len(set(r.accepted_ids())))
        self.assertGreaterEqual(len(set(r.accepted_ids())), 40)
        # The events that failed were sent again with the same id.
        failed_ids = {i for p in r.posts if not p.accepted for i in p.event_ids}
        self.assertTrue(failed_ids)
        self.assertTrue(failed_ids <= set(r.accepted_ids()))

    def test_dead_letters_listed_then_replayed(self):
        sink = self.sink()
        port = free_port()
        url = f"http://127.0.0.1:{port}/events"              # nobody listens yet
        m = self.mta(self.config(sink, [destination("hooks", url, retry_window="2s")]))
        ids = [self.submit(m, [f"d{i}@example.test"]) for i in range(2)]
        self.assertDelivered(sink, 2)
        deadline = time.monotonic() + 30
        dead = []
        while time.monotonic() < deadline:
            rc, out, err = self.cli(m, "dead", "--json")
            self.assertEqual(rc, 0, err)
            dead = [json.loads(l) for l in out.splitlines() if l.strip()]
            if len(dead) >= 4:
                break
            time.sleep(0.3)
        self.assertEqual(len(dead), 4, dead)
        self.assertEqual(sorted(d["event_type"] for d in dead), ["Delivery", "Delivery", "Send", "Send"])
        self.assertEqual({d["message_id"] for d in dead}, set(ids))
        for d in dead:
            self.assertEqual(d["destination"], "hooks")
            self.assertRegex(d["id"], r"^[0-9a-f]{32}$")
            self.assertRegex(d["last_error"], r"(?i)connect|refused")
            parse_rfc3339(d["queued"])
        # The Sends were tried; a Delivery may have waited behind its
        # message's failing Send and died untried (it then carries the
        # destination's last error, checked above).
        self.assertTrue(all(d["attempts"] >= 1 for d in dead if d["event_type"] == "Send"), dead)
        for d in dead:
            parse_rfc3339(d["dead"])
        self.assertEqual(metric_value(m.metrics(), "mta_events_dead", destination="hooks"), 4)
        self.assertEqual(metric_value(m.metrics(), "mta_events_backlog", destination="hooks"), 0)
        rc, out, err = self.cli(m, "dead")
        self.assertEqual(rc, 0, err)
        self.assertIn("4 dead letter(s)", out)
        self.assertIn(dead[0]["id"], out)
        rc, out, err = self.cli(m, "dead", "--destination", "nope")
        self.assertEqual(rc, 2)
        self.assertIn("no event destination named nope", err)

        # Replay needs the daemon stopped, and says so.
        rc, out, err = self.cli(m, "replay")
        self.assertEqual(rc, 1)
        self.assertIn("daemon running", err)
        self.assertEqual(m.stop(), 0)

        r = Receiver(SECRET, port=port)
        r.start()
        self.addCleanup(r.stop)
        # One by id first; an unknown id and a bad id are reported.
        one = dead[0]["id"]
        rc, out, err = self.cli(m, "replay", "--destination", "hooks", one, "0" * 32)
        self.assertEqual(rc, 1, out + err)
        self.assertIn(f"replayed {one} to hooks", out)
        self.assertIn("no dead letter " + "0" * 32, err)
        rc, out, err = self.cli(m, "replay", "not-an-id")
        self.assertEqual(rc, 2)
        self.assertIn("not an event id", err)
        rc, out, err = self.cli(m, "replay")
        self.assertEqual(rc, 0, err)
        self.assertIn("3 event(s) queued again", out)
        rc, out, err = self.cli(m, "dead")
        self.assertIn("0 dead letter(s)", out)

        m.start()
        for msg_id in ids:
            got = r.wait_for(of(msg_id), n=2)
            self.assertEqual(sorted(e["eventType"] for e in got), ["Delivery", "Send"])
        self.assertEqual({e["mta"]["eventId"] for e in r.events()}, {d["id"] for d in dead})
        self.assertSignedEvents(r)
        self.assertEqual(metric_value(m.metrics(), "mta_events_dead", destination="hooks"), 0)

    def test_dead_letters_through_the_admin_api_while_running(self):
        sink = self.sink()
        port = free_port()
        cfg = self.config(sink, [destination("hooks", f"http://127.0.0.1:{port}/events",
                                             retry_window="1s")])
        cfg["http"] = {"listen": f"127.0.0.1:{free_port()}",
                       "api_keys": [{"id": "ADMIN", "secret": "admin-secret", "admin": True}]}
        m = self.mta(cfg)
        msg_id = self.submit(m, ["a@example.test"])

        def ctl(*args):
            p = run_cli("ctl", "--config", m.config_path, "--secret", "admin-secret", *args)
            return p.returncode, p.stdout.decode(), p.stderr.decode()

        deadline = time.monotonic() + 30
        out = ""
        while time.monotonic() < deadline and "2 dead letter(s)" not in out:
            rc, out, err = ctl("events", "dead")
            self.assertEqual(rc, 0, err)
            time.sleep(0.3)
        self.assertIn("2 dead letter(s)", out)
        self.assertIn(msg_id, out)
        r = Receiver(SECRET, port=port)
        r.start()
        self.addCleanup(r.stop)
        rc, out, err = ctl("events", "replay")
        self.assertEqual(rc, 0, err)
        self.assertIn("2 event(s) replayed", out)
        got = r.wait_for(of(msg_id), n=2)
        self.assertEqual([e["eventType"] for e in got], ["Send", "Delivery"])
        rc, out, err = ctl("events", "replay", "0" * 32)     # nothing by that id
        self.assertEqual(rc, 1, out)
        self.assertIn("404", err)
        self.assertEqual(self.wait_metric(m, "mta_events_dead", 0, destination="hooks"), 0)

    def test_kill9_while_publishing_loses_nothing(self):
        sink = self.sink()
        r = self.receiver(script=lambda n, body: ("sleep", 0.05))
        m = self.mta(self.config(sink, [destination("hooks", r.url, max_in_flight=2)]))
        ids = [self.submit(m, [f"k{i}@example.test"]) for i in range(30)]
        r.wait_posts(8)
        m.kill9()
        before = len(r.events())
        self.assertLess(before, 60, "everything was published before the kill: test too slow")
        m.start()
        for msg_id in ids:
            got = r.wait_for(of(msg_id), n=2, timeout=60)
            types = {e["eventType"] for e in got}
            self.assertEqual(types, {"Send", "Delivery"}, f"{msg_id}: {types}")
        self.assertSignedEvents(r)

    def test_one_hanging_destination_does_not_hold_up_another(self):
        sink = self.sink()
        hanging = self.receiver(script=lambda n, body: ("sleep", 20))
        live = self.receiver()
        m = self.mta(self.config(sink, [destination("hanging", hanging.url, timeout="10s", max_in_flight=2),
                                        destination("live", live.url)]))
        t0 = time.monotonic()
        ids = [self.submit(m, [f"h{i}@example.test"]) for i in range(10)]
        for msg_id in ids:
            got = live.wait_for(of(msg_id), n=2, timeout=15)
            self.assertEqual(len(got), 2, msg_id)
        self.assertLess(time.monotonic() - t0, 12, "the live destination waited for the hanging one")
        self.assertLessEqual(len(hanging.posts), 2)
        self.assertEqual(self.wait_metric(m, "mta_events_backlog", 0, destination="live"), 0)
        self.assertGreaterEqual(metric_value(m.metrics(), "mta_events_backlog", destination="hanging"), 18)
        # SIGTERM does not wait for the hanging POSTs.
        t1 = time.monotonic()
        self.assertEqual(m.stop(), 0)
        self.assertLess(time.monotonic() - t1, 8)

    def test_batches_of_events_as_json_arrays(self):
        sink = self.sink()
        r = self.receiver(script=lambda n, body: ("sleep", 0.3, 200))
        m = self.mta(self.config(sink, [destination("hooks", r.url, batch=10, max_in_flight=1)]))
        ids = [self.submit(m, [f"b{i}@example.test"]) for i in range(10)]
        for msg_id in ids:
            self.assertEqual(len(r.wait_for(of(msg_id), n=2, timeout=30)), 2)
        self.assertSignedEvents(r)
        arrays = [p for p in r.posts if p.body.startswith(b"[")]
        self.assertEqual(len(arrays), len(r.posts), "batch > 1: every POST is an array")
        self.assertGreater(max(len(p.json()) for p in r.posts), 1, "no POST carried more than one event")
        for p in r.posts:
            self.assertLessEqual(len(p.json()), 10)
            self.assertEqual(p.event_ids, [e["mta"]["eventId"] for e in p.json()])

    def test_sighup_adds_a_destination(self):
        sink = self.sink()
        r = self.receiver()
        m = self.mta(delivery_config(routes=[route("*", f"127.0.0.1:{sink.port}")]))
        cfg = m.config
        before = self.submit(m, ["x@example.test"])
        self.assertDelivered(sink, 1)
        # Without destinations, events stay in the outbox (for `events tail`).
        self.assertEqual(len([e for e in events(m) if e["mail"]["messageId"] == before]), 2)
        cfg["event_destinations"] = [destination("hooks", r.url)]
        cfg["configuration_sets"][0]["event_destinations"] = ["hooks"]
        with open(m.config_path, "w") as f:
            f.write(to_yaml(cfg))
        os.kill(m.pid, signal.SIGHUP)
        time.sleep(1.0)
        after = self.submit(m, ["y@example.test"])
        self.assertEqual(len(r.wait_for(of(after), n=2)), 2)
        self.assertEqual(r.wait_for(of(before), timeout=1), [], "events of before the reload published")

    def test_https_certificates_are_verified(self):
        # A self-signed certificate: the TLS handshake fails, nothing is
        # delivered, and the events end as dead letters saying why.
        cert = make_cert(self.tmpdir())
        sink = self.sink()
        r = self.receiver(tls=cert)
        m = self.mta(self.config(sink, [destination("tls", r.url, retry_window="2s")]))
        msg_id = self.submit(m, ["t@example.test"])
        self.assertDelivered(sink, 1)
        deadline = time.monotonic() + 30
        dead = []
        while time.monotonic() < deadline and len(dead) < 2:
            rc, out, err = self.cli(m, "dead", "--json")
            dead = [json.loads(l) for l in out.splitlines() if l.strip()]
            time.sleep(0.3)
        self.assertEqual(sorted(d["event_type"] for d in dead), ["Delivery", "Send"])
        self.assertTrue(all(d["message_id"] == msg_id for d in dead))
        self.assertRegex(dead[0]["last_error"], r"(?i)certificate")
        self.assertEqual([p for p in r.posts], [], "a POST got through an unverified certificate")
        self.assertGreaterEqual(metric_value(m.metrics(), "mta_events_failed_total", destination="tls"), 1)

    def test_bad_destination_config_is_refused(self):
        cfg = delivery_config(routes=[])
        cfg["event_destinations"] = [destination("hooks", "ftp://127.0.0.1/x")]
        path = os.path.join(self.tmpdir(), "bad.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(dict(cfg, spool_dir="/tmp/unused-spool")))
        rc, err = check_config(path)
        self.assertEqual(rc, 2)
        self.assertRegex(err, r"bad\.yaml:\d+:\d+: event_destinations\[0\]\.webhook\.url: "
                              r"expected an http:// or https:// URL")
        cfg["event_destinations"] = [destination("hooks", "http://127.0.0.1:9/x")]
        cfg["configuration_sets"][0]["event_destinations"] = ["hook"]
        with open(path, "w") as f:
            f.write(to_yaml(dict(cfg, spool_dir="/tmp/unused-spool")))
        rc, err = check_config(path)
        self.assertEqual(rc, 2)
        self.assertRegex(err, r"bad\.yaml:\d+:\d+: configuration_sets\[0\]\.event_destinations\[0\]: "
                              r"no event destination named \"hook\"")

    def tmpdir(self):
        import tempfile
        import shutil
        d = tempfile.mkdtemp(prefix="mta-e2e-webhooks-")
        self.addCleanup(shutil.rmtree, d, True)
        return d


if __name__ == "__main__":
    unittest.main()
