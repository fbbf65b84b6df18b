"""The edge of every request, as plain ASGI: request id, body limit, auth, metrics, access log.

A POST body is read as JSON whatever its ``Content-Type`` says (``json_content_type``): every
endpoint here takes JSON and nothing else, and ``curl -d '{...}'`` without ``-H
'content-type: application/json'`` sends ``application/x-www-form-urlencoded``; refusing a body
that is JSON for its label costs newcomers time and helps nobody. A body that is not JSON is
still refused, as not valid JSON.

Auth is decided on the raw path before routing: only the exact paths ``/health``, ``/ready``
(and ``/metrics`` unless protected) are open, so no variant (``//v1/...``, ``%2F``, case,
trailing slash) reaches a protected handler without a key. Keys are compared as SHA-256
digests with ``hmac.compare_digest`` against every configured key, so timing depends neither
on which key matched nor on the length of what was sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import time

import orjson

from server import metrics
from server.config import Settings
from server.errors import (
    APIError,
    AuthenticationError,
    InvalidRequestError,
    PayloadTooLargeError,
    ServerError,
    error_body,
    is_anthropic,
)

log = logging.getLogger("server.access")
app_log = logging.getLogger("server.app")

_QUIET_ROUTES = frozenset({"/health", "/ready", "/metrics"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


class KeyChecker:
    def __init__(self, keys: list[str]) -> None:
        self._digests = [_digest(k.encode()) for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def check(self, authorization: bytes | None, x_api_key: bytes | None = None) -> str | None:
        """The matching key (for per-key cache salts), or None. The key comes as
        ``Authorization: Bearer KEY`` (OpenAI's clients) or ``x-api-key: KEY`` (Anthropic's)."""
        if authorization and authorization[:7].lower() == b"bearer ":
            sent = authorization[7:].strip()
        elif x_api_key:
            sent = x_api_key.strip()
        else:
            return None
        digest = _digest(sent)
        matched = False
        for known in self._digests:  # no early exit: time does not tell which key matched
            matched |= hmac.compare_digest(digest, known)
        return sent.decode("latin-1") if matched else None


def id_headers(path: str, request_id: str) -> list[tuple[bytes, bytes]]:
    """``x-request-id`` on every response; Anthropic's clients read ``request-id``."""
    headers = [(b"x-request-id", request_id.encode())]
    return headers + [(b"request-id", request_id.encode())] if is_anthropic(path) else headers


async def send_error(send, error: APIError, request_id: str, path: str) -> None:
    """The error in the envelope of the surface that owns ``path``."""
    body = orjson.dumps(error_body(error, path))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *id_headers(path, request_id)]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class EdgeMiddleware:
    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        self.keys = KeyChecker(settings.api_key)
        self.max_body = settings.max_request_bytes
        self.open_paths = {b"/health", b"/ready"} | (
            set() if settings.protect_metrics else {b"/metrics"})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.monotonic()
        headers = dict(scope["headers"])
        sent_id = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = sent_id if _REQUEST_ID.match(sent_id) else secrets.token_hex(12)
        scope.setdefault("state", {})["request_id"] = request_id
        # Streams send their body frames here, past the wrappers that Starlette and FastAPI put
        # around `send` inside this middleware (each only watches for the start message): one
        # coroutine call per frame instead of four.
        scope["state"]["send_body"] = send
        status = 500
        responded = False

        async def send_with_id(message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.body":  # the hot path of streams
                return await send(message)
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                message["headers"] = [*message.get("headers", []),
                                      *id_headers(scope["path"], request_id)]
            await send(message)

        try:
            error = self._refusal(scope, headers)
            if error is not None:
                await send_error(send, error, request_id, scope["path"])
                status = error.status
                return
            body = await self._read_body(receive)
            error = (self._too_large() if body is None else lone_surrogate_error(body))
            if error is not None:
                await send_error(send, error, request_id, scope["path"])
                status = error.status
                return
            json_content_type(scope, body)
            try:
                await self.app(scope, self._replay(body, receive), send_with_id)
            except Exception:  # a bug: answer in the envelope, keep the connection usable
                app_log.exception("unhandled error", extra={"request_id": request_id})
                if not responded:  # else a stream was under way: it just ends here
                    await send_error(send, ServerError("internal server error"), request_id,
                                     scope["path"])
                    status = 500
        finally:
            self._record(scope, status, started, request_id)

    def _refusal(self, scope, headers: dict) -> APIError | None:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        raw_path = raw_path.split(b"?", 1)[0]
        if self.keys.enabled and raw_path not in self.open_paths:
            key = self.keys.check(headers.get(b"authorization"), headers.get(b"x-api-key"))
            if key is None:
                metrics.AUTH_FAILURES.inc()
                return AuthenticationError(
                    "missing or invalid API key: send 'Authorization: Bearer <key>'"
                    + (" or 'x-api-key: <key>'" if is_anthropic(scope["path"]) else ""))
            scope["state"]["api_key"] = key
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return self._too_large()
        return None

    def _too_large(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(f"the request body exceeds the limit of {self.max_body} "
                                    "bytes (--max-request-bytes)")

    async def _read_body(self, receive) -> bytes | None:
        """The whole body, or None once it passes the limit (chunked uploads included)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)  # disconnected: the app will see it
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                return None
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def _replay(body: bytes, receive):
        """Hand the buffered body to the app, then pass on later messages (disconnects)."""
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    @staticmethod
    def _record(scope, status: int, started: float, request_id: str) -> None:
        route = scope.get("route")
        route_path = getattr(route, "path", None) or "unmatched"
        elapsed = time.monotonic() - started
        metrics.REQUESTS.labels(route_path, str(status)).inc()
        metrics.REQUEST_LATENCY.labels(route_path).observe(elapsed)
        state = scope["state"]
        # Probes and scrapes arrive every few seconds: keep them out of the info-level log, the
        # 503s of loading and draining too (server.lifecycle logs each change of state once).
        quiet = route_path in _QUIET_ROUTES and (status < 400 or status == 503)
        level = logging.DEBUG if quiet else logging.INFO
        log.log(level, "request", extra={
            "request_id": request_id, "method": scope["method"], "route": route_path,
            "status": status, "duration_ms": round(elapsed * 1000, 2),
            **{k: state[k] for k in ("prompt_tokens", "completion_tokens") if k in state}})


def json_content_type(scope, body: bytes) -> None:
    """Label a POST body as JSON for the app when the client labelled it otherwise (see the
    module's docstring); the first content-type header is the one that counts."""
    if scope["method"] != "POST" or not body:
        return
    headers = list(scope["headers"])
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"content-type":
            if b"json" not in value.lower():
                headers[index] = (b"content-type", b"application/json")
                scope["headers"] = headers
                app_log.debug("a %s body is read as JSON", value.decode("latin-1"),
                              extra={"request_id": scope["state"]["request_id"]})
            return


def lone_surrogate_error(body: bytes) -> InvalidRequestError | None:
    """JSON can escape a lone UTF-16 surrogate ("\\ud800"), which is no Unicode character: the
    Harmony renderer cannot encode it. Refuse it here, naming the field. The regex keeps the
    parse off the hot path: only bodies with a surrogate escape (emoji from ASCII-only JSON
    encoders, as valid pairs) are parsed again."""
    if not _SURROGATE_ESCAPE.search(body):
        return None
    try:
        path = _lone_surrogate_path(json.loads(body))
    except (ValueError, RecursionError):
        return None  # not JSON, or too deep: the app's own parsing reports it
    if path is None:
        return None
    param = ".".join(path) or None
    return InvalidRequestError(
        f"{param or 'the body'} contains a lone UTF-16 surrogate escape (\\ud800-\\udfff "
        "without its pair): strings must be valid Unicode", param=param)


def _lone_surrogate_path(value, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and _lone_surrogate_path(key) is not None:
            return (*path, key)
        found = _lone_surrogate_path(item, (*path, str(key)))
        if found is not None:
            return found
    return None
