"""A recording webhook receiver for the event publishing tests (Python 3
standard library only).

    r = Receiver(secret="s3cret")          # 127.0.0.1:<free port>
    r.start()
    ... r.url ...                          # "http://127.0.0.1:PORT/events"
    r.wait_for(lambda ev: ev["eventType"] == "Delivery", n=1)
    r.stop()

Every POST is recorded (`r.posts`: path, headers, raw body, the status we
answered, whether its signature checked out).  A POST is "accepted" when we
answered 2xx in time; `r.events()` are the events of accepted POSTs (each
JSON object of a batch counts), de-duplicated by event id, in the order they
first arrived.  The signature is checked the way the README tells receivers
to: hex(HMAC-SHA256(secret, X-MTA-Timestamp + "." + raw body)) against
X-MTA-Signature "sha256=<hex>", timestamp within 5 minutes.

`script(n, body)` decides the answer to the n-th POST (from 1): an int
status, or ("sleep", seconds[, status]) to answer late (the client has
given up by then when seconds > its timeout: such a POST is not accepted).
"""

import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Receiver", "verify"]


def verify(secret, headers, body, now=None, tolerance=300):
    """True when the request's signature is right and its timestamp fresh."""
    ts = headers.get("X-MTA-Timestamp", "")
    sig = headers.get("X-MTA-Signature", "")
    if not ts.isdigit() or not sig.startswith("sha256="):
        return False
    if abs((now or time.time()) - int(ts)) > tolerance:
        return False
    want = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, sig[len("sha256="):])


class Post:
    def __init__(self, path, headers, body, status, signed, accepted, t):
        self.path = path
        self.headers = headers
        self.body = body
        self.status = status
        self.signed = signed
        self.accepted = accepted
        self.time = t

    @property
    def event_ids(self):
        return [i for i in self.headers.get("X-MTA-Event-Id", "").split(",") if i]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Post {self.status} ids={self.event_ids} signed={self.signed}>"


class Receiver:
    def __init__(self, secret="s3cret", host="127.0.0.1", port=0, script=None, timeout=None,
                 tls=None):
        """timeout: the client's timeout in seconds; a ("sleep", s) answer with
        s >= timeout is recorded as not accepted.  tls: (certfile, keyfile)
        to serve HTTPS."""
        self.tls = tls
        self.secret = secret
        self.host = host
        self.port = port
        self.script = script
        self.client_timeout = timeout
        self.posts = []
        self._count = 0
        self._cond = threading.Condition()
        self._server = None
        self._thread = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                receiver._handle(self, body)

        srv = None
        for _ in range(50):
            try:
                srv = ThreadingHTTPServer((self.host, self.port), Handler)
                break
            except OSError:
                if self.port == 0:
                    raise
                time.sleep(0.1)   # the old socket of a restart on the same port
        if srv is None:
            raise RuntimeError(f"cannot listen on {self.host}:{self.port}")
        srv.daemon_threads = True
        if self.tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        # A client that gave up (timeout) resets the connection: not news.
        srv.handle_error = lambda request, client_address: None
        self._server = srv
        self.port = srv.server_address[1]
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/events"

    # -- serving -------------------------------------------------------------------

    def _handle(self, h, body):
        with self._cond:
            self._count += 1
            n = self._count
        action = self.script(n, body) if self.script else 200
        if action is None:
            action = 200
        status = action
        late = False
        if isinstance(action, tuple):
            _, secs, *rest = action
            status = rest[0] if rest else 200
            late = self.client_timeout is not None and secs >= self.client_timeout
            time.sleep(secs)
        headers = {k: v for k, v in h.headers.items()}
        signed = verify(self.secret, headers, body)
        post = Post(h.path, headers, body, status, signed, 200 <= status < 300 and not late,
                    time.monotonic())
        with self._cond:
            self.posts.append(post)
            self._cond.notify_all()
        try:
            reply = b"ok" if 200 <= status < 300 else b"not now"
            h.send_response(status)
            h.send_header("Content-Length", str(len(reply)))
            h.end_headers()
            h.wfile.write(reply)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass

    # -- results -------------------------------------------------------------------

    def events(self):
        """Events of accepted POSTs, de-duplicated by event id, first arrival
        order.  Each is the parsed JSON with "_headers" and "_signed" added."""
        seen = set()
        out = []
        with self._cond:
            posts = list(self.posts)
        for p in posts:
            if not p.accepted:
                continue
            body = p.json()
            items = body if isinstance(body, list) else [body]
            for ev in items:
                eid = ev.get("mta", {}).get("eventId")
                if eid in seen:
                    continue
                seen.add(eid)
                ev["_headers"] = p.headers
                ev["_signed"] = p.signed
                out.append(ev)
        return out

    def accepted_ids(self):
        """Every event id of an accepted POST, repeats kept."""
        with self._cond:
            return [i for p in self.posts if p.accepted for i in p.event_ids]

    def wait_for(self, pred=None, n=1, timeout=20.0):
        """Wait until at least n de-duplicated events match pred; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            got = [e for e in self.events() if pred is None or pred(e)]
            left = deadline - time.monotonic()
            if len(got) >= n or left <= 0:
                return got
            with self._cond:
                self._cond.wait(min(left, 0.2))

    def wait_posts(self, n, timeout=20.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.posts) < n and time.monotonic() < deadline:
                self._cond.wait(0.2)
            return list(self.posts)


def of(msg_id, etype=None):
    """Predicate: events of message msg_id (of type etype)."""
    return lambda e: (e.get("mail", {}).get("messageId") == msg_id and
                      (etype is None or e.get("eventType") == etype))
