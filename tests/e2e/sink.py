"""A recording SMTP sink for the delivery tests (Python 3 standard library only).

Runs in the test process: one thread accepts, one thread serves each
connection.  Every transaction is recorded (peer address, EHLO name, TLS,
MAIL FROM and its parameters, accepted and refused recipients, the message
as received with the dot-stuffing undone, the final reply, whether the
envelope arrived pipelined) and every connection too (to count reuse and
concurrency).

    sink = Sink("127.0.0.1", 0, script={("rcpt", "bad@x.test"): "550 5.1.1 <bad@x.test>: user unknown"})
    sink.start()
    ... sink.port ...
    sink.wait_for(3, timeout=20)      # three messages accepted (2xx after the dot)
    sink.stop()

Replies are scripted per stage.  `script` is either
  * a callable (stage, arg, attempt) -> reply | None, or
  * a dict whose keys are a stage ("rcpt") or (stage, arg) ("rcpt", "a@x.test")
    and whose values are a reply (always) or a list of replies (the Nth
    time that key is reached answers the Nth element; past the end of the
    list the default reply is used), so "451 twice then 250" is
    {("rcpt", "a@x.test"): ["451 4.3.0 later", "451 4.3.0 later"]}.
Stages and their `arg`:
  "banner"   the peer IP
  "ehlo"     the EHLO name ("helo" for HELO)
  "mail"     the MAIL FROM address
  "rcpt"     the RCPT TO address
  "data"     tuple of the accepted recipients (dict keys match one of them or the tuple)
  "data_end" likewise; the reply to the final dot
  "starttls" the peer IP (Sink.BAD_TLS: say 220, then fail the handshake)
`attempt` counts, from 1, how often (stage, arg) has been reached since the
sink started.  A reply is one line ("451 4.3.0 later") or several joined by
CRLF ("550-5.7.1 a\r\n550 5.7.1 b"); None means the default reply;
Sink.DROP closes the connection without replying.  After any 421 reply the
sink closes the connection, as RFC 5321 3.8 says (and Postfix does).  A
banner reply that is not 2xx and not 421 makes the sink refuse every command
but QUIT.
"""

import itertools
import re
import socket
import ssl
import threading
import time

__all__ = ["Sink", "Transaction", "Connection"]

_MAIL_RE = re.compile(r"^MAIL\s+FROM:\s*<([^>]*)>(.*)$", re.I)
_RCPT_RE = re.compile(r"^RCPT\s+TO:\s*<([^>]*)>(.*)$", re.I)
_SIZE_RE = re.compile(r"\bSIZE=(\d+)", re.I)


class Transaction:
    """One MAIL..DATA transaction as the sink saw it."""

    def __init__(self, conn, pipelined):
        self.conn_id = conn.id
        self.peer = conn.peer
        self.ehlo = conn.ehlo
        self.tls = conn.tls
        self.pipelined = pipelined      # more commands were already buffered behind MAIL
        self.mail_from = None
        self.mail_params = ""
        self.rcpts = []                 # accepted RCPT TO addresses
        self.refused = []               # (address, reply) of refused RCPTs
        self.data = None                # bytes, unstuffed, CRLF lines; None: no DATA phase
        self.reply = None               # reply to the final dot (or the failing reply)
        self.started = time.monotonic()
        self.finished = None

    @property
    def accepted(self):
        """True when the message was taken (2xx after the final dot)."""
        return self.data is not None and bool(self.reply) and self.reply[:1] == "2"

    def headers(self):
        """(name, value) pairs of the message header, unfolded."""
        if self.data is None:
            return []
        raw = self.data
        end = raw.find(b"\r\n\r\n")
        head = raw if end < 0 else raw[:end + 2]
        out = []
        for ln in head.split(b"\r\n"):
            if not ln:
                continue
            if ln[:1] in (b" ", b"\t") and out:
                n, v = out[-1]
                out[-1] = (n, v + " " + ln.decode("utf-8", "replace").strip())
                continue
            n, _, v = ln.decode("utf-8", "replace").partition(":")
            out.append((n, v.strip()))
        return out

    def header(self, name):
        """First value of header `name` (case-insensitive) or None."""
        for n, v in self.headers():
            if n.lower() == name.lower():
                return v
        return None

    def body(self):
        if self.data is None:
            return None
        end = self.data.find(b"\r\n\r\n")
        return b"" if end < 0 else self.data[end + 4:]

    @property
    def message_id(self):
        """The X-MTA-Message-ID of the message (the daemon's id) or None."""
        v = self.header("X-MTA-Message-ID")
        return v.strip() if v else None

    def __repr__(self):
        return (f"<Transaction conn={self.conn_id} peer={self.peer} from=<{self.mail_from}> "
                f"rcpts={self.rcpts} refused={[a for a, _ in self.refused]} "
                f"reply={self.reply!r} tls={self.tls} pipelined={self.pipelined}>")


class Connection:
    """One SMTP connection to the sink."""

    def __init__(self, cid, peer):
        self.id = cid
        self.peer = peer
        self.ehlo = None
        self.tls = False
        self.transactions = 0
        self.commands = []              # every command line received (for debugging)
        self.opened = time.monotonic()
        self.closed = None
        self.counted = False            # taken off Sink.active


class Sink:
    DROP = object()        # script reply: close the connection without replying
    BAD_TLS = object()     # script reply to "starttls": 220, then no TLS handshake

    def __init__(self, host="127.0.0.1", port=0, *, starttls_cert=None, pipelining=True,
                 eightbitmime=True, size=None, enhancedstatuscodes=True,
                 ehlo_extensions=None, extra_extensions=(), script=None, delay=0.0,
                 hostname="sink.test", read_timeout=60.0, close_after=None):
        """starttls_cert: (certfile, keyfile) -> STARTTLS offered (until TLS is on).
        size: announce "SIZE n" (and refuse MAIL with a larger SIZE=).
        ehlo_extensions: the exact extension list (overrides the flags).
        delay: seconds to wait before answering the final dot (a slow server).
        close_after: close each connection, without a word, this many seconds
        after its last reply while it is idle (a server's idle timeout)."""
        self.host = host
        self.port = port
        self.starttls_cert = starttls_cert
        self.pipelining = pipelining
        self.eightbitmime = eightbitmime
        self.size = size
        self.enhancedstatuscodes = enhancedstatuscodes
        self.ehlo_extensions = ehlo_extensions
        self.extra_extensions = list(extra_extensions)
        self.script = script
        self.delay = delay
        self.hostname = hostname
        self.read_timeout = read_timeout
        self.close_after = close_after

        self.transactions = []          # every finished or aborted Transaction, in order
        self.connections = []           # every Connection
        self.active = 0                 # connections open now
        self.peak = 0                   # most connections open at once
        self._attempts = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._lsock = None
        self._threads = []
        self._socks = set()
        self._ids = itertools.count(1)
        self._qids = itertools.count(1)
        self._tls_ctx = None
        if starttls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*starttls_cert)
            self._tls_ctx = ctx

    # -- lifecycle -----------------------------------------------------------------

    def start(self):
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(256)
        s.settimeout(0.2)
        self.port = s.getsockname()[1]
        self._lsock = s
        self._stop.clear()
        t = threading.Thread(target=self._accept_loop, name=f"sink-accept-{self.port}", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        """Close the listener and every connection; wait for the threads."""
        self._stop.set()
        if self._lsock is not None:
            try:
                self._lsock.close()
            except OSError:
                pass
            self._lsock = None
        with self._cond:
            socks = list(self._socks)
        for c in socks:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(5)
        self._threads = [t for t in self._threads if t.is_alive()]

    def __enter__(self):
        if self._lsock is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    # -- results -------------------------------------------------------------------

    def delivered(self):
        """Transactions whose message was accepted (2xx after the dot)."""
        with self._cond:
            return [t for t in self.transactions if t.accepted]

    def delivered_ids(self):
        """X-MTA-Message-ID of each accepted message, in arrival order (repeats kept)."""
        return [t.message_id for t in self.delivered()]

    def wait_for(self, n, timeout=30.0, pred=None):
        """Wait until at least n accepted transactions (matching pred, if given)
        are recorded.  Returns the matching transactions (maybe fewer than n
        on timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [t for t in self.transactions if t.accepted and (pred is None or pred(t))]
                left = deadline - time.monotonic()
                if len(got) >= n or left <= 0:
                    return got
                self._cond.wait(min(left, 0.5))

    def wait_transactions(self, n, timeout=30.0, pred=None):
        """Like wait_for but counts every recorded transaction (refused ones too)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [t for t in self.transactions if pred is None or pred(t)]
                left = deadline - time.monotonic()
                if len(got) >= n or left <= 0:
                    return got
                self._cond.wait(min(left, 0.5))

    def attempts(self, stage, arg):
        with self._cond:
            return self._attempts.get((stage, arg), 0)

    def reset(self):
        with self._cond:
            self.transactions = []
            self._attempts = {}

    # -- scripting -----------------------------------------------------------------

    def _scripted(self, stage, arg):
        with self._cond:
            key = (stage, arg)
            n = self._attempts.get(key, 0) + 1
            self._attempts[key] = n
        s = self.script
        if s is None:
            return None
        if callable(s):
            return s(stage, arg, n)
        cands = []
        if isinstance(arg, tuple):
            cands += [(stage, arg)] + [(stage, a) for a in arg]
        else:
            cands.append((stage, arg))
        cands.append(stage)
        for k in cands:
            if k in s:
                v = s[k]
                if isinstance(v, (list, tuple)):
                    return v[n - 1] if n <= len(v) else None
                return v
        return None

    # -- serving -------------------------------------------------------------------

    def _accept_loop(self):
        while not self._stop.is_set():
            ls = self._lsock
            if ls is None:
                return
            try:
                c, addr = ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn = Connection(next(self._ids), addr[0])
            with self._cond:
                self._socks.add(c)
                self.connections.append(conn)
                self.active += 1
                self.peak = max(self.peak, self.active)
            t = threading.Thread(target=self._serve, args=(c, conn), daemon=True,
                                 name=f"sink-conn-{conn.id}")
            t.start()
            self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _serve(self, sock, conn):
        io = _LineIO(sock, self.close_after or self.read_timeout)
        try:
            self._session(io, conn)
        except (OSError, ssl.SSLError, _Closed):
            pass
        finally:
            try:
                io.flush()
            except (OSError, ssl.SSLError):
                pass
            self._ended(conn)          # before the peer can see the close
            try:
                io.sock.close()
            except OSError:
                pass
            with self._cond:
                self._socks.discard(sock)
                self._socks.discard(io.sock)

    def _ended(self, conn):
        # Counted as closed once it said goodbye (QUIT answered) or its
        # thread ends, whichever is first: a client that gets the 221 may
        # connect again before this thread has run its clean-up.
        with self._cond:
            if conn.counted:
                return
            conn.counted = True
            conn.closed = time.monotonic()
            self.active -= 1
            self._cond.notify_all()

    def _ehlo_lines(self, conn):
        if self.ehlo_extensions is not None:
            exts = list(self.ehlo_extensions)
        else:
            exts = []
            if self.pipelining:
                exts.append("PIPELINING")
            if self.size is not None:
                exts.append(f"SIZE {self.size}")
            if self.eightbitmime:
                exts.append("8BITMIME")
            if self.enhancedstatuscodes:
                exts.append("ENHANCEDSTATUSCODES")
            if self._tls_ctx is not None and not conn.tls:
                exts.append("STARTTLS")
            exts += self.extra_extensions
        lines = [self.hostname] + exts
        return "\r\n".join(("250 " if i == len(lines) - 1 else "250-") + l
                           for i, l in enumerate(lines))

    def _session(self, io, conn):
        r = self._scripted("banner", conn.peer)
        if r is Sink.DROP:
            return
        banner = r or f"220 {self.hostname} ESMTP sink"
        io.send(banner)
        if not banner.startswith("2"):
            if banner.startswith("421"):
                return
            while True:
                ln = io.readline()
                if ln is None:
                    return
                if ln.upper().startswith("QUIT"):
                    io.send("221 2.0.0 Bye")
                    return
                io.send("503 5.5.1 Error: service not available")
        tx = None          # the Transaction being built
        greeted = False

        def abort_tx():
            nonlocal tx
            if tx is not None:
                tx.finished = time.monotonic()
                with self._cond:
                    self.transactions.append(tx)
                    self._cond.notify_all()
                tx = None

        try:
            while True:
                ln = io.readline()
                if ln is None:
                    return
                conn.commands.append(ln)
                verb = ln.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    abort_tx()
                    name = ln[5:].strip()
                    conn.ehlo = name
                    r = self._scripted(verb.lower(), name)
                    if r is Sink.DROP:
                        return
                    if r is None:
                        r = self._ehlo_lines(conn) if verb == "EHLO" else f"250 {self.hostname}"
                    greeted = r.startswith("2")
                    io.send(r)
                elif verb == "STARTTLS":
                    if self._tls_ctx is None or conn.tls:
                        io.send("502 5.5.1 Error: command not implemented")
                        continue
                    if io.pending():
                        io.send("554 5.5.1 Error: pipelined data after STARTTLS")
                        return
                    r = self._scripted("starttls", conn.peer)
                    if r is Sink.DROP:
                        return
                    if r is Sink.BAD_TLS:
                        # says yes, then answers the ClientHello in clear text
                        io.send("220 2.0.0 Ready to start TLS")
                        io.send("500 5.5.1 this is not a TLS ServerHello")
                        return
                    if r is not None:
                        io.send(r)
                        continue
                    io.send("220 2.0.0 Ready to start TLS")
                    io.starttls(self._tls_ctx)
                    with self._cond:
                        self._socks.add(io.sock)
                    conn.tls = True
                    greeted = False
                    abort_tx()
                elif verb == "MAIL":
                    m = _MAIL_RE.match(ln)
                    if not greeted:
                        io.send("503 5.5.1 Error: send HELO/EHLO first")
                        continue
                    if tx is not None:
                        io.send("503 5.5.1 Error: nested MAIL command")
                        continue
                    if not m:
                        io.send("501 5.5.4 Syntax: MAIL FROM:<address>")
                        continue
                    t = Transaction(conn, pipelined=io.pending())
                    t.mail_from = m.group(1)
                    t.mail_params = m.group(2).strip()
                    sz = _SIZE_RE.search(t.mail_params)
                    r = self._scripted("mail", t.mail_from)
                    if r is Sink.DROP:
                        return
                    if r is None and self.size and sz and int(sz.group(1)) > self.size:
                        r = "552 5.3.4 Message size exceeds fixed message size limit"
                    r = r or "250 2.1.0 Ok"
                    io.send(r)
                    if r.startswith("2"):
                        tx = t
                    else:
                        t.reply = r
                        t.finished = time.monotonic()
                        with self._cond:
                            self.transactions.append(t)
                            self._cond.notify_all()
                elif verb == "RCPT":
                    m = _RCPT_RE.match(ln)
                    if tx is None:
                        io.send("503 5.5.1 Error: need MAIL command")
                        continue
                    if not m:
                        io.send("501 5.5.4 Syntax: RCPT TO:<address>")
                        continue
                    addr = m.group(1)
                    r = self._scripted("rcpt", addr)
                    if r is Sink.DROP:
                        return
                    r = r or "250 2.1.5 Ok"
                    if r.startswith("2"):
                        tx.rcpts.append(addr)
                    else:
                        tx.refused.append((addr, r))
                    io.send(r)
                elif verb == "DATA":
                    if tx is None:
                        io.send("503 5.5.1 Error: need RCPT command")
                        continue
                    if not tx.rcpts:
                        io.send("554 5.5.1 Error: no valid recipients")
                        tx.reply = "554 5.5.1 Error: no valid recipients"
                        abort_tx()
                        continue
                    arg = tuple(tx.rcpts)
                    r = self._scripted("data", arg)
                    if r is Sink.DROP:
                        return
                    r = r or "354 End data with <CR><LF>.<CR><LF>"
                    io.send(r)
                    if not r.startswith("3"):
                        tx.reply = r
                        abort_tx()
                        continue
                    tx.data = io.read_data()
                    if tx.data is None:
                        return          # closed mid-message: recorded as aborted
                    if self.delay:
                        time.sleep(self.delay)
                    r = self._scripted("data_end", arg)
                    if r is Sink.DROP:
                        return
                    r = r or f"250 2.0.0 Ok: queued as S{next(self._qids):08d}"
                    tx.reply = r
                    conn.transactions += 1
                    abort_tx()          # recorded before it is answered
                    io.send(r)
                elif verb == "RSET":
                    abort_tx()
                    io.send("250 2.0.0 Ok")
                elif verb == "NOOP":
                    io.send("250 2.0.0 Ok")
                elif verb == "QUIT":
                    abort_tx()
                    self._ended(conn)
                    io.send("221 2.0.0 Bye")
                    return
                else:
                    io.send("502 5.5.2 Error: command not recognized")
        finally:
            abort_tx()                  # an unfinished transaction is kept, reply None


class _Closed(Exception):
    pass


class _LineIO:
    """Buffered CRLF line reader/writer over a socket (plain or TLS).

    Replies are held back while more pipelined commands are already
    buffered and flushed before the next blocking read (as Postfix does), so
    a pipelined envelope gets its replies in one segment."""

    def __init__(self, sock, timeout):
        self.sock = sock
        self.sock.settimeout(timeout)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.buf = b""
        self.out = b""

    def _fill(self):
        self.flush()
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _Closed()
        self.buf += chunk

    def pending(self):
        """True when unread bytes are buffered (commands sent without waiting)."""
        return bool(self.buf)

    def readline(self):
        """One line without its CRLF (str), or None when the peer closed."""
        try:
            while True:
                i = self.buf.find(b"\n")
                if i >= 0:
                    ln, self.buf = self.buf[:i], self.buf[i + 1:]
                    return ln.rstrip(b"\r").decode("utf-8", "replace")
                if len(self.buf) > 1 << 20:
                    raise _Closed()
                self._fill()
        except (_Closed, ConnectionResetError, socket.timeout):
            return None

    def read_data(self):
        """The message after a 354: lines up to "." with the dot-stuffing
        removed, CRLF-terminated; None when the peer closed first."""
        out = []
        try:
            while True:
                i = self.buf.find(b"\n")
                if i < 0:
                    self._fill()
                    continue
                ln, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                if ln in (b".\r\n", b".\n"):
                    return b"".join(out)
                if ln.startswith(b"."):
                    ln = ln[1:]
                out.append(ln)
        except (_Closed, ConnectionResetError, socket.timeout):
            return None

    def send(self, text, flush=False):
        if isinstance(text, str):
            text = text.encode("utf-8")
        self.out += text + b"\r\n"
        if text.startswith(b"421"):
            self.flush()
            raise _Closed()            # "421 ... closing transmission channel"
        if flush or not self.buf:
            self.flush()

    def flush(self):
        if self.out:
            out, self.out = self.out, b""
            self.sock.sendall(out)

    def starttls(self, ctx):
        self.flush()
        self.buf = b""
        self.sock = ctx.wrap_socket(self.sock, server_side=True)
