"""Sign-in, sessions, and the server-side check every page runs before its first query.

- Local accounts (`ocse users add`) sign in with a password checked against a salted
  argon2id hash (`ocse/access/store.py`). Optional single sign-on through Streamlit's
  `st.login` when `.streamlit/secrets.toml` has an `[auth]` section; an SSO user still
  needs an account (`ocse users add EMAIL --role ROLE --oidc-only`), which gives the role.
- A session ends after `OCSE_SESSION_IDLE_MINUTES` without a user action (the timed
  refresh of a screen left open does not count as one) or `OCSE_SESSION_MAX_HOURS` after
  sign-in, whichever comes first.
- `require_page(page_id)` is the first call of every page: it refuses anyone whose role
  the page matrix (`ocse/access/roles.py`) does not list, before anything is queried, and
  logs the view or the refusal in the access log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import streamlit as st

from dashboards.i18n import words
from dashboards.settings import get_dashboard_settings
from ocse.access import AccessStore, Role, may_view, sees_individuals

SESSION_KEY = "ocse_user"
_LAST_PAGE_KEY = "ocse_last_logged_page"
_TIMED_RERUN_KEY = "ocse_timed_rerun"
_FAILURES_KEY = "ocse_login_failures"
_NOTICE_KEY = "ocse_auth_notice"
MAX_FAILURES = 5
LOCKOUT_SECONDS = 60

TEXT = {
    "en": {
        "title": "Sign in to OCSE Warehouse",
        "intro": "Child-safety metrics for the prevention committee, assessors, researchers "
        "and operations. Access is logged.",
        "username": "Username",
        "password": "Password",
        "submit": "Sign in",
        "sso": "Sign in with single sign-on",
        "bad_login": "Wrong username or password.",
        "locked": "Too many failed attempts. Wait a minute and try again.",
        "expired": "Your session expired. Sign in again.",
        "signed_out": "You are signed out.",
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
        "username": "用户名",
        "password": "密码",
        "submit": "登录",
        "sso": "使用单点登录",
        "bad_login": "用户名或密码错误。",
        "locked": "失败次数过多，请一分钟后再试。",
        "expired": "会话已过期，请重新登录。",
        "signed_out": "您已退出登录。",
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
    },
    "zh": {
        "leadership": "领导机构",
        "assessor": "外部评估专家",
        "researcher": "研究人员",
        "operations": "运营团队",
        "admin": "管理员",
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


def role_label(role: str) -> str:
    from dashboards.i18n import language

    return ROLE_LABELS.get(language(), ROLE_LABELS["en"]).get(role, role)


# --- the session -------------------------------------------------------------------------


def current_user(*, touch: bool = False) -> SessionUser | None:
    """The signed-in user of this browser session; None when signed out or expired.

    `touch`: this run is a user action that keeps the session alive (the app's entry
    script passes it once per run; a timed refresh does not count)."""
    user = st.session_state.get(SESSION_KEY)
    if not isinstance(user, SessionUser):
        return None
    settings = get_dashboard_settings()
    now = time.time()
    idle = now - user.last_seen > settings.session_idle_minutes * 60
    too_old = now - user.signed_in_at > settings.session_max_hours * 3600
    if idle or too_old:
        store().log(user.username, user.role, "logout", "session", {"reason": "expired"})
        _clear_session()
        st.session_state[_NOTICE_KEY] = "expired"
        return None
    if touch and not st.session_state.pop(_TIMED_RERUN_KEY, False):
        user.last_seen = now
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


def _start_session(username: str, role: str, via: str) -> None:
    now = time.time()
    st.session_state[SESSION_KEY] = SessionUser(username, role, via, now, now)
    st.session_state.pop(_LAST_PAGE_KEY, None)
    st.session_state.pop(_FAILURES_KEY, None)
    store().log(username, role, "login", via, {})


def _clear_session() -> None:
    for key in (SESSION_KEY, _LAST_PAGE_KEY, _TIMED_RERUN_KEY):
        st.session_state.pop(key, None)


def sign_out() -> None:
    user = st.session_state.get(SESSION_KEY)
    if isinstance(user, SessionUser):
        store().log(user.username, user.role, "logout", "session", {"reason": "signed_out"})
    _clear_session()
    st.session_state[_NOTICE_KEY] = "signed_out"
    if isinstance(user, SessionUser) and user.via == "oidc":
        st.logout()


# --- signing in --------------------------------------------------------------------------


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


def sign_in_from_oidc() -> bool:
    """Start a session for a user who came back from the identity provider."""
    email = _oidc_user()
    if email is None:
        return False
    account = store().user(email)
    if account is None:
        text = words(TEXT)
        store().log(email, "none", "login_failed", "oidc", {"reason": "no_account"})
        st.error(text["sso_no_account"].format(email=email), icon=":material/block:")
        st.button(text["sign_out"], on_click=st.logout)
        st.stop()
    _start_session(account.username, account.role.value, "oidc")
    return True


def login_page() -> None:
    """The sign-in form (the only page shown to someone not signed in)."""
    text = words(TEXT)
    _, middle, _ = st.columns([1, 1.4, 1])
    with middle:
        st.title(text["title"])
        st.caption(text["intro"])
        notice = st.session_state.pop(_NOTICE_KEY, None)
        if notice:
            st.info(text[notice], icon=":material/info:")
        failures = st.session_state.get(_FAILURES_KEY, [])
        recent = [at for at in failures if time.time() - at < LOCKOUT_SECONDS]
        with st.form("sign_in", border=True):
            username = st.text_input(text["username"], key="login_username")
            password = st.text_input(text["password"], type="password", key="login_password")
            submitted = st.form_submit_button(text["submit"], type="primary", width="stretch")
        if submitted:
            if len(recent) >= MAX_FAILURES:
                st.error(text["locked"], icon=":material/lock_clock:")
                return
            account = store().authenticate(username.strip(), password)
            if account is None:
                st.session_state[_FAILURES_KEY] = [*recent, time.time()]
                store().log(username.strip()[:64] or "-", "none", "login_failed", "password", {})
                st.error(text["bad_login"], icon=":material/error:")
                return
            _start_session(account.username, account.role.value, "password")
            st.rerun()
        if oidc_configured():
            st.divider()
            st.button(text["sso"], on_click=st.login, icon=":material/key:", width="stretch")


# --- the page guard ----------------------------------------------------------------------


def require_page(page_id: str) -> Viewer:
    """First line of every page. Stops the page, before any query, unless the signed-in
    user's role may view it; logs the view (once per visit) or the refusal."""
    from dashboards.frame import require_valid_settings  # frame imports this module

    require_valid_settings()
    user = current_user()
    if user is None:
        st.warning(words(TEXT)["expired"], icon=":material/lock:")
        st.stop()
    if not may_view(user.role, page_id):
        text = words(TEXT)
        store().log(user.username, user.role, "denied", page_id, {})
        st.error(f"**{text['denied_title']}**", icon=":material/block:")
        st.write(text["denied"].format(role=role_label(user.role)))
        st.stop()
    if st.session_state.get(_LAST_PAGE_KEY) != page_id:
        store().log(user.username, user.role, "page_view", page_id, {})
        st.session_state[_LAST_PAGE_KEY] = page_id
    return Viewer(user.username, user.role)


def log_download(viewer: Viewer, target: str, detail: dict) -> None:
    """`on_click` of a download button: who took which file, with which filters."""
    store().log(viewer.username, viewer.role, "download", target, detail)


def user_box(user: SessionUser) -> None:
    text = words(TEXT)
    st.markdown(text["signed_in_as"].format(user=_md_escape(user.username)))
    st.caption(role_label(user.role))
    st.button(text["sign_out"], on_click=sign_out, icon=":material/logout:", key="sign_out")


def _md_escape(value: str) -> str:
    # usernames are restricted to [A-Za-z0-9._@+-]; escape the Markdown ones anyway
    return "".join("\\" + ch if ch in "\\`*_{}[]()#+-.!|<>" else ch for ch in value)


__all__ = ["Role", "SessionUser", "Viewer", "current_role", "login_page", "require_page"]
