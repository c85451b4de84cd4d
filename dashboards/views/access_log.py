"""Access log, for administrators: every sign-in (and failed attempt), page view, refusal,
download and export, with who, which role, what and when. Read from the access store
(`OCSE_ACCESS_DB`), not the snapshot; append-only (the store refuses edits and deletes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from dashboards import auth
from dashboards.auth import role_label
from dashboards.components import open_page, show_table
from ocse.access.store import EVENTS

TEXT = {
    "en": {
        "title": "Access log",
        "intro": "Who signed in, looked at what, downloaded or exported what, and when. "
        "Entries cannot be edited or deleted.",
        "user": "User",
        "event": "Event",
        "all": "All",
        "limit": "Entries shown",
        "events": {
            "login": "Sign-in",
            "login_failed": "Failed sign-in",
            "logout": "Sign-out",
            "page_view": "Page view",
            "denied": "Refused",
            "download": "Download",
            "export": "Export",
        },
        "accounts": "Accounts",
        "col_at": "When",
        "col_user": "User",
        "col_role": "Role",
        "col_event": "Event",
        "col_target": "What",
        "col_detail": "Detail",
        "col_via": "Sign-in",
        "col_created": "Created (UTC)",
        "empty": "No entry matches.",
    },
    "zh": {
        "title": "访问日志",
        "intro": "谁在何时登录、查看、下载或导出了什么。日志条目不可修改或删除。",
        "user": "用户",
        "event": "事件",
        "all": "全部",
        "limit": "显示条数",
        "events": {
            "login": "登录",
            "login_failed": "登录失败",
            "logout": "退出",
            "page_view": "查看页面",
            "denied": "被拒绝",
            "download": "下载",
            "export": "导出",
        },
        "accounts": "账号",
        "col_at": "时间",
        "col_user": "用户",
        "col_role": "角色",
        "col_event": "事件",
        "col_target": "对象",
        "col_detail": "详情",
        "col_via": "登录方式",
        "col_created": "创建时间（UTC）",
        "empty": "没有匹配的条目。",
    },
}


def local_time(stamp: str) -> str:
    """An ISO UTC time of the access store as wall-clock seconds in the reporting zone."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(ctx.tz)).strftime("%Y-%m-%d %H:%M:%S")


ctx = open_page("access_log", TEXT, ())
text = ctx.text
events: dict = text["events"]
store = auth.store()

left, middle, right = st.columns([2, 2, 1])
with left:
    user = st.text_input(text["user"], key="access_user", max_chars=64).strip() or None
with middle:
    event = st.selectbox(
        text["event"],
        options=[None, *EVENTS],
        format_func=lambda e: text["all"] if e is None else events[e],
        key="access_event",
    )
with right:
    limit = st.number_input(
        text["limit"], min_value=50, max_value=10_000, value=500, step=50, key="access_limit"
    )

entries = store.entries(limit=int(limit), username=user, event=event)
if not entries:
    st.info(text["empty"], icon=":material/search_off:")
else:
    frame = pd.DataFrame(
        {
            # stored in UTC; shown in the reporting time zone like every other time
            "at": [local_time(e.at) for e in entries],
            "username": [e.username for e in entries],
            "role": [role_label(e.role) for e in entries],
            "event": [events.get(e.event, e.event) for e in entries],
            "target": [e.target for e in entries],
            "detail": [
                ", ".join(f"{k}={v}" for k, v in e.detail.items()) if e.detail else ""
                for e in entries
            ],
        }
    )
    show_table(
        frame,
        {
            "at": text["col_at"],
            "username": text["col_user"],
            "role": text["col_role"],
            "event": text["col_event"],
            "target": text["col_target"],
            "detail": text["col_detail"],
        },
        height=520,
    )

with st.expander(text["accounts"]):
    accounts = store.users()
    show_table(
        pd.DataFrame(
            {
                "username": [a.username for a in accounts],
                "role": [role_label(a.role.value) for a in accounts],
                "via": ["password" if a.has_password else "oidc" for a in accounts],
                "created_at": [local_time(a.created_at) for a in accounts],
            }
        ),
        {
            "username": text["col_user"],
            "role": text["col_role"],
            "via": text["col_via"],
            "created_at": text["col_created"],
        },
    )
