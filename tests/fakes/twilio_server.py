"""A local HTTP server speaking enough of the Twilio Messages API for the real `twilio` client.

`POST /2010-04-01/Accounts/{sid}/Messages.json` creates a message and returns its SID;
`GET .../Messages.json` lists them (To, From, DateSent> filters); `GET .../Messages/{sid}.json`
fetches one. Modes reproduce what goes wrong in real life: a slow answer (the message is
accepted at once but the answer comes late), a timeout (no answer, nothing accepted), a 500,
and Twilio's 21211 error for numbers marked invalid. It can also call our status webhook,
signed with the auth token as Twilio signs it.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fake-auth-token-0123456789abcdef"


@dataclass
class FakeMessage:
    sid: str
    to: str
    from_: str
    body: str
    status_callback: str
    created: datetime
    status: str = "queued"


@dataclass
class FakeTwilio:
    """State and behaviour of the fake; change `mode`, `delay` or `invalid_numbers` any time."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    mode: str = "ok"  # ok | slow | timeout | error500
    delay: float = 0.0
    invalid_numbers: set[str] = field(default_factory=set)
    messages: list[FakeMessage] = field(default_factory=list)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bodies(self) -> list[str]:
        with self.lock:
            return [m.body for m in self.messages]

    def by_sid(self, sid: str) -> FakeMessage:
        with self.lock:
            return next(m for m in self.messages if m.sid == sid)

    def signed_callback(self, sid: str, status: str) -> tuple[str, dict[str, str], str]:
        """The URL, form and X-Twilio-Signature of Twilio's status report for a message."""
        message = self.by_sid(sid)
        message.status = status
        params = {
            "AccountSid": self.account_sid,
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": message.to,
            "From": message.from_,
            "ApiVersion": "2010-04-01",
        }
        if status in ("failed", "undelivered"):
            params["ErrorCode"] = "30003"
        signature = RequestValidator(self.auth_token).compute_signature(
            message.status_callback, params
        )
        return message.status_callback, params, signature

    def call_webhook(self, sid: str, status: str) -> int:
        """POST the signed status report to the callback URL over HTTP; return the status."""
        url, params, signature = self.signed_callback(sid, status)
        request = urllib.request.Request(  # noqa: S310 - the URL is our own local test server
            url, data=urlencode(params).encode(), headers={"X-Twilio-Signature": signature}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code


def _message_json(fake: FakeTwilio, m: FakeMessage) -> dict[str, Any]:
    return {
        "sid": m.sid,
        "account_sid": fake.account_sid,
        "to": m.to,
        "from": m.from_,
        "body": m.body,
        "status": m.status,
        "num_segments": "1",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "date_created": format_datetime(m.created, usegmt=True),
        "date_updated": format_datetime(m.created, usegmt=True),
        "date_sent": format_datetime(m.created, usegmt=True),
        "error_code": None,
        "error_message": None,
        "price": None,
        "uri": f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{m.sid}.json",
    }


def _handler(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    prefix = f"/2010-04-01/Accounts/{fake.account_sid}/Messages"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as with the real API
        # One buffered write per answer and no Nagle delay, or every request waits ~40 ms for
        # a delayed ACK and the fake, not the dispatcher, sets the pace.
        wbufsize = -1
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:
                pass  # the client went away (timed out or was killed)

        def _error(self, status: int, code: int, message: str) -> None:
            self._reply(
                status,
                {
                    "code": code,
                    "message": message,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status,
                },
            )

        def _authorised(self) -> bool:
            expected = base64.b64encode(f"{fake.account_sid}:{fake.auth_token}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {expected}":
                self._error(401, 20003, "Authenticate")
                return False
            return True

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if len(raw) < length:
                # The client died while sending (a dispatcher killed mid-request): a real API
                # never sees an incomplete request as a message; neither does this one.
                self.close_connection = True
                return
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            if not self._authorised():
                return
            if urlsplit(self.path).path != f"{prefix}.json":
                self._error(404, 20404, "The requested resource was not found")
                return
            with fake.lock:
                fake.requests += 1
                mode, delay = fake.mode, fake.delay
            if mode == "timeout":
                time.sleep(delay)  # longer than the client waits; nothing is accepted
                return self._error(504, 20504, "Gateway timeout")
            if mode == "error500":
                return self._error(500, 20500, "Internal Server Error")
            to = form.get("To", "")
            if to in fake.invalid_numbers:
                return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
            message = FakeMessage(
                sid="SM" + secrets.token_hex(16),
                to=to,
                from_=form.get("From", ""),
                body=form.get("Body", ""),
                status_callback=form.get("StatusCallback", ""),
                created=datetime.now(UTC),
            )
            with fake.lock:
                fake.messages.append(message)
            if mode == "slow":
                time.sleep(delay)  # accepted, but the answer is late
            self._reply(201, _message_json(fake, message))

        def do_GET(self) -> None:  # noqa: N802
            if not self._authorised():
                return
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == f"{prefix}.json":
                after = query.get("DateSent>")
                since = datetime.fromisoformat(after.replace("Z", "+00:00")) if after else None
                with fake.lock:
                    found = [
                        _message_json(fake, m)
                        for m in fake.messages
                        if m.to == query.get("To", m.to)
                        and m.from_ == query.get("From", m.from_)
                        and (since is None or m.created.replace(microsecond=0) >= since)
                    ]
                self._reply(
                    200,
                    {
                        "messages": found,
                        "page": 0,
                        "page_size": 200,
                        "first_page_uri": parts.path,
                        "next_page_uri": None,
                        "previous_page_uri": None,
                        "uri": parts.path,
                        "start": 0,
                        "end": len(found),
                    },
                )
                return
            sid = parts.path.removeprefix(prefix + "/").removesuffix(".json")
            try:
                self._reply(200, _message_json(fake, fake.by_sid(sid)))
            except StopIteration:
                self._error(404, 20404, "The requested resource was not found")

    return Handler


class TwilioServer:
    """Runs a FakeTwilio on 127.0.0.1 and a free port, in a background thread."""

    def __init__(self) -> None:
        self.fake = FakeTwilio()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.fake))
        self._server.daemon_threads = True
        self.fake.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeTwilio:
        self._thread.start()
        return self.fake

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
