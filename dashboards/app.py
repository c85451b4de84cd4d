"""OCSE Warehouse dashboards: `streamlit run dashboards/app.py` (or `ocse dashboard`).

The entry script is the frame around every page: sign-in, the navigation a role is
offered, the language switch and the snapshot sidebar. Which role sees which page is
decided in one place, `ocse/access/roles.py`; every page also checks it itself before its
first query (`auth.require_page`), so a page reached any other way is refused too.
"""

import streamlit as st

from dashboards import auth, frame
from dashboards.i18n import language_from_url, language_switch, words
from ocse.access import may_view

st.set_page_config(
    page_title="OCSE Warehouse",
    page_icon=":material/shield:",
    layout="wide",
    initial_sidebar_state="expanded",
)

NAV_TEXT = {
    "en": {
        "section_governance": "Governance",
        "section_operations": "Operations",
        "section_research": "Research",
        "section_about": "About",
        "overview": "Leadership overview",
        "sla": "SLA compliance",
        "trends": "Category trends",
        "offenders": "Repeat offenders",
        "cases": "Cases and victim support",
        "operations_queue": "Operations queue",
        "pipeline_health": "Pipeline health",
        "research": "Research data",
        "methodology": "Methodology",
        "access_log": "Access log",
        "sign_in": "Sign in",
    },
    "zh": {
        "section_governance": "治理",
        "section_operations": "运营",
        "section_research": "研究",
        "section_about": "说明",
        "overview": "领导总览",
        "sla": "时效达标",
        "trends": "类别趋势",
        "offenders": "重复违规者",
        "cases": "案件与被害人救助",
        "operations_queue": "运营队列",
        "pipeline_health": "数据管道健康",
        "research": "研究数据",
        "methodology": "方法说明",
        "access_log": "访问日志",
        "sign_in": "登录",
    },
}

# (section, page id, file, icon), in menu order.
PAGES = (
    ("section_governance", "overview", "views/overview.py", ":material/dashboard:"),
    ("section_governance", "sla", "views/sla.py", ":material/timer:"),
    ("section_governance", "trends", "views/trends.py", ":material/trending_up:"),
    ("section_governance", "offenders", "views/offenders.py", ":material/person_alert:"),
    ("section_governance", "cases", "views/cases.py", ":material/gavel:"),
    ("section_operations", "operations_queue", "views/operations_queue.py", ":material/alarm:"),
    (
        "section_operations",
        "pipeline_health",
        "views/pipeline_health.py",
        ":material/monitor_heart:",
    ),
    ("section_research", "research", "views/research.py", ":material/science:"),
    ("section_about", "methodology", "views/methodology.py", ":material/menu_book:"),
    ("section_about", "access_log", "views/access_log.py", ":material/history:"),
)

language_from_url()  # before any text is chosen
text = words(NAV_TEXT)
frame.require_valid_settings()

user = auth.current_user(touch=True)
with st.sidebar:
    language_switch()

if user is None:
    page = st.navigation(
        [st.Page(auth.signed_out_page, title=text["sign_in"], icon=":material/login:")],
        position="hidden",
    )
    page.run()
    st.stop()


def _requested_page() -> str | None:
    """The page the browser asked for (its URL path), before navigation falls back to the
    default: a page the role may not open is refused and logged, not silently replaced.
    (The server refuses such a URL before the app loads; this covers the app's own
    navigation requests.)"""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    name = getattr(getattr(ctx, "pages_manager", None), "intended_page_name", None)
    return name if name in {page_id for _, page_id, _, _ in PAGES} else None


requested = _requested_page()
if requested and not may_view(user.role, requested):
    with st.sidebar:
        auth.user_box(user)
    auth.refuse_page(user, requested, via="app")

sections: dict[str, list[st.Page]] = {}
for section, page_id, path, icon in PAGES:
    if may_view(user.role, page_id):
        sections.setdefault(text[section], []).append(
            st.Page(path, title=text[page_id], icon=icon, url_path=page_id)
        )
page = st.navigation(sections)
with st.sidebar:
    auth.user_box(user)
snapshot = frame.require_snapshot()
frame.sidebar(frame.snapshot_info_or_stop(snapshot))
page.run()
