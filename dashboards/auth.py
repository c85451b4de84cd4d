"""Who is signed in, and the server-side check every page runs before its first query.

- Signing in happens outside the app, on the HTTP routes of `dashboards/server.py`: they
  check the password (argon2id hash, `ocse/access/store.py`), throttle per account and per
  source, and set an HttpOnly, SameSite=Strict cookie naming a server-side session
  (`ocse/access/sessions.py`). Every run of the app resolves that cookie again, so a reload
  keeps the user signed in and a sign-out, expiry or revocation elsewhere ends this tab too.
- Optional single sign-on through Streamlit's `st.login` when `.streamlit/secrets.toml` has
  an `[auth]` section; an SSO user still needs an account (`ocse users add EMAIL --role ROLE
  --oidc-only`), which gives the role, and gets a server-side session the same way.
- A session ends after `OCSE_SESSION_IDLE_MINUTES` without a user action (the timed
  refresh of a screen left open does not count as one) or `OCSE_SESSION_MAX_HOURS` after
  sign-in, whichever comes first; a display account's only at the absolute limit.
- `require_page(page_id)` is the first call of every page: it refuses anyone whose role
  the page matrix (`ocse/access/roles.py`) does not list, before anything is queried, and
  logs the view or the refusal in the access log. `log_refusal` records every other
  refusal (a query, a download, a release).
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from urllib.parse import urlencode

import streamlit as st

from dashboards.i18n import language, words
from dashboards.settings import get_dashboard_settings
from ocse.access import AccessStore, Role, may_view, sees_individuals
from ocse.access.sessions import COOKIE_NAME, SessionStore, session_store

SESSION_KEY = "ocse_user"
# Where a session's cookie is looked for when the browser sent none: only server code can
# set a session-state key, and the value is checked like any cookie (the AppTest tests,
# which cannot send cookies, put a real signed one here).
COOKIE_KEY = "ocse_session_cookie"
_LAST_PAGE_KEY = "ocse_last_logged_page"
_TIMED_RERUN_KEY = "ocse_timed_rerun"
_NOTICE_KEY = "ocse_auth_notice"
SIGNIN_PATH = "/ocse/signin"
SIGNOUT_PATH = "/ocse/signout"

TEXT = {
    "en": {
        "title": "Sign in to OCSE Warehouse",
        "intro": "Child-safety metrics for the prevention committee, assessors, researchers "
        "and operations. Access is logged.",
        "submit": "Sign in",
        "sso": "Sign in with single sign-on",
        "expired": "Your session expired. Sign in again.",
        "signed_out": "You are signed out.",
        "revoked": "Your session was ended by an administrator. Sign in again.",
        "forged": "Your session could not be verified. Sign in again.",
        "sso_no_account": "Your single sign-on account ({email}) has no OCSE role. Ask an "
        "administrator to add it: `ocse users add EMAIL --role ROLE --oidc-only`.",
        "denied_title": "Not available for your role",
        "denied": "The {role} role cannot open this page. The attempt was logged. Choose a "
        "page from the menu.",
        "signed_in_as": "Signed in as **{user}**",
        "sign_out": "Sign out",
    },
    "zh": {
        "title": "登录 OCSE 数据仓库",
        "intro": "面向防治委员会、评估专家、研究人员和运营"
        "团队的未成年人保护指标。所有访问均被记录。",
        "submit": "登录",
        "sso": "使用单点登录",
        "expired": "会话已过期，请重新登录。",
        "signed_out": "您已退出登录。",
        "revoked": "管理员已结束您的会话，请重新登录。",
        "forged": "无法验证您的会话，请重新登录。",
        "sso_no_account": "您的单点登录账号（{email}）没有 OCSE 角色。请管理员添加："
        "`ocse users add EMAIL --role ROLE --oidc-only`。",
        "denied_title": "您的角色无权访问此页面",
        "denied": "{role} 角色不能打开此页面，本次尝试已被记录。请从菜单中选择页面。",
        "signed_in_as": "当前用户 **{user}**",
        "sign_out": "退出登录",
    },
}

ROLE_LABELS = {
    "en": {
        "leadership": "Leadership",
        "assessor": "External assessor",
        "researcher": "Researcher",
        "operations": "Operations",
        "admin": "Administrator",
        "display": "Display screen",
    },
    "zh": {
        "leadership": "领导机构",
        "assessor": "外部评估专家",
        "researcher": "研究人员",
        "operations": "运营团队",
        "admin": "管理员",
        "display": "展示屏",
    },
}


@dataclass
class SessionUser:
    username: str
    role: str
    via: str  # "password" or "oidc"
    signed_in_at: float
    last_seen: float


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page: what the page may show them."""

    username: str
    role: str

    @property
    def sees_individuals(self) -> bool:
        return sees_individuals(self.role)


def store() -> AccessStore:
    return AccessStore(get_dashboard_settings().access_db)


def sessions() -> SessionStore:
    return session_store(get_dashboard_settings())


def role_label(role: str) -> str:
    return ROLE_LABELS.get(language(), ROLE_LABELS["en"]).get(role, role)


# --- the session -------------------------------------------------------------------------


def _cookie() -> str | None:
    """The session cookie this browser sent (or, for a single sign-on user, the session
    derived from Streamlit's own signed identity cookie)."""
    try:
        cookies = st.context.cookies
    except Exception:  # not inside a Streamlit script run
        cookies = {}
    cookie = cookies.get(COOKIE_NAME)
    if not isinstance(cookie, str) or not cookie:  # (AppTest's stand-in client is a mock)
        cookie = st.session_state.get(COOKIE_KEY)
    if cookie is None and oidc_configured():
        cookie = _oidc_cookie(cookies)
    return cookie


def current_user(*, touch: bool = False) -> SessionUser | None:
    """The signed-in user of this browser session; None when signed out or expired.

    `touch`: this run is a user action that keeps the session alive (the app's entry
    script passes it once per run; a timed refresh does not count)."""
    cookie = _cookie()
    if cookie is None:
        return None
    store_ = sessions()
    action = touch and not st.session_state.pop(_TIMED_RERUN_KEY, False)
    session = store_.resolve(cookie, touch=action)
    if session is None:
        ended = store_.ended(cookie)
        forged = store_.is_forged(cookie)
        st.session_state[_NOTICE_KEY] = (ended.end_reason if ended else None) or (
            "forged" if forged else "expired"
        )
        if forged and not st.session_state.get("ocse_forged_logged"):
            store().log("-", "none", "denied", "session", {"reason": "forged_cookie"})
            st.session_state["ocse_forged_logged"] = True
        st.session_state.pop(SESSION_KEY, None)
        return None
    user = SessionUser(
        session.username,
        session.role,
        session.via,
        session.created_at.timestamp(),
        session.last_seen_at.timestamp(),
    )
    st.session_state[SESSION_KEY] = user
    return user


def current_role() -> str | None:
    """The role of this session's user (no expiry side effects); None outside a session."""
    try:
        user = st.session_state.get(SESSION_KEY)
    except Exception:  # not inside a Streamlit script run
        return None
    return user.role if isinstance(user, SessionUser) else None


def mark_timed_rerun() -> None:
    """Called before an automatic refresh: it must not keep an idle session alive."""
    st.session_state[_TIMED_RERUN_KEY] = True


def signin_url(path: str | None = None) -> str:
    """The sign-in form, coming back to `path` (default: this page, filters included)."""
    if path is None:
        page = st.session_state.get(_LAST_PAGE_KEY) or ""
        query = urlencode(dict(st.query_params.items()))
        path = f"/{page}" + (f"?{query}" if query else "")
    return f"{SIGNIN_PATH}?{urlencode({'next': path, 'lang': language()})}"


def signed_out_page() -> None:
    """Shown in a tab whose session ended while it was open (a page load without a session
    never gets here: the server sends it to the sign-in form)."""
    text = words(TEXT)
    _, middle, _ = st.columns([1, 1.4, 1])
    with middle:
        st.title(text["title"])
        st.caption(text["intro"])
        notice = st.session_state.get(_NOTICE_KEY) or "signed_out"
        st.info(text.get(notice, text["expired"]), icon=":material/lock:")
        st.link_button(
            text["submit"], signin_url(), type="primary", icon=":material/login:", width="stretch"
        )
        if oidc_configured():
            st.button(text["sso"], on_click=st.login, icon=":material/key:", width="stretch")


# --- single sign-on ----------------------------------------------------------------------


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def _oidc_user() -> str | None:
    try:
        if st.user.get("is_logged_in"):
            return st.user.get("email")
    except Exception:
        return None
    return None


def _oidc_cookie(cookies) -> str | None:
    """A server-side session for a single sign-on user, keyed by Streamlit's signed identity
    cookie: the same cookie after a reload finds the same session; once it is revoked, the
    user signs in at the identity provider again (a new identity cookie)."""
    email = _oidc_user()
    raw = "".join(v for k, v in sorted(dict(cookies).items()) if k.startswith("_streamlit_user"))
    if email is None or not raw:
        if st.query_params.get("ocse_sso") == "1" and email is None:
            st.login()
        return None
    account = store().user(email)
    if account is None:
        text = words(TEXT)
        store().log(email, "none", "login_failed", "oidc", {"reason": "no_account"})
        st.error(text["sso_no_account"].format(email=email), icon=":material/block:")
        st.button(text["sign_out"], on_click=st.logout)
        st.stop()
    store_ = sessions()
    session_id = hashlib.sha256(f"oidc:{raw}".encode()).hexdigest()
    cookie = store_.cookie_for(session_id)
    if store_.ended(cookie) is None and store_.resolve(cookie) is None:
        store_.create(account.username, account.role.value, "oidc", "-", session_id=session_id)
        store().log(account.username, account.role.value, "login", "oidc", {})
    return cookie


def sign_out() -> None:
    """The sign-out button: ends the server-side session here (so every tab of it ends),
    then the browser goes to the route that also clears the cookie."""
    user = st.session_state.get(SESSION_KEY)
    cookie = _cookie()
    sessions().sign_out(cookie)
    for key in (SESSION_KEY, _LAST_PAGE_KEY, _TIMED_RERUN_KEY, COOKIE_KEY):
        st.session_state.pop(key, None)
    st.session_state[_NOTICE_KEY] = "signed_out"
    if isinstance(user, SessionUser) and user.via == "oidc":
        st.logout()


# --- the page guard ----------------------------------------------------------------------


def require_page(page_id: str) -> Viewer:
    """First line of every page. Stops the page, before any query, unless the signed-in
    user's role may view it; logs the view (once per visit) or the refusal."""
    from dashboards.frame import require_valid_settings  # frame imports this module

    require_valid_settings()
    user = current_user()
    if user is None:
        st.warning(words(TEXT)["expired"], icon=":material/lock:")
        st.link_button(words(TEXT)["submit"], signin_url(f"/{page_id}"), icon=":material/login:")
        st.stop()
    if not may_view(user.role, page_id):
        refuse_page(user, page_id, via="app")
    if st.session_state.get(_LAST_PAGE_KEY) != page_id:
        store().log(user.username, user.role, "page_view", page_id, {})
        st.session_state[_LAST_PAGE_KEY] = page_id
    return Viewer(user.username, user.role)


def refuse_page(user: SessionUser, page_id: str, *, via: str) -> None:
    """Log the refusal and say so; stops the run."""
    text = words(TEXT)
    store().log(user.username, user.role, "denied", page_id, {"via": via})
    st.error(f"**{text['denied_title']}**", icon=":material/block:")
    st.write(text["denied"].format(role=role_label(user.role)))
    st.stop()


def log_refusal(what: str, target: str, detail: dict | None = None) -> None:
    """A refused query, download or release: who, role, what and when (the log adds when)."""
    user = st.session_state.get(SESSION_KEY)
    username, role = (user.username, user.role) if isinstance(user, SessionUser) else ("-", "none")
    store().log(username, role, "denied", target, {"refused": what, **(detail or {})})


def log_download(viewer: Viewer, target: str, detail: dict) -> None:
    """`on_click` of a download button: who took which file, with which filters."""
    store().log(viewer.username, viewer.role, "download", target, detail)


def user_box(user: SessionUser) -> None:
    text = words(TEXT)
    st.markdown(text["signed_in_as"].format(user=_md_escape(user.username)))
    st.caption(role_label(user.role))
    if user.via == "oidc":
        st.button(text["sign_out"], on_click=sign_out, icon=":material/logout:", key="sign_out")
        return
    # A link, not a button: the sign-out route clears the HttpOnly cookie, which no script
    # can. The session itself is ended server-side by that route. Not `st.link_button`: it
    # always opens a new tab, which would leave this one on screen. The label is our own
    # fixed text, never data, so the HTML is safe.
    st.markdown(
        f'<a id="ocse-sign-out" href="{SIGNOUT_PATH}?lang={language()}" target="_self" '
        f'style="{_SIGN_OUT_STYLE}">{html.escape(text["sign_out"])}</a>',
        unsafe_allow_html=True,
    )


_SIGN_OUT_STYLE = (
    "display:inline-block;padding:0.25rem 0.75rem;border:1px solid rgba(49,51,63,0.2);"
    "border-radius:0.5rem;color:inherit;text-decoration:none;font-size:0.875rem"
)


def _md_escape(value: str) -> str:
    # usernames are restricted to [A-Za-z0-9._@+-]; escape the Markdown ones anyway
    return "".join("\\" + ch if ch in "\\`*_{}[]()#+-.!|<>" else ch for ch in value)


__all__ = ["Role", "SessionUser", "Viewer", "current_role", "require_page", "signed_out_page"]
