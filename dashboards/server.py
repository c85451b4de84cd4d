"""The dashboards' web server: Streamlit's ASGI app (`st.App`) with the sign-in in front.

`ocse dashboard` serves this file (`streamlit run dashboards/server.py`, which finds `app`).
What it adds to Streamlit, and why each is here rather than in the app script:

- **Sign-in and sign-out are plain HTTP routes** (`/ocse/signin`, `/ocse/signout`): only
  an HTTP response can set an HttpOnly cookie, which the page's scripts cannot read. The
  cookie names a server-side session (`ocse/access/sessions.py`); throttling per account
  and per source lives there too, so neither a reload nor a new browser resets it.
- **A gate on every page load**: a request for a page without a valid session is sent to
  the sign-in form (and brought back to the same page and filters afterwards); a forged
  cookie is refused and logged; a page the role may not open is refused with 403 and a
  `denied` entry, before the app is even loaded.
- **Streamlit's unauthenticated `/_stcore/metrics` is switched off** (404).

Bound to `OCSE_DASHBOARD_ADDRESS` (127.0.0.1 by default): see the README for serving other
machines through a reverse proxy with TLS.
"""

from __future__ import annotations

import functools
import html
import secrets
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode

import streamlit as st
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from dashboards.signin_page import render_signin
from ocse.access import PAGE_ACCESS, access_store, may_view, pages_for
from ocse.access.sessions import COOKIE_NAME, session_store
from ocse.settings import get_settings

APP_SCRIPT = Path(__file__).with_name("app.py")
SIGNIN_PATH = "/ocse/signin"
SIGNOUT_PATH = "/ocse/signout"
CSRF_COOKIE = "ocse_signin_csrf"
# Paths that are not pages: Streamlit's own endpoints and assets, and the sign-in routes.
_NOT_PAGES = ("/_stcore/", "/static/", "/media/", "/component/", "/app/static/", "/ocse/")
_BLOCKED = ("/_stcore/metrics",)
_MAX_FORM_BYTES = 8192


def client_address(request: Request) -> str | None:
    """Who is connecting, for throttling: the proxy's X-Forwarded-For only when trusted."""
    if get_settings().dashboard_trust_proxy:
        forwarded = request.headers.get("x-forwarded-for", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else None


def safe_next(target: str | None) -> str:
    """Only a path on this server: never an absolute or protocol-relative URL."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if target.startswith(("/ocse/", "/_stcore/")):
        return "/"
    return target


def _language(request: Request) -> str:
    chosen = request.query_params.get("lang")
    if chosen in ("en", "zh"):
        return chosen
    return "zh" if request.headers.get("accept-language", "").startswith("zh") else "en"


def _cookie_options() -> dict:
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": get_settings().dashboard_secure_cookie,
        "path": "/",
    }


def _page_id(path: str) -> str | None:
    name = path.strip("/").split("/")[0]
    return name if name in PAGE_ACCESS else None


# --- routes ----------------------------------------------------------------------------------


async def signin(request: Request) -> Response:
    if request.method == "GET":
        return _signin_form(
            request, _language(request), safe_next(request.query_params.get("next"))
        )
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return PlainTextResponse("request too large", status_code=413)
    form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
    lang = form.get("lang") if form.get("lang") in ("en", "zh") else "en"
    target = safe_next(form.get("next"))
    token = request.cookies.get(CSRF_COOKIE, "")
    if not token or not secrets.compare_digest(token, form.get("csrf", "")):
        # A form posted from elsewhere (or with cookies off): start again.
        return _signin_form(request, lang, target, notice="stale", status=400)
    username = form.get("username", "").strip()[:64]
    password = form.get("password", "")
    sessions = session_store()
    log = sessions.access.log
    source = sessions.source_key(client_address(request))
    locked = sessions.lockout(username, source) if username else None
    if locked is not None:
        log(username or "-", "none", "login_failed", "password",
            {"reason": "locked", "scope": locked.scope, "source": source[:12]})  # fmt: skip
        return _signin_form(request, lang, target, notice="locked", status=429, username=username,
                            wait=_wait(locked))  # fmt: skip
    account = sessions.access.authenticate(username, password) if username else None
    if account is None:
        started = sessions.record_failure(username or "-", source)
        detail = {"reason": "bad_credentials", "source": source[:12]}
        if started:
            detail["locked"] = started.scope
        log(username or "-", "none", "login_failed", "password", detail)
        notice, wait = ("locked", _wait(started)) if started else ("bad_login", None)
        return _signin_form(request, lang, target, notice=notice, status=401, username=username,
                            wait=wait)  # fmt: skip
    sessions.record_success(username, source)
    cookie = sessions.create(account.username, account.role.value, "password", source)
    log(account.username, account.role.value, "login", "password", {"source": source[:12]})
    response = RedirectResponse(_with_language(target, lang), status_code=303)
    response.set_cookie(COOKIE_NAME, cookie, **_cookie_options())
    response.delete_cookie(CSRF_COOKIE, path=SIGNIN_PATH)
    return response


async def signout(request: Request) -> Response:
    session_store().sign_out(request.cookies.get(COOKIE_NAME))
    lang = _language(request)
    query = urlencode({"notice": "signed_out", "lang": lang})
    response = RedirectResponse(f"{SIGNIN_PATH}?{query}", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


def _wait(lockout) -> int:
    from datetime import UTC, datetime

    return lockout.seconds_left(datetime.now(UTC))


def _with_language(target: str, lang: str) -> str:
    if "lang=" in target:
        return target
    return f"{target}{'&' if '?' in target else '?'}lang={lang}"


def _signin_form(request, lang, target, *, notice=None, status=200, username="", wait=None):
    # One token per browser (kept while its cookie lives), checked against the form's copy.
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    notice = notice or request.query_params.get("notice")
    page = render_signin(
        lang=lang,
        target=target,
        csrf=token,
        notice=notice,
        username=username,
        wait_seconds=wait,
        sso=_oidc_configured(),
    )
    response = HTMLResponse(page, status_code=status)
    response.set_cookie(
        CSRF_COOKIE, token, max_age=3600, **{**_cookie_options(), "path": SIGNIN_PATH}
    )
    return response


@functools.cache
def _oidc_configured() -> bool:
    # Read once: Streamlit reads its [auth] section at start-up too (a change needs a restart).
    secrets_file = APP_SCRIPT.parent / ".streamlit" / "secrets.toml"
    return secrets_file.exists() and "[auth" in secrets_file.read_text(encoding="utf-8")


# --- the gate --------------------------------------------------------------------------------


class SignInGate:
    """ASGI middleware: the metrics endpoint off, and every page load signed in and allowed."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "/")
        if path.startswith(_BLOCKED):
            await PlainTextResponse("not found", status_code=404)(scope, receive, send)
            return
        if path.startswith(_NOT_PAGES) or "." in path.rsplit("/", 1)[-1]:
            await self.app(scope, receive, send)  # assets, Streamlit's API, sign-in routes
            return
        response = self._refusal(Request(scope))
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def _refusal(self, request: Request) -> Response | None:
        cookie = request.cookies.get(COOKIE_NAME)
        sessions = session_store()
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        lang = _language(request)
        if _oidc_configured() and any(k.startswith("_streamlit_user") for k in request.cookies):
            return None  # single sign-on: the app script checks Streamlit's signed cookie
        if request.query_params.get("ocse_sso") == "1" and _oidc_configured():
            return None  # on the way to the identity provider (st.login in the app)
        session = sessions.resolve(cookie)
        if session is None:
            notice = None
            if sessions.is_forged(cookie):
                detail = {"reason": "forged_cookie", "path": request.url.path}
                access_store().log("-", "none", "denied", "session", detail)
                notice = "forged"
            elif (ended := sessions.ended(cookie)) is not None:
                notice = "expired" if ended.end_reason == "expired" else ended.end_reason
            query = {"next": target, "lang": lang, **({"notice": notice} if notice else {})}
            response = RedirectResponse(f"{SIGNIN_PATH}?{urlencode(query, quote_via=quote)}", 303)
            if cookie:
                response.delete_cookie(COOKIE_NAME, path="/")
            return response
        page = _page_id(request.url.path)
        if page is not None and not may_view(session.role, page):
            access_store().log(session.username, session.role, "denied", page, {"via": "url"})
            return HTMLResponse(_refused_page(lang, page), status_code=403)
        if page is not None and page == pages_for(session.role)[0]:
            # The role's first page is Streamlit's default page, served at the root only: its
            # own path would show "Page not found". A bookmark of it goes to the root, with
            # its filters.
            query = f"?{request.url.query}" if request.url.query else ""
            return RedirectResponse(f"/{query}", status_code=303)
        return None


def _refused_page(lang: str, page: str) -> str:
    title, body, back = {
        "en": ("Not available for your role", "This page is not open to your role. The "
               "attempt was logged.", "Back to the dashboards"),
        "zh": ("您的角色无权访问此页面", "您的角色不能打开此页面，本次尝试已被记录。", "返回看板"),
    }[lang]  # fmt: skip
    return (
        f"<!doctype html><html lang='{lang}'><meta charset='utf-8'><title>{title}</title>"
        "<body style='font-family:sans-serif;max-width:36rem;margin:4rem auto;color:#262730'>"
        f"<h1 style='font-size:1.5rem'>{html.escape(title)}</h1><p>{html.escape(body)}</p>"
        f"<p><code>{html.escape(page)}</code></p><p><a href='/?lang={lang}'>{back}</a></p>"
    )


app = st.App(
    str(APP_SCRIPT),
    routes=[
        Route(SIGNIN_PATH, signin, methods=["GET", "POST"]),
        Route(SIGNOUT_PATH, signout, methods=["GET"]),
    ],
    middleware=[Middleware(SignInGate)],
)
