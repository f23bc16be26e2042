"""The tracking listener (tracking.listen) against the real binary: click
redirects to the exact signed URL, the 43-byte pixel, HEAD without events,
tampered / wrong-kind tokens answered 404 without Location (and counted),
secret rotation over SIGHUP, one-click unsubscribe (GET shows a page and
changes nothing, POST suppresses for the set and publishes one Subscription
event), Open/Click events with the right recipient on a webhook, and the
machine-traffic verdicts (GoogleImageProxy, a click one second after
sending, HEAD-then-GET, Apple's range through X-Forwarded-For).

Tokens are minted with `mta tracking token` (the same sign() the delivery
side uses).

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_tracking_server.py
"""

import http.client
import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import events, wait_events  # noqa: E402
from mtatest import (E2ETestCase, base_config, free_port, make_message,  # noqa: E402
                     require_binary, run_cli, to_yaml)
from webhooktest import Receiver  # noqa: E402

SECRET = "tracking-secret-0123456789"
OLD_SECRET = "tracking-secret-previous-01"
CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")
GOOGLE_PROXY = ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
                "(via ggpht.com GoogleImageProxy)")
HOUR_MS = 3600 * 1000


def setUpModule():
    require_binary()


def now_ms():
    return int(time.time() * 1000)


def tracking_config(secret=SECRET, previous=None, hook=None):
    cfg = base_config()
    port = free_port()
    cfg["tracking"] = {"listen": f"127.0.0.1:{port}", "base_url": f"http://127.0.0.1:{port}",
                       "secret": secret}
    if previous:
        cfg["tracking"]["previous_secrets"] = list(previous)
    for s in cfg["configuration_sets"]:
        if s["name"] == "transactional":
            s["tracking"] = {"opens": True, "clicks": True}
    if hook is not None:
        cfg["event_destinations"] = [{"name": "hook", "events": ["open", "click", "subscription"],
                                      "webhook": {"url": hook.url, "secret": hook.secret}}]
        for s in cfg["configuration_sets"]:
            if s["name"] == "transactional":
                s["event_destinations"] = ["hook"]
    return cfg


class TrackingServer(E2ETestCase):
    def start_mta(self, **kw):
        self.m = self.mta(tracking_config(**kw))
        self.port = int(self.m.config["tracking"]["listen"].rsplit(":", 1)[1])
        self.wait_listening()
        return self.m

    def wait_listening(self, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.fail(f"tracking listener not up:\n{self.m.log_tail(20)}")
            time.sleep(0.1)

    def request(self, method, path, headers=None, body=None):
        """(status, headers dict (lowercase names), body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def token(self, kind="click", rcpt="alice@example.test", msg_id=None, **kw):
        args = ["tracking", "token", "--config", self.m.config_path, "--kind", kind,
                "--recipient", rcpt]
        if msg_id:
            args += ["--message-id", msg_id]
        for k, v in kw.items():
            args += ["--" + k.replace("_", "-"), str(v)]
        p = run_cli(*args)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        t = p.stdout.decode().strip()
        self.assertRegex(t, r"^[A-Za-z0-9_-]+$")
        return t

    def invalid_count(self):
        return self.m.metric("mta_tracking_invalid_tokens_total") or 0

    def sighup(self, cfg):
        with open(self.m.config_path, "w") as f:
            f.write(to_yaml(cfg))
        before = self.m.log().count("mta=reloaded")
        os.kill(self.m.pid, signal.SIGHUP)
        deadline = time.time() + 10
        while self.m.log().count("mta=reloaded") == before:
            if time.time() > deadline or "mta=reload_failed" in self.m.log():
                self.fail(f"no reload:\n{self.m.log_tail(20)}")
            time.sleep(0.1)

    def of_type(self, etype, rcpt=None):
        return lambda e: e.get("eventType") == etype and (
            rcpt is None or e.get("mail", {}).get("destination") == [rcpt])

    # -- clicks and opens ------------------------------------------------------

    def test_click_redirects_to_the_exact_url_and_records_a_click(self):
        m = self.start_mta()
        # A real message, so the event's mail object comes from its record
        # (kept for every message while tracking is configured). Its set has
        # no tracking of its own: the listener serves any signed token.
        r = m.send(make_message(subject="winter sale", to="alice@example.test",
                                headers=[("X-SES-CONFIGURATION-SET", "bulk"),
                                         ("X-SES-MESSAGE-TAGS", "campaign=winter")]),
                   rcpts=("alice@example.test", "bob@example.test"))
        msg_id = self.assertAccepted(r)
        url = "https://shop.example.com/a/b;p?x=1&y=%20two&z=a+b&amp=&#frag"
        t = self.token(url=url, msg_id=msg_id, configuration_set="bulk",
                       link_index=3, link_tags="campaign:winter;variant:b",
                       sent_ms=now_ms() - HOUR_MS)
        status, h, body = self.request("GET", f"/c/{t}", {"User-Agent": CHROME})
        self.assertEqual(status, 302)
        self.assertEqual(h["location"], url)
        self.assertEqual(h["cache-control"], "no-store")
        self.assertEqual(body, b"")

        ev, = wait_events(m, self.of_type("Click"))
        self.assertEqual(ev["mail"]["messageId"], msg_id)
        self.assertEqual(ev["mail"]["destination"], ["alice@example.test"])
        self.assertEqual(ev["mail"]["commonHeaders"]["subject"], "winter sale")
        self.assertEqual(ev["mail"]["tags"]["ses:configuration-set"], ["bulk"])
        self.assertEqual(ev["mail"]["tags"]["campaign"], ["winter"])
        self.assertEqual(ev["mail"]["source"], "sender@src.test")
        c = ev["click"]
        self.assertEqual(c["link"], url)
        self.assertEqual(c["linkTags"], {"campaign": ["winter"], "variant": ["b"]})
        self.assertEqual(c["ipAddress"], "127.0.0.1")
        self.assertEqual(c["userAgent"], CHROME)
        self.assertRegex(c["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(ev["mta"]["machine"], False)
        self.assertNotIn("machineReason", ev["mta"])
        self.assertEqual(ev["mta"]["linkIndex"], 3)
        self.assertEqual(ev["mta"]["recipient"], "alice@example.test")
        self.assertEqual(m.metric("mta_tracking_clicks_total", configuration_set="bulk",
                                  machine="false"), 1)

    def test_pixel_is_a_43_byte_gif_and_records_an_open(self):
        m = self.start_mta()
        t = self.token(kind="open", rcpt="carol@example.test", configuration_set="transactional",
                       sent_ms=now_ms() - HOUR_MS)
        status, h, body = self.request("GET", f"/o/{t}.gif", {"User-Agent": CHROME})
        self.assertEqual(status, 200)
        self.assertEqual(h["content-type"], "image/gif")
        self.assertEqual(len(body), 43)
        self.assertTrue(body.startswith(b"GIF89a\x01\x00\x01\x00"))
        self.assertTrue(body.endswith(b";"))
        self.assertEqual(h["cache-control"], "no-cache, no-store, must-revalidate")
        self.assertEqual(h["pragma"], "no-cache")
        self.assertIn("expires", h)
        ev, = wait_events(m, self.of_type("Open"))
        self.assertEqual(ev["mail"]["destination"], ["carol@example.test"])
        # No record for this id (the token's fresh id): the event still has
        # what the token carries.
        self.assertEqual(ev["mail"]["tags"]["ses:configuration-set"], ["transactional"])
        o = ev["open"]
        self.assertEqual(o["ipAddress"], "127.0.0.1")
        self.assertEqual(o["userAgent"], CHROME)
        self.assertEqual(ev["mta"]["machine"], False)
        # Without the .gif suffix, or with a click token: not found.
        self.assertEqual(self.request("GET", f"/o/{t}")[0], 404)

    def test_head_answers_without_an_event_and_flags_the_get_after_it(self):
        m = self.start_mta()
        url = "https://example.com/landing?a=1&b=2"
        t = self.token(url=url, sent_ms=now_ms() - HOUR_MS)
        status, h, body = self.request("HEAD", f"/c/{t}", {"User-Agent": CHROME})
        self.assertEqual((status, h["location"], body), (302, url, b""))
        o = self.token(kind="open", sent_ms=now_ms() - HOUR_MS)
        status, h, body = self.request("HEAD", f"/o/{o}.gif", {"User-Agent": CHROME})
        self.assertEqual((status, h["content-type"], h["content-length"], body),
                         (200, "image/gif", "43", b""))
        time.sleep(0.5)
        self.assertEqual([e for e in events(m) if e["eventType"] in ("Open", "Click")], [])
        # The GET that follows the HEAD is a scanner's.
        self.assertEqual(self.request("GET", f"/c/{t}", {"User-Agent": CHROME})[0], 302)
        ev, = wait_events(m, self.of_type("Click"))
        self.assertEqual(ev["mta"]["machine"], True)
        self.assertEqual(ev["mta"]["machineReason"], "head-then-get")

    def test_bad_tokens_get_404_without_location_and_are_counted(self):
        m = self.start_mta()
        click = self.token(url="https://example.com/", sent_ms=now_ms() - HOUR_MS)
        opent = self.token(kind="open")
        unsub = self.token(kind="unsubscribe")
        mid = len(click) // 2
        tampered = click[:mid] + ("A" if click[mid] != "A" else "B") + click[mid + 1:]
        bad = [
            f"/c/{tampered}",
            f"/c/{click[:-1]}",
            f"/c/{click}A",
            f"/c/{opent}",           # an open token on the click path
            f"/o/{click}.gif",       # a click token on the pixel path
            f"/c/{unsub}",
            "/c/not-a-token",
            "/c/" + "A" * 4000,
            "/c/%41%42",
        ]
        before = self.invalid_count()
        for path in bad:
            status, h, body = self.request("GET", path)
            self.assertEqual(status, 404, path)
            self.assertNotIn("location", h, path)
        self.assertEqual(self.invalid_count() - before, len(bad))
        # Not a tracking path at all: 404, not counted as a token.
        for path in ("/", "/c/", "/x/abc", "/c", "/healthz/x"):
            self.assertEqual(self.request("GET", path)[0], 404, path)
        self.assertEqual(self.invalid_count() - before, len(bad))
        # Other methods: 405.
        status, h, _ = self.request("POST", f"/c/{click}", body=b"x")
        self.assertEqual(status, 405)
        self.assertNotIn("location", h)
        self.assertEqual(self.request("DELETE", f"/o/{opent}.gif")[0], 405)
        self.assertEqual(self.request("PUT", f"/u/{unsub}", body=b"")[0], 405)
        self.assertEqual(self.request("GET", "/healthz")[0], 200)
        time.sleep(0.3)
        self.assertEqual([e for e in events(m) if e["eventType"] in ("Open", "Click")], [])
        # The daemon is fine.
        self.assertEqual(self.request("GET", f"/c/{click}")[0], 302)

    def test_a_signed_url_can_neither_inject_headers_nor_leave_http(self):
        self.start_mta()
        # CR/LF are dropped (as browsers drop them from URLs): no header
        # injection through a link in a sender's HTML.
        t = self.token(url="https://example.com/a\r\nSet-Cookie: evil=1\r\n\r\nx",
                       sent_ms=now_ms() - HOUR_MS)
        status, h, body = self.request("GET", f"/c/{t}")
        self.assertEqual(status, 302)
        self.assertEqual(h["location"], "https://example.com/aSet-Cookie: evil=1x")
        self.assertNotIn("set-cookie", h)
        self.assertEqual(body, b"")
        # Only http and https are redirected to.
        before = self.invalid_count()
        for url in ("javascript:alert(1)", "data:text/html,hi", "//evil.example/", "ftp://x/"):
            t = self.token(url=url)
            status, h, _ = self.request("GET", f"/c/{t}")
            self.assertEqual(status, 404, url)
            self.assertNotIn("location", h, url)
        self.assertEqual(self.invalid_count() - before, 4)
        self.assertEqual(self.request("GET", "/c/" + self.token(url="HTTPS://EXAMPLE.COM/"))[0],
                         302)

    def test_a_rotated_secret_still_verifies_and_a_dropped_one_does_not(self):
        m = self.start_mta(secret=OLD_SECRET)
        url = "https://example.com/old?q=1"
        t = self.token(url=url)
        self.assertEqual(self.request("GET", f"/c/{t}")[0], 302)
        cfg = dict(m.config)
        cfg["tracking"] = dict(cfg["tracking"], secret=SECRET, previous_secrets=[OLD_SECRET])
        self.sighup(cfg)
        status, h, _ = self.request("GET", f"/c/{t}")
        self.assertEqual((status, h.get("location")), (302, url))
        new = self.token(url="https://example.com/new")
        self.assertEqual(self.request("GET", f"/c/{new}")[0], 302)
        cfg["tracking"] = dict(cfg["tracking"], secret=SECRET)
        cfg["tracking"].pop("previous_secrets")
        self.sighup(cfg)
        self.assertEqual(self.request("GET", f"/c/{t}")[0], 404)
        self.assertEqual(self.request("GET", f"/c/{new}")[0], 302)
        # `mta tracking decode` reads a token back.
        p = run_cli("tracking", "decode", "--config", m.config_path,
                    f"http://127.0.0.1:{self.port}/c/{new}")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["url"], "https://example.com/new")
        p = run_cli("tracking", "decode", "--config", m.config_path, t)
        self.assertEqual(p.returncode, 1)

    # -- machine traffic and webhooks -----------------------------------------

    def test_events_reach_the_webhook_with_machine_verdicts(self):
        hook = Receiver("whsec-tracking")
        hook.start()
        self.addCleanup(hook.stop)
        m = self.start_mta(hook=hook)
        set_ = {"configuration_set": "transactional"}
        long_ago = now_ms() - HOUR_MS
        o1 = self.token(kind="open", rcpt="gina@example.test", sent_ms=long_ago, **set_)
        o2 = self.token(kind="open", rcpt="hank@example.test", sent_ms=long_ago, **set_)
        o3 = self.token(kind="open", rcpt="ivy@example.test", sent_ms=long_ago, **set_)
        c1 = self.token(url="https://example.com/1", rcpt="gina@example.test",
                        sent_ms=now_ms() - 1000, **set_)
        c2 = self.token(url="https://example.com/2", rcpt="hank@example.test",
                        sent_ms=long_ago, **set_)
        self.assertEqual(self.request("GET", f"/o/{o1}.gif", {"User-Agent": GOOGLE_PROXY})[0], 200)
        self.assertEqual(self.request("GET", f"/o/{o2}.gif", {"User-Agent": CHROME})[0], 200)
        # Behind a reverse proxy on loopback: the client is X-Forwarded-For's
        # first address, here in Apple's range (Mail Privacy Protection).
        self.assertEqual(self.request("GET", f"/o/{o3}.gif",
                                      {"User-Agent": CHROME,
                                       "X-Forwarded-For": "17.58.10.1, 10.0.0.1"})[0], 200)
        self.assertEqual(self.request("GET", f"/c/{c1}", {"User-Agent": CHROME})[0], 302)
        self.assertEqual(self.request("GET", f"/c/{c2}", {"User-Agent": CHROME})[0], 302)

        got = hook.wait_for(lambda e: e["eventType"] in ("Open", "Click"), n=5)
        self.assertEqual(len(got), 5, hook.posts)
        by = {(e["eventType"], e["mail"]["destination"][0]): e for e in got}
        for e in got:
            self.assertTrue(e["_signed"])
            self.assertEqual(len(e["mail"]["destination"]), 1)
        gina_open = by[("Open", "gina@example.test")]
        self.assertEqual(gina_open["mta"]["machine"], True)
        self.assertEqual(gina_open["mta"]["machineReason"], "google-image-proxy")
        self.assertEqual(gina_open["open"]["userAgent"], GOOGLE_PROXY)
        self.assertEqual(by[("Open", "hank@example.test")]["mta"]["machine"], False)
        ivy = by[("Open", "ivy@example.test")]
        self.assertEqual(ivy["open"]["ipAddress"], "17.58.10.1")
        self.assertEqual(ivy["mta"]["machineReason"], "apple-mpp-ranges")
        fast = by[("Click", "gina@example.test")]
        self.assertEqual(fast["mta"]["machine"], True)
        self.assertEqual(fast["mta"]["machineReason"], "click-on-delivery")
        self.assertEqual(fast["click"]["link"], "https://example.com/1")
        human = by[("Click", "hank@example.test")]
        self.assertEqual(human["mta"]["machine"], False)

        metric = m.metric
        self.assertEqual(metric("mta_tracking_opens_total", configuration_set="transactional",
                                machine="true"), 2)
        self.assertEqual(metric("mta_tracking_opens_total", configuration_set="transactional",
                                machine="false"), 1)
        self.assertEqual(metric("mta_tracking_clicks_total", configuration_set="transactional",
                                machine="true"), 1)
        self.assertEqual(metric("mta_tracking_clicks_total", configuration_set="transactional",
                                machine="false"), 1)
        # A set the config does not know is labelled "other".
        t = self.token(kind="open", configuration_set="gone-set", sent_ms=long_ago)
        self.request("GET", f"/o/{t}.gif", {"User-Agent": CHROME})
        deadline = time.monotonic() + 5
        while (metric("mta_tracking_opens_total", configuration_set="other", machine="false")
               or 0) < 1:
            self.assertLess(time.monotonic(), deadline, "no series for configuration_set=other")
            time.sleep(0.1)
        self.assertNotIn('configuration_set="gone-set"', m.metrics())

    # -- one-click unsubscribe -------------------------------------------------

    def test_unsubscribe_get_shows_a_page_and_post_unsubscribes_once(self):
        hook = Receiver("whsec-tracking")
        hook.start()
        self.addCleanup(hook.stop)
        m = self.start_mta(hook=hook)
        rcpt = "Dave@Example.test"
        t = self.token(kind="unsubscribe", rcpt=rcpt, configuration_set="transactional")
        # GET: a page with a button that POSTs; nothing changes.
        status, h, body = self.request("GET", f"/u/{t}", {"User-Agent": CHROME})
        self.assertEqual(status, 200)
        self.assertTrue(h["content-type"].startswith("text/html"))
        page = body.decode()
        self.assertIn('<form method="post"', page)
        self.assertIn('name="List-Unsubscribe" value="One-Click"', page)
        self.assertIn("Dave@Example.test", page)
        self.assertEqual(self.request("HEAD", f"/u/{t}")[0], 200)
        time.sleep(0.5)
        self.assertEqual([e for e in events(m) if e["eventType"] == "Subscription"], [])
        self.assertEqual(hook.events(), [])

        # A POST without RFC 8058's body is refused.
        status, _, _ = self.request("POST", f"/u/{t}", body=b"",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 400)

        # RFC 8058 one-click, as a mailbox provider sends it.
        form = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "GoogleOneClick"}
        status, _, body = self.request("POST", f"/u/{t}", body=b"List-Unsubscribe=One-Click",
                                       headers=form)
        self.assertEqual(status, 200, body)
        self.assertIn(b"Unsubscribed", body)
        ev, = hook.wait_for(lambda e: e["eventType"] == "Subscription")
        self.assertTrue(ev["_signed"])
        s = ev["subscription"]
        self.assertEqual(s["source"], "UnsubscribeHeader")
        self.assertEqual(s["contactList"], "transactional")
        self.assertEqual(s["newTopicPreferences"], {"unsubscribeAll": True,
                                                    "topicSubscriptionStatus": []})
        self.assertEqual(s["oldTopicPreferences"]["unsubscribeAll"], False)
        self.assertEqual(ev["mail"]["destination"], [rcpt])
        self.assertEqual(ev["mta"]["scope"], "configuration_set")
        self.assertEqual(ev["mta"]["recipient"], rcpt)
        self.assertEqual(m.metric("mta_unsubscribes_total", configuration_set="transactional"), 1)

        # Again (the provider retries, the user clicks twice): 200, no event.
        status, _, _ = self.request("POST", f"/u/{t}", body=b"List-Unsubscribe=One-Click",
                                    headers=form)
        self.assertEqual(status, 200)
        # The page's own form posts the same field (multipart from some clients).
        mp = (b'--xx\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
              b'One-Click\r\n--xx--\r\n')
        status, _, _ = self.request("POST", f"/u/{t}", body=mp,
                                    headers={"Content-Type": "multipart/form-data; boundary=xx"})
        self.assertEqual(status, 200)
        time.sleep(0.5)
        self.assertEqual(len([e for e in hook.events() if e["eventType"] == "Subscription"]), 1)
        self.assertEqual(m.metric("mta_unsubscribes_total", configuration_set="transactional"), 1)

        # The unsubscribe is scoped to the set, not global: not on the
        # suppression list, and mail of this set to that address is not sent.
        p = run_cli("suppression", "list", "--config", m.config_path, "--json")
        self.assertEqual(p.stdout.strip(), b"")
        r = m.send(make_message(to="dave@example.test",
                                headers=[("X-SES-CONFIGURATION-SET", "transactional")]),
                   rcpts=("dave@example.test",))
        again = self.assertAccepted(r)
        bounce, = wait_events(m, lambda e: e["eventType"] == "Bounce"
                              and e["mail"]["messageId"] == again)
        self.assertEqual(bounce["bounce"]["bounceSubType"], "Suppressed")

    def test_unsubscribe_from_a_contact_list_topic(self):
        m = self.start_mta()
        t = self.token(kind="unsubscribe", rcpt="erin@example.test",
                       configuration_set="transactional", list="newsletter", topic="weekly")
        status, _, body = self.request("POST", f"/u/{t}", body=b"List-Unsubscribe=One-Click",
                                       headers={"Content-Type":
                                                "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, body)
        ev, = wait_events(m, self.of_type("Subscription"))
        s = ev["subscription"]
        self.assertEqual(s["contactList"], "newsletter")
        self.assertEqual(s["newTopicPreferences"],
                         {"unsubscribeAll": False,
                          "topicSubscriptionStatus": [{"topicName": "weekly",
                                                       "subscriptionStatus": "OptOut"}]})
        self.assertEqual(s["oldTopicPreferences"]["topicSubscriptionStatus"],
                         [{"topicName": "weekly", "subscriptionStatus": "OptIn"}])
        self.assertEqual(ev["mta"]["scope"], "contact_list")
        # An unsubscribe token is not a click or an open.
        self.assertEqual(self.request("GET", f"/c/{t}")[0], 404)

    # -- configuration ----------------------------------------------------------

    def test_a_bad_local_rules_file_is_a_config_error(self):
        cfg = tracking_config()
        m = self.mta(cfg, start=False)
        rules = os.path.join(m.dir, "local-rules.yaml")
        with open(rules, "w") as f:
            f.write("rules:\n  - id: mine\n    kind: sometimes\n")
        cfg = dict(m.config)
        cfg["tracking"] = dict(cfg["tracking"], local_machine_rules_file=rules)
        with open(m.config_path, "w") as f:
            f.write(to_yaml(cfg))
        p = run_cli("check-config", "--config", m.config_path)
        self.assertEqual(p.returncode, 2, p.stdout)
        self.assertIn(f"{rules}:3:11: rule \"mine\": kind: expected open, click or any",
                      p.stderr.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
