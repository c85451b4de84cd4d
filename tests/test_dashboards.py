"""The dashboards on a snapshot the real pipeline built: every page under every role
(AppTest), sign-in and sessions, the access log, the role-keyed cache, hostile input, the
language switch, and a real headless Chromium signing in and opening each page.

Each test says what a user would see go wrong if it failed.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from dashboards import mart_queries as mq
from dashboards import queries
from ocse.access import PAGE_ACCESS, ROLES, AccessStore, may_view
from ocse.cli import main as ocse_cli
from ocse.serving import open_snapshot
from tests.browser import chromium_tab, sign_in_with_password
from tests.dashboard_world import (
    PAGE_FILES,
    ROOT,
    Browser,
    chromium_path,
    sign_in,
    start_chromium,
    start_dashboard,
    wait_for_http,
    world_env,
)

APP = ROOT / "dashboards" / "app.py"
SQL_PAYLOAD = "x'); drop table marts.dim_categories; --"
XSS_PAYLOAD = '<img src=x onerror="window.__pwned=1">'
# Figures each page draws on the generated data, for a role allowed to see it.
FIGURES = {
    "overview": 2,
    "sla": 1,
    "trends": 2,
    "offenders": 1,
    "cases": 2,
    "operations_queue": 0,
    "pipeline_health": 2,
    "research": 0,
    "methodology": 0,
    "access_log": 0,
}
PAGES = [page for page in PAGE_ACCESS if (ROOT / "dashboards" / PAGE_FILES[page]).exists()]


@pytest.fixture(scope="module")
def world(dashboard_world_built):
    with pytest.MonkeyPatch.context() as mp:
        world_env(dashboard_world_built, mp)
        yield dashboard_world_built
        queries.close()


def run_page(page: str, role: str, *, language: str = "en") -> AppTest:
    at = AppTest.from_file(str(ROOT / "dashboards" / PAGE_FILES[page]), default_timeout=120)
    sign_in(at, role)
    at.session_state["ocse_language"] = language
    at.run()
    return at


def strings_on(at: AppTest) -> list[str]:
    elements = [*at.markdown, *at.caption, *at.info, *at.warning, *at.success, *at.error]
    elements += [*at.title, *at.subheader, *at.text]
    values = [str(e.value) for e in elements]
    for frame in at.dataframe:
        values += [str(v) for v in frame.value.astype(str).to_numpy().ravel()]
    return values


# --- every page under every role ------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES)
def test_every_page_under_every_role(world, page: str, role: str, _access_store_in_tmp) -> None:
    """Allowed: the page renders its figures without an exception. Refused: only the
    refusal is drawn, nothing is queried, and the attempt is in the access log."""
    asked_before = queries.queries_asked
    at = run_page(page, role)
    assert not at.exception, [e.value for e in at.exception]
    log = AccessStore(_access_store_in_tmp).entries()
    if may_view(role, page):
        assert not at.error, [e.value for e in at.error]
        assert len(at.get("plotly_chart")) == FIGURES[page]
        assert at.title, "an allowed page shows its title"
        # (research without a registered partner: its refusal of any release follows the view)
        expected = [("page_view", page)]
        if page == "research":
            expected.insert(0, ("denied", "research"))  # newest first
        assert [(e.event, e.target) for e in log] == expected
    else:
        assert queries.queries_asked == asked_before, "a refused page must query nothing"
        assert len(at.error) == 1 and "Not available for your role" in at.error[0].value
        assert not at.get("plotly_chart") and not at.metric and not at.dataframe
        assert not at.title
        assert [(e.event, e.target, e.role) for e in log] == [("denied", page, role)]


def test_only_operations_and_admin_see_pseudonymous_references(world) -> None:
    """Leadership and assessors get the list's counts; no reference reaches their screen."""
    con = open_snapshot(world.serving)
    refs = {r for (r,) in con.execute("select user_ref from marts.rpt_repeat_offenders").fetchall()}
    con.close()
    assert refs
    for role in ("leadership", "assessor"):
        at = run_page("offenders", role)
        shown = " ".join(strings_on(at))
        assert not [ref for ref in refs if ref in shown]
        assert "p1:" not in shown
        assert any("operations only" in info.value for info in at.info)
    at = run_page("offenders", "operations")
    table = next(f.value for f in at.dataframe if "user_ref" in f.value.columns)
    assert set(table["user_ref"]) <= refs and len(table) == min(len(refs), 50)  # one page


def test_individual_level_queries_refuse_other_roles_even_when_cached(world) -> None:
    """A result cached for operations is never served to another role: the cache is keyed
    by role, and individual-level queries check the role themselves."""
    snapshot = queries.snapshot_identity(world.serving)
    with queries.acting_as("operations"):
        assert not mq.repeat_offenders(snapshot, ("black", "grey"), limit=50).empty
    for role in ("leadership", "assessor", "researcher", "anonymous"):
        with queries.acting_as(role), pytest.raises(mq.IndividualsNotAllowedError):
            mq.repeat_offenders(snapshot, ("black", "grey"), limit=50)
        with queries.acting_as(role), pytest.raises(mq.IndividualsNotAllowedError):
            mq.subject_events(snapshot, "cnt-1")


def test_the_cache_never_serves_one_roles_result_to_another(world, monkeypatch) -> None:
    snapshot = queries.snapshot_identity(world.serving)
    executed: list[str] = []
    real = queries._current_connection

    def counting(path):
        executed.append(queries._role_scope())
        return real(path)

    monkeypatch.setattr(queries, "_current_connection", counting)
    period = mq.Period(date(2025, 6, 2), date(2025, 6, 29), ("grooming",))
    with queries.acting_as("leadership"):
        first = mq.takedown_summary(snapshot, period)
        assert mq.takedown_summary(snapshot, period) == first  # cached for leadership
    with queries.acting_as("assessor"):
        assert mq.takedown_summary(snapshot, period) == first
    assert executed == ["leadership", "assessor"]


# --- numbers ------------------------------------------------------------------------------


def test_overview_kpis_equal_the_marts(world) -> None:
    at = run_page("overview", "leadership")
    snapshot = queries.snapshot_identity(world.serving)
    with queries.acting_as("leadership"):
        _, period_end = mq.data_days(snapshot)  # the page's default: the last 30 days of data
    first = period_end - timedelta(days=29)
    con = open_snapshot(world.serving)
    takedowns, within = con.execute(
        "select count(*), count(*) filter (where is_within_sla) from marts.fct_content_takedowns "
        "where report_date between ? and ?",
        [first, period_end],
    ).fetchone()
    black = con.execute("select count(*) from marts.dim_user_tiers where tier = 'black'").fetchone()
    con.close()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Takedowns"] == f"{takedowns:,}"
    assert metrics["Within SLA"] == f"{within / takedowns:.1%}"
    assert metrics["Black list"] == f"{black[0]:,}"


def test_category_filter_narrows_the_numbers(world) -> None:
    at = run_page("overview", "leadership")
    everything = {m.label: m.value for m in at.metric}["Takedowns"]
    at.multiselect(key="filter_categories").set_value(["csam_possession"]).run()
    assert not at.exception
    narrowed = {m.label: m.value for m in at.metric}["Takedowns"]
    assert int(narrowed.replace(",", "")) < int(everything.replace(",", ""))


def test_sla_page_switches_grain(world) -> None:
    at = run_page("sla", "assessor")
    for grain in ("day", "month", "week"):
        at.segmented_control(key="sla_grain").set_value(grain).run()
        assert not at.exception
        assert len(at.get("plotly_chart")) == 1


# --- sign-in, sessions, access log ----------------------------------------------------------


def test_navigation_offers_only_the_roles_pages(world) -> None:
    at = AppTest.from_file(str(APP), default_timeout=120)
    sign_in(at, "researcher")
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Research data"]
    # the governance pages are not even registered for a researcher (and each page refuses
    # on its own too: test_every_page_under_every_role)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/overview.py")


def test_an_idle_session_expires(world, _access_store_in_tmp) -> None:
    at = AppTest.from_file(str(APP), default_timeout=120)
    sign_in(at, "operations", "ops")
    import sqlite3

    with sqlite3.connect(_access_store_in_tmp) as conn:
        conn.execute("update sessions set last_seen_at = '2020-01-01T00:00:00.000+00:00'")
    at.run()
    assert [t.value for t in at.title] == ["Sign in to OCSE Warehouse"]
    assert any("expired" in i.value for i in at.info)
    (entry,) = AccessStore(_access_store_in_tmp).entries()
    assert (entry.event, entry.username, entry.detail["reason"]) == ("logout", "ops", "expired")
    at.run()  # logged once, however often the tab reruns
    assert len(AccessStore(_access_store_in_tmp).entries()) == 1


def test_users_cli_stores_only_a_salted_hash(_access_store_in_tmp) -> None:
    runner = CliRunner()
    password = "correct horse battery"
    for name in ("alice", "bob"):
        result = runner.invoke(
            ocse_cli, ["users", "add", name, "--role", "assessor", "--password", password]
        )
        assert result.exit_code == 0, result.output
    listed = runner.invoke(ocse_cli, ["users", "list"]).output
    assert "alice" in listed and "assessor" in listed
    raw = _access_store_in_tmp.read_bytes()
    assert password.encode() not in raw
    users = AccessStore(_access_store_in_tmp)
    assert users.authenticate("alice", password).role == "assessor"
    assert users.authenticate("alice", "correct horse batterx") is None
    import sqlite3

    hashes = [
        h
        for (h,) in sqlite3.connect(_access_store_in_tmp).execute("select password_hash from users")
    ]
    assert all(h.startswith("$argon2id$") for h in hashes) and len(set(hashes)) == 2

    again = runner.invoke(
        ocse_cli, ["users", "add", "alice", "--role", "admin", "--password", password]
    )
    assert again.exit_code != 0 and "already exists" in again.output
    short = runner.invoke(
        ocse_cli, ["users", "add", "carol", "--role", "admin", "--password", "short"]
    )
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    assert runner.invoke(ocse_cli, ["users", "remove", "bob"]).exit_code == 0
    assert users.authenticate("bob", password) is None


def test_the_access_log_is_append_only(_access_store_in_tmp) -> None:
    store = AccessStore(_access_store_in_tmp)
    store.log("ops", "operations", "download", "open_clocks.csv", {"rows": 3})
    import sqlite3

    conn = sqlite3.connect(_access_store_in_tmp)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("update access_log set username = 'someone else'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("delete from access_log")
    assert len(store.entries()) == 1


def test_admin_sees_the_access_log(world, _access_store_in_tmp) -> None:
    store = AccessStore(_access_store_in_tmp)
    store.log("lead", "leadership", "login", "password", {})
    at = run_page("access_log", "admin")
    table = at.dataframe[0].value
    assert list(table["username"])[-1] == "lead"
    assert "test-admin" in set(table["username"])  # the admin's own page view


# --- hostile input --------------------------------------------------------------------------


def test_a_filter_value_carrying_sql_is_only_a_value(world) -> None:
    snapshot = queries.snapshot_identity(world.serving)
    period = mq.Period(date(2025, 5, 1), date(2025, 6, 30), (SQL_PAYLOAD,))
    with queries.acting_as("operations"):
        assert mq.takedown_summary(snapshot, period)["takedowns"] == 0
        assert mq.tier_history(snapshot, SQL_PAYLOAD).empty
        assert not mq.categories(snapshot).empty  # the table is still there
    at = run_page("offenders", "operations")
    at.text_input(key="offenders_search").set_value(SQL_PAYLOAD).run()
    assert not at.exception
    assert any("No listed account matches" in i.value for i in at.info)
    at = run_page("access_log", "admin")
    at.text_input(key="access_user").set_value(SQL_PAYLOAD).run()
    assert not at.exception


@pytest.fixture(scope="module")
def hostile_snapshot(world, tmp_path_factory) -> Path:
    """The world's snapshot with a category label and an alert title that are HTML."""
    path = tmp_path_factory.mktemp("hostile") / "serving.duckdb"
    shutil.copy(world.serving, path)
    con = duckdb.connect(str(path))
    con.execute(
        "update marts.dim_categories set label_en = ? where category_code = 'grooming'",
        [XSS_PAYLOAD],
    )
    con.execute("update alerts.outbox set title = ?", [XSS_PAYLOAD])
    con.close()
    return path


def test_a_data_value_carrying_html_is_shown_as_text(hostile_snapshot, monkeypatch) -> None:
    monkeypatch.setenv("OCSE_SERVING", str(hostile_snapshot))
    for page in ("overview", "operations_queue", "methodology"):
        at = run_page(page, "admin")
        assert not at.exception
        assert not at.get("html")
        assert not [s for s in map(str, [*at.markdown, *at.caption]) if "<img" in s]
    queries.close()


# --- language --------------------------------------------------------------------------------


def _text_tables(path: Path) -> list[dict]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    tables = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            if set(value) == {"en", "zh"}:
                tables.append(value)
        if isinstance(node, ast.Assign) and [
            t.id for t in node.targets if isinstance(t, ast.Name)
        ] == ["EN"]:
            en = ast.literal_eval(node.value)
            zh = next(
                ast.literal_eval(n.value)
                for n in tree.body
                if isinstance(n, ast.Assign)
                and [t.id for t in n.targets if isinstance(t, ast.Name)] == ["ZH"]
            )
            tables.append({"en": en, "zh": zh})
    return tables


def _shape(value):
    import string

    if isinstance(value, dict):
        return {key: _shape(inner) for key, inner in value.items()}
    return sorted(name for _, name, _, _ in string.Formatter().parse(value) if name)


@pytest.mark.parametrize("path", sorted((ROOT / "dashboards").rglob("*.py")), ids=lambda p: p.name)
def test_both_languages_have_every_string(path: Path) -> None:
    """A string missing in Chinese (or with different placeholders) fails here."""
    for table in _text_tables(path):
        assert _shape(table["en"]) == _shape(table["zh"]), path


def test_pages_render_in_chinese(world) -> None:
    at = run_page("overview", "leadership", language="zh")
    assert not at.exception
    assert [t.value for t in at.title] == ["领导总览"]
    at = run_page("cases", "leadership", language="zh")
    assert not at.exception and at.title[0].value == "案件与被害人救助"


# --- a real browser ----------------------------------------------------------------------


@contextlib.contextmanager
def _dashboard_in_chromium(serving: Path, access_db: Path, profile: Path):
    """The dashboard on `serving` and a headless Chromium tab to drive it, both stopped on
    exit."""
    server, url = start_dashboard({"OCSE_SERVING": str(serving), "OCSE_ACCESS_DB": str(access_db)})
    try:
        with chromium_tab(profile) as browser:
            yield browser, url
    finally:
        server.terminate()
        server.wait(timeout=15)


@pytest.fixture
def served(world, tmp_path, _access_store_in_tmp):
    if chromium_path() is None:
        pytest.skip("Chromium is not installed (scripts/test.sh installs it)")
    AccessStore(_access_store_in_tmp).add_user("admin.one", "admin", "admin password 1")
    AccessStore(_access_store_in_tmp).add_user("lead.two", "leadership", "leader password 2")
    with _dashboard_in_chromium(world.serving, _access_store_in_tmp, tmp_path / "profile") as it:
        yield it


def screenshot_dir() -> Path:
    path = Path(os.environ.get("OCSE_SCREENSHOT_DIR", ROOT / "test-artifacts" / "screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


_browser_sign_in = sign_in_with_password


EXPECTED_TITLES = {
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
}


def test_a_real_browser_signs_in_and_opens_every_page(served) -> None:
    browser, url = served
    shots = screenshot_dir()
    _browser_sign_in(browser, url, "admin.one", "admin password 1")
    for page in PAGES:
        browser.evaluate(f"document.querySelector('a[href$=\"/{page}\"]').click()")
        browser.settle()
        browser.wait_for(
            "[...document.querySelectorAll('h1')].some(h => h.innerText.includes("
            f"{EXPECTED_TITLES[page]!r}))"
        )
        if FIGURES[page]:
            browser.wait_for(
                f"document.querySelectorAll('.js-plotly-plot').length >= {FIGURES[page]}"
            )
        assert (
            browser.evaluate("document.querySelectorAll('[data-testid=\"stException\"]').length")
            == 0
        ), page
        browser.screenshot(shots / f"{page}.png")
        assert (shots / f"{page}.png").stat().st_size > 10_000

    # leadership: fewer pages in the menu, and no operations page
    # sign-out is a link in the same tab to the route that ends the session and clears
    # the cookie: the tab lands on the sign-in form, saying so
    browser.evaluate("document.querySelector('#ocse-sign-out').click()")
    browser.wait_for("document.querySelector('input[type=password]') !== null")
    assert "signed out" in browser.evaluate("document.body.innerText").lower()
    _browser_sign_in(browser, url, "lead.two", "leader password 2")
    links = browser.evaluate(
        "[...document.querySelectorAll('[data-testid=\"stSidebarNav\"] a')]"
        ".map(a => a.getAttribute('href').split('/').pop())"
    )
    # the first page of the menu is the app's root URL
    allowed = [p for p in PAGES if may_view("leadership", p)]
    assert {link or allowed[0] for link in links} == set(allowed)
    browser.screenshot(shots / "leadership_overview.png")


def test_html_in_the_data_never_runs_in_the_browser(
    hostile_snapshot, tmp_path, _access_store_in_tmp
):
    if chromium_path() is None:
        pytest.skip("Chromium is not installed (scripts/test.sh installs it)")
    AccessStore(_access_store_in_tmp).add_user("ops.one", "operations", "ops password 12")
    server, url = start_dashboard(
        {"OCSE_SERVING": str(hostile_snapshot), "OCSE_ACCESS_DB": str(_access_store_in_tmp)}
    )
    chrome, port = start_chromium(tmp_path / "profile")
    try:
        import json

        from websockets.sync.client import connect as ws_connect

        targets = json.loads(wait_for_http(f"http://127.0.0.1:{port}/json", 30))
        page = next(t for t in targets if t["type"] == "page")
        with ws_connect(page["webSocketDebuggerUrl"], max_size=None) as devtools:
            browser = Browser(devtools)
            _browser_sign_in(browser, url, "ops.one", "ops password 12")
            for target in ("overview", "operations_queue"):
                browser.evaluate(f"document.querySelector('a[href$=\"/{target}\"]').click()")
                browser.settle()
                assert browser.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
                assert browser.evaluate("window.__pwned === undefined")
    finally:
        chrome.terminate()
        server.terminate()
        chrome.wait(timeout=10)
        server.wait(timeout=15)


def test_researcher_sees_only_protected_tables_and_the_export_is_logged(
    world, _access_store_in_tmp
) -> None:
    """The research page shows the disclosure-controlled tables, never a reference, and
    preparing the export is recorded with who and which period."""
    from ocse.access import release_register

    register = release_register()
    register.set_partner("uni-lab", ["week", "month"], 10)
    AccessStore(_access_store_in_tmp).add_user("test-researcher", "researcher", "long password 1")
    register.assign("test-researcher", "uni-lab")
    at = run_page("research", "researcher")
    assert not at.exception, [e.value for e in at.exception]
    # the world's six weeks hold no whole month (it starts in May, T is on 30 June): weeks
    assert any("no complete month" in i.value for i in at.info)
    at.segmented_control(key="research_grain").set_value("week").run()
    assert not at.exception and not at.error
    assert at.dataframe, "the protected tables are shown"
    shown = " ".join(strings_on(at))
    assert "p1:" not in shown and "cnt-" not in shown
    for frame in at.dataframe:
        assert "suppressed" in frame.value.columns
        assert not {"user_ref", "content_id", "report_id", "case_id"} & set(frame.value.columns)
    at.button(key="research_prepare").click().run()
    assert not at.exception
    assert at.get("download_button")
    (export,) = AccessStore(_access_store_in_tmp).entries(event="export")
    assert (export.username, export.role) == ("test-researcher", "researcher")


# --- every role, both languages, in a real browser ------------------------------------------

ROLE_PASSWORDS = {role: f"{role} password 42" for role in ROLES}
# Pages whose purpose is to show codes as data (the definitions of columns and categories,
# the access log's page ids): the raw-code check does not apply to them.
SHOWS_CODES = {"methodology", "access_log", "pipeline_health"}  # pipeline health: the
# quarantined rows as they arrived (the bad input itself, JSON with its codes and nulls)
LANGUAGE_BUTTON = {"en": "English", "zh": "中文"}
PAGE_TEXT = """(() => {
  const cells = [...document.querySelectorAll('[data-testid^="glide-cell-"]')]
    .map(c => c.textContent);
  return document.querySelector('[data-testid="stMain"]').innerText + '\\n' + cells.join('\\n');
})()"""
# Every table on screen has drawn its cells (those in a closed expander are not drawn).
TABLES_LOADED = """[...document.querySelectorAll('[data-testid="stDataFrame"]')]
  .filter(t => !t.closest('[data-testid="stExpander"]') && !t.closest('[hidden]'))
  .every(t => t.querySelector('[data-testid^="glide-cell-"]') !== null)"""


def _raw_codes(world) -> set[str]:
    from dashboards import labels

    con = open_snapshot(world.serving)
    categories = {
        r[0] for r in con.execute("select category_code from marts.dim_categories").fetchall()
    }
    con.close()
    # Codes that are also plain words (a category `grooming` in "Online grooming ...") are
    # not told apart from prose: only codes with an underscore are looked for.
    codes = {code for vocabulary in labels.ALL.values() for code in vocabulary}
    return {code for code in codes | categories if "_" in code}


@pytest.fixture
def every_role_served(world, tmp_path, _access_store_in_tmp):
    if chromium_path() is None:
        pytest.skip("Chromium is not installed (scripts/test.sh installs it)")
    store = AccessStore(_access_store_in_tmp)
    for role, password in ROLE_PASSWORDS.items():
        store.add_user(f"{role}.user", role, password)
    with _dashboard_in_chromium(world.serving, _access_store_in_tmp, tmp_path / "profile") as it:
        yield it


@pytest.mark.parametrize("role", ROLES)
def test_every_page_of_every_role_reads_well_in_both_languages(
    world, every_role_served, role: str
) -> None:
    """What a reader sees: no raw code where a label belongs, no None/nan where a zero or an
    explanation belongs, the queue's table fits the screen. Screenshots of every page in
    both languages are kept in test-artifacts/screenshots/ (CI keeps them as artefacts)."""
    browser, url = every_role_served
    shots = screenshot_dir()
    codes = _raw_codes(world)
    code_pattern = re.compile(
        r"(?<![\w.:/-])(" + "|".join(map(re.escape, sorted(codes))) + r")(?![\w.])"
    )
    empty_pattern = re.compile(r"(?<![\w-])(None|nan|NaN|NaT|null)(?![\w-])")
    _browser_sign_in(browser, url, f"{role}.user", ROLE_PASSWORDS[role])
    problems = []
    allowed = [p for p in PAGES if may_view(role, p)]
    for language in ("en", "zh"):
        browser.click_text("button", LANGUAGE_BUTTON[language])
        browser.settle()
        for page in allowed:
            # the menu's first page is the app's root URL, whose link names no page
            first = page == allowed[0]
            browser.evaluate(
                f"(document.querySelector('a[href$=\"/{page}\"]')"
                " || document.querySelector('[data-testid=\"stSidebarNav\"] a')).click()"
            )
            browser.settle()
            names = json.dumps([page, ""] if first else [page])
            browser.wait_for(f"{names}.includes(location.pathname.split('/').pop())")
            browser.wait_for("document.querySelector('h1') !== null")
            # an empty or hidden table draws no cell: wait a while, not forever
            with contextlib.suppress(AssertionError):
                browser.wait_for(TABLES_LOADED, timeout=8)
            errors = browser.evaluate(
                "document.querySelectorAll('[data-testid=\"stException\"]').length"
            )
            text = browser.evaluate(PAGE_TEXT)
            browser.screenshot(shots / f"{role}_{language}_{page}.png")
            where = f"{role}/{language}/{page}"
            if errors:
                problems.append(f"{where}: an exception is shown")
            if page not in SHOWS_CODES:
                found = sorted(set(code_pattern.findall(text)))
                if found:
                    problems.append(f"{where}: raw codes {found}")
            empties = sorted(set(empty_pattern.findall(text)))
            if empties and page not in SHOWS_CODES:
                problems.append(f"{where}: {empties} shown")
            if page == "operations_queue":
                widths = browser.evaluate(
                    "[...document.querySelectorAll('[data-testid=\"stDataFrame\"] .dvn-scroller')]"
                    ".slice(0, 1).map(e => [e.scrollWidth, e.clientWidth])"
                )
                if widths and widths[0][0] > widths[0][1] + 2:
                    problems.append(f"{where}: the queue is wider than the screen {widths[0]}")
    assert not problems, "\n".join(problems)
