"""Shared harness for the end-to-end tests of `mta`.

The tests drive the real binary over loopback.  Python 3 standard library only;
run with the system interpreter:

    MTA_BIN=/path/to/build/mta/app/mta /usr/bin/python3 tests/e2e/test_intake.py

ctest sets MTA_BIN and MTA_SOURCE_DIR.  Without MTA_BIN the harness looks for a
build in a few usual places (see _find_binary) and skips the tests when it finds
none.  MTA_E2E_KEEP=1 keeps every temp dir (config, log, spool) for inspection;
the log tails of the daemons of a failed test are always printed to stderr.

Pieces:
  free_port()                   a port nobody listens on right now
  to_yaml(obj)                  dict/list/scalars -> block YAML
  base_config(**smtp)           a minimal valid config dict on free ports
  Mta(config)                   one daemon: start/stop/kill9/restart/log,
                                queue_list/queue_show/metrics, context manager
  check_config(path)            (exit code, stderr) of `mta check-config`
  SmtpConn / smtp_dialog()      raw SMTP client for protocol-abuse tests
  make_message(), message_id_of(), parse_stored()
  parse_metrics(), metric_value()
  make_cert(dir)                self-signed cert for STARTTLS
  E2ETestCase                   unittest.TestCase that dumps daemon logs on failure
"""

import atexit
import base64
import email.utils
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
import weakref

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("MTA_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))

HOSTNAME = "mta.test"
ID_RE = re.compile(r"\b([0-9a-f]{32})\b")
OK_RE = re.compile(r"^2\.0\.0 Ok ([0-9a-f]{32})\s*$")


def _find_binary():
    env = os.environ.get("MTA_BIN")
    if env:
        return env
    for cand in (
        os.path.join(SOURCE_DIR, "build", "mta", "app", "mta"),
        "/tmp/build-e2e/mta/app/mta",
        "/tmp/b0/mta/app/mta",
    ):
        if os.access(cand, os.X_OK):
            return cand
    return None


MTA_BIN = _find_binary()


def require_binary():
    """Call from setUpModule: skip everything when no binary is known."""
    if MTA_BIN is None:
        raise unittest.SkipTest("MTA_BIN not set and no build found")
    if not os.access(MTA_BIN, os.X_OK):
        raise RuntimeError(f"MTA_BIN={MTA_BIN} is not an executable")


# --------------------------------------------------------------------------
# ports, YAML, config


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind port 0, close, return it)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    # JSON strings are valid YAML double-quoted scalars.
    return json.dumps(str(v))


def to_yaml(obj, indent=0):
    """Block-style YAML for dicts/lists/scalars (strings always double-quoted)."""
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:\n{to_yaml(v, indent + 2)}")
            elif isinstance(v, dict):
                out.append(f"{pad}{k}: {{}}\n")
            elif isinstance(v, list):
                out.append(f"{pad}{k}: []\n")
            else:
                out.append(f"{pad}{k}: {_yaml_scalar(v)}\n")
        return "".join(out)
    if isinstance(obj, list):
        if not obj:
            return pad + "[]\n"
        for v in obj:
            if isinstance(v, dict) and v:
                inner = to_yaml(v, indent + 2)
                # "- " replaces the first two spaces of the first line
                out.append(pad + "- " + inner[indent + 2:])
            elif isinstance(v, list) and v:
                out.append(pad + "-\n" + to_yaml(v, indent + 2))
            elif isinstance(v, dict):
                out.append(pad + "- {}\n")
            elif isinstance(v, list):
                out.append(pad + "- []\n")
            else:
                out.append(f"{pad}- {_yaml_scalar(v)}\n")
        return "".join(out)
    return pad + _yaml_scalar(obj) + "\n"


def base_config(listeners=None, metrics=True, **smtp):
    """A small valid config: one listener on a free port, metrics on a free port,
    pool `main`, sets `default` (the default), `transactional`, `bulk`.
    Keyword arguments go into the `smtp` section."""
    if listeners is None:
        listeners = [{"listen": f"127.0.0.1:{free_port()}"}]
    cfg = {
        "hostname": HOSTNAME,
        "log_level": "debug",
        "smtp": dict({"listeners": listeners}, **smtp),
    }
    if metrics:
        cfg["metrics"] = {"listen": f"127.0.0.1:{free_port()}"}
    cfg["ip_pools"] = [
        {"name": "main", "ips": [{"address": "127.0.0.1", "ehlo": "o1.mta.test"}]},
    ]
    cfg["configuration_sets"] = [
        {"name": "default", "ip_pool": "main", "priority": "normal"},
        {"name": "transactional", "ip_pool": "main", "priority": "high"},
        {"name": "bulk", "ip_pool": "main", "priority": "bulk"},
    ]
    cfg["default_configuration_set"] = "default"
    # Intake tests inspect the spool, so nothing may leave it: every domain
    # routes to a loopback port where nothing listens (connection refused
    # -> deferred), retried only after an hour.
    cfg["routes"] = [{"domain": "*", "hosts": [f"127.0.0.1:{free_port()}"]}]
    cfg["retry"] = {"intervals": ["1h"], "max_age": "3d"}
    return cfg


def _split_hostport(s):
    s = str(s)
    if s.startswith("["):
        host, _, port = s[1:].partition("]:")
        return host, int(port)
    host, _, port = s.rpartition(":")
    return host, int(port)


def _connect_host(host):
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def run_cli(*args, timeout=30, input=None):
    """Run `mta ARGS...`; returns subprocess.CompletedProcess with bytes output."""
    return subprocess.run([MTA_BIN, *args], capture_output=True, timeout=timeout,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL)


def check_config(path):
    """`mta check-config --config PATH` -> (exit code, stderr text)."""
    p = run_cli("check-config", "--config", path)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def check_config_full(path):
    """Like check_config but the whole CompletedProcess (stdout too)."""
    return run_cli("check-config", "--config", path)


# --------------------------------------------------------------------------
# the daemon

_ALL = weakref.WeakSet()
_ALL_LOCK = threading.Lock()


def _kill_all():
    with _ALL_LOCK:
        live = list(_ALL)
    for m in live:
        try:
            m._hard_kill()
        except Exception:
            pass


atexit.register(_kill_all)


def _on_sigterm(signum, frame):
    # ctest (timeout) or a user stopping the run: take the daemons down too
    _kill_all()
    os._exit(128 + signum)


if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _on_sigterm)


def _die_with_parent():
    """preexec_fn: the daemon gets SIGKILL if this test process dies, even by
    SIGKILL (Linux PR_SET_PDEATHSIG), so no daemon outlives its test."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)   # PR_SET_PDEATHSIG = 1
    except Exception:
        pass


class MtaError(Exception):
    pass


class Mta:
    """One `mta serve` process with its own temp dir, config, log and spool."""

    def __init__(self, config=None, name="mta", start_timeout=15.0):
        if config is None:
            config = base_config()
        self.name = name
        self.start_timeout = start_timeout
        self.dir = tempfile.mkdtemp(prefix=f"mta-e2e-{name}-")
        self.config_path = os.path.join(self.dir, "mta.yaml")
        self.log_path = os.path.join(self.dir, "mta.log")
        self.proc = None
        self._logf = None
        self.expect_exit = False
        if isinstance(config, dict):
            config = dict(config)
            config.setdefault("spool_dir", os.path.join(self.dir, "spool"))
            self.config = config
            text = to_yaml(config)
        else:
            text = str(config)
            self.config = None
            if not re.search(r"^spool_dir\s*:", text, re.M):
                text = text.rstrip("\n") + "\n" + f"spool_dir: {json.dumps(os.path.join(self.dir, 'spool'))}\n"
        self.config_text = text
        with open(self.config_path, "w") as f:
            f.write(text)
        self.listeners = self._find_listeners()
        self.metrics_addr = self._find_metrics()
        with _ALL_LOCK:
            _ALL.add(self)

    # -- config introspection -------------------------------------------------

    def _find_listeners(self):
        out = []
        if self.config is not None:
            for lst in self.config.get("smtp", {}).get("listeners", []):
                h, p = _split_hostport(lst["listen"])
                out.append((_connect_host(h), p))
        else:
            # the `listen:` entries inside the top-level smtp: block
            m = re.search(r"^smtp\s*:.*?(?=^\S|\Z)", self.config_text, re.M | re.S)
            block = m.group(0) if m else ""
            for m in re.finditer(r"listen\s*:\s*\"?([^\s\",}]+)\"?", block):
                h, p = _split_hostport(m.group(1))
                out.append((_connect_host(h), p))
        return out

    def _find_metrics(self):
        if self.config is not None:
            m = self.config.get("metrics") or {}
            if "listen" in m:
                h, p = _split_hostport(m["listen"])
                return (_connect_host(h), p)
            return None
        m = re.search(r"^metrics\s*:\s*\n?\s*\{?\s*listen\s*:\s*\"?([^\s\"}]+)", self.config_text, re.M)
        if m:
            h, p = _split_hostport(m.group(1))
            return (_connect_host(h), p)
        return None

    @property
    def host(self):
        return self.listeners[0][0]

    @property
    def port(self):
        return self.listeners[0][1]

    @property
    def spool_dir(self):
        if self.config is not None:
            return self.config["spool_dir"]
        m = re.search(r"^spool_dir\s*:\s*\"?([^\"\n]+)\"?", self.config_text, re.M)
        return m.group(1).strip() if m else None

    # -- lifecycle ---------------------------------------------------------------

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        if self.alive():
            raise MtaError("already running")
        self.expect_exit = False
        self._close_log()
        self._logf = open(self.log_path, "ab")
        self._logf.write(f"===== harness: start {time.strftime('%H:%M:%S')} =====\n".encode())
        self._logf.flush()
        self.proc = subprocess.Popen(
            [MTA_BIN, "serve", "--config", self.config_path],
            stdin=subprocess.DEVNULL, stdout=self._logf, stderr=self._logf,
            start_new_session=True,
            preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread() else None)
        deadline = time.monotonic() + self.start_timeout
        last = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self._close_log()
                raise MtaError(f"mta exited with {rc} during start-up\n--- log tail ---\n{self.log_tail()}")
            ok, last = self._probe_banner()
            if ok:
                return self
            time.sleep(0.05)
        self._hard_kill()
        raise MtaError(f"mta did not serve SMTP on {self.host}:{self.port} within "
                       f"{self.start_timeout}s ({last})\n--- log tail ---\n{self.log_tail()}")

    def _probe_banner(self):
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                s.settimeout(2.0)
                data = b""
                while b"\n" not in data:
                    chunk = s.recv(1024)
                    if not chunk:
                        return False, f"closed before banner ({data!r})"
                    data += chunk
                if data.startswith(b"220"):
                    try:
                        s.sendall(b"QUIT\r\n")
                        s.recv(1024)
                    except OSError:
                        pass
                    return True, "ok"
                return False, f"banner {data!r}"
        except OSError as e:
            return False, repr(e)

    def stop(self, timeout=10.0):
        """SIGTERM, wait up to `timeout` s; returns the exit code.  If it is still
        running after that, SIGKILL and return the (negative) code of that."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.expect_exit = True
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._note(f"did not exit within {timeout}s of SIGTERM; SIGKILL")
                self._hard_kill()
        rc = self.proc.returncode
        self._close_log()
        return rc

    def kill9(self):
        if self.proc is None:
            return None
        self.expect_exit = True
        self._hard_kill()
        self._close_log()
        return self.proc.returncode

    def restart(self, kill=False):
        rc = self.kill9() if kill else self.stop()
        self.start()
        return rc

    def _hard_kill(self):
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def _note(self, text):
        try:
            with open(self.log_path, "ab") as f:
                f.write(f"===== harness: {text} =====\n".encode())
        except OSError:
            pass

    def _close_log(self):
        if self._logf is not None:
            try:
                self._logf.close()
            except OSError:
                pass
            self._logf = None

    def close(self, remove=None):
        """Stop (SIGTERM, then SIGKILL) and remove the temp dir unless MTA_E2E_KEEP."""
        self.stop()
        if remove is None:
            remove = not os.environ.get("MTA_E2E_KEEP")
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)
        with _ALL_LOCK:
            _ALL.discard(self)

    def __enter__(self):
        if not self.alive():
            self.start()
        return self

    def __exit__(self, *exc):
        self.close(remove=False if exc[0] is not None else None)
        return False

    def __del__(self):
        try:
            self._hard_kill()
        except Exception:
            pass

    # -- logs --------------------------------------------------------------------

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    # -- CLI helpers -------------------------------------------------------------

    def cli(self, *args, timeout=30):
        return run_cli(*args, timeout=timeout)

    def queue_list(self):
        """Entries of `mta queue list --json` as a list of dicts."""
        p = run_cli("queue", "list", "--config", self.config_path, "--json")
        if p.returncode != 0:
            raise MtaError(f"queue list exited {p.returncode}: {p.stderr.decode(errors='replace')}")
        out = []
        for line in p.stdout.decode("utf-8").splitlines():
            line = line.strip()
            if line:
                out.append(json.loads(line))
        return out

    def queue_ids(self):
        return {e["id"] for e in self.queue_list()}

    def queue_entry(self, msg_id):
        for e in self.queue_list():
            if e.get("id") == msg_id:
                return e
        return None

    def queue_show(self, msg_id):
        """The stored message (bytes) of `mta queue show`; raises on non-zero exit."""
        p = run_cli("queue", "show", "--config", self.config_path, msg_id)
        if p.returncode != 0:
            raise MtaError(f"queue show {msg_id} exited {p.returncode}: {p.stderr.decode(errors='replace')}")
        return p.stdout

    def check_config(self):
        return check_config(self.config_path)

    # -- metrics -----------------------------------------------------------------

    def metrics(self, timeout=5.0):
        """Text of GET http://METRICS/metrics (retries for a few seconds while
        the listener is not up yet)."""
        if self.metrics_addr is None:
            raise MtaError("no metrics listener configured")
        h, p = self.metrics_addr
        if ":" in h:
            h = f"[{h}]"
        url = f"http://{h}:{p}/metrics"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    return r.read().decode("utf-8")
            except (urllib.error.URLError, ConnectionError) as e:
                if time.monotonic() > deadline:
                    raise MtaError(f"GET {url}: {e}")
                time.sleep(0.1)

    def metric(self, name, **labels):
        return metric_value(self.metrics(), name, **labels)

    # -- SMTP shortcuts ----------------------------------------------------------

    def connect(self, listener=0, source=None, timeout=10.0):
        h, p = self.listeners[listener]
        return SmtpConn(p, host=h, source=source, timeout=timeout)

    def send(self, data=None, mail_from="sender@src.test", rcpts=("rcpt@dst.test",),
             listener=0, source=None, ehlo="client.test", mail_params=""):
        """One transaction on a fresh connection; returns the final Reply (the
        first non-success reply if a step failed).  `.id` on the Reply holds the
        message id when it was accepted."""
        if data is None:
            data = make_message()
        with self.connect(listener, source=source) as c:
            c.expect(220)
            c.expect(250, f"EHLO {ehlo}")
            r = c.transaction(mail_from, rcpts, data, mail_params=mail_params)
            c.quit()
            return r


# --------------------------------------------------------------------------
# raw SMTP client


class Reply:
    """One (possibly multi-line) SMTP reply."""

    def __init__(self, code, lines):
        self.code = code          # int; 0 when the connection closed instead
        self.lines = lines        # text after "NNN-" / "NNN " for each line

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def enh(self):
        """Enhanced status code of the first line ("5.5.2") or ""."""
        if not self.lines:
            return ""
        m = re.match(r"^([245]\.\d{1,3}\.\d{1,3})\b", self.lines[0])
        return m.group(1) if m else ""

    @property
    def id(self):
        """Message id of a `250 2.0.0 Ok <id>` reply, else None."""
        if self.code != 250 or not self.lines:
            return None
        m = OK_RE.match(self.lines[-1])
        return m.group(1) if m else None

    def __repr__(self):
        if self.code == 0:
            return "<connection closed>"
        return " | ".join(f"{self.code} {l}" for l in self.lines)

    __str__ = __repr__


CLOSED = Reply(0, [])


class SmtpError(Exception):
    pass


class SmtpConn:
    """Raw SMTP client.  Nothing is sent implicitly: call reply() for the banner."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=10.0):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            if source:
                self.sock.bind((source, 0))
            self.sock.connect((host, port))
        except OSError:
            self.sock.close()          # no ResourceWarning for a refused connection
            raise
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.host = host

    # -- I/O ----------------------------------------------------------------------

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def line(self, text):
        """Send one command line (CRLF appended)."""
        self.send((text.encode("utf-8") if isinstance(text, str) else text) + b"\r\n")

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        except ssl.SSLError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def _readline(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                ln, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return ln.rstrip(b"\r\n").decode("utf-8", "replace")
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out waiting for a reply line")
            self._fill(left)

    def reply(self, timeout=None):
        """Read one reply.  Returns CLOSED (code 0) when the server closed the
        connection before a complete reply; raises socket.timeout on timeout."""
        timeout = self.timeout if timeout is None else timeout
        lines = []
        code = None
        while True:
            ln = self._readline(timeout)
            if ln is None:
                return CLOSED if not lines else Reply(code, lines)
            m = re.match(r"^(\d{3})([ -]?)(.*)$", ln)
            if not m:
                raise SmtpError(f"malformed reply line {ln!r}")
            code = int(m.group(1))
            lines.append(m.group(3))
            if m.group(2) != "-":
                return Reply(code, lines)

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def cmd(self, text, timeout=None):
        """Send a command line and read its reply."""
        self.line(text)
        return self.reply(timeout)

    def expect(self, code, text=None, timeout=None):
        """Send `text` (if given), read a reply, assert its code."""
        if text is not None:
            self.line(text)
        r = self.reply(timeout)
        if r.code != code:
            raise SmtpError(f"expected {code} to {text!r}, got {r}")
        return r

    def closed(self, timeout=5.0):
        """True if the server closes the connection within `timeout` (any data
        still arriving is discarded)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self._fill(left)
            except socket.timeout:
                return False
            except OSError:
                return True
            self.buf = b""
        return True

    def read_all(self, timeout=5.0):
        """Every reply until the server closes (or `timeout` passes)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                r = self.reply(left)
            except socket.timeout:
                break
            if r.code == 0:
                break
            out.append(r)
        return out

    # -- SMTP verbs --------------------------------------------------------------

    def ehlo(self, name="client.test"):
        """EHLO; returns (Reply, set of upper-cased extension lines)."""
        r = self.cmd(f"EHLO {name}")
        return r, [l.upper() for l in r.lines[1:]]

    def data(self, content, timeout=None):
        """Send message content (bytes, CRLF or not) dot-stuffed plus the final
        ".", and read the final reply.  DATA itself must have been answered."""
        self.send(dot_stuff(content) + b".\r\n")
        return self.reply(timeout)

    def transaction(self, mail_from, rcpts, content, mail_params="", timeout=None):
        """MAIL, RCPT..., DATA, content.  Returns the final reply, or the first
        reply that failed (MAIL, every RCPT failing, DATA).  Individual RCPT
        replies are kept in self.rcpt_replies."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        r = self.cmd(f"MAIL FROM:<{mail_from}>{mail_params}")
        if r.code != 250:
            return r
        self.rcpt_replies = []
        for a in rcpts:
            self.rcpt_replies.append(self.cmd(f"RCPT TO:<{a}>"))
        if not any(x.code == 250 for x in self.rcpt_replies):
            self.cmd("RSET")
            return self.rcpt_replies[-1] if self.rcpt_replies else Reply(0, [])
        r = self.cmd("DATA")
        if r.code != 354:
            return r
        return self.data(content, timeout)

    def auth_plain(self, user, password):
        tok = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return self.cmd(f"AUTH PLAIN {tok}")

    def auth_login(self, user, password):
        r = self.cmd("AUTH LOGIN")
        if r.code != 334:
            return r
        r = self.cmd(base64.b64encode(user.encode()).decode())
        if r.code != 334:
            return r
        return self.cmd(base64.b64encode(password.encode()).decode())

    def starttls(self, context=None):
        """STARTTLS and the handshake; returns the STARTTLS reply.  Buffered
        plaintext after the 220 is kept in self.pre_tls_leftover."""
        r = self.cmd("STARTTLS")
        if r.code != 220:
            return r
        if context is None:
            context = unverified_tls_context()
        self.pre_tls_leftover = self.buf
        self.buf = b""
        self.sock.settimeout(self.timeout)
        self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
        return r

    def quit(self):
        try:
            r = self.cmd("QUIT", timeout=5)
        except OSError:
            r = CLOSED
        self.close()
        return r

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def smtp_dialog(port, lines, host="127.0.0.1", source=None, timeout=10.0):
    """Connect, read the banner, then for each item send it and read replies.

    Items: a str is a command line (CRLF appended), one reply is read;
    bytes are sent verbatim and one reply is read; a tuple (str|bytes, n) sends
    the item (str gets CRLF) and reads n replies (n may be 0).
    Returns the list of Replies, banner first.  Stops early when the server
    closes the connection (the last element is then CLOSED)."""
    out = []
    with SmtpConn(port, host=host, source=source, timeout=timeout) as c:
        out.append(c.reply())
        if out[-1].code == 0:
            return out
        for item in lines:
            n = 1
            if isinstance(item, tuple):
                item, n = item
            if isinstance(item, str):
                item = item.encode("utf-8") + b"\r\n"
            try:
                c.send(item)
            except OSError:
                out.append(CLOSED)
                return out
            for _ in range(n):
                r = c.reply()
                out.append(r)
                if r.code == 0:
                    return out
    return out


def unverified_tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --------------------------------------------------------------------------
# messages


def dot_stuff(content):
    """CRLF-terminate and dot-stuff message content (bytes)."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    if content and not content.endswith(b"\n"):
        content += b"\r\n"
    lines = content.split(b"\n")
    out = []
    for i, ln in enumerate(lines):
        if ln.startswith(b"."):
            ln = b"." + ln
        out.append(ln)
    return b"\n".join(out)


def make_message(subject="test", body="Hello.\r\n", headers=None, size=None,
                 from_="sender@src.test", to="rcpt@dst.test"):
    """RFC 5322 message (bytes, CRLF).  `headers` is a list of (name, value) or
    raw header lines added after the standard ones.  `size` pads the body with
    76-character lines to roughly that many bytes."""
    hs = [f"From: <{from_}>", f"To: <{to}>", f"Subject: {subject}"]
    for h in headers or []:
        hs.append(h if isinstance(h, str) else f"{h[0]}: {h[1]}")
    if isinstance(body, str):
        body = body.encode("utf-8")
    head = ("\r\n".join(hs) + "\r\n\r\n").encode("utf-8")
    if size is not None:
        line = b"x" * 76 + b"\r\n"
        need = size - len(head) - len(body)
        if need > 0:
            body += line * (need // len(line) + 1)
    return head + body


def split_message(raw):
    """bytes -> (list of unfolded (name, value) headers, body bytes)."""
    sep = raw.find(b"\r\n\r\n")
    if sep < 0:
        head, body = raw, b""
    else:
        head, body = raw[:sep + 2], raw[sep + 4:]
    headers = []
    for ln in head.split(b"\r\n"):
        if not ln:
            continue
        if ln[:1] in (b" ", b"\t") and headers:
            n, v = headers[-1]
            headers[-1] = (n, v + " " + ln.decode("utf-8", "replace").strip())
            continue
        n, _, v = ln.decode("utf-8", "replace").partition(":")
        headers.append((n, v.strip()))
    return headers, body


def header_values(headers, name):
    return [v for n, v in headers if n.lower() == name.lower()]


def has_bare_lf(raw):
    return re.search(rb"(?<!\r)\n", raw) is not None


def message_id_of(reply):
    """Id from a Reply or a reply text; None when absent."""
    if isinstance(reply, Reply):
        return reply.id
    m = re.search(r"2\.0\.0 Ok ([0-9a-f]{32})", str(reply))
    return m.group(1) if m else None


def parse_rfc3339(s):
    import datetime
    s = s.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    return datetime.datetime.fromisoformat(s)


# --------------------------------------------------------------------------
# metrics

_SAMPLE_RE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+([-+]?[0-9.eE+-]+|NaN|[+-]?Inf)(\s+-?\d+)?$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def parse_metrics(text):
    """Prometheus text -> list of (name, {label: value}, float).  Raises
    ValueError on a line that is neither a comment nor a sample."""
    out = []
    for ln in text.splitlines():
        if not ln.strip() or ln.startswith("#"):
            continue
        m = _SAMPLE_RE.match(ln.strip())
        if not m:
            raise ValueError(f"bad metrics line {ln!r}")
        labels = {}
        if m.group(3):
            pos = 0
            s = m.group(3)
            while pos < len(s):
                lm = _LABEL_RE.match(s, pos)
                if not lm:
                    raise ValueError(f"bad labels in {ln!r}")
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        out.append((m.group(1), labels, float(m.group(4))))
    return out


def metric_value(text, name, **labels):
    """Sum of the samples called `name` whose labels include `labels`;
    None when there is no such sample."""
    total = None
    for n, ls, v in parse_metrics(text):
        if n != name:
            continue
        if all(ls.get(k) == str(val) for k, val in labels.items()):
            total = (total or 0.0) + v
    return total


# --------------------------------------------------------------------------
# TLS


def make_cert(d):
    """Self-signed cert for CN=localhost in directory d; returns (cert, key)."""
    cert = os.path.join(d, "cert.pem")
    key = os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-subj", "/CN=localhost", "-days", "2",
                    "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


# --------------------------------------------------------------------------
# unittest glue


class E2ETestCase(unittest.TestCase):
    """Keeps track of the daemons a test (or its class) creates and prints
    their log tails when the test fails (their temp dirs are then kept)."""

    @classmethod
    def class_mta(cls, config=None, name=None, start=True):
        """A daemon shared by the class, started now, stopped in class cleanup."""
        m = Mta(config, name=name or cls.__name__)
        if "_own_mtas" not in cls.__dict__:
            cls._own_mtas = []
            cls._class_failed = False
        cls._own_mtas.append(m)
        cls.addClassCleanup(lambda: m.close(remove=False if cls._class_failed else None))
        if start:
            m.start()
        return m

    def mta(self, config=None, name=None, start=True):
        """A daemon for this test only, stopped by cleanup."""
        m = Mta(config, name=name or self._testMethodName)
        self._test_mtas.append(m)
        self.addCleanup(m.stop)
        if start:
            m.start()
        return m

    def run(self, result=None):
        self._test_mtas = []
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        failed = len(result.failures) + len(result.errors) > before
        if failed:
            type(self)._class_failed = True
            for m in self._test_mtas + list(type(self).__dict__.get("_own_mtas", [])):
                sys.stderr.write(f"\n----- {self.id()}: log tail of {m.name} ({m.log_path}) -----\n")
                sys.stderr.write(m.log_tail(60) + "\n")
        for m in self._test_mtas:
            m.close(remove=False if failed else None)
        return out

    # assertions used everywhere
    def assertReply(self, reply, code, enh=None, msg=None):
        self.assertEqual(reply.code, code, msg or f"reply was {reply}")
        if enh is not None:
            self.assertEqual(reply.enh, enh, msg or f"reply was {reply}")

    def assertAccepted(self, reply):
        self.assertEqual(reply.code, 250, f"expected 250 2.0.0 Ok <id>, got {reply}")
        self.assertIsNotNone(reply.id, f"no `2.0.0 Ok <32 hex>` in {reply}")
        return reply.id


def main():
    unittest.main(verbosity=2)
