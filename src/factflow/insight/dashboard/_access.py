"""Access by token: every page and endpoint but the health check needs it.

The token comes as ``Authorization: Bearer TOKEN``, or once as ``?token=TOKEN``: that sets a
cookie (HttpOnly, SameSite=Strict) holding a value derived from the token, and a page is then
reloaded without the token in its address (so that it stays out of history and bookmarks).
"""

from __future__ import annotations

import hashlib
import hmac
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["COOKIE", "TokenGate"]

COOKIE = "factflow_session"
_HOW = (
    "this dashboard needs its token: open the address factflow serve printed (ending in "
    "?token=…), or send the header Authorization: Bearer TOKEN (the token is FACTFLOW_TOKEN)"
)


class TokenGate:
    """ASGI middleware answering 401 to any request without `token`, except at `open_paths`."""

    def __init__(self, app: ASGIApp, *, token: str, open_paths: frozenset[str]) -> None:
        if not token:
            raise ValueError("the dashboard's token must not be empty")
        self.app = app
        self._token = token.encode()
        # The cookie holds a value derived from the token, not the token itself: whatever
        # reads the browser's cookies learns nothing it could send as a Bearer token.
        self._cookie = hmac.new(self._token, b"factflow dashboard", hashlib.sha256).hexdigest()
        self._open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or (
            scope["type"] == "http" and scope["path"] in self._open_paths
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        offered = request.query_params.get("token")
        if offered is not None:
            if not self._is_token(offered):
                await _refuse(request)(scope, receive, send)
            elif request.url.path.startswith("/api/"):
                await self.app(scope, receive, self._with_cookie(request, send))
            else:
                await self._reload_without_token(request)(scope, receive, send)
            return
        if self._is_token(_bearer(request)) or self._is_cookie(request.cookies.get(COOKIE)):
            await self.app(scope, receive, send)
        else:
            await _refuse(request)(scope, receive, send)

    def _is_token(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(offered.encode(), self._token)

    def _is_cookie(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(offered.encode(), self._cookie.encode())

    def _reload_without_token(self, request: Request) -> Response:
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        address = request.url.path + (f"?{urlencode(rest)}" if rest else "")
        response = RedirectResponse(address, status_code=303)
        self._set_cookie(request, response.headers)
        return response

    def _with_cookie(self, request: Request, send: Send) -> Send:
        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._set_cookie(request, MutableHeaders(scope=message))
            await send(message)

        return send_with_cookie

    def _set_cookie(self, request: Request, headers: MutableHeaders) -> None:
        cookie: SimpleCookie = SimpleCookie()
        cookie[COOKIE] = self._cookie
        morsel = cookie[COOKIE]
        morsel["path"] = "/"
        morsel["httponly"] = True
        morsel["samesite"] = "Strict"
        morsel["secure"] = request.url.scheme == "https"
        headers.append("set-cookie", morsel.OutputString())


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def _refuse(request: Request) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="factflow"'}
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": _HOW}, status_code=401, headers=headers)
    return PlainTextResponse(_HOW + "\n", status_code=401, headers=headers)
