"""Step 7: every dashboard page's first render in a real headless browser.

`streamlit run dashboards/app.py` on the serving snapshot, a Chromium tab driven over the
DevTools protocol (`tests/browser.py`, the browser tests' driver), one account per role in
an access store of the run's own (`ocse users add`). Signed in as each role, for every page
the role may open (`ocse.access.pages_for`): the time from the click on the page's link in
the menu (Streamlit navigates to the page's URL in the same session) until that run has
finished and drawn the page, polled every 50 ms.

"Drawn" is read from Streamlit's own markers, never the pages' contents: the location is
the page's URL, the app's script state is `notRunning`, there is no status widget
(`stStatusWidget`) and no element left over from the page before (`data-stale`), and the
page has an h1; an `stException` on the page is an error of that sample.

Samples per page: the first cold (Streamlit's function caches cleared just before, with its
own "Clear caches" command, sent from a second tab of the same browser, since the command also
empties the sending session's state; the server runs with `--client.toolbarMode=developer`
for it, the only option that differs from the deployment's), the others warm. Each view is a
navigation from another page: rounds over the role's pages in the menu's order. Clearing the
caches before a page's cold view empties those of the pages before it too, so one round that
is not timed fills them again before the warm rounds. A role with one page (the wall
display's `display`: Streamlit shows no menu then) is measured by reloading it, which is how
a display refreshes: a new Streamlit session that the sign-in cookie keeps signed in.
Between roles the tab signs out (`/ocse/signout`), so each role signs in on the form.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

POLL_SECONDS = 0.05
STREAMLIT_ARGS = ("--client.toolbarMode=developer",)

# One expression per poll: where the tab is and what Streamlit says about the run.
_STATE = """(() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return {
    path: location.pathname,
    script: app ? app.dataset.testScriptState : null,
    status: document.querySelector('[data-testid="stStatusWidget"]') !== null,
    stale: document.querySelector('[data-stale="true"]') !== null,
    h1: document.querySelector('h1') !== null,
    exception: document.querySelector('[data-testid="stException"]') !== null,
    dialog: document.querySelector('[role="dialog"]') !== null,
    fresh: window.__benchOldDocument === undefined,
  };
})()"""

_SCRIPT_DONE = (
    "(document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState "
    "=== 'notRunning' && !document.querySelector('[data-testid=\"stStatusWidget\"]'))"
)
_MENU_LINKS = """[...document.querySelectorAll('[data-testid="stSidebarNav"] a')]
  .map(a => new URL(a.href).pathname)"""


def drawn(state: dict, path: str) -> bool:
    """The page at `path` is drawn: its run is over and nothing of the page before is left."""
    return (
        state.get("path") == path
        and state.get("script") == "notRunning"
        and not state.get("status")
        and not state.get("stale")
        and bool(state.get("h1"))
    )


def page_paths(links: list[str], pages: list[str]) -> dict[str, str]:
    """Page id -> URL path of its menu link. The menu's first page is the app's root URL
    (its link ends in `/`): the one page of the role no other link names."""
    paths = {}
    for link in links:
        last = link.rstrip("/").rsplit("/", 1)[-1]
        if last in pages:
            paths[last] = link
    rest = [p for p in pages if p not in paths]
    roots = [link for link in links if link.rstrip("/").rsplit("/", 1)[-1] not in pages]
    if len(rest) == 1 and len(roots) == 1:
        paths[rest[0]] = roots[0]
    return paths


def percentiles(samples_ms: list[float]) -> dict:
    ordered = sorted(samples_ms)
    if not ordered:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None}
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(ordered[-1], 1),
    }


def summarise(samples: dict[str, dict[str, list[float]]], errors: list[dict]) -> dict:
    """From the samples of each role and page (milliseconds, the cold one first): per role
    and page cold / p50 / p95, and per page over every role that may open it (cold: the
    slowest role's; p50 / p95 over all samples of all roles)."""
    by_role = {
        role: {
            page: {
                "cold_ms": round(times[0], 1),
                **percentiles(times),
                "samples": len(times),
                "samples_ms": [round(t, 1) for t in times],
            }
            for page, times in pages.items()
            if times
        }
        for role, pages in samples.items()
    }
    by_page: dict[str, dict] = {}
    order = [page for pages in samples.values() for page in pages]
    for page in dict.fromkeys(order):
        roles = {role: rows[page] for role, rows in by_role.items() if page in rows}
        pooled = [t for role in samples if page in samples[role] for t in samples[role][page]]
        if not roles:
            continue
        slowest = max(roles, key=lambda r: (roles[r]["p95_ms"], roles[r]["cold_ms"]))
        by_page[page] = {
            "cold_ms": max(r["cold_ms"] for r in roles.values()),
            **percentiles(pooled),
            "samples": len(pooled),
            "roles": list(roles),
            "slowest_role": slowest,
        }
    worst = max(by_page, key=lambda p: by_page[p]["p95_ms"], default=None)
    return {
        "available": True,
        "pages": by_page,
        "roles": by_role,
        "errors": errors,
        "worst_page": worst,
        "worst_p95_ms": by_page[worst]["p95_ms"] if worst else None,
        "page_views": sum(len(t) for pages in samples.values() for t in pages.values()),
    }


def clear_caches(tab, timeout: float) -> None:
    """Streamlit's "Clear caches" in `tab`: its hotkey c, then the dialog's button."""
    buttons = "[...document.querySelectorAll('[role=\"dialog\"] button')]"
    tab.wait_for(f"{_SCRIPT_DONE}", timeout, poll=POLL_SECONDS)
    tab.evaluate("document.activeElement && document.activeElement.blur()")
    tab.press_key("c")
    tab.wait_for(
        f"{buttons}.some(b => b.innerText.trim() === 'Clear caches')", timeout, poll=POLL_SECONDS
    )
    tab.evaluate(f"{buttons}.find(b => b.innerText.trim() === 'Clear caches').click()")
    tab.wait_for(
        f"document.querySelector('[role=\"dialog\"]') === null && {_SCRIPT_DONE}",
        timeout,
        poll=POLL_SECONDS,
    )


class RenderTimer:
    """One signed-in tab: navigations to pages, timed until drawn."""

    def __init__(self, browser, cleaner, url: str, timeout: float) -> None:
        self.browser, self.cleaner, self.url, self.timeout = browser, cleaner, url, timeout
        self.paths: dict[str, str] = {}

    def state(self) -> dict:
        return self.browser.evaluate(_STATE) or {}

    def sign_in(self, username: str, password: str, pages: list[str]) -> None:
        """Sign out whoever was signed in, then sign in on the form as `username`; the
        cleaning tab (same browser, same cookie) then opens the app too, as that user."""
        from tests.browser import sign_in_with_password

        self.browser.call("Page.navigate", url=self.url + "ocse/signout")
        self.browser.wait_for("document.querySelector('input[type=password]') !== null")
        sign_in_with_password(self.browser, self.url, username, password)
        if len(pages) == 1:
            self._wait(lambda s: s.get("script") == "notRunning" and bool(s.get("h1")))
            self.paths = {pages[0]: self.state()["path"]}
        else:
            self.browser.wait_for(
                f"({_MENU_LINKS}).length >= {len(pages)}", self.timeout, poll=POLL_SECONDS
            )
            self.paths = page_paths(self.browser.evaluate(_MENU_LINKS), pages)
        missing = [p for p in pages if p not in self.paths]
        if missing:
            raise RuntimeError(f"no menu link for {missing}")
        self._wait(lambda s: s.get("script") == "notRunning" and not s.get("status"))
        self.cleaner.call("Page.navigate", url=self.url)
        self.cleaner.wait_for(_SCRIPT_DONE, self.timeout, poll=POLL_SECONDS)
        self.browser.call("Page.bringToFront")

    def clear_caches(self) -> None:
        """Streamlit's "Clear caches" (hotkey c, then the dialog's button), sent from the
        other tab: the caches are the server's, but the command also empties the session
        state (filters, language) of the tab that sends it."""
        clear_caches(self.cleaner, self.timeout)
        self.browser.call("Page.bringToFront")

    def current(self) -> str | None:
        path = self.state().get("path")
        return next((page for page, p in self.paths.items() if p == path), None)

    def open(self, page: str) -> float:
        """Click the page's menu link (a role with one page: reload it); milliseconds until
        the page is drawn."""
        path = self.paths[page]
        link = json.dumps(path)
        if len(self.paths) == 1:
            self.browser.evaluate("window.__benchOldDocument = true")
            started = time.perf_counter()
            self.browser.call("Page.reload")
            self._wait(lambda s: s.get("fresh"))  # the old document is gone
        else:
            started = time.perf_counter()
            clicked = self.browser.evaluate(
                f'(() => {{ const a = [...document.querySelectorAll(\'[data-testid="stSidebarNav"] '
                f"a')].find(a => new URL(a.href).pathname === {link}); "
                "if (a) { a.click(); return true; } return false; })()"
            )
            if not clicked:
                raise RuntimeError(f"no menu link to {path}")
        state = self._wait(lambda s: drawn(s, path) or (s.get("exception") and s["path"] == path))
        elapsed = (time.perf_counter() - started) * 1000
        if state.get("exception"):
            # the run may still go on: let it end before the next navigation
            self._wait(lambda s: s.get("script") == "notRunning" and not s.get("status"))
            raise RuntimeError(f"stException on {page}")
        return elapsed

    def _wait(self, done) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            state = self.state()
            if done(state):
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"not drawn within {self.timeout:.0f}s: {state}")
            time.sleep(POLL_SECONDS)


def _add_users(env: dict[str, str], password: str, roles) -> dict[str, str]:
    users = {}
    for role in roles:
        username = f"bench.{role}"
        subprocess.run(
            [str(Path(sys.executable).parent / "ocse"), "users", "add", username, "--role", role],
            env={**env, "OCSE_NEW_PASSWORD": password},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        users[role] = username
    # The researcher's partner, as the data steward registers one: without it the research
    # page only says that no release is registered, which is not the page to measure.
    ocse = str(Path(sys.executable).parent / "ocse")
    for args in (
        ["releases", "set", "bench-partner", "--grain", "week", "--grain", "month", "--k", "10"],
        ["releases", "assign", users["researcher"], "bench-partner"],
    ):
        subprocess.run([ocse, *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return users


def _measure_role(
    timer: RenderTimer,
    role: str,
    pages: list[str],
    samples: int,
    times: dict[str, list[float]],
    errors: list[dict],
) -> None:
    """Rounds over the role's pages in menu order: round 0 with the caches cleared before
    each page (which also empties the caches of the pages before it), then one round not
    timed that fills every page's caches again, then the warm rounds."""
    if timer.current() == pages[0] and len(pages) > 1:
        timer.open(pages[-1])  # the first page must be reached from another one
    for sample in [0, None, *range(1, samples)]:  # None: the round that warms the caches
        for page in pages:
            if sample != 0 and not times[page]:
                continue  # its cold view failed
            others = [p for p in pages if p != page]
            if timer.current() == page and others:  # a neighbour was left out: step aside
                # an exception on the page stepped to: the tab is there all the same
                with contextlib.suppress(RuntimeError):
                    timer.open(next((p for p in others if times[p]), others[0]))
            if sample == 0:
                timer.clear_caches()
            try:
                elapsed = timer.open(page)
            except (RuntimeError, TimeoutError) as exc:
                errors.append({"role": role, "page": page, "sample": sample, "error": str(exc)})
                if sample == 0:
                    times[page] = []
                continue
            if sample is not None:
                times[page].append(elapsed)


def first_render(
    serving: Path, work: Path, samples: int, timeout: float, log: Path | None = None
) -> dict:
    from ocse.access import ROLES, pages_for
    from tests.browser import another_tab, chromium_path, chromium_tab, start_dashboard

    if chromium_path() is None:
        return {"available": False, "reason": "Chromium is not installed"}
    work.mkdir(parents=True, exist_ok=True)
    access = work / "access.sqlite"
    access.unlink(missing_ok=True)
    env = {**os.environ, "OCSE_SERVING": str(serving), "OCSE_ACCESS_DB": str(access)}
    password = secrets.token_urlsafe(18)
    users = _add_users(env, password, ROLES)
    times: dict[str, dict[str, list[float]]] = {}
    errors: list[dict] = []
    server, url = start_dashboard(env, log=log, extra_args=STREAMLIT_ARGS)
    try:
        with (
            chromium_tab(work / "chromium-profile", recv_timeout=timeout + 30) as browser,
            another_tab(browser) as cleaner,
        ):
            for role in ROLES:
                pages = pages_for(role)
                times[role] = {page: [] for page in pages}
                timer = RenderTimer(browser, cleaner, url, timeout)
                try:
                    timer.sign_in(users[role], password, pages)
                    _measure_role(timer, role, pages, samples, times[role], errors)
                except (RuntimeError, TimeoutError, AssertionError) as exc:
                    errors.append({"role": role, "page": None, "sample": None, "error": str(exc)})
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    result = summarise(times, errors)
    result["samples_per_page"] = samples
    return result
