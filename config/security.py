"""Security headers on every HTTP response (an ASGI middleware, so streamed pages and the
phone line's WebSocket pass untouched).

- Content-Security-Policy: scripts only from this site (no inline script anywhere), nothing
  framed, forms posted only here. Inline style attributes are allowed: they carry no code.
- Strict-Transport-Security when the request came over TLS (directly, or as the proxy says).
- Cache-Control: no-store unless a response sets its own (static files, public calendars):
  pages and answers may hold residents' data, and no browser or proxy should keep them.
- nosniff, no referrer (a booking page's URL is nobody else's business), no camera or
  microphone for pages.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
# FastAPI's own API pages load Swagger UI and ReDoc from their CDN.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: "
    "https://fastapi.tiangolo.com https://cdn.redoc.ly; worker-src blob:; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"
STATIC = ("/static/", "/console/static/")  # scripts and styles: no personal data, cacheable
ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


def over_tls(scope: Scope) -> bool:
    if scope.get("scheme") == "https":
        return True
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-proto":
            return bool(value.split(b",")[0].strip().lower() == b"https")
    return False


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = DOCS_CSP if path.startswith(("/docs", "/redoc")) else CSP
        tls = over_tls(scope)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [(k, v) for k, v in ALWAYS if k not in present]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", csp.encode()))
                if b"cache-control" not in present and not path.startswith(STATIC):
                    extra.append((b"cache-control", b"no-store"))
                if tls:
                    extra.append((b"strict-transport-security", HSTS.encode()))
                message["headers"] = headers + extra
            await send(message)

        await self.app(scope, receive, with_headers)
