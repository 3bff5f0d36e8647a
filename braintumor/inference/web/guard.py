"""The page's door: who is let in, what every response carries, what is recorded.

With an :class:`Access` (``python -m braintumor app MODEL --users FILE``), every route but the
login form needs a session (a cookie set by ``POST /login``: HttpOnly, SameSite=Strict, Secure
with ``--secure-cookies``, forgotten after ``--session-minutes`` of life) or a bearer token
(``Authorization: Bearer <token>``, for scripts). A POST that carries a session must come
from the page's own origin (``Origin``, else ``Referer``, equal to the host it was sent to):
another site cannot make a logged-in browser upload. Uploads are limited per user
(``--rate-limit`` a minute, 429 beyond), failed logins per client address, and every answer
(or refusal) is appended to the audit log: time, user, the model file's SHA-256, a salted hash
of the upload, the answer, its confidence, the seconds and the status; never a file name or a
tag of the upload. Every response, with or without users, carries a Content-Security-Policy
(nothing from elsewhere, no framing), ``X-Content-Type-Options: nosniff``,
``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from braintumor.data.pseudonyms import study_salt
from braintumor.inference.web.auth import AuditLog, RateLimit, Sessions, Users

LOOPBACK = ("127.0.0.1", "localhost", "::1")
COOKIE = "braintumor_session"
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' "
    "'unsafe-inline'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
OPEN_PATHS = ("/login",)
DENIED = "wrong user name, password or token"
MAX_FORM_BYTES = 4096


@dataclass
class Access:
    """Who may use the page and what is recorded of it."""

    users: Users
    sessions: Sessions
    uploads: RateLimit
    logins: RateLimit
    audit_log: AuditLog | None
    model_hash: str
    secure_cookies: bool = False

    @classmethod
    def of_args(cls, args: Any) -> Access:
        users_file = Path(args.users)
        model = Path(args.model)
        digest = hashlib.sha256()
        with model.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        audit = Path(args.audit_log) if args.audit_log else users_file.with_name("audit.jsonl")
        return cls(Users.read(users_file), Sessions(args.session_minutes),
                   RateLimit(args.rate_limit), RateLimit(10), AuditLog(audit),
                   digest.hexdigest(), args.secure_cookies)  # fmt: skip


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def _same_origin(request: Request) -> bool:
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return False
    parts = urlsplit(source)
    return parts.netloc == request.headers.get("host", "")


def install_guard(app: FastAPI, access: Access | None) -> None:
    """The middleware and the login routes of ``access`` (headers only, without it)."""

    @app.middleware("http")
    async def guard(request: Request, call_next) -> Response:
        if access is not None and request.url.path not in OPEN_PATHS:
            denied = _deny(request, access)
            if denied is not None:
                return _with_headers(denied)
        return _with_headers(await call_next(request))

    if access is None:
        return

    @app.get("/login", response_class=HTMLResponse)
    def login_form() -> str:
        return _login_page("")

    @app.post("/login")
    async def login(request: Request) -> Response:
        if not access.logins.allow(_client(request)):
            return HTMLResponse(_login_page("Too many attempts: wait a minute."), 429)
        if not _same_origin(request):
            return HTMLResponse(_login_page("The form must be sent from this page."), 403)
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:  # a name and a password, not a megabyte
            return HTMLResponse(_login_page("The form is too large."), 413)
        form = parse_qs(body.decode(errors="replace"))
        name = (form.get("user") or [""])[0]
        password = (form.get("password") or [""])[0]
        if not access.users.check_password(name, password):
            return HTMLResponse(_login_page(f"Not let in: {DENIED}."), 401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, access.sessions.start(name), httponly=True,
                            samesite="strict", secure=access.secure_cookies,
                            max_age=int(access.sessions.seconds))  # fmt: skip
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        access.sessions.end(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response


def _deny(request: Request, access: Access) -> Response | None:
    """``None`` when the request may go on (its user in ``request.state.user``), else the
    answer that refuses it."""
    token = _bearer(request)
    user = access.users.user_of_token(token) if token else None
    via_session = False
    if user is None and token is None:
        user = access.sessions.user(request.cookies.get(COOKIE))
        via_session = user is not None
    api = request.url.path.startswith("/api/")
    if user is None:
        if token is not None and not access.logins.allow(_client(request)):
            return JSONResponse({"error": "too many attempts: wait a minute."}, 429)
        if api or token is not None or request.method != "GET":
            return JSONResponse({"error": f"not let in: {DENIED}."}, 401)
        return RedirectResponse("/login", status_code=303)
    if request.method == "POST" and via_session and not _same_origin(request):
        return JSONResponse({"error": "uploads must come from this page (same origin)."}, 403)
    if request.url.path == "/api/predict" and not access.uploads.allow(user):
        return JSONResponse({"error": "too many uploads: wait a minute."}, 429)
    request.state.user = user
    return None


def _with_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def audit(access: Access | None, request: Request, data: bytes, result: dict | None,
          seconds: float, status: int) -> None:  # fmt: skip
    """One audit record of an upload (nothing without an audit log)."""
    if access is None or access.audit_log is None:
        return
    upload = hashlib.sha256(study_salt() + b"|" + data).hexdigest()[:16] if data else None
    answer = None
    if result and result.get("kind") == "study":
        answer = result.get("answer")
    elif result and result.get("in_distribution") and result.get("top"):
        answer = result["top"][0]["class"]
    study = (result or {}).get("study") if (result or {}).get("kind") == "study" else None
    access.audit_log.write(
        user=getattr(request.state, "user", None), model=access.model_hash,
        study=study or (f"upload-{upload}" if upload else None), answer=answer,
        confidence=(result or {}).get("confidence"), seconds=round(seconds, 4), status=status,
    )  # fmt: skip


def _login_page(message: str) -> str:
    note = f'<p role="alert">{html.escape(message)}</p>' if message else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>braintumor: sign in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem}}
label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.4rem;font-size:1rem}}
button{{margin-top:1rem;padding:.5rem 1.2rem;font-size:1rem}}[role=alert]{{color:#a00}}</style>
</head><body><h1>Sign in</h1>{note}
<form method="post" action="/login"><label for="user">User</label>
<input id="user" name="user" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>
<p><small>Research use only. Uploads are not stored; each answer is recorded in the audit
log without the image.</small></p></body></html>"""
