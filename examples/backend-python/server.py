#!/usr/bin/env python3
"""The example chat app of examples/backend (Go) in Python 3.11, standard
library only (http.server, hmac, json): the same login endpoint and the same
four webhooks of docs/webhooks.md, with the same answers, byte for byte, for
every request the channels handler sends.

    CHANNELS_WEBHOOK_SECRET=... python3 examples/backend-python/server.py --listen 127.0.0.1:3000

    POST /login           {"name":"alice"} or name=alice -> {"token":"..."}
    POST /socket/connect  verifies params.token -> socket id and assigns
    POST /channels/join   room:* for everyone, room:private-* for members
    POST /channels/event  new_msg, shout, whoami, rename, bye, ping_me, echo
    POST /channels/leave  logs the notification, answers 204

The address comes from --listen (or -listen, as in Go), else the LISTEN
environment variable, else 127.0.0.1:3000; port 0 picks a free port. The app
prints "listening on http://<host>:<port>" (the bound port) on stderr once it
accepts connections. It refuses to start without CHANNELS_WEBHOOK_SECRET
unless --insecure is given, in which case webhook signatures are not checked.
"""

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import signal
import sys
import threading
import socket
import time
import unicodedata
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20  # the largest request body the app reads
SIGNATURE_TOLERANCE = 300  # seconds a signature's timestamp may be off, either way
TOKEN_TTL = 24 * 60 * 60  # seconds a login token stays valid
MAX_NAME_LEN = 32
MAX_MESSAGE_LEN = 4000
EVENT_HEADER = "X-Channels-Event"
SIGNATURE_HEADER = "X-Channels-Signature"
# who may join room:<subtopic> for private subtopics
MEMBERS = {"private-staff": ["alice", "bob"]}

_log_lock = threading.Lock()


def logf(msg):
    """Logs like Go's log.New(os.Stderr, "chat: ", log.LstdFlags)."""
    line = "chat: " + time.strftime("%Y/%m/%d %H:%M:%S") + " " + msg + "\n"
    with _log_lock:
        sys.stderr.write(line)
        sys.stderr.flush()


# ---- JSON, encoded as Go's encoding/json does ----
# Answers must be byte-identical to the Go app's: map keys sorted by their
# UTF-8 bytes (code points), struct fields in declaration order (Struct),
# HTML characters and U+2028/U+2029 escaped, numbers as float64.


class Struct(dict):
    """A Go struct: its keys keep their order."""


_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def go_string(s):
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif c < 0x20 or ch in "<>&" or c in (0x2028, 0x2029):
            out.append("\\u%04x" % c)
        elif 0xD800 <= c <= 0xDFFF:
            out.append("\ufffd")  # Go decodes lone surrogates to U+FFFD
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_json(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return go_number(float(v))
    if isinstance(v, str):
        return go_string(v)
    if isinstance(v, list):
        return "[" + ",".join(go_json(x) for x in v) + "]"
    keys = list(v.keys()) if isinstance(v, Struct) else sorted(v.keys())
    return "{" + ",".join(go_string(k) + ":" + go_json(v[k]) for k in keys) + "}"


def go_number(f):
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    r = repr(f)
    sign = "-" if r.startswith("-") else ""
    mant, _, exp = r.lstrip("-").partition("e")
    ip, _, fp = mant.partition(".")
    digits = (ip + fp).lstrip("0")
    e = (int(exp) if exp else 0) - len(fp)  # abs(f) == int(digits) * 10**e
    stripped = digits.rstrip("0")
    e += len(digits) - len(stripped)
    digits = stripped
    a = abs(f)
    if a < 1e-6 or a >= 1e21:
        sci = e + len(digits) - 1
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        if sci < 0:
            return "%s%se-%d" % (sign, m, -sci)  # Go cleans e-07 to e-7
        return "%s%se+%02d" % (sign, m, sci)
    if e >= 0:
        return sign + digits + "0" * e
    point = len(digits) + e
    if point > 0:
        return sign + digits[:point] + "." + digits[point:]
    return sign + "0." + "0" * (-point) + digits


# ---- decoding request bodies with Go's type checks ----


class DecodeError(Exception):
    pass


def _no_constants(name):
    raise ValueError("invalid character %r looking for beginning of value" % name[0])


def parse_json(text):
    # Numbers become float64 as in Go; NaN and Infinity are not JSON.
    return json.loads(text, parse_int=float, parse_constant=_no_constants)


def json_kind(v):
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, float):
        return "number"
    if isinstance(v, list):
        return "array"
    return "object"


SOCKET_FIELDS = {"id": "string", "transport": "string", "vsn": "string", "remote_ip": "string", "assigns": "map"}
GO_TYPES = {"string": "string", "map": "map[string]interface {}", "bytes": "[]uint8", "socket": "chat.socketInfo"}
FITS = {"string": "string", "bytes": "string", "map": "object", "socket": "object"}


def check_fields(obj, fields, struct_name, prefix):
    """Raises Go's UnmarshalTypeError message for the first value (in
    document order) whose JSON type does not fit its Go field. null fits
    everything; "raw" fields take any value."""
    for key, value in obj.items():
        want = fields.get(key)
        if not want or want == "raw" or value is None:
            continue
        kind = json_kind(value)
        if FITS[want] != kind:
            raise DecodeError("json: cannot unmarshal %s into Go struct field %s.%s%s of type %s"
                              % (kind, struct_name, prefix, key, GO_TYPES[want]))
        if want == "socket":
            check_fields(value, SOCKET_FIELDS, "socketInfo", prefix + key + ".")


_B64_STD = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def decode_std(s):
    """Decodes standard base64 with padding, as Go's base64.StdEncoding
    (which skips \\r and \\n)."""
    clean = s.replace("\r", "").replace("\n", "")
    if not _B64_STD.fullmatch(clean):
        m = re.search(r"[^A-Za-z0-9+/=]", clean)
        i = m.start() if m else max(0, len(clean) - (len(clean) % 4 or 4))
        raise DecodeError("illegal base64 data at input byte %d" % i)
    return base64.b64decode(clean)


def decode(body, struct_name, fields):
    """Parses a webhook body into a dict (null is {}), checking the fields
    that Go decodes into typed struct fields."""
    text = body.decode("utf-8", "replace")
    if text.strip(" \t\r\n") == "":
        raise DecodeError("unexpected end of JSON input")
    try:
        v = parse_json(text)
    except (ValueError, RecursionError) as err:
        raise DecodeError(str(err)) from None
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise DecodeError("json: cannot unmarshal %s into Go value of type chat.%s" % (json_kind(v), struct_name))
    check_fields(v, fields, struct_name, "")
    return v


def string(v):
    return v if isinstance(v, str) else ""


def assigns_of(req):
    sock = req.get("socket")
    a = sock.get("assigns") if isinstance(sock, dict) else None
    return a if isinstance(a, dict) else {}


# Go's unicode.IsSpace, for strings.TrimSpace.
SPACE = "\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def trim_space(s):
    return s.strip(SPACE)


def utf8_len(s):
    return len(s.encode("utf-8", "surrogatepass"))


def has_non_finite(v):
    if isinstance(v, float):
        return not math.isfinite(v)
    if isinstance(v, dict):
        return any(has_non_finite(x) for x in v.values())
    if isinstance(v, list):
        return any(has_non_finite(x) for x in v)
    return False


# ---- signatures ----

_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*", re.ASCII)


def verify_signature(secret, header, body, now):
    """Returns None if header (X-Channels-Signature) signs body, the raw
    request bytes, with secret, within SIGNATURE_TOLERANCE of now; else the
    reason. Like chat.VerifySignature."""
    if not header:
        return "missing signature header"
    ts, sigs = "", []
    for part in header.split(","):
        key, eq, value = trim_space(part).partition("=")
        if not eq:
            continue
        if key == "t":
            if ts != "":
                return "signature header has more than one timestamp"
            ts = value
        elif key == "v1":
            if not _HEX.fullmatch(value):
                return "decoding v1 signature: invalid hex"
            sigs.append(bytes.fromhex(value))
    if ts == "" or not sigs:
        return "signature header needs t= and v1="
    if not _INT.fullmatch(ts):
        return "parsing signature timestamp: invalid syntax"
    unix = int(ts)
    if not -(1 << 63) <= unix < (1 << 63):
        return "parsing signature timestamp: value out of range"
    want = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).digest()
    matched = False
    for sig in sigs:
        if hmac.compare_digest(sig, want):
            matched = True
    if not matched:
        return "signature does not match"
    if unix < now - SIGNATURE_TOLERANCE or unix > now + SIGNATURE_TOLERANCE:
        return "signature timestamp %d is more than 5m0s away from the local clock" % unix
    return None


# ---- tokens ----

_NAME = re.compile(r"[A-Za-z0-9_.-]+", re.ASCII)


def go_quote(s):
    """Go's %q (strconv.Quote) of a string."""
    esc = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", '"': '\\"', "\\": "\\\\"}
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch in esc:
            out.append(esc[ch])
        elif c < 0x20 or c == 0x7F:
            out.append("\\x%02x" % c)
        elif 0xD800 <= c <= 0xDFFF:
            out.append("\ufffd")
        elif ch == " " or unicodedata.category(ch)[0] in "LMNPS":
            out.append(ch)
        elif c < 0x10000:
            out.append("\\u%04x" % c)
        else:
            out.append("\\U%08x" % c)
    out.append('"')
    return "".join(out)


def valid_name(name):
    if name == "" or utf8_len(name) > MAX_NAME_LEN:
        return "name must have 1 to %d characters" % MAX_NAME_LEN
    if not _NAME.fullmatch(name):
        return "name may only contain letters, digits, '_', '-' and '.', got " + go_quote(name)
    return None


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class App:
    def __init__(self, secret):
        self.secret = secret.encode()
        if secret:
            # A key of its own for login tokens, derived from the secret, so
            # a token can never pass for a webhook signature or the reverse.
            self.token_key = hmac.new(self.secret, b"chat login tokens v1", hashlib.sha256).digest()
        else:
            self.token_key = secrets.token_bytes(32)

    @staticmethod
    def now():
        return int(time.time())

    def token_mac(self, claims):
        return hmac.new(self.token_key, claims.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()

    def issue_token(self, name):
        """Returns (token, error)."""
        err = valid_name(name)
        if err:
            return None, "issuing token: " + err
        claims = b64url(name.encode()) + "." + str(self.now() + TOKEN_TTL)
        return claims + "." + b64url(self.token_mac(claims)), None

    def verify_token(self, token):
        """Returns (name, error)."""
        if token == "":
            return None, "no token"
        claims, dot, sig_text = token.rpartition(".")
        if not dot:
            return None, "malformed token"
        want = b64url(self.token_mac(claims)).encode()
        if not hmac.compare_digest(sig_text.encode("utf-8", "surrogatepass"), want):
            return None, "token signature does not match"
        name_text, dot, exp_text = claims.partition(".")
        if not dot:
            return None, "malformed token claims"
        if not _INT.fullmatch(exp_text):
            return None, "parsing token expiry: invalid syntax"
        if self.now() >= int(exp_text):
            return None, "token expired"
        if not re.fullmatch(r"[A-Za-z0-9_-]*", name_text) or len(name_text) % 4 == 1:
            return None, "decoding token name: illegal base64 data"
        name = base64.urlsafe_b64decode(name_text + "=" * (-len(name_text) % 4)).decode("utf-8", "replace")
        err = valid_name(name)
        if err:
            return None, "token name: " + err
        return name, None

    # ---- webhooks: each returns (status, answer or None) ----

    def connect(self, body):
        req = decode(body, "connectRequest", {"socket": "socket", "params": "map", "auth_token": "string"})
        params = req.get("params")
        token = string(params.get("token")) if isinstance(params, dict) else ""
        if token == "" and isinstance(req.get("auth_token"), str):
            token = req["auth_token"]
        sock = req.get("socket")
        remote_ip = string(sock.get("remote_ip")) if isinstance(sock, dict) else ""
        name, err = self.verify_token(token)
        if err:
            logf("connect: refused %s: %s" % (remote_ip, err))
            return 403, Struct(status="error")
        logf("connect: %s from %s" % (name, remote_ip))
        return 200, Struct(status="ok", id="user_socket:" + name, assigns={"user": name})

    def join(self, body):
        req = decode(body, "joinRequest", {"socket": "socket", "topic": "string", "payload": "raw", "join_ref": "string"})
        user = string(assigns_of(req).get("user"))
        topic = string(req.get("topic"))
        if user == "":
            return 200, join_error("unauthorized")
        if not topic.startswith("room:") or topic == "room:":
            return 200, join_error("unknown topic")
        room = topic[len("room:"):]
        if room.startswith("private-") and user not in MEMBERS.get(room, []):
            logf("join: %s refused %s: not a member" % (user, topic))
            return 200, join_error("not a member")
        logf("join: %s joined %s" % (user, topic))
        return 200, Struct(response={"joined": topic}, assigns={"room": room})

    def handle_in(self, body):
        req = decode(body, "eventRequest", {
            "socket": "socket", "topic": "string", "event": "string", "payload": "raw",
            "binary": "bytes", "ref": "string", "join_ref": "string",
        })
        binary = decode_std(req["binary"]) if isinstance(req.get("binary"), str) else None
        assigns = assigns_of(req)
        user = string(assigns.get("user"))
        room = string(assigns.get("room"))
        nick = string(assigns.get("nick"))
        event = string(req.get("event"))

        if event == "echo":
            # Binary in, binary out; JSON in, JSON out.
            if binary is not None:
                r = Struct(status="ok")
                if binary:
                    r["binary"] = base64.b64encode(binary).decode()
                return 200, Struct(reply=r)
            payload = object_payload(req.get("payload"))
            if payload is None:
                return 200, reply_error("payload must be a JSON object")
            return 200, Struct(reply=ok_reply(payload))
        payload = object_payload(req.get("payload"))
        if payload is None or binary is not None:
            return 200, reply_error("payload must be a JSON object")

        if event in ("new_msg", "shout"):
            text = string(payload.get("body"))
            if trim_space(text) == "":
                return 200, reply_error("body must be a non-empty string")
            if utf8_len(text) > MAX_MESSAGE_LEN:
                return 200, reply_error("body is longer than %d bytes" % MAX_MESSAGE_LEN)
            msg = [Struct(event=event, payload=chat_message(user, nick, text))]
            # new_msg: everyone in the room, the sender included; shout: all but the sender.
            key = "broadcast" if event == "new_msg" else "broadcast_from"
            return 200, Struct({key: msg, "reply": ok_reply({})})
        if event == "whoami":
            who = {"user": user, "room": room}
            if nick:
                who["nick"] = nick
            return 200, Struct(reply=ok_reply(who))
        if event == "rename":
            new_nick = trim_space(string(payload.get("nick")))
            if new_nick == "" or len(new_nick) > MAX_NAME_LEN:
                return 200, reply_error("nick must have 1 to %d characters" % MAX_NAME_LEN)
            # Only "nick" changes; "user" and "room" keep their values.
            return 200, Struct(assigns={"nick": new_nick}, reply=ok_reply({"nick": new_nick}))
        if event == "bye":
            # The reply comes first, then phx_close; no leave webhook follows.
            return 200, Struct(reply=ok_reply({}), stop=Struct(reason="bye"))
        if event == "ping_me":
            # A push to this socket only, and no reply (Phoenix's :noreply).
            return 200, Struct(push=[Struct(event="pong", payload=payload)])
        return 200, reply_error("unknown event")

    def leave(self, body):
        req = decode(body, "leaveRequest", {"socket": "socket", "topic": "string", "reason": "string"})
        user = string(assigns_of(req).get("user"))
        logf("leave: %s left %s (%s)" % (user, string(req.get("topic")), string(req.get("reason"))))
        return 204, None


def join_error(reason):
    return Struct(status="error", response={"reason": reason})


def ok_reply(response):
    return Struct(status="ok", response=response)


def reply_error(reason):
    return Struct(reply=Struct(status="error", response={"reason": reason}))


def chat_message(user, nick, text):
    msg = {"user": user, "body": text}
    if nick:
        msg["nick"] = nick
    return msg


def object_payload(raw):
    """A JSON object payload (null or absent is {}), or None if the payload
    is not an object."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or has_non_finite(raw):
        return None
    return raw


def error_body(msg):
    return {"error": msg}


def parse_query(s):
    """Parses a query string like Go's url.ParseQuery: (first value of each
    key, first error)."""
    form, err = {}, None
    for part in s.split("&"):
        if part == "":
            continue
        if ";" in part:
            err = err or "invalid semicolon separator in query"
            continue
        key, _, value = part.partition("=")
        k, kerr = query_unescape(key)
        v, verr = query_unescape(value)
        if kerr or verr:
            err = err or kerr or verr
            continue
        form.setdefault(k, v)
    return form, err


def query_unescape(s):
    out = bytearray()
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "%":
            h = s[i + 1:i + 3]
            if not re.fullmatch(r"[0-9a-fA-F]{2}", h):
                return None, "invalid URL escape " + go_quote(s[i:i + 3])
            out.append(int(h, 16))
            i += 3
            continue
        out += b" " if ch == "+" else ch.encode("latin-1", "replace")
        i += 1
    return out.decode("utf-8", "replace"), None


class TooLarge(Exception):
    pass


def make_handler(app):
    hooks = {
        "/socket/connect": ("connect", app.connect),
        "/channels/join": ("join", app.join),
        "/channels/event": ("handle_in", app.handle_in),
        "/channels/leave": ("leave", app.leave),
    }
    routes = set(hooks) | {"/login"}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the Go app
        disable_nagle_algorithm = True  # headers and body go in separate writes
        server_version = "chat"
        sys_version = ""
        timeout = 120  # idle keep-alive connections, as the Go app's IdleTimeout

        def log_message(self, fmt, *args):  # the Go app logs no requests
            pass

        def route(self):
            path = self.path.split("?", 1)[0]
            if path not in routes:
                return self.plain(404, "404 page not found\n")
            if self.command != "POST":
                return self.plain(405, "Method Not Allowed\n", {"Allow": "POST"})
            try:
                if path == "/login":
                    self.serve_login()
                else:
                    self.serve_hook(*hooks[path])
            except (ConnectionError, TimeoutError):
                self.close_connection = True

        do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST = route

        def read_body(self):
            """The request body; raises TooLarge beyond MAX_BODY."""
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks, size = [], 0
                while True:
                    n = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
                    if n == 0:
                        while self.rfile.readline(65537).strip():  # trailers
                            pass
                        return b"".join(chunks)
                    size += n
                    if size > MAX_BODY:
                        raise TooLarge()
                    chunks.append(self.rfile.read(n))
                    self.rfile.readline(3)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise TooLarge()
            return self.rfile.read(length) if length > 0 else b""

        def serve_hook(self, event, h):
            try:
                body = self.read_body()
            except TooLarge:
                return self.write_json(413, error_body("body too large"), close=True)
            got = self.headers.get(EVENT_HEADER, "")
            if got != event:
                logf("%s: refused: %s is %s" % (self.path.split("?", 1)[0], EVENT_HEADER, go_quote(got)))
                return self.write_json(400, error_body(EVENT_HEADER + " must be " + event))
            if app.secret:
                err = verify_signature(app.secret, self.headers.get(SIGNATURE_HEADER, ""), body, app.now())
                if err:
                    logf("%s: refused: %s" % (event, err))
                    return self.write_json(401, error_body("invalid signature"))
            try:
                status, answer = h(body)
            except DecodeError as err:
                status, answer = 400, error_body("decoding %s request: %s" % (event, err))
            self.write_json(status, answer)

        def serve_login(self):
            """POST /login: a form or JSON {"name": ...} gets {"token": ...}.
            This demo has no passwords: any valid name logs in."""
            try:
                body = self.read_body()
            except TooLarge:
                body = None
            media_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if media_type == "application/json":
                if body is None:
                    return self.write_json(400, error_body("decoding body: http: request body too large"), close=True)
                text = body.decode("utf-8", "replace")
                if text.strip(" \t\r\n") == "":
                    return self.write_json(400, error_body("decoding body: EOF"))
                try:
                    v, _ = json.JSONDecoder(parse_int=float, parse_constant=_no_constants).raw_decode(text.lstrip(" \t\r\n"))
                except (ValueError, RecursionError) as err:
                    msg = "unexpected EOF" if "Unterminated" in str(err) or "Expecting" in str(err) and err.pos >= len(text.strip()) else str(err)
                    return self.write_json(400, error_body("decoding body: " + msg))
                if v is not None and not isinstance(v, dict):
                    return self.write_json(400, error_body(
                        'decoding body: json: cannot unmarshal %s into Go value of type struct { Name string "json:\\"name\\"" }' % json_kind(v)))
                n = v.get("name") if isinstance(v, dict) else None
                if n is not None and not isinstance(n, str):
                    return self.write_json(400, error_body(
                        "decoding body: json: cannot unmarshal %s into Go struct field .name of type string" % json_kind(n)))
                name = n or ""
            else:
                form, err = {}, None
                if media_type == "application/x-www-form-urlencoded":
                    if body is None:
                        err = "http: request body too large"
                    else:
                        form, err = parse_query(body.decode("latin-1"))
                if err is None:
                    _, err = parse_query(self.path.split("?", 1)[1] if "?" in self.path else "")
                if err is not None:
                    return self.write_json(400, error_body("decoding form: " + err), close=body is None)
                name = form.get("name", "")
            token, err = app.issue_token(name)
            if err:
                return self.write_json(400, error_body(err))
            logf("login: " + name)
            self.write_json(200, {"token": token})

        def write_json(self, status, answer, close=False):
            """Writes status and, unless answer is None, answer as JSON."""
            self.send_response(status)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            if answer is None:
                if status != 204:
                    self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = (go_json(answer) + "\n").encode("utf-8")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def plain(self, status, text, headers=None):
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("X-Content-Type-Options", "nosniff")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler


def parse_flags(argv, env):
    flags = {"listen": env.get("LISTEN") or "127.0.0.1:3000", "insecure": False}
    i = 0
    while i < len(argv):
        m = re.fullmatch(r"--?([a-z]+)(?:=(.*))?", argv[i], re.S)
        if not m:
            raise ValueError("unexpected argument " + argv[i])
        name, inline = m.group(1), m.group(2)
        if name == "listen":
            if inline is None:
                i += 1
                if i >= len(argv):
                    raise ValueError("flag needs an argument: -listen")
                inline = argv[i]
            flags["listen"] = inline
        elif name == "insecure":
            flags["insecure"] = inline in (None, "true", "1")
        elif name in ("h", "help"):
            sys.stderr.write("usage: server.py [--listen host:port] [--insecure]\n")
            sys.exit(0)
        else:
            raise ValueError("flag provided but not defined: -" + name)
        i += 1
    return flags


def main():
    try:
        flags = parse_flags(sys.argv[1:], os.environ)
    except ValueError as err:
        sys.stderr.write("backend: %s\n" % err)
        sys.exit(2)
    secret = os.environ.get("CHANNELS_WEBHOOK_SECRET", "")
    if not secret and not flags["insecure"]:
        sys.stderr.write("backend: CHANNELS_WEBHOOK_SECRET is not set (use -insecure to run without signature checks)\n")
        sys.exit(1)
    if not secret:
        logf("warning: no CHANNELS_WEBHOOK_SECRET: webhook signatures are not checked")
    host, _, port = flags["listen"].rpartition(":")
    try:
        port = int(port)
        if not 0 <= port <= 65535:
            raise ValueError()
    except ValueError:
        sys.stderr.write("backend: invalid listen address %s\n" % flags["listen"])
        sys.exit(1)
    host = host.strip("[]") or "0.0.0.0"

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    try:
        srv = Server((host, port), make_handler(App(secret)))
    except OSError as err:
        sys.stderr.write("backend: serving on %s: %s\n" % (flags["listen"], err))
        sys.exit(1)
    bound_host, bound_port = srv.server_address[:2]
    shown = "[%s]" % bound_host if ":" in bound_host else bound_host
    logf("listening on http://%s:%d" % (shown, bound_port))

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    srv.serve_forever()
    srv.server_close()


if __name__ == "__main__":
    main()
