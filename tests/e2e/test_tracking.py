"""Open and click tracking and one-click unsubscribe, end to end: messages
submitted over SMTP (and HTTP) to sets with tracking / list_unsubscribe,
delivered to a recording sink; the delivered copies are parsed like a mail
client would (Python's email package), their links fetched from the
daemon's tracking listener with urllib, and the events read back.

Checks: HTML links rewritten per recipient (different tokens, one
transaction each), the pixel, QP and base64 HTML parts re-encoded, the text
part and ses:no-track / mailto links untouched, the redirect goes to the
exact original URL (&amp; decoded), the pixel is the 43-byte GIF, Open and
Click events name the right recipient, a tampered token is a 404 without a
Location, a GoogleImageProxy open is flagged machine; sets without tracking
are not touched (one transaction for two recipients); List-Unsubscribe
headers, GET shows a page without unsubscribing, POST unsubscribes from that
list and topic only (Subscription event; mail for another topic still
arrives), and SES's ListManagementOptions over HTTP.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_tracking.py
"""

import email
import email.policy
import json
import os
import re
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import (DeliveryTestCase, delivery_config, ev_type, events,  # noqa: E402
                     route, wait_events)
from mtatest import free_port, require_binary  # noqa: E402

SECRET = "tracking-secret-0123456789"
BROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/130.0 Safari/537.36")


def setUpModule():
    require_binary()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


_opener = urllib.request.build_opener(NoRedirect)


def fetch(url, method="GET", ua=BROWSER, data=None, headers=None):
    """(status, headers, body) without following redirects."""
    h = {"User-Agent": ua}
    h.update(headers or {})
    req = urllib.request.Request(url, method=method, data=data, headers=h)
    try:
        with _opener.open(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def html_message(html, to, *, encoding="quoted-printable", headers=(), text="Plain text part.\n"):
    """multipart/alternative (text + HTML) built by Python's email package
    with the given transfer encoding for the HTML part."""
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText
    import email.charset
    m = MIMEMultipart("alternative")
    m["From"] = "News <news@src.test>"
    m["To"] = to
    m["Subject"] = "tracked"
    for k, v in headers:
        m[k] = v
    m.attach(MIMEText(text, "plain", "utf-8"))
    cs = email.charset.Charset("utf-8")
    cs.body_encoding = email.charset.QP if encoding == "quoted-printable" else email.charset.BASE64
    m.attach(MIMEText(html, "html", cs))
    return m.as_bytes(policy=email.policy.SMTP)


def parts(raw):
    """{content type: decoded text} of the delivered message's leaf parts,
    plus the parsed message."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = {}
    for p in msg.walk():
        if p.is_multipart():
            continue
        out[p.get_content_type()] = p.get_payload(decode=True).decode("utf-8")
    return out, msg


HTML = ("<html><body><p>Hi!</p>\n"
        "<a href=\"https://shop.example/p?a=1&amp;b=2\">shop</a>\n"
        "<a href='mailto:help@src.test'>mail us</a>\n"
        "<a ses:no-track href=\"https://keep.example/x\">keep</a>\n"
        "<a ses:tags=\"campaign:nov;slot:hero\" href=\"https://tagged.example/"
        + "long" * 40 + "\">long link</a>\n"
        "</body></html>\n")


class Tracking(DeliveryTestCase):
    def setUp(self):
        self.sink_ = self.sink()
        self.tport = free_port()
        self.base = f"http://127.0.0.1:{self.tport}"
        cfg = delivery_config(routes=[route("example.test", f"127.0.0.1:{self.sink_.port}")])
        cfg["tracking"] = {"listen": f"127.0.0.1:{self.tport}", "base_url": self.base + "/",
                           "secret": SECRET}
        for s in cfg["configuration_sets"]:
            if s["name"] == "transactional":
                s["tracking"] = {"opens": True, "clicks": True}
            if s["name"] == "bulk":
                s["list_unsubscribe"] = {"enabled": True, "mailto": "unsub@src.test"}
        self.m = self.mta(cfg)

    def deliver(self, raw, rcpts, set_name="transactional", transactions=None):
        raw = b"X-SES-CONFIGURATION-SET: " + set_name.encode() + b"\r\n" + raw
        msg_id = self.submit(self.m, rcpts, data=raw, mail_from="bounce@src.test")
        got = self.assertDelivered(self.sink_, transactions or len(rcpts),
                                   pred=lambda t: t.message_id == msg_id)
        return msg_id, got

    def links(self, html):
        return re.findall(r'href="([^"]*)"', html)

    def test_links_and_pixel_per_recipient_then_redirect_open_and_click(self):
        raw = html_message(HTML, "a@example.test")
        msg_id, txs = self.deliver(raw, ["alice@example.test", "bob@example.test"])
        # One transaction per recipient: their bodies differ.
        self.assertEqual(sorted(t.rcpts[0] for t in txs), ["alice@example.test", "bob@example.test"])
        self.assertTrue(all(len(t.rcpts) == 1 for t in txs))
        copies = {}
        for t in txs:
            p, msg = parts(t.data)
            self.assertEqual(p["text/plain"], "Plain text part.\n")
            self.assertEqual(msg.get_payload()[1]["Content-Transfer-Encoding"], "quoted-printable")
            for line in t.data.split(b"\r\n"):
                self.assertLessEqual(len(line), 78, line)
            copies[t.rcpts[0]] = p["text/html"]
        clicks = {}
        for rcpt, html in copies.items():
            hrefs = self.links(html)
            self.assertIn("mailto:help@src.test", html)
            self.assertIn('href="https://keep.example/x"', html)
            self.assertNotIn("ses:no-track", html)
            self.assertNotIn("ses:tags", html)
            tracked = [h for h in hrefs if h.startswith(self.base + "/c/")]
            self.assertEqual(len(tracked), 2, html)
            self.assertNotIn("shop.example", html)
            pixel = re.findall(r'<img[^>]+src="(' + re.escape(self.base) + r'/o/[^"]+\.gif)"', html)
            self.assertEqual(len(pixel), 1, html)
            self.assertLess(html.index(pixel[0]), html.lower().index("</body>"))
            clicks[rcpt] = (tracked, pixel[0])
        self.assertNotEqual(clicks["alice@example.test"], clicks["bob@example.test"])

        # The redirect goes to the exact URL a browser would have opened.
        (shop, tagged), pixel = clicks["alice@example.test"]
        status, h, _ = fetch(shop)
        self.assertEqual(status, 302)
        self.assertEqual(h["Location"], "https://shop.example/p?a=1&b=2")
        self.assertIn("no-store", h["Cache-Control"])
        status, h, _ = fetch(tagged)
        self.assertEqual(h["Location"], "https://tagged.example/" + "long" * 40)
        # HEAD answers the same, records nothing.
        status, h, body = fetch(clicks["bob@example.test"][0][0], method="HEAD")
        self.assertEqual((status, h["Location"], body), (302, "https://shop.example/p?a=1&b=2", b""))
        status, h, gif = fetch(pixel)
        self.assertEqual(status, 200)
        self.assertEqual(h["Content-Type"], "image/gif")
        self.assertEqual(len(gif), 43)
        self.assertTrue(gif.startswith(b"GIF89a"))

        clicks_ev = wait_events(self.m, ev_type(msg_id, "Click"), n=2)
        self.assertEqual(len(clicks_ev), 2, [e["eventType"] for e in events(self.m)])
        by_link = {e["click"]["link"]: e for e in clicks_ev}
        ev = by_link["https://shop.example/p?a=1&b=2"]
        self.assertEqual(ev["mail"]["destination"], ["alice@example.test"])
        self.assertEqual(ev["click"]["userAgent"], BROWSER)
        self.assertEqual(ev["click"]["ipAddress"], "127.0.0.1")
        self.assertEqual(ev["mail"]["tags"]["ses:configuration-set"], ["transactional"])
        tagged_ev = by_link["https://tagged.example/" + "long" * 40]
        self.assertEqual(tagged_ev["click"]["linkTags"], {"campaign": ["nov"], "slot": ["hero"]})
        opens = wait_events(self.m, ev_type(msg_id, "Open"))
        self.assertEqual(len(opens), 1)
        self.assertEqual(opens[0]["mail"]["destination"], ["alice@example.test"])
        self.assertEqual(opens[0]["open"]["userAgent"], BROWSER)
        # HEAD recorded nothing for bob.
        self.assertEqual([e for e in events(self.m) if e["eventType"] in ("Open", "Click")
                          and e["mail"]["destination"] == ["bob@example.test"]], [])
        self.assertEqual(self.m.metric("mta_tracking_clicks_total", configuration_set="transactional",
                                       machine="true")
                         + self.m.metric("mta_tracking_clicks_total", configuration_set="transactional",
                                         machine="false"), 2)

    def test_base64_html_is_re_encoded_and_tampered_tokens_are_404(self):
        raw = html_message(HTML, "a@example.test", encoding="base64")
        msg_id, (t,) = self.deliver(raw, ["carol@example.test"])
        p, msg = parts(t.data)
        self.assertEqual(msg.get_payload()[1]["Content-Transfer-Encoding"], "base64")
        for line in t.body().split(b"\r\n"):
            self.assertLessEqual(len(line), 76)
        shop = [h for h in self.links(p["text/html"]) if h.startswith(self.base + "/c/")][0]
        token = shop.rsplit("/", 1)[1]
        for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"),
                    token[:10] + ("x" if token[10] != "x" else "y") + token[11:],
                    token[:-5], "not-a-token", "A" * 5000):
            status, h, _ = fetch(f"{self.base}/c/{bad}")
            self.assertEqual(status, 404, bad)
            self.assertIsNone(h.get("Location"))
        # A click token is not a pixel token and the reverse.
        status, _, _ = fetch(f"{self.base}/o/{token}.gif")
        self.assertEqual(status, 404)
        self.assertGreaterEqual(self.m.metric("mta_tracking_invalid_tokens_total"), 6)
        status, _, _ = fetch(f"{self.base}/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(fetch(f"{self.base}/elsewhere")[0], 404)
        time.sleep(0.5)
        self.assertEqual([e for e in events(self.m)
                          if e["eventType"] in ("Open", "Click")], [])

    def test_image_proxy_open_is_flagged_machine(self):
        raw = html_message(HTML, "a@example.test")
        msg_id, (t,) = self.deliver(raw, ["dave@example.test"])
        p, _ = parts(t.data)
        pixel = re.findall(r'src="(' + re.escape(self.base) + r'/o/[^"]+)"', p["text/html"])[0]
        ua = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
        self.assertEqual(fetch(pixel, ua=ua)[0], 200)
        ev, = wait_events(self.m, ev_type(msg_id, "Open"))
        self.assertIs(ev["mta"]["machine"], True)
        self.assertEqual(ev["mta"]["machineReason"], "google-image-proxy")
        # Apple Mail Privacy Protection prefetches with a bare "Mozilla/5.0".
        self.assertEqual(fetch(pixel, ua="Mozilla/5.0")[0], 200)
        # A person in a browser-based mail client, later on, is not flagged.
        self.assertEqual(fetch(pixel)[0], 200)
        evs = wait_events(self.m, ev_type(msg_id, "Open"), n=3)
        by_ua = {e["open"]["userAgent"]: e["mta"] for e in evs}
        self.assertEqual(by_ua["Mozilla/5.0"]["machine"], True)
        self.assertEqual(by_ua["Mozilla/5.0"]["machineReason"], "apple-mpp")
        self.assertEqual(by_ua[BROWSER]["machine"], False)
        self.assertNotIn("machineReason", by_ua[BROWSER])
        self.assertEqual(self.m.metric("mta_tracking_opens_total", configuration_set="transactional",
                                       machine="true"), 2)
        self.assertEqual(self.m.metric("mta_tracking_opens_total", configuration_set="transactional",
                                       machine="false"), 1)

    def test_sets_without_tracking_are_left_alone(self):
        raw = html_message(HTML, "a@example.test")
        msg_id, txs = self.deliver(raw, ["erin@example.test", "frank@example.test"], "default",
                                   transactions=1)
        time.sleep(0.5)
        txs = [t for t in self.sink_.transactions if t.message_id == msg_id]
        # One transaction for both: nothing differs per recipient.
        self.assertEqual(len(txs), 1)
        self.assertEqual(sorted(txs[0].rcpts), ["erin@example.test", "frank@example.test"])
        sent = raw.split(b"\r\n\r\n", 1)[1]
        self.assertEqual(txs[0].body(), sent)
        self.assertIsNone(txs[0].header("List-Unsubscribe"))

    def test_one_click_unsubscribe_is_scoped_to_the_list_and_topic(self):
        def send(rcpt, topic):
            raw = html_message("<html><body>deal</body></html>", rcpt, headers=[
                ("X-SES-LIST-MANAGEMENT-OPTIONS", f"news; topic={topic}")])
            raw = b"X-SES-CONFIGURATION-SET: bulk\r\n" + raw
            return self.submit(self.m, [rcpt], data=raw)

        msg_id = send("gina@example.test", "deals")
        t, = self.assertDelivered(self.sink_, 1, pred=lambda t: t.message_id == msg_id)
        lu = t.header("List-Unsubscribe")
        self.assertRegex(lu, r"^<" + re.escape(self.base) + r"/u/[A-Za-z0-9_-]+>, "
                         r"<mailto:unsub@src\.test\?subject=unsubscribe>$")
        self.assertEqual(t.header("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click")
        self.assertIsNone(t.header("X-SES-LIST-MANAGEMENT-OPTIONS"))
        url = re.match(r"<([^>]+)>", lu).group(1)

        # GET (what a link scanner does) shows a page and changes nothing.
        status, h, page = fetch(url)
        self.assertEqual(status, 200)
        self.assertIn(b"<form", page.lower())
        time.sleep(0.3)
        self.assertEqual(wait_events(self.m, ev_type(msg_id, "Subscription"), timeout=0.5), [])
        # A tampered token unsubscribes nobody.
        self.assertEqual(fetch(url[:-2] + ("AA" if not url.endswith("AA") else "BB"),
                               method="POST", data=b"List-Unsubscribe=One-Click")[0], 404)
        # The RFC 8058 POST does.
        status, _, _ = fetch(url, method="POST", data=b"List-Unsubscribe=One-Click",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200)
        ev, = wait_events(self.m, ev_type(msg_id, "Subscription"))
        sub = ev["subscription"]
        self.assertEqual(sub["contactList"], "news")
        self.assertEqual(sub["source"], "UnsubscribeHeader")
        self.assertEqual(sub["newTopicPreferences"]["topicSubscriptionStatus"],
                         [{"topicName": "deals", "subscriptionStatus": "OptOut"}])
        self.assertEqual(ev["mail"]["destination"], ["gina@example.test"])
        # Twice is once.
        self.assertEqual(fetch(url, method="POST", data=b"List-Unsubscribe=One-Click")[0], 200)
        time.sleep(0.5)
        self.assertEqual(len(wait_events(self.m, ev_type(msg_id, "Subscription"))), 1)

        # The same list and topic: not sent (Bounce, Suppressed).
        again = send("gina@example.test", "deals")
        b, = wait_events(self.m, ev_type(again, "Bounce"))
        self.assertEqual(b["bounce"]["bounceSubType"], "Suppressed")
        # Another topic of the list, and another list, still arrive.
        other = send("gina@example.test", "weekly")
        self.assertDelivered(self.sink_, 1, pred=lambda t: t.message_id == other)
        raw = b"X-SES-CONFIGURATION-SET: bulk\r\n" + html_message(
            "<p>x</p>", "gina@example.test",
            headers=[("X-SES-LIST-MANAGEMENT-OPTIONS", "offers; topic=deals")])
        other_list = self.submit(self.m, ["gina@example.test"], data=raw)
        self.assertDelivered(self.sink_, 1, pred=lambda t: t.message_id == other_list)
        self.assertEqual([t for t in self.sink_.transactions if t.message_id == again], [])

    def test_set_level_unsubscribe_stops_only_that_set(self):
        raw = b"X-SES-CONFIGURATION-SET: bulk\r\n" + html_message("<p>x</p>", "h@example.test")
        msg_id = self.submit(self.m, ["hank@example.test"], data=raw)
        t, = self.assertDelivered(self.sink_, 1, pred=lambda t: t.message_id == msg_id)
        url = re.match(r"<([^>]+)>", t.header("List-Unsubscribe")).group(1)
        self.assertEqual(fetch(url, method="POST", data=b"List-Unsubscribe=One-Click")[0], 200)
        ev, = wait_events(self.m, ev_type(msg_id, "Subscription"))
        again = self.submit(self.m, ["hank@example.test"], data=raw)
        b, = wait_events(self.m, ev_type(again, "Bounce"))
        self.assertEqual(b["bounce"]["bounceSubType"], "Suppressed")
        # Another set still reaches hank.
        other = self.submit(self.m, ["hank@example.test"],
                            data=b"X-SES-CONFIGURATION-SET: default\r\n" + raw.split(b"\r\n", 1)[1])
        self.assertDelivered(self.sink_, 1, pred=lambda t: t.message_id == other)

    def test_malformed_list_options_are_refused(self):
        raw = html_message("<p>x</p>", "i@example.test",
                           headers=[("X-SES-LIST-MANAGEMENT-OPTIONS", "bad list; topic")])
        r = self.m.send(raw, rcpts=["ivy@example.test"])
        self.assertReply(r, 554, "5.6.0")
        self.assertIn("X-SES-LIST-MANAGEMENT-OPTIONS", r.text)


class TrackingHttpApi(DeliveryTestCase):
    def test_list_management_options_over_http(self):
        sink = self.sink()
        tport = free_port()
        hport = free_port()
        cfg = delivery_config(routes=[route("example.test", f"127.0.0.1:{sink.port}")])
        cfg["tracking"] = {"listen": f"127.0.0.1:{tport}", "base_url": f"http://127.0.0.1:{tport}",
                           "secret": SECRET}
        cfg["http"] = {"listen": f"127.0.0.1:{hport}",
                       "api_keys": [{"id": "AKID", "secret": "api-secret"}]}
        m = self.mta(cfg)

        def post(body):
            req = urllib.request.Request(
                f"http://127.0.0.1:{hport}/v2/email/outbound-emails", data=json.dumps(body).encode(),
                headers={"Authorization": "Bearer api-secret", "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read() or b"{}")

        base = {"FromEmailAddress": "news@src.test",
                "Destination": {"ToAddresses": ["jo@example.test"]},
                "Content": {"Simple": {"Subject": {"Data": "hi"},
                                       "Body": {"Html": {"Data": "<p>hi</p>"}}}}}
        status, r = post(dict(base, ListManagementOptions={"ContactListName": "news",
                                                             "TopicName": "deals"}))
        self.assertEqual(status, 200, r)
        t, = self.assertDelivered(sink, 1, pred=lambda t: t.message_id == r["MessageId"])
        self.assertTrue(t.header("List-Unsubscribe").startswith(f"<http://127.0.0.1:{tport}/u/"))
        status, r = post(dict(base, ListManagementOptions={"ContactListName": "bad name"}))
        self.assertEqual(status, 400)
        self.assertIn("ListManagementOptions.ContactListName", json.dumps(r))

        # What an SES user writes: boto3's sesv2.send_email, SigV4-signed.
        try:
            import boto3
            from botocore.config import Config as BotoConfig
        except ImportError:  # pragma: no cover
            self.skipTest("python3-boto3 not installed")
        ses = boto3.client("sesv2", endpoint_url=f"http://127.0.0.1:{hport}",
                           region_name="us-east-1", aws_access_key_id="AKID",
                           aws_secret_access_key="api-secret",
                           config=BotoConfig(retries={"max_attempts": 1}))
        out = ses.send_email(
            FromEmailAddress="news@src.test", Destination={"ToAddresses": ["kim@example.test"]},
            Content={"Simple": {"Subject": {"Data": "deals"},
                                "Body": {"Html": {"Data": "<p>deals</p>"}}}},
            ListManagementOptions={"ContactListName": "news", "TopicName": "deals"})
        t, = self.assertDelivered(sink, 1, pred=lambda t: t.message_id == out["MessageId"])
        url = re.match(r"<([^>]+)>", t.header("List-Unsubscribe")).group(1)
        self.assertEqual(fetch(url, method="POST", data=b"List-Unsubscribe=One-Click")[0], 200)
        ev, = wait_events(m, ev_type(out["MessageId"], "Subscription"))
        self.assertEqual(ev["subscription"]["contactList"], "news")
        # The next send to kim for news/deals is not delivered.
        again = ses.send_email(
            FromEmailAddress="news@src.test", Destination={"ToAddresses": ["kim@example.test"]},
            Content={"Simple": {"Subject": {"Data": "more deals"},
                                "Body": {"Html": {"Data": "<p>more</p>"}}}},
            ListManagementOptions={"ContactListName": "news", "TopicName": "deals"})
        b, = wait_events(m, ev_type(again["MessageId"], "Bounce"))
        self.assertEqual(b["bounce"]["bounceSubType"], "Suppressed")


if __name__ == "__main__":
    unittest.main(verbosity=2)
