"""What protects the local server from other web sites and from odd requests: ASGI middleware.

* :class:`SecurityHeaders` puts ``X-Content-Type-Options: nosniff``, a Content-Security-Policy
  (:data:`PAGE_CSP`: the page's own scripts, styles, data and media only; no framing),
  ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin`` and
  ``Cross-Origin-Resource-Policy: same-origin`` (pages of other sites cannot embed the
  library's sounds) on every response that does not set its own.
* :class:`SameOriginWrites` refuses (403) a POST, PUT, PATCH or DELETE whose ``Origin`` (or,
  lacking it, ``Referer``) is another site than the one the request is addressed to, so that a
  page of another site cannot make a visitor's browser upload to the server (cross-site request
  forgery). Requests with neither header (``curl``, scripts) are not browser requests of another
  site and pass. With the ``Host`` check of :func:`mirsim.server.create_app`, which refuses names
  the server does not answer to (DNS rebinding), "the site the request is addressed to" is the
  server itself.
* :class:`RequestTargetLimit` refuses (414) a path and query string longer than
  :data:`MAX_TARGET_BYTES`, before any routing or validation.

Starlette has middleware for neither of the first two (its CORS middleware governs what other
sites may *read*, not what they may send), and the well-kept CSRF packages use cookie tokens,
which this cookie-less, login-less API does not need: the Origin check is the defence that fits
(OWASP's "verifying origin with standard headers"), and short enough to write here.

Error bodies never repeat what the request sent: a refused origin, host or overlong query is
not echoed back.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Longest path plus query string accepted, in bytes as sent (percent-encoded): room for the
#: longest search (500 characters, up to 9 bytes each once encoded) and the other parameters.
MAX_TARGET_BYTES = 8 * 1024

#: The page's policy: everything from the server itself; uploaded sounds play from ``blob:``
#: URLs; no plug-ins, no ``<base>``, no framing (``frame-ancestors``), forms post here only.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _json(detail: str, status: int) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


class SecurityHeaders:
    """Add ``headers`` to every HTTP response, keeping any the response set itself (e.g. the
    API docs page's own Content-Security-Policy)."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]):
        self.app, self.headers = app, dict(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def security_headers(csp: str = PAGE_CSP) -> dict[str, str]:
    """The headers :class:`SecurityHeaders` adds.

    Examples
    --------
    >>> h = security_headers()
    >>> h["X-Frame-Options"], h["X-Content-Type-Options"], "frame-ancestors 'none'" in h[
    ...     "Content-Security-Policy"]
    ('DENY', 'nosniff', True)
    """
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
            "Cross-Origin-Resource-Policy": "same-origin"}


def inline_script_csp(html: str, base: str = PAGE_CSP) -> str:
    """``base`` with the hashes of the inline ``<script>`` blocks of ``html`` allowed (the API
    docs page starts Swagger UI from one), and inline styles (Swagger UI sets some).

    Examples
    --------
    >>> csp = inline_script_csp("<script>go()</script>")
    >>> "script-src 'self' 'sha256-" in csp, "style-src 'self' 'unsafe-inline'" in csp
    (True, True)
    """
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                      for s in _INLINE_SCRIPT.findall(html))
    return (base.replace("script-src 'self'", f"script-src 'self' {hashes}".rstrip())
            .replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"))


def origin_of(url: str) -> tuple[str, int] | None:
    """``(host, port)`` of an absolute URL (an ``Origin`` or ``Referer``); None if it has no
    scheme or host (``Origin: null``).

    Examples
    --------
    >>> origin_of("http://127.0.0.1:8765/page"), origin_of("https://Example.org")
    (('127.0.0.1', 8765), ('example.org', 443))
    >>> origin_of("null"), origin_of("http://[::1]/"), origin_of("http://x:99999")
    (None, ('::1', 80), None)
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    default = _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
    return parts.hostname.lower(), port if port is not None else default


class SameOriginWrites:
    """Refuse (403) a state-changing request sent by a page of another site (see module)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in _SAFE_METHODS:
            headers = Headers(scope=scope)
            if not self.same_origin(headers, scope.get("scheme", "http")):
                await _json("refused: this request comes from a page of another site (its "
                            "Origin or Referer is not this server)", 403)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def same_origin(headers: Headers, scheme: str) -> bool:
        """Whether the request's Origin (else Referer) names the host it is addressed to;
        True when it has neither (not sent by a browser page)."""
        sender = headers.get("origin") or headers.get("referer")
        if sender is None:
            return True
        own = origin_of(f"{scheme}://{headers.get('host', '')}")
        return own is not None and origin_of(sender) == own


class RequestTargetLimit:
    """Refuse (414) requests whose path and query string exceed ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_TARGET_BYTES):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _target_bytes(scope) > self.max_bytes:
            await _json(f"request refused: its path and query string are longer than "
                        f"{self.max_bytes:,} bytes", 414)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _target_bytes(scope: Scope) -> int:
    path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
    return len(path) + len(scope.get("query_string", b""))


def validation_errors(errors: Iterable[dict]) -> list[dict]:
    """FastAPI's 422 details without the ``input`` (and ``ctx``, ``url``) that would echo the
    request back: where (``loc``), what (``msg``) and the error ``type`` only.

    Examples
    --------
    >>> validation_errors([{"type": "string_too_long", "loc": ("query", "q"), "input": "x" * 600,
    ...                     "msg": "String should have at most 500 characters",
    ...                     "ctx": {"max_length": 500}}])
    [{'loc': ['query', 'q'], 'msg': 'String should have at most 500 characters', 'type': 'string_too_long'}]
    """
    return [{"loc": [p if isinstance(p, (int, str)) else str(p) for p in e.get("loc", ())],
             "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors]
