"""The sign-in form: one self-contained HTML page (no script, no outside resource), in
English or Chinese, styled like the dashboards. Every value put in it is escaped."""

from __future__ import annotations

import html
from urllib.parse import quote

TEXT = {
    "en": {
        "title": "Sign in to OCSE Warehouse",
        "intro": "Child-safety metrics for the prevention committee, assessors, researchers and "
        "operations. Access is logged.",
        "username": "Username",
        "password": "Password",
        "submit": "Sign in",
        "sso": "Sign in with single sign-on",
        "other": "中文",
        "bad_login": "Wrong username or password.",
        "locked": "Too many failed attempts. Try again in {wait}.",
        "expired": "Your session expired. Sign in again.",
        "signed_out": "You are signed out.",
        "revoked": "Your session was ended by an administrator. Sign in again.",
        "forged": "Your session could not be verified. Sign in again.",
        "stale": "The form had expired. Please sign in again.",
        "seconds": "{n} seconds",
        "minutes": "{n} minutes",
    },
    "zh": {
        "title": "登录 OCSE 数据仓库",
        "intro": "面向防治委员会、评估专家、研究人员和运营团队的未成年人保护指标。"
        "所有访问均被记录。",
        "username": "用户名",
        "password": "密码",
        "submit": "登录",
        "sso": "使用单点登录",
        "other": "English",
        "bad_login": "用户名或密码错误。",
        "locked": "失败次数过多，请 {wait}后再试。",
        "expired": "会话已过期，请重新登录。",
        "signed_out": "您已退出登录。",
        "revoked": "管理员已结束您的会话，请重新登录。",
        "forged": "无法验证您的会话，请重新登录。",
        "stale": "表单已过期，请重新登录。",
        "seconds": "{n} 秒",
        "minutes": "{n} 分钟",
    },
}

_STYLE = """
body{margin:0;font-family:"Source Sans Pro","Source Sans 3","WenQuanYi Micro Hei",
sans-serif;background:#f5f7fa;color:#262730}
main{max-width:26rem;margin:9vh auto;background:#fff;border:1px solid #e3e6ea;
border-radius:.75rem;padding:2rem 2.25rem;box-shadow:0 1px 3px rgba(0,0,0,.06)}
h1{font-size:1.6rem;margin:0 0 .5rem}p.intro{color:#6b6f76;font-size:.95rem;margin:0 0 1.5rem}
label{display:block;font-size:.9rem;margin:.9rem 0 .3rem}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.55rem .7rem;
border:1px solid #d0d4da;border-radius:.5rem;font-size:1rem;background:#f9fafb}
input:focus{outline:2px solid #4C78A8;border-color:#4C78A8}
button,a.button{display:block;width:100%;box-sizing:border-box;margin-top:1.4rem;
padding:.6rem;border:0;border-radius:.5rem;background:#4C78A8;color:#fff;font-size:1rem;
cursor:pointer;text-align:center;text-decoration:none}
a.button{background:#fff;color:#4C78A8;border:1px solid #4C78A8;margin-top:.8rem}
.notice{padding:.7rem .9rem;border-radius:.5rem;font-size:.92rem;margin-bottom:1rem;
background:#eaf1f8;color:#1f4e79}.notice.error{background:#fdecea;color:#8a1c12}
nav{text-align:right;font-size:.9rem;margin-bottom:.5rem}nav a{color:#4C78A8}
"""

_ERRORS = ("bad_login", "locked", "forged", "stale")


def _duration(text: dict, seconds: int) -> str:
    if seconds < 120:
        return text["seconds"].format(n=seconds)
    return text["minutes"].format(n=(seconds + 59) // 60)


def render_signin(
    *,
    lang: str,
    target: str,
    csrf: str,
    notice: str | None = None,
    username: str = "",
    wait_seconds: int | None = None,
    sso: bool = False,
) -> str:
    text = TEXT.get(lang, TEXT["en"])
    e = html.escape
    other = "zh" if lang == "en" else "en"
    notice_html = ""
    if notice in text and notice not in ("title", "intro"):
        message = text[notice]
        if notice == "locked":
            message = message.format(wait=_duration(text, wait_seconds or 60))
        kind = "notice error" if notice in _ERRORS else "notice"
        notice_html = f"<div class='{kind}' role='alert' id='notice'>{e(message)}</div>"
    sso_html = (
        f"<a class='button' href='/?ocse_sso=1&amp;lang={lang}'>{e(text['sso'])}</a>" if sso else ""
    )
    switch = e(f"/ocse/signin?lang={other}&next={quote(target, safe='')}")
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{e(text["title"])}</title><style>{_STYLE}</style></head>
<body><main>
<nav><a href="{switch}">{e(text["other"])}</a></nav>
<h1>{e(text["title"])}</h1><p class="intro">{e(text["intro"])}</p>
{notice_html}
<form method="post" action="/ocse/signin" autocomplete="on">
<input type="hidden" name="csrf" value="{e(csrf)}">
<input type="hidden" name="next" value="{e(target)}">
<input type="hidden" name="lang" value="{lang}">
<label for="username">{e(text["username"])}</label>
<input type="text" id="username" name="username" value="{e(username)}" autocomplete="username"
 required autofocus maxlength="64">
<label for="password">{e(text["password"])}</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit" id="sign-in">{e(text["submit"])}</button>
</form>{sso_html}
</main></body></html>"""
