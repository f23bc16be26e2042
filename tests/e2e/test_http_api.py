"""The SES-compatible HTTP API end to end, with the real AWS SDK (python3-boto3,
endpoint_url pointing at the daemon): sesv2.send_email (Simple text+HTML with a
configuration set, and Raw), ses.send_email exactly like the seed example,
ses.send_raw_email, each delivered to a recording sink; wrong credentials,
Bearer tokens over plain HTTP, Idempotency-Key (also across a restart), every
validation refusal naming its field with nothing queued, the suppression list
through boto3's sesv2 calls, the admin API's auth and 501s, and `mta ctl`.

    MTA_BIN=build/mta/app/mta /usr/bin/python3 tests/e2e/test_http_api.py
"""

import base64
import datetime
import email
import email.policy
import json
import os
import re
import signal
import socket
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlvtest import (DeliveryTestCase, delivery_config, events, ev_type, route,  # noqa: E402
                     wait_events)
from mtatest import base_config, free_port, require_binary, run_cli, to_yaml  # noqa: E402
from sink import Sink  # noqa: E402

try:
    import boto3
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import ClientError
except ImportError:  # pragma: no cover
    boto3 = None

KEY_ID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ADMIN_ID, ADMIN_SECRET = "AKIDADMIN", "admin-secret-0123456789"
BULK_ID, BULK_SECRET = "AKIDBULK", "bulk-only-secret-0123456789"
MAX_RCPTS = 5
MAX_BYTES = 200000
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def setUpModule():
    require_binary()
    if boto3 is None:
        raise unittest.SkipTest("python3-boto3 not installed")


def api_config(sink_port=None):
    """delivery_config() with every domain routed to the sink (or, without
    one, to a closed port so mail stays queued) and the HTTP API on."""
    if sink_port is None:
        cfg = base_config()
    else:
        cfg = delivery_config(routes=[route("*", f"127.0.0.1:{sink_port}")])
    cfg["smtp"]["max_recipients"] = MAX_RCPTS
    cfg["smtp"]["max_message_bytes"] = MAX_BYTES
    cfg["http"] = {
        "listen": f"127.0.0.1:{free_port()}",
        "api_keys": [
            {"id": KEY_ID, "secret": SECRET},
            {"id": ADMIN_ID, "secret": ADMIN_SECRET, "admin": True},
            {"id": BULK_ID, "secret": BULK_SECRET, "configuration_sets": ["bulk"]},
        ],
    }
    return cfg


def api_url(m):
    return f"http://{m.config['http']['listen']}"


def client(m, service="sesv2", key=KEY_ID, secret=SECRET):
    return boto3.client(service, endpoint_url=api_url(m), region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=BotoConfig(retries={"max_attempts": 1}))


def http(m, method, path, body=None, token=SECRET, headers=None):
    """(status, parsed JSON or text, headers) of one request with Bearer auth."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    h = {"Content-Type": "application/json"}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    h.update(headers or {})
    req = urllib.request.Request(api_url(m) + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, raw, hdrs = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, raw, hdrs = e.code, e.read(), e.headers
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text), hdrs
    except ValueError:
        return status, text, hdrs


def simple_body(**over):
    b = {"FromEmailAddress": "sender@src.test",
         "Destination": {"ToAddresses": ["alice@example.test"]},
         "Content": {"Simple": {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "text"}}}}}
    b.update(over)
    return b


def parse(tx):
    return email.message_from_bytes(tx.data, policy=email.policy.default)


class HttpApi(DeliveryTestCase):
    """One daemon and one sink for the sending tests (each looks only at its
    own message ids)."""

    @classmethod
    def setUpClass(cls):
        cls.the_sink = Sink("127.0.0.1", 0)
        cls.the_sink.start()
        cls.addClassCleanup(cls.the_sink.stop)
        cls.m = cls.class_mta(api_config(cls.the_sink.port), name="http-api")

    def delivered(self, msg_id, n=1, timeout=20.0):
        got = self.the_sink.wait_for(n, timeout, pred=lambda t: t.message_id == msg_id)
        self.assertEqual(len(got), n, f"{msg_id}: {len(got)} deliveries, want {n}")
        return got

    def send_event(self, msg_id):
        got = wait_events(self.m, ev_type(msg_id, "Send"))
        self.assertEqual(len(got), 1)
        return got[0]

    def assert_nothing_queued(self, before_ids):
        """No message was added to the spool, nor delivered, since `before_ids`."""
        time.sleep(0.3)
        self.assertEqual(self.m.queue_ids() - before_ids, set())
        sent = [e for e in events(self.m) if e["eventType"] == "Send"]
        self.assertEqual({e["mail"]["messageId"] for e in sent} - self.sent_before, set(),
                         "a refused request queued a message")

    def snapshot(self):
        self.sent_before = {e["mail"]["messageId"] for e in events(self.m)
                            if e["eventType"] == "Send"}
        return self.m.queue_ids()

    # -- sending with boto3 ---------------------------------------------------

    def test_sesv2_simple_text_and_html_with_configuration_set(self):
        r = client(self.m).send_email(
            FromEmailAddress="Shop Ünïcode <shop@src.test>",
            Destination={"ToAddresses": ["Alice <alice@example.test>"],
                         "CcAddresses": ["carol@example.test"],
                         "BccAddresses": ["bob@example.test"]},
            ReplyToAddresses=["help@src.test"],
            Content={"Simple": {"Subject": {"Data": "Grüße — your order", "Charset": "UTF-8"},
                                "Body": {"Text": {"Data": "Hello Alice,\nthanks = ok\n"},
                                         "Html": {"Data": "<p>Hello <b>Alice</b></p>"}}}},
            ConfigurationSetName="transactional",
            EmailTags=[{"Name": "campaign", "Value": "nov"}])
        msg_id = r["MessageId"]
        self.assertRegex(msg_id, HEX32)
        tx, = self.delivered(msg_id)
        self.assertEqual(tx.mail_from, "shop@src.test")
        self.assertEqual(sorted(tx.rcpts),
                         ["alice@example.test", "bob@example.test", "carol@example.test"])
        msg = parse(tx)
        self.assertEqual(str(msg["Subject"]), "Grüße — your order")
        self.assertEqual(msg["From"].addresses[0].display_name, "Shop Ünïcode")
        self.assertEqual(str(msg["To"]), "Alice <alice@example.test>")
        self.assertEqual(str(msg["Cc"]), "carol@example.test")
        self.assertIsNone(msg["Bcc"], "Bcc must not be in the delivered message")
        self.assertEqual(str(msg["Reply-To"]), "help@src.test")
        self.assertIsNotNone(msg["Date"])
        self.assertRegex(str(msg["Message-ID"]), rf"^<{msg_id}@mta\.test>$")
        self.assertEqual(msg.get_content_type(), "multipart/alternative")
        parts = list(msg.iter_parts())
        self.assertEqual([p.get_content_type() for p in parts], ["text/plain", "text/html"])
        # Python keeps the CRLF line ends of the wire in decoded text.
        self.assertEqual(parts[0].get_content().replace("\r\n", "\n"), "Hello Alice,\nthanks = ok\n")
        self.assertEqual(parts[1].get_content(), "<p>Hello <b>Alice</b></p>")
        for p in parts:
            self.assertIn(p["Content-Transfer-Encoding"], ("quoted-printable", "base64"))
        for line in tx.data.split(b"\r\n"):
            self.assertLessEqual(len(line), 998)
            line.decode("ascii")  # everything 7-bit: encoded-words and QP
        mail = self.send_event(msg_id)["mail"]
        self.assertEqual(mail["tags"]["ses:configuration-set"], ["transactional"])
        self.assertEqual(mail["tags"]["campaign"], ["nov"])
        self.assertGreaterEqual(
            self.m.metric("mta_messages_received_total", protocol="http",
                          configuration_set="transactional"), 1)

    def test_sesv2_raw(self):
        raw = (b"From: Raw Sender <raw@src.test>\r\nTo: dave@example.test\r\n"
               b"Bcc: secret@example.test\r\nSubject: raw one\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
               b"Content-Type: text/plain\r\n\r\nbody\r\n--XX\r\n"
               b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
               b"\r\nAAECAw==\r\n--XX--\r\n")
        r = client(self.m).send_email(
            Destination={"ToAddresses": ["dave@example.test", "erin@example.test"]},
            Content={"Raw": {"Data": raw}}, ConfigurationSetName="bulk")
        msg_id = r["MessageId"]
        tx, = self.delivered(msg_id)
        self.assertEqual(tx.mail_from, "raw@src.test")
        self.assertEqual(sorted(tx.rcpts), ["dave@example.test", "erin@example.test"])
        msg = parse(tx)
        self.assertEqual(str(msg["Subject"]), "raw one")
        self.assertIsNone(msg["Bcc"])
        self.assertEqual([p.get_content_type() for p in msg.iter_parts()],
                         ["text/plain", "application/octet-stream"])
        self.assertEqual(list(msg.iter_parts())[1].get_content(), b"\x00\x01\x02\x03")
        self.assertEqual(self.send_event(msg_id)["mail"]["tags"]["ses:configuration-set"], ["bulk"])

    def test_ses_v1_send_email_like_the_seed_example(self):
        ses = client(self.m, "ses")
        r = ses.send_email(Source="sender@src.test",
                           Destination={"ToAddresses": ["frank@example.test"]},
                           Message={"Subject": {"Data": "Hello, World!"},
                                    "Body": {"Text": {"Data": "Hello, World!"}}})
        msg_id = r["MessageId"]
        self.assertRegex(msg_id, HEX32)
        self.assertIn("RequestId", r["ResponseMetadata"])
        tx, = self.delivered(msg_id)
        msg = parse(tx)
        self.assertEqual(str(msg["Subject"]), "Hello, World!")
        self.assertEqual(msg.get_content_type(), "text/plain")
        self.assertEqual(msg.get_content(), "Hello, World!\r\n")
        self.assertEqual(self.send_event(msg_id)["mail"]["tags"]["ses:configuration-set"],
                         ["default"])

    def test_ses_v1_send_raw_email(self):
        raw = ("From: Grace <grace@src.test>\r\nTo: heidi@example.test\r\nSubject: Raw v1 ✓\r\n"
               "\r\nraw body\r\n").encode()
        ses = client(self.m, "ses")
        r = ses.send_raw_email(RawMessage={"Data": raw}, ConfigurationSetName="transactional",
                               Tags=[{"Name": "k", "Value": "v"}])
        msg_id = r["MessageId"]
        tx, = self.delivered(msg_id)
        self.assertEqual(tx.mail_from, "grace@src.test")
        self.assertEqual(tx.rcpts, ["heidi@example.test"])
        self.assertTrue(tx.body().startswith(b"raw body"))
        mail = self.send_event(msg_id)["mail"]
        self.assertEqual(mail["tags"]["ses:configuration-set"], ["transactional"])
        self.assertEqual(mail["tags"]["k"], ["v"])
        # With explicit Source and Destinations.
        r2 = ses.send_raw_email(Source="bounces@src.test", Destinations=["ivan@example.test"],
                                RawMessage={"Data": raw})
        tx2, = self.delivered(r2["MessageId"])
        self.assertEqual(tx2.mail_from, "bounces@src.test")
        self.assertEqual(tx2.rcpts, ["ivan@example.test"])

    # -- auth -------------------------------------------------------------------

    def test_wrong_credentials_are_refused_and_nothing_is_delivered(self):
        before = self.snapshot()
        for service, call in (
                ("sesv2", lambda c: c.send_email(**simple_body())),
                ("ses", lambda c: c.send_email(
                    Source="sender@src.test", Destination={"ToAddresses": ["x@example.test"]},
                    Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}))):
            with self.subTest(service=service, case="wrong secret"):
                with self.assertRaises(ClientError) as cm:
                    call(client(self.m, service, secret="not-the-secret"))
                err = cm.exception.response
                self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], 403)
                self.assertEqual(err["Error"]["Code"], "SignatureDoesNotMatch")
            with self.subTest(service=service, case="unknown key"):
                with self.assertRaises(ClientError) as cm:
                    call(client(self.m, service, key="AKIDUNKNOWN"))
                self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidClientTokenId")
        # A signature more than 5 minutes old.
        creds = botocore.credentials.Credentials(KEY_ID, SECRET)
        body = json.dumps(simple_body()).encode()
        req = botocore.awsrequest.AWSRequest(
            method="POST", url=api_url(self.m) + "/v2/email/outbound-emails", data=body,
            headers={"Content-Type": "application/json"})
        signer = botocore.auth.SigV4Auth(creds, "ses", "us-east-1")
        old = datetime.datetime.utcnow() - datetime.timedelta(minutes=6)
        from unittest import mock
        with mock.patch("botocore.auth.datetime") as dt:
            dt.datetime.utcnow.return_value = old
            signer.add_auth(req)
        status, j, _ = http(self.m, "POST", "/v2/email/outbound-emails", body, token=None,
                            headers=dict(req.headers.items()))
        self.assertEqual(status, 403)
        self.assertEqual(j["__type"], "SignatureDoesNotMatch")
        self.assertIn("expired", j["message"])
        # The same signature made now is accepted: the refusal was the date.
        fresh = botocore.awsrequest.AWSRequest(
            method="POST", url=api_url(self.m) + "/v2/email/outbound-emails", data=body,
            headers={"Content-Type": "application/json"})
        signer.add_auth(fresh)
        status, j, _ = http(self.m, "POST", "/v2/email/outbound-emails", body, token=None,
                            headers=dict(fresh.headers.items()))
        self.assertEqual(status, 200, j)
        self.delivered(j["MessageId"])
        # No credentials at all; a wrong Bearer; the v1 error is SES's XML.
        status, j, _ = http(self.m, "POST", "/v2/email/outbound-emails", simple_body(), token=None)
        self.assertEqual((status, j["__type"]), (403, "MissingAuthenticationToken"))
        status, j, hdrs = http(self.m, "POST", "/v2/email/outbound-emails", simple_body(),
                               token="wrong")
        self.assertEqual((status, j["__type"]), (403, "InvalidClientTokenId"))
        self.assertEqual(hdrs["x-amzn-ErrorType"], "InvalidClientTokenId")
        status, text, _ = http(self.m, "POST", "/", b"Action=SendEmail", token="wrong",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 403)
        self.assertIn("<Code>InvalidClientTokenId</Code>", text)
        self.assertIn("<ErrorResponse xmlns=\"http://ses.amazonaws.com/doc/2010-12-01/\">", text)
        queued = self.m.queue_ids() - before
        self.assertLessEqual(len(queued), 1)  # only the freshly signed one, if not yet delivered
        self.assertGreaterEqual(self.m.metric("mta_http_rejections_total", reason="auth_failed"), 7)

    def test_bearer_token_over_plain_http(self):
        status, j, hdrs = http(self.m, "POST", "/v2/email/outbound-emails",
                               simple_body(Destination={"ToAddresses": ["judy@example.test"]}))
        self.assertEqual(status, 200, j)
        self.assertRegex(j["MessageId"], HEX32)
        self.assertTrue(hdrs["x-amzn-RequestId"])
        self.delivered(j["MessageId"])
        # v1 with a Bearer token, form-encoded by hand.
        form = ("Action=SendEmail&Source=sender%40src.test&"
                "Destination.ToAddresses.member.1=ken%40example.test&"
                "Message.Subject.Data=v1+bearer&Message.Body.Html.Data=%3Cp%3Ehi%3C%2Fp%3E")
        status, text, _ = http(self.m, "POST", "/", form.encode(),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, text)
        got = re.search(r"<MessageId>([0-9a-f]{32})</MessageId>", text)
        self.assertTrue(got, text)
        tx, = self.delivered(got.group(1))
        self.assertEqual(parse(tx).get_content_type(), "text/html")

    def test_pipelined_requests_on_one_keep_alive_connection(self):
        host, port = self.m.config["http"]["listen"].split(":")
        bodies = [json.dumps(simple_body(Destination={"ToAddresses": [f"pipe{i}@example.test"]}))
                  .encode() for i in range(3)]
        reqs = b"".join(
            b"POST /v2/email/outbound-emails HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + SECRET.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + str(len(b)).encode() +
            b"\r\n\r\n" + b for b in bodies)
        with socket.create_connection((host, int(port)), timeout=20) as sock:
            sock.sendall(reqs)  # all three before reading anything
            f = sock.makefile("rb")
            ids = []
            for _ in bodies:
                status = f.readline()
                self.assertTrue(status.startswith(b"HTTP/1.1 200"), status)
                length = 0
                while True:
                    line = f.readline().strip()
                    if not line:
                        break
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                    self.assertNotEqual((name.lower(), value.strip().lower()),
                                        (b"connection", b"close"))
                ids.append(json.loads(f.read(length))["MessageId"])
        self.assertEqual(len(set(ids)), 3)
        for i, msg_id in enumerate(ids):  # answered in request order
            tx, = self.delivered(msg_id)
            self.assertEqual(tx.rcpts, [f"pipe{i}@example.test"])

    def test_restricted_key_sends_only_with_its_sets(self):
        before = self.snapshot()
        # No set named: the key's first set.
        status, j, _ = http(self.m, "POST", "/v2/email/outbound-emails", simple_body(),
                            token=BULK_SECRET)
        self.assertEqual(status, 200, j)
        self.assertEqual(self.send_event(j["MessageId"])["mail"]["tags"]["ses:configuration-set"],
                         ["bulk"])
        self.sent_before.add(j["MessageId"])
        before |= {j["MessageId"]}
        status, j, _ = http(self.m, "POST", "/v2/email/outbound-emails",
                            simple_body(ConfigurationSetName="transactional"), token=BULK_SECRET)
        self.assertEqual(status, 403)
        self.assertEqual(j["__type"], "AccessDeniedException")
        self.assertIn("ConfigurationSetName", j["message"])
        # Also when a raw message names the set in its header.
        raw = (b"From: a@src.test\r\nTo: b@example.test\r\n"
               b"X-SES-CONFIGURATION-SET: transactional\r\nSubject: s\r\n\r\nx\r\n")
        status, j, _ = http(self.m, "POST", "/v2/email/outbound-emails",
                            {"Content": {"Raw": {"Data": base64.b64encode(raw).decode()}}},
                            token=BULK_SECRET)
        self.assertEqual(status, 403, j)
        self.assert_nothing_queued(before)

    # -- idempotency ---------------------------------------------------------------

    def test_idempotency_key_returns_the_first_message_id(self):
        body = simple_body(Destination={"ToAddresses": ["once@example.test"]})
        key = {"Idempotency-Key": f"order-{time.monotonic_ns()}"}
        s1, j1, _ = http(self.m, "POST", "/v2/email/outbound-emails", body, headers=key)
        s2, j2, _ = http(self.m, "POST", "/v2/email/outbound-emails", body, headers=key)
        self.assertEqual((s1, s2), (200, 200), (j1, j2))
        self.assertEqual(j1["MessageId"], j2["MessageId"])
        # boto3 can send the header through its event hooks.
        v2 = client(self.m)
        v2.meta.events.register("before-sign.sesv2.SendEmail",
                                lambda request, **kw: request.headers.add_header(
                                    "Idempotency-Key", key["Idempotency-Key"]))
        self.assertEqual(v2.send_email(**body)["MessageId"], j1["MessageId"])
        # The same key from another API key is another request.
        s3, j3, _ = http(self.m, "POST", "/v2/email/outbound-emails", body, headers=key,
                         token=ADMIN_SECRET)
        self.assertEqual(s3, 200)
        self.assertNotEqual(j3["MessageId"], j1["MessageId"])
        self.delivered(j1["MessageId"])
        self.delivered(j3["MessageId"])
        time.sleep(1.0)
        self.assertEqual(len(self.the_sink.wait_for(1, 0, pred=lambda t: t.message_id == j1["MessageId"])), 1)
        s4, j4, _ = http(self.m, "POST", "/v2/email/outbound-emails", body,
                         headers={"Idempotency-Key": "has space"})
        self.assertEqual(s4, 400)
        self.assertIn("Idempotency-Key", j4["message"])
        # The same key in the JSON body (our IdempotencyKey field).
        in_body = dict(body, IdempotencyKey=key["Idempotency-Key"])
        s5, j5, _ = http(self.m, "POST", "/v2/email/outbound-emails", in_body)
        self.assertEqual((s5, j5["MessageId"]), (200, j1["MessageId"]))
        fresh = dict(body, IdempotencyKey=f"body-{time.monotonic_ns()}")
        s6, j6, _ = http(self.m, "POST", "/v2/email/outbound-emails", fresh)
        s7, j7, _ = http(self.m, "POST", "/v2/email/outbound-emails", fresh)
        self.assertEqual((s6, s7), (200, 200))
        self.assertEqual(j6["MessageId"], j7["MessageId"])
        self.assertNotEqual(j6["MessageId"], j1["MessageId"])
        s8, j8, _ = http(self.m, "POST", "/v2/email/outbound-emails", in_body,
                         headers={"Idempotency-Key": "another"})
        self.assertEqual(s8, 400)
        self.assertIn("IdempotencyKey", j8["message"])

    # -- validation ----------------------------------------------------------------

    def test_each_validation_case_is_a_400_naming_the_field_and_queues_nothing(self):
        before = self.snapshot()
        big = base64.b64encode(b"From: a@src.test\r\nTo: b@example.test\r\n\r\n" +
                               (b"x" * 76 + b"\r\n") * (MAX_BYTES // 78 + 10)).decode()
        many = [f"r{i}@example.test" for i in range(MAX_RCPTS + 1)]
        cases = [
            ("malformed JSON", b'{"FromEmailAddress": ', 400, "not valid JSON"),
            ("missing field", {"Destination": {"ToAddresses": ["a@example.test"]},
                               "Content": {"Simple": {"Subject": {"Data": "s"},
                                                      "Body": {"Text": {"Data": "t"}}}}},
             400, "FromEmailAddress: is required"),
            ("missing subject", simple_body(Content={"Simple": {"Body": {"Text": {"Data": "t"}}}}),
             400, "Content.Simple.Subject: is required"),
            ("invalid from", simple_body(FromEmailAddress="not an address"), 400,
             "FromEmailAddress: not a valid email address"),
            ("invalid recipient", simple_body(Destination={"ToAddresses": ["ok@example.test",
                                                                           "bad@"]}),
             400, "Destination.ToAddresses[1]"),
            ("CR/LF in subject", simple_body(Content={"Simple": {
                "Subject": {"Data": "hi\r\nBcc: victim@example.test"},
                "Body": {"Text": {"Data": "t"}}}}), 400, "Content.Simple.Subject.Data: must not contain CR or LF"),
            ("CR/LF in a name", simple_body(FromEmailAddress="Eve\n <eve@src.test>"), 400,
             "FromEmailAddress: must not contain CR or LF"),
            ("too many recipients", simple_body(Destination={"ToAddresses": many}), 400,
             f"Destination: {MAX_RCPTS + 1} recipients, more than the limit of {MAX_RCPTS}"),
            ("over max_message_bytes", {"Content": {"Raw": {"Data": big}}}, 400,
             "Content.Raw.Data: the message is"),
            ("bad base64", {"Content": {"Raw": {"Data": "!!!"}}}, 400,
             "Content.Raw.Data: not valid base64"),
            ("bad tag", simple_body(EmailTags=[{"Name": "a b", "Value": "v"}]), 400,
             "EmailTags[0].Name"),
            ("unknown configuration set", simple_body(ConfigurationSetName="nope"), 404,
             "ConfigurationSetName: configuration set nope does not exist"),
        ]
        for name, body, want, field in cases:
            with self.subTest(case=name):
                status, j, _ = http(self.m, "POST", "/v2/email/outbound-emails", body)
                self.assertEqual(status, want, j)
                self.assertIn(field, j["message"])
        v1 = [
            ("v1 CR/LF", "Action=SendEmail&Source=a%40src.test&"
                         "Destination.ToAddresses.member.1=b%40example.test&"
                         "Message.Subject.Data=x%0d%0aBcc%3a+c%40example.test&"
                         "Message.Body.Text.Data=t", "InvalidParameterValue",
             "Message.Subject.Data: must not contain CR or LF"),
            ("v1 missing", "Action=SendEmail&Destination.ToAddresses.member.1=b%40example.test&"
                           "Message.Subject.Data=s&Message.Body.Text.Data=t", "MissingParameter",
             "Source: is required"),
            ("v1 unknown set", "Action=SendEmail&Source=a%40src.test&"
                               "Destination.ToAddresses.member.1=b%40example.test&"
                               "Message.Subject.Data=s&Message.Body.Text.Data=t&"
                               "ConfigurationSetName=nope", "ConfigurationSetDoesNotExist",
             "configuration set nope does not exist"),
        ]
        for name, form, code, field in v1:
            with self.subTest(case=name):
                status, text, _ = http(self.m, "POST", "/", form.encode(),
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
                self.assertEqual(status, 400, text)
                self.assertIn(f"<Code>{code}</Code>", text)
                self.assertIn(field, text)
        # The SDK surfaces the same error.
        with self.assertRaises(ClientError) as cm:
            client(self.m).send_email(**simple_body(FromEmailAddress="nope"))
        self.assertEqual(cm.exception.response["Error"]["Code"], "BadRequestException")
        self.assertIn("FromEmailAddress", cm.exception.response["Error"]["Message"])
        self.assert_nothing_queued(before)
        self.assertGreaterEqual(self.m.metric("mta_http_rejections_total", reason="message_too_big"), 1)
        self.assertGreaterEqual(self.m.metric("mta_http_rejections_total",
                                              reason="too_many_recipients"), 1)

    # -- admin API -----------------------------------------------------------------

    def test_suppression_round_trip_through_boto3(self):
        admin = client(self.m, key=ADMIN_ID, secret=ADMIN_SECRET)
        addr = f"gone{time.monotonic_ns()}@example.test"
        self.assertEqual(admin.put_suppressed_destination(EmailAddress=addr, Reason="BOUNCE")
                         ["ResponseMetadata"]["HTTPStatusCode"], 200)
        got = admin.get_suppressed_destination(EmailAddress=addr)["SuppressedDestination"]
        self.assertEqual(got["EmailAddress"], addr)
        self.assertEqual(got["Reason"], "BOUNCE")
        self.assertIsInstance(got["LastUpdateTime"], datetime.datetime)
        listed = admin.list_suppressed_destinations(Reasons=["BOUNCE"])
        self.assertIn(addr, [s["EmailAddress"] for s in listed["SuppressedDestinationSummaries"]])
        listed = admin.list_suppressed_destinations(Reasons=["COMPLAINT"])
        self.assertNotIn(addr, [s["EmailAddress"] for s in listed["SuppressedDestinationSummaries"]])
        # The scheduler honours it: mail to it is not delivered but bounced.
        r = client(self.m).send_email(**simple_body(Destination={"ToAddresses": [addr]}))
        bounce = wait_events(self.m, ev_type(r["MessageId"], "Bounce"))
        self.assertEqual(len(bounce), 1)
        self.assertEqual(bounce[0]["bounce"]["bounceSubType"], "Suppressed")
        self.assertEqual(self.the_sink.wait_for(1, 0.5, pred=lambda t: t.message_id == r["MessageId"]), [])
        # Only admin keys may touch it.
        with self.assertRaises(ClientError) as cm:
            client(self.m).get_suppressed_destination(EmailAddress=addr)
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 403)
        admin.delete_suppressed_destination(EmailAddress=addr)
        with self.assertRaises(ClientError) as cm:
            admin.get_suppressed_destination(EmailAddress=addr)
        self.assertEqual(cm.exception.response["Error"]["Code"], "NotFoundException")
        with self.assertRaises(ClientError) as cm:
            admin.delete_suppressed_destination(EmailAddress=addr)
        self.assertEqual(cm.exception.response["Error"]["Code"], "NotFoundException")
        with self.assertRaises(ClientError) as cm:
            admin.put_suppressed_destination(EmailAddress="not-an-address", Reason="BOUNCE")
        self.assertEqual(cm.exception.response["Error"]["Code"], "BadRequestException")

    def test_health_readiness_and_admin_only_hooks(self):
        for path in ("/healthz", "/readyz"):
            status, j, _ = http(self.m, "GET", path, token=None)
            self.assertEqual((status, j), (200, {"Status": "ok"}))
        # Admin only; what they do is tested in test_suspend.py (this daemon
        # is shared, so nothing here may pause it).
        for method, path, want in (("POST", "/admin/pools/nope/suspend", 404),
                                   ("POST", "/admin/ips/10.9.9.9/resume", 404),
                                   ("POST", "/admin/destinations/nobody.invalid/bounce-all", 200),
                                   ("GET", "/admin/events/dead", 200),
                                   ("POST", "/admin/events/dead/replay", 200)):
            with self.subTest(path=path):
                status, j, _ = http(self.m, method, path, token=ADMIN_SECRET)
                self.assertEqual(status, want, j)
                status, j, _ = http(self.m, method, path, token=SECRET)
                self.assertEqual(status, 403, j)
        status, j, _ = http(self.m, "GET", "/admin/nope", token=ADMIN_SECRET)
        self.assertEqual(status, 404)
        status, j, _ = http(self.m, "GET", "/v2/email/outbound-emails", token=SECRET)
        self.assertEqual(status, 405)
        status, j, _ = http(self.m, "GET", "/admin/events/dead?Limit=0", token=ADMIN_SECRET)
        self.assertEqual(status, 400, j)
        self.assertIn("Limit", j["message"])

    def test_dedicated_ips_through_boto3(self):
        admin = client(self.m, key=ADMIN_ID, secret=ADMIN_SECRET)
        ips = admin.get_dedicated_ips(PoolName="main")["DedicatedIps"]
        self.assertEqual([(d["Ip"], d["PoolName"], d["WarmupStatus"], d["WarmupPercentage"])
                          for d in ips], [("127.0.0.1", "main", "DONE", 100)])
        self.assertEqual(len(admin.get_dedicated_ips()["DedicatedIps"]), 1)
        with self.assertRaises(ClientError) as cm:
            admin.get_dedicated_ips(PoolName="no-such-pool")
        self.assertEqual(cm.exception.response["Error"]["Code"], "NotFoundException")
        status, j, _ = http(self.m, "GET", "/v2/email/dedicated-ips/127.0.0.1", token=ADMIN_SECRET)
        self.assertEqual((status, j["DedicatedIp"]["PoolName"]), (200, "main"))
        status, j, _ = http(self.m, "GET", "/v2/email/dedicated-ips/192.0.2.99", token=ADMIN_SECRET)
        self.assertEqual(status, 404)


class HttpApiRestart(DeliveryTestCase):
    def test_sighup_reloads_the_api_keys(self):
        cfg = api_config(None)
        m = self.mta(cfg)
        self.assertEqual(http(m, "POST", "/v2/email/outbound-emails", simple_body())[0], 200)
        cfg = dict(m.config)
        cfg["http"] = dict(cfg["http"], api_keys=[{"id": "AKIDNEW", "secret": "new-secret-1"}])
        with open(m.config_path, "w") as f:
            f.write(to_yaml(cfg))
        pid = m.pid
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "mta=reloaded" not in m.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("mta=reloaded", m.log())
        self.assertEqual(m.pid, pid)
        status, j, _ = http(m, "POST", "/v2/email/outbound-emails", simple_body())
        self.assertEqual((status, j["__type"]), (403, "InvalidClientTokenId"))
        status, j, _ = http(m, "POST", "/v2/email/outbound-emails", simple_body(),
                            token="new-secret-1")
        self.assertEqual(status, 200, j)
        r = client(m, key="AKIDNEW", secret="new-secret-1").send_email(**simple_body())
        self.assertRegex(r["MessageId"], HEX32)

    def test_idempotency_survives_a_restart(self):
        sink = self.sink()
        m = self.mta(api_config(sink.port))
        body = simple_body(Destination={"ToAddresses": ["restart@example.test"]})
        key = {"Idempotency-Key": "restart-key-1"}
        s1, j1, _ = http(m, "POST", "/v2/email/outbound-emails", body, headers=key)
        self.assertEqual(s1, 200, j1)
        self.assertDelivered(sink, 1)
        self.assertEqual(m.stop(), 0)
        m.start()
        s2, j2, _ = http(m, "POST", "/v2/email/outbound-emails", body, headers=key)
        self.assertEqual(s2, 200, j2)
        self.assertEqual(j2["MessageId"], j1["MessageId"])
        # ... even after a kill -9 (the key was stored with the message).
        m.kill9()
        m.start()
        s3, j3, _ = http(m, "POST", "/v2/email/outbound-emails", body, headers=key)
        self.assertEqual(j3["MessageId"], j1["MessageId"])
        time.sleep(1.5)
        self.assertEqual(len(sink.delivered()), 1, sink.delivered())

    def test_mta_ctl_against_a_running_daemon(self):
        # Mail stays queued (routed to a closed port) so the queue has content.
        m = self.mta(api_config(None))
        for i in range(3):
            s, j, _ = http(m, "POST", "/v2/email/outbound-emails",
                           simple_body(ConfigurationSetName="bulk" if i else "transactional",
                                       Destination={"ToAddresses": [f"q{i}@example.test",
                                                                    "z@other.test"]}))
            self.assertEqual(s, 200, j)

        def ctl(*args, secret=None):
            extra = ["--secret", secret] if secret else []
            p = run_cli("ctl", "--config", m.config_path, *extra, *args)
            return p.returncode, p.stdout.decode(), p.stderr.decode()

        rc, out, err = ctl("queue", "--json")
        self.assertEqual(rc, 0, err)
        q = json.loads(out)
        self.assertEqual(q["Messages"], 3)
        self.assertEqual(q["Recipients"], 6)
        sets = {g["Name"]: g for g in q["ByConfigurationSet"]}
        self.assertEqual(sets["bulk"]["Messages"], 2)
        self.assertEqual(sets["bulk"]["Recipients"], 4)
        self.assertEqual(sets["transactional"]["Messages"], 1)
        self.assertEqual({g["Name"]: g["Messages"] for g in q["ByPool"]}, {"main": 3})
        dests = {g["Name"]: g["Recipients"] for g in q["ByDestination"]}
        self.assertEqual(dests, {"example.test": 3, "other.test": 3})
        # Both domains were routed (to a closed port: no listed provider).
        self.assertEqual({g["Name"]: g["Recipients"] for g in q["ByProvider"]}, {"other": 6})
        rc, out, err = ctl("queue")
        self.assertEqual(rc, 0, err)
        self.assertIn("3 message(s), 6 recipient(s) queued", out)
        self.assertRegex(out, r"bulk\s+2\s+4")

        rc, out, err = ctl("suppression", "add", "ctl@example.test", "--reason", "COMPLAINT")
        self.assertEqual((rc, out.strip()), (0, "suppressed ctl@example.test"), err)
        rc, out, err = ctl("suppression", "list")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"ctl@example\.test\s+COMPLAINT")
        rc, out, err = ctl("suppression", "list", "--json")
        self.assertEqual([e["EmailAddress"] for e in json.loads(out)["SuppressedDestinationSummaries"]],
                         ["ctl@example.test"])
        rc, out, err = ctl("suppression", "remove", "ctl@example.test")
        self.assertEqual((rc, out.strip()), (0, "removed ctl@example.test"), err)
        rc, out, err = ctl("suppression", "remove", "ctl@example.test")
        self.assertEqual(rc, 1)
        self.assertIn("NotFoundException", err)
        # Hooks not connected in this build: a clear error, exit 1.
        rc, out, err = ctl("ips")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"127\.0\.0\.1\s+main\s+DONE\s+100")
        rc, out, err = ctl("events", "dead")
        self.assertEqual(rc, 0, err)
        self.assertIn("0 dead letter(s)", out)
        for args in (["suspend", "pool", "main"], ["bounce-all", "example.test"]):
            rc, out, err = ctl(*args)
            if rc != 0:
                self.assertEqual(rc, 1)
                self.assertIn("HTTP 501", err)
        # A wrong secret is refused; a non-admin key too.
        rc, out, err = ctl("queue", secret="wrong")
        self.assertEqual(rc, 1)
        self.assertIn("HTTP 403", err)
        rc, out, err = ctl("queue", secret=SECRET)
        self.assertEqual(rc, 1)
        self.assertIn("not an admin key", err)
        # Bad usage.
        p = run_cli("ctl", "suspend", "planet", "x", "--config", m.config_path)
        self.assertNotEqual(p.returncode, 0)
        p = run_cli("ctl", "queue")
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    # boto3 clients keep their keep-alive sockets until collected: not a finding.
    unittest.main(verbosity=2, warnings=False)
