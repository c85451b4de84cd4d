"""The Pipeline health dashboard page, driven through Streamlit's AppTest on a small serving
snapshot built here, plus its chart builders and the query module's snapshot handling.

Each test says what an operator would see go wrong if it failed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboards import charts, queries
from dashboards.formatting import format_age, format_rate
from ocse.access import AccessStore
from tests.browser import chromium_path, chromium_tab, sign_in_with_password, start_dashboard
from tests.dashboard_world import Browser, sign_in

APP = Path(__file__).resolve().parent.parent / "dashboards" / "app.py"
TZ = "Asia/Shanghai"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
SQL_PAYLOAD = "'; drop table x; --"
HTML_PAYLOAD = "<script>alert(1)</script>"
# Runs in a real browser if anything renders it as HTML (a <script> inserted later would not).
XSS_PAYLOAD = '<img src=x onerror="window.__pwned=1">'
REJECTED = "missing_required_columns: case_id, opened_at"
DUP = "duplicate_delivery: same bytes as file 1"
OPS_PW = "operations password"


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


@dataclass
class LedgerFile:
    file_id: int
    feed: str
    outcome: str
    rows: tuple[int, int, int]  # read, loaded, quarantined
    ingested_at: datetime
    error: str | None = None
    file_name: str = ""
    dropped: list[str] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return self.rows[1]

    def __post_init__(self) -> None:
        if not self.file_name:
            stamp = self.ingested_at.strftime("%Y%m%d-%H%M")
            self.file_name = f"{self.feed}/{stamp[:8]}/{self.feed}-{stamp}-{self.file_id}.csv"


@dataclass
class QuarantinedRow:
    file: LedgerFile
    row_number: int
    reason_codes: list[str]
    record: dict


def standard_ledger() -> list[LedgerFile]:
    """Every outcome; `cases` last loaded three days ago, the other feeds minutes ago."""
    return [
        LedgerFile(1, "screening_hits", "loaded", (100, 100, 0), ago(minutes=10)),
        LedgerFile(2, "reports", "partially_quarantined", (50, 47, 3), ago(minutes=20)),
        LedgerFile(3, "enforcement_actions", "loaded", (40, 40, 0), ago(minutes=30)),
        LedgerFile(4, "cases", "rejected", (12, 0, 12), ago(days=3), error=REJECTED),
        LedgerFile(5, "cases", "loaded", (8, 8, 0), ago(days=3, hours=1)),
        LedgerFile(6, "screening_hits", "duplicate", (0, 0, 0), ago(minutes=5), error=DUP),
        LedgerFile(7, "screening_hits", "partially_quarantined", (1400, 1398, 2), ago(days=1)),
    ]


def standard_quarantine(ledger: list[LedgerFile]) -> list[QuarantinedRow]:
    reports, hits = ledger[1], ledger[6]
    return [
        QuarantinedRow(reports, 4, ["missing_required:report_id"], {"report_id": None}),
        QuarantinedRow(
            reports,
            9,
            ["unknown_code:channel", "timestamp_without_offset:received_at"],
            {"channel": "fax", "received_at": "2026-11-20 08:00"},
        ),
        QuarantinedRow(
            reports, 17, ["rule:acknowledged_after_received"], {"reporter_ref": "p1:ab12"}
        ),
        QuarantinedRow(
            hits,
            5,
            ["missing_required:hit_id", "missing_required:content_id"],
            {"uploader_ref": "p1:cd34"},
        ),
        QuarantinedRow(hits, 6, ["invalid_timestamp:detected_at"], {"detected_at": "soon"}),
    ]


def build_snapshot(
    path: Path,
    ledger: list[LedgerFile],
    quarantine: list[QuarantinedRow],
    *,
    extra_sql: str = "",
    run_id: str = "run-test-0001",
) -> Path:
    """A serving snapshot with the published pipeline-health tables, written like the
    pipeline does: to a temporary file first, then moved into place."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    con.execute("set TimeZone = 'UTC'")
    con.execute("create schema marts")
    con.execute("create schema meta")
    con.execute(
        """
        create table marts.ops_ingest_ledger (
            file_id bigint, file_name varchar, feed varchar, content_sha256 varchar,
            outcome varchar, rows_read bigint, rows_loaded bigint, rows_quarantined bigint,
            columns_dropped bigint, dropped_column_names varchar[], error varchar,
            received_at timestamptz, ingested_at timestamptz
        )
        """
    )
    con.execute(
        """
        create table marts.ops_quarantine (
            feed varchar, file_id bigint, file_name varchar, row_number bigint,
            reason_codes varchar[], record varchar, quarantined_at timestamptz
        )
        """
    )
    con.execute(
        "create table meta.snapshot (published_at timestamptz, as_of timestamptz, "
        "run_id varchar, reporting_tz varchar)"
    )
    for f in ledger:
        con.execute(
            "insert into marts.ops_ingest_ledger values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                *(f.file_id, f.file_name, f.feed, f"{f.file_id:064x}", f.outcome, *f.rows),
                *(len(f.dropped), f.dropped, f.error),
                *(f.ingested_at - timedelta(minutes=1), f.ingested_at),
            ],
        )
    for q in quarantine:
        con.execute(
            "insert into marts.ops_quarantine values (?, ?, ?, ?, ?, ?, ?)",
            [
                q.file.feed,
                q.file.file_id,
                q.file.file_name,
                q.row_number,
                q.reason_codes,
                json.dumps(q.record),
                q.file.ingested_at,
            ],
        )
    con.execute(
        "insert into meta.snapshot values (?, ?, ?, ?)",
        [NOW - timedelta(minutes=2), NOW - timedelta(minutes=3), run_id, TZ],
    )
    if extra_sql:
        con.execute(extra_sql)
    con.close()
    os.replace(tmp, path)
    return path


@pytest.fixture
def snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ledger = standard_ledger()
    path = build_snapshot(tmp_path / "serving.duckdb", ledger, standard_quarantine(ledger))
    monkeypatch.setenv("OCSE_SERVING", str(path))
    monkeypatch.delenv("OCSE_FRESHNESS_WARN_MINUTES", raising=False)
    yield path
    queries.close()


def run_app() -> AppTest:
    """The app as an operations user sees it, on the pipeline-health page."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    sign_in(at, "operations")
    at.run()
    at.switch_page("views/pipeline_health.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str):
    matches = [m for m in at.metric if m.label == label]
    assert len(matches) == 1, [m.label for m in at.metric]
    return matches[0]


TABLE_COLUMNS = {
    "freshness": "Status",
    "problem_files": "error",
    "quarantined_rows": "reason_codes",
}


def find_tables(at: AppTest, name: str) -> list[pd.DataFrame]:
    return [df.value for df in at.dataframe if TABLE_COLUMNS[name] in df.value.columns]


def table(at: AppTest, name: str) -> pd.DataFrame:
    matches = find_tables(at, name)
    assert len(matches) == 1, [list(df.value.columns) for df in at.dataframe]
    return matches[0]


def all_text(at: AppTest) -> list[str]:
    """Every Markdown-rendered string on the page (where HTML or Markdown could be live)."""
    elements = [*at.markdown, *at.caption, *at.info, *at.warning, *at.success, *at.error]
    elements += [*at.title, *at.subheader]
    return [str(e.value) for e in elements]


# --- the page --------------------------------------------------------------------------


def test_kpis_equal_the_ledger_numbers(snapshot: Path) -> None:
    """Operators would act on wrong volumes: every KPI must be the ledger's own total."""
    at = run_app()
    assert metric(at, "Files processed").value == "7"
    assert metric(at, "Rows loaded").value == "1,593"
    quarantined = metric(at, "Rows quarantined")
    assert quarantined.value == "17"
    assert quarantined.delta == f"{format_rate(17 / 1610)} of rows read"
    assert metric(at, "Files rejected").value == "1"
    assert metric(at, "Duplicate deliveries").value == "1"
    # AppTest's switch_page runs the page alone; the frame's sidebar is drawn on any page.
    frame = AppTest.from_file(str(APP), default_timeout=60)
    sign_in(frame, "operations")
    frame.run()
    sidebar_text = " ".join(str(e.value) for e in frame.sidebar.markdown)
    assert (NOW - timedelta(minutes=3)).astimezone(ZoneInfo(TZ)).strftime(
        "%Y-%m-%d %H:%M"
    ) in sidebar_text


def test_rejected_file_is_listed_with_its_error(snapshot: Path) -> None:
    """A rejected delivery must be visible with the reason, or nobody asks for a re-send."""
    at = run_app()
    problems = table(at, "problem_files")
    rejected = problems[problems["outcome"] == "Rejected"]
    assert list(rejected["error"]) == [REJECTED]
    assert list(rejected["file_name"]) == [standard_ledger()[3].file_name]
    duplicate = problems[problems["outcome"] == "Duplicate"]
    assert list(duplicate["error"]) == [DUP]
    assert len(problems) == 2


def test_recent_quarantined_rows_show_reasons_and_record(snapshot: Path) -> None:
    at = run_app()
    rows = table(at, "quarantined_rows")
    assert len(rows) == 5
    by_row = rows.set_index("row_number")
    assert list(by_row.at[9, "reason_codes"]) == [
        "unknown_code:channel",
        "timestamp_without_offset:received_at",
    ]
    assert json.loads(by_row.at[17, "record"]) == {"reporter_ref": "p1:ab12"}


def test_freshness_flags_the_feed_that_stopped_loading(
    snapshot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cases` last loaded three days ago: it must show stale, the others fresh."""
    at = run_app()
    fresh = table(at, "freshness").set_index("Feed")["Status"]
    assert fresh.to_dict() == {
        "screening_hits": "🟢 Fresh",
        "reports": "🟢 Fresh",
        "enforcement_actions": "🟢 Fresh",
        "cases": "🟠 Stale",
    }
    assert any("1 of 4 feeds" in w.value for w in at.warning)

    monkeypatch.setenv("OCSE_FRESHNESS_WARN_MINUTES", str(5 * 24 * 60))
    at = run_app()
    fresh = table(at, "freshness").set_index("Feed")["Status"]
    assert set(fresh) == {"🟢 Fresh"}
    assert not at.warning


def test_an_invalid_freshness_threshold_is_reported_not_crashed(
    snapshot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCSE_FRESHNESS_WARN_MINUTES", "-5")
    at = run_app()
    assert at.error and "freshness_warn_minutes" in at.code[0].value
    assert not at.metric


def test_feed_filter_narrows_every_section(snapshot: Path) -> None:
    at = run_app()
    at.multiselect(key="feed").set_value(["cases"]).run()
    assert not at.exception
    assert metric(at, "Files processed").value == "2"
    assert metric(at, "Rows quarantined").value == "12"
    assert metric(at, "Files rejected").value == "1"
    assert list(table(at, "freshness")["Feed"]) == ["cases"]
    assert list(table(at, "problem_files")["feed"]) == ["cases"]
    # Rows of a rejected file are not itemised in quarantine.
    assert not find_tables(at, "quarantined_rows")


def test_date_range_counts_files_ingested_on_those_days(snapshot: Path) -> None:
    """Days are taken in the reporting time zone, both ends included."""
    day = (NOW - timedelta(days=1)).astimezone(ZoneInfo(TZ)).date()
    expected = [
        f for f in standard_ledger() if f.ingested_at.astimezone(ZoneInfo(TZ)).date() == day
    ]
    at = run_app()
    at.date_input(key="ingested").set_value((day, day)).run()
    assert not at.exception
    assert metric(at, "Files processed").value == str(len(expected))
    assert metric(at, "Rows loaded").value == f"{sum(f.rows_loaded for f in expected):,}"


def test_missing_snapshot_shows_a_friendly_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the first `ocse run` the dashboard must explain itself, not show a traceback."""
    monkeypatch.setenv("OCSE_SERVING", str(tmp_path / "not-yet" / "serving.duckdb"))
    at = run_app()
    assert any("No data published yet" in i.value and "ocse run" in i.value for i in at.info)
    assert str(tmp_path / "not-yet" / "serving.duckdb") in at.code[0].value
    assert not at.metric
    assert not at.dataframe


def test_the_pipelines_own_warehouse_is_never_opened(
    snapshot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pointing the dashboard at the warehouse file would lock out the next pipeline run."""
    monkeypatch.setenv("OCSE_WAREHOUSE", str(snapshot))
    at = run_app()
    assert at.error and "OCSE_SERVING points at the pipeline's warehouse" in at.code[0].value
    assert not at.metric
    with pytest.raises(queries.SnapshotConfigError):
        queries.snapshot_identity()


def test_snapshot_without_the_ops_tables_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "create schema meta; create table meta.snapshot (published_at timestamptz, "
        "as_of timestamptz, run_id varchar, reporting_tz varchar)"
    )
    con.close()
    monkeypatch.setenv("OCSE_SERVING", str(path))
    at = run_app()
    assert at.warning
    assert at.code[0].value.splitlines() == ["marts.ops_ingest_ledger", "marts.ops_quarantine"]
    assert not at.metric
    queries.close()


def test_a_corrupt_snapshot_file_shows_an_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "serving.duckdb"
    path.write_bytes(b"this is not a duckdb file" * 100)
    monkeypatch.setenv("OCSE_SERVING", str(path))
    at = run_app()
    assert at.error and "could not be opened" in at.error[0].value
    assert not at.metric
    queries.close()


def test_hostile_values_stay_inert_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A feed, file name, error or record carrying SQL or HTML is shown as text, used only
    as a bound parameter, and changes nothing in the snapshot."""
    hostile = LedgerFile(
        8,
        SQL_PAYLOAD,
        "rejected",
        (3, 0, 3),
        NOW - timedelta(minutes=15),
        error=HTML_PAYLOAD,
        file_name=f"reports/{HTML_PAYLOAD}{SQL_PAYLOAD}.csv",
    )
    partial = LedgerFile(
        9,
        SQL_PAYLOAD,
        "partially_quarantined",
        (2, 1, 1),
        NOW - timedelta(minutes=16),
        file_name=f"reports/{SQL_PAYLOAD}.csv",
    )
    ledger = [*standard_ledger(), hostile, partial]
    quarantine = [QuarantinedRow(partial, 1, [f"rule:{HTML_PAYLOAD}"], {"note": HTML_PAYLOAD})]
    path = build_snapshot(
        tmp_path / "serving.duckdb", ledger, quarantine, extra_sql="create table x (y int)"
    )
    monkeypatch.setenv("OCSE_SERVING", str(path))

    at = run_app()
    at.multiselect(key="feed").set_value([SQL_PAYLOAD]).run()
    assert not at.exception
    assert metric(at, "Files processed").value == "2"
    problems = table(at, "problem_files")
    assert list(problems["error"]) == [HTML_PAYLOAD]
    assert list(problems["feed"]) == [SQL_PAYLOAD]
    rows = table(at, "quarantined_rows")
    assert json.loads(rows["record"].iloc[0]) == {"note": HTML_PAYLOAD}
    assert list(rows["reason_codes"].iloc[0]) == [f"rule:{HTML_PAYLOAD}"]
    assert not at.get("html")
    assert not [text for text in all_text(at) if "<script" in text or "drop table" in text]

    # The same value arriving through the shareable URL is only a filter value too.
    url = AppTest.from_file(str(APP), default_timeout=60)
    sign_in(url, "operations")
    url.query_params["feed"] = SQL_PAYLOAD
    url.run()
    url.switch_page("views/pipeline_health.py").run()
    assert not url.exception
    assert metric(url, "Files processed").value == "2"

    queries.close()
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("select count(*) from x").fetchone() == (0,)
    assert con.execute("select count(*) from marts.ops_ingest_ledger").fetchone() == (9,)
    con.close()


# --- the query module ------------------------------------------------------------------


def test_a_newly_published_snapshot_is_read_without_restart(snapshot: Path) -> None:
    """The pipeline replaces the file after every run; the dashboard must show the new
    numbers, not the ones of the file it opened first."""
    first = queries.snapshot_identity()
    selection = queries.IngestSelection.for_days(
        queries.ingest_feeds(first), (NOW - timedelta(days=7)).date(), NOW.date(), "UTC"
    )
    assert queries.ingest_kpis(first, selection).rows_quarantined == 17

    ledger = [LedgerFile(1, "reports", "partially_quarantined", (90, 60, 30), ago(days=1))]
    build_snapshot(snapshot, ledger, [])
    second = queries.snapshot_identity()
    assert second != first
    kpis = queries.ingest_kpis(second, selection)
    assert (kpis.files, kpis.rows_loaded, kpis.rows_quarantined) == (1, 60, 30)


def test_snapshot_is_opened_read_only_without_file_access(snapshot: Path) -> None:
    """Even a query that tried would not be able to write to the snapshot or read files."""
    secret = snapshot.parent / "secret.csv"
    secret.write_text("a,b\n1,2\n")
    current = queries.snapshot_identity()
    with pytest.raises(duckdb.Error, match="read-only"):
        queries._query(current, "create table marts.evil (x int)")
    with pytest.raises(duckdb.PermissionException):
        queries._query(current, "select * from read_csv(?)", [str(secret)])


def test_only_allow_listed_tables_can_be_asked_for(snapshot: Path) -> None:
    current = queries.snapshot_identity()
    assert queries.missing_tables(current, ("ops_ingest_ledger", "ops_quarantine")) == []
    with pytest.raises(KeyError):
        queries.missing_tables(current, ("marts.ops_ingest_ledger; drop table x",))


def test_missing_snapshot_has_no_identity(tmp_path: Path) -> None:
    assert queries.snapshot_identity(tmp_path / "absent.duckdb") is None


# --- charts ----------------------------------------------------------------------------


def test_files_by_outcome_figure_one_trace_per_outcome_in_fixed_order() -> None:
    data = pd.DataFrame(
        {
            "period_start": pd.to_datetime(
                ["2026-11-19", "2026-11-19", "2026-11-20", "2026-11-20", "2026-11-20"]
            ),
            "outcome": ["rejected", "loaded", "loaded", "duplicate", "partially_quarantined"],
            "files": [1, 5, 7, 2, 3],
        }
    )
    fig = charts.files_by_outcome_figure(data, outcome_labels={"loaded": "Loaded"})
    assert [t.name for t in fig.data] == [
        "Loaded",
        "partially_quarantined",
        "rejected",
        "duplicate",
    ]
    assert [t.marker.color for t in fig.data] == [
        charts.OUTCOME_COLOURS[o] for o in charts.OUTCOME_ORDER
    ]
    assert list(fig.data[0].y) == [5, 7]
    assert list(fig.data[2].y) == [1]
    assert fig.layout.barmode == "stack"


def test_files_by_outcome_figure_keeps_an_unknown_outcome_in_neutral_grey() -> None:
    data = pd.DataFrame(
        {
            "period_start": pd.to_datetime(["2026-11-20"] * 2),
            "outcome": ["loaded", "held"],
            "files": [4, 1],
        }
    )
    fig = charts.files_by_outcome_figure(data)
    assert [(t.name, t.marker.color) for t in fig.data] == [
        ("loaded", charts.OUTCOME_COLOURS["loaded"]),
        ("held", charts.NEUTRAL_COLOUR),
    ]


def test_quarantine_reasons_figure_stacks_feeds_with_largest_reason_on_top() -> None:
    data = pd.DataFrame(
        {
            "reason_kind": ["missing_required", "missing_required", "rule", "unknown_code"],
            "feed": ["reports", "screening_hits", "reports", "screening_hits"],
            "quarantined_rows": [4, 6, 1, 3],
        }
    )
    fig = charts.quarantine_reasons_figure(data)
    assert [t.name for t in fig.data] == ["screening_hits", "reports"]
    hits, reports = fig.data
    # Categories from the bottom up: rule (1), unknown_code (3), missing_required (10).
    assert list(hits.y) == ["rule", "unknown_code", "missing_required"]
    assert list(hits.x) == [0, 3, 6]
    assert list(reports.x) == [1, 0, 4]
    assert hits.orientation == "h"
    assert hits.marker.color == charts.FEED_COLOURS["screening_hits"]


def test_format_age_reads_at_a_glance() -> None:
    assert format_age(None) == "–"
    assert format_age(12.7) == "12 min"
    assert format_age(185) == "3 h 05 min"
    assert format_age(3 * 24 * 60 + 61) == "3 d 1 h"


# --- a real browser --------------------------------------------------------------------


@pytest.fixture
def browser(tmp_path: Path):
    if chromium_path() is None:
        pytest.skip("Chromium is not installed (scripts/test.sh installs it)")
    with chromium_tab(tmp_path / "chromium-profile", window_size="1400,1800") as tab:
        yield tab


@pytest.fixture
def served_hostile_snapshot(tmp_path: Path):
    """`ocse dashboard` (dashboards/server.py) on a snapshot whose values try to be HTML."""
    ledger = [
        *standard_ledger(),
        LedgerFile(
            8,
            XSS_PAYLOAD,
            "rejected",
            (3, 0, 3),
            ago(minutes=15),
            error=XSS_PAYLOAD,
            file_name=f"reports/{XSS_PAYLOAD}.csv",
        ),
    ]
    quarantine = [
        *standard_quarantine(ledger),
        QuarantinedRow(ledger[1], 30, [f"rule:{XSS_PAYLOAD}"], {"note": XSS_PAYLOAD}),
    ]
    path = build_snapshot(tmp_path / "serving.duckdb", ledger, quarantine, run_id=XSS_PAYLOAD)
    AccessStore(Path(os.environ["OCSE_ACCESS_DB"])).add_user("ops.one", "operations", OPS_PW)
    env = {"OCSE_SERVING": str(path)}
    server, url = start_dashboard(env, timeout=60)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_page_renders_in_a_real_browser_and_no_value_runs_as_html(
    browser: Browser, served_hostile_snapshot: str
) -> None:
    """What the operator's browser shows: the KPIs, no error box, and data that looks like
    HTML shown as text (the sidebar's run id and the feed filter are plain DOM text)."""
    sign_in_with_password(browser, served_hostile_snapshot, "ops.one", OPS_PW)
    browser.wait_for("document.querySelector('a[href$=\"/pipeline_health\"]') !== null")
    browser.evaluate("document.querySelector('a[href$=\"/pipeline_health\"]').click()")
    browser.wait_for(
        "document.querySelectorAll('[data-testid=\"stMetric\"]').length === 5"
        " && document.querySelectorAll('[data-testid=\"stDataFrame\"]').length === 3"
    )
    values = browser.evaluate(
        "[...document.querySelectorAll('[data-testid=\"stMetricValue\"]')].map(e => e.innerText)"
    )
    assert values == ["8", "1,593", "20", "2", "1"]
    assert (
        browser.evaluate("document.querySelectorAll('[data-testid=\"stException\"]').length") == 0
    )
    text = browser.evaluate("document.body.innerText")
    assert f"Run {XSS_PAYLOAD}" in text
    assert XSS_PAYLOAD in text.split("Feeds", 1)[1]
    assert browser.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert browser.evaluate("window.__pwned === undefined")
