"""Sign-in, sessions, deep links and releases against a determined user, in a real browser:
`ocse dashboard`'s server (dashboards/server.py) on the dashboard world, headless Chromium.

What each test shows is what the issue saw fail: a lockout that a reload or a new browser
cleared, a reload that signed out and lost the page, refusals that left no trace, a k or
an overlapping release a researcher could choose, and a download logged as other bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import sqlite3
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from ocse.access import AccessStore, release_register
from ocse.access.sessions import COOKIE_NAME
from tests.browser import (
    Browser,
    chromium_path,
    chromium_tab,
    sign_in_with_password,
    start_dashboard,
    submit_sign_in,
)
from tests.dashboard_world import world_env

PASSWORD = "a long password 1"
STATE = "document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState"


@pytest.fixture(scope="module")
def world(dashboard_world_built):
    with pytest.MonkeyPatch.context() as mp:
        world_env(dashboard_world_built, mp)
        yield dashboard_world_built


@pytest.fixture
def server(world, _access_store_in_tmp):
    if chromium_path() is None:
        pytest.skip("Chromium is not installed (scripts/test.sh installs it)")
    store = AccessStore(_access_store_in_tmp)
    for name, role in (("ops.one", "operations"), ("lead.one", "leadership")):
        store.add_user(name, role, PASSWORD)
    store.add_user("res.one", "researcher", PASSWORD)
    register = release_register()
    register.set_partner("uni-lab", ["week", "month"], 10)
    register.assign("res.one", "uni-lab")
    process, url = start_dashboard(
        {"OCSE_SERVING": str(world.serving), "OCSE_ACCESS_DB": str(_access_store_in_tmp)}
    )
    try:
        yield url, store
    finally:
        process.terminate()
        process.wait(timeout=15)


def _entries(store: AccessStore, event: str) -> list:
    return store.entries(event=event, limit=10_000)


def _settled(browser: Browser) -> None:
    browser.wait_for(f"{STATE} === 'notRunning'")
    browser.settle()


def _query(browser: Browser) -> dict[str, str]:
    href = browser.evaluate("location.href")
    return {k: v[0] for k, v in parse_qs(urlparse(href).query).items()}


def _body(browser: Browser) -> str:
    return browser.evaluate("document.body.innerText")


def test_the_lockout_holds_across_a_reload_and_a_new_browser(server, tmp_path) -> None:
    url, store = server
    with chromium_tab(tmp_path / "first") as browser:
        browser.call("Page.navigate", url=url)
        browser.wait_for("document.querySelector('#password') !== null")
        for attempt in range(5):
            submit_sign_in(browser, "ops.one", f"wrong guess {attempt}")
            browser.wait_for("document.querySelector('#password') !== null")
        assert "too many failed attempts" in _body(browser).lower()
        browser.call("Page.reload")  # a reload does not clear it
        browser.wait_for("document.querySelector('#password') !== null")
        submit_sign_in(browser, "ops.one", PASSWORD)
        browser.wait_for("document.querySelector('#password') !== null")
        assert "too many failed attempts" in _body(browser).lower()
        assert browser.evaluate("document.querySelector('[data-testid=\"stApp\"]')") is None
    with chromium_tab(tmp_path / "second") as browser:  # nor does another browser
        browser.call("Page.navigate", url=url)
        browser.wait_for("document.querySelector('#password') !== null")
        submit_sign_in(browser, "ops.one", PASSWORD)
        browser.wait_for("document.querySelector('#password') !== null")
        assert "too many failed attempts" in _body(browser).lower()
    failed = [e for e in _entries(store, "login_failed") if e.username == "ops.one"]
    # every attempt logged: the five guesses, then three while locked (the reload re-posts
    # the last form, as browsers do; the right password; the right password elsewhere)
    assert [e.detail["reason"] for e in reversed(failed)] == ["bad_credentials"] * 5 + [
        "locked"
    ] * 3
    assert failed[3].detail.get("locked") == "account"  # the fifth guess locked it
    assert not [e for e in _entries(store, "login") if e.username == "ops.one"]


def test_a_reload_keeps_the_page_its_filters_and_the_language(server, tmp_path) -> None:
    url, store = server
    deep_link = f"{url}sla?period=90d&grain=month&lang=zh"
    with chromium_tab(tmp_path / "profile") as browser:
        # a bookmark opened signed out: the form, then back to the same page and filters
        sign_in_with_password(browser, deep_link, "lead.one", PASSWORD)
        _settled(browser)
        assert browser.evaluate("location.pathname") == "/sla"
        assert _query(browser) == {"period": "90d", "grain": "month", "lang": "zh"}
        body = _body(browser)
        assert "时效达标" in body and "治理" in body  # the page and the menu in Chinese
        assert "（90 天）" in body  # the period line of the 90-day preset
        # a filter changed on screen goes into the URL, and survives a reload
        _mouse_click(browser, f"[...document.querySelectorAll({GRAIN_BUTTONS!r})]"
                     ".find(b => b.innerText.trim() === '日')")  # fmt: skip
        _settled(browser)
        browser.wait_for("new URL(location.href).searchParams.get('grain') === 'day'")
        browser.call("Page.reload")
        browser.wait_for("document.querySelector('h1') !== null")
        _settled(browser)
        assert browser.evaluate("location.pathname") == "/sla"
        assert _query(browser) == {"period": "90d", "grain": "day", "lang": "zh"}
        pressed = browser.evaluate(
            f"[...document.querySelectorAll({GRAIN_BUTTONS!r})]"
            ".filter(b => b.getAttribute('aria-checked') === 'true').map(b => b.innerText.trim())"
        )
        assert pressed == ["日"], pressed
        # the period is carried to the next page (and into its URL)
        browser.evaluate("document.querySelector('a[href$=\"/cases\"]').click()")
        browser.wait_for("location.pathname === '/cases'")
        _settled(browser)
        browser.wait_for("new URL(location.href).searchParams.get('period') === '90d'")
    logins = [e for e in _entries(store, "login") if e.username == "lead.one"]
    assert len(logins) == 1  # the reload did not sign in again


GRAIN_BUTTONS = '[role="radiogroup"][aria-label="粒度"] button[role="radio"]'


def _mouse_click(browser: Browser, element: str) -> None:
    """A real click at the element's centre (Streamlit's segmented control ignores a
    scripted `.click()`: it listens to pointer events)."""
    box = browser.evaluate(
        f"(() => {{ const e = {element}; e.scrollIntoView({{block: 'center'}}); "
        "const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    for kind in ("mousePressed", "mouseReleased"):
        browser.call(
            "Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1
        )


def test_the_period_survives_a_page_without_it(server, tmp_path) -> None:
    """Pipeline health has no period filter: coming back from it keeps the period."""
    url, _ = server
    with chromium_tab(tmp_path / "profile") as browser:
        sign_in_with_password(browser, f"{url}sla?period=7d", "ops.one", PASSWORD)
        _settled(browser)
        for page in ("pipeline_health", "cases"):
            browser.evaluate(f"document.querySelector('a[href$=\"/{page}\"]').click()")
            browser.wait_for(f"location.pathname.endsWith('/{page}')")
            _settled(browser)
        browser.wait_for("new URL(location.href).searchParams.get('period') === '7d'")
        assert "(7 days)" in _body(browser)


def test_a_bookmark_of_the_roles_first_page_opens_it(server, tmp_path) -> None:
    """The role's first page lives at the root (Streamlit's default page); its own path,
    bookmarked, is sent there with its filters instead of "Page not found"."""
    url, _ = server
    with chromium_tab(tmp_path / "profile") as browser:
        sign_in_with_password(browser, f"{url}overview?period=7d", "lead.one", PASSWORD)
        _settled(browser)
        assert browser.evaluate("location.pathname") == "/"
        assert _query(browser) == {"period": "7d"}
        body = _body(browser)
        assert "Page not found" not in body and "(7 days)" in body


def _cookie(browser: Browser, name: str) -> str | None:
    cookies = browser.call("Network.getAllCookies")["cookies"]
    return next((c["value"] for c in cookies if c["name"] == name), None)


def test_forged_and_expired_cookies_are_refused_and_logged(server, tmp_path) -> None:
    url, store = server
    with chromium_tab(tmp_path / "profile") as browser:
        sign_in_with_password(browser, url, "lead.one", PASSWORD)
        cookie = _cookie(browser, COOKIE_NAME)
        assert cookie and "." in cookie
        session_id, _ = cookie.rsplit(".", 1)
        # the id with a signature of another key: refused, logged, sent to the form
        bad = hmac.new(b"not the key", session_id.encode(), hashlib.sha256).digest()
        forged = f"{session_id}.{base64.urlsafe_b64encode(bad).decode().rstrip('=')}"
        browser.call("Network.setCookie", name=COOKIE_NAME, value=forged, url=url, httpOnly=True)
        browser.call("Page.navigate", url=url + "sla")
        browser.wait_for("document.querySelector('#password') !== null")
        denied = _entries(store, "denied")
        assert denied and denied[0].target == "session"
        assert denied[0].detail["reason"] == "forged_cookie"
        # the genuine cookie again, its session then past its idle limit: expired, logged
        browser.call("Network.setCookie", name=COOKIE_NAME, value=cookie, url=url, httpOnly=True)
        with sqlite3.connect(store.path) as conn:
            conn.execute(
                "update sessions set last_seen_at = '2000-01-01T00:00:00.000+00:00', "
                "created_at = '2000-01-01T00:00:00.000+00:00' where ended_at is null"
            )
        browser.call("Page.navigate", url=url + "sla")
        browser.wait_for("document.querySelector('#password') !== null")
        assert "expired" in _body(browser).lower()
    ended = [e for e in _entries(store, "logout") if e.username == "lead.one"]
    assert [e.detail["reason"] for e in ended] == ["expired"]


def test_another_roles_page_by_url_is_refused_and_logged(server, tmp_path) -> None:
    url, store = server
    with chromium_tab(tmp_path / "profile") as browser:
        sign_in_with_password(browser, url, "lead.one", PASSWORD)
        browser.call("Page.navigate", url=url + "operations_queue")
        browser.wait_for("document.querySelector('h1') !== null")
        assert "not open to your role" in _body(browser)
        assert browser.evaluate("document.querySelector('[data-testid=\"stApp\"]')") is None
    denied = [e for e in _entries(store, "denied") if e.username == "lead.one"]
    assert [(e.target, e.detail) for e in denied] == [("operations_queue", {"via": "url"})]


def test_a_researcher_cannot_lower_k_or_overlap_and_the_zip_is_logged_as_its_bytes(
    server, tmp_path
) -> None:
    url, store = server
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with chromium_tab(tmp_path / "profile") as browser:
        browser.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
        # a deep link asking for k below the register's: refused on the page, logged
        sign_in_with_password(browser, f"{url}research?grain=week&k=5", "res.one", PASSWORD)
        _settled(browser)
        assert "k=5 is below it" in _body(browser) and not browser.evaluate(
            "document.querySelectorAll('[data-testid=\"stDataFrame\"]').length"
        )
        denied = [e for e in _entries(store, "denied") if e.username == "res.one"]
        assert denied[0].detail["reason"] == "k_below_register", denied[0].detail
        # the register's k: shown (recorded as a view), prepared, downloaded
        browser.call("Page.navigate", url=f"{url}research?grain=week")
        browser.wait_for("document.querySelectorAll('[data-testid=\"stDataFrame\"]').length > 0")
        _settled(browser)
        browser.evaluate(
            "[...document.querySelectorAll('button')]"
            ".find(b => b.innerText.includes('Prepare the export')).click()"
        )
        browser.wait_for(
            "[...document.querySelectorAll('button')].some(b => b.innerText.includes('.zip'))"
        )
        browser.evaluate(
            "[...document.querySelectorAll('button')].find(b => b.innerText.includes('.zip'))"
            ".click()"
        )
        deadline = time.monotonic() + 60
        while not [p for p in downloads.glob("*.zip")] and time.monotonic() < deadline:
            time.sleep(0.3)
        files = list(downloads.glob("*.zip"))
        assert len(files) == 1, list(downloads.iterdir())
        # the same periods at another k: an overlap with what the partner holds, refused
        browser.call("Page.navigate", url=f"{url}research?grain=week&k=20")
        browser.wait_for("document.querySelector('h1') !== null")
        _settled(browser)
        assert "k=20 overlaps it" in _body(browser)
        assert not browser.evaluate(
            "document.querySelectorAll('[data-testid=\"stDataFrame\"]').length"
        )
    sha256 = hashlib.sha256(files[0].read_bytes()).hexdigest()
    logged = [e for e in _entries(store, "download") if e.username == "res.one"]
    assert len(logged) == 1
    assert logged[0].target == files[0].name
    assert logged[0].detail["sha256"] == sha256
    assert logged[0].detail["k"] == 10 and logged[0].detail["grain"] == "week"
    released = [r for r in release_register().history("uni-lab") if r.channel == "download"]
    assert [r.sha256 for r in released] == [sha256]
    denied = [e for e in _entries(store, "denied") if e.username == "res.one"]
    assert denied[0].detail["reason"] == "overlaps_earlier_release", denied[0].detail


def test_no_table_offers_the_browsers_own_csv_download() -> None:
    """Downloads only through the logged buttons: Streamlit's table toolbar export is off in
    the served configuration, and no page turns it back on."""
    import tomllib

    root = Path(__file__).resolve().parent.parent / "dashboards"
    config = tomllib.loads((root / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["disableDataExport"] is True
    assert config["server"]["address"] == "127.0.0.1"
    for source in [*root.glob("*.py"), *root.glob("views/*.py")]:
        text = source.read_text(encoding="utf-8")
        assert "disableDataExport" not in text, source
        assert "set_option(" not in text, source
