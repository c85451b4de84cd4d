"""Plausible times: a timestamp before the contract's window (1900), after the run's T plus
the clock-skew allowance (2999), or with an offset no clock has (`+25:00`) is quarantined
with its own reason code; the rest of the file loads, and the weekly marts, whose week grid
spans the weeks with data, do not grow a century of empty weeks because of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from ocse.contracts import FEEDS, load_contract
from ocse.ingest.gate import ingest_landing
from ocse.ingest.validation import PlausibilityWindow, checked_table_sql, plausibility_window
from tests.feeds import TEST_KEY, row, write_csv, write_jsonl, write_parquet

BEFORE = "1900-01-01T00:00:00Z"
FUTURE = "2999-01-01T00:00:00Z"
BAD_OFFSET = "2025-03-01T09:10:00+25:00"
WRITERS = {"csv": write_csv, "jsonl": write_jsonl, "parquet": write_parquet}


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quarantined(conn) -> dict[int, list[str]]:
    return dict(conn.execute("select row_number, reason_codes from ingest.quarantine").fetchall())


# --- the window ----------------------------------------------------------------------------


def test_default_window_is_2000_to_the_later_of_t_and_now_plus_15_minutes(monkeypatch):
    monkeypatch.delenv("OCSE_PLAUSIBLE_FROM", raising=False)
    monkeypatch.delenv("OCSE_CLOCK_SKEW_MINUTES", raising=False)
    contract = load_contract("screening_hits")
    now = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    at_now = plausibility_window(contract, now=now)
    assert at_now.not_before == datetime(2000, 1, 1, tzinfo=UTC)
    assert at_now.not_after == now + timedelta(minutes=15)
    # T ahead of the clock (a simulated run): up to T plus the allowance.
    ahead = plausibility_window(contract, now + timedelta(days=3), now=now)
    assert ahead.not_after == now + timedelta(days=3, minutes=15)
    # A backfill at an earlier T still accepts what happened since (the marts stop at T).
    behind = plausibility_window(contract, now - timedelta(days=30), now=now)
    assert behind.not_after == now + timedelta(minutes=15)


def test_settings_override_the_contracts_window(monkeypatch):
    monkeypatch.setenv("OCSE_PLAUSIBLE_FROM", "2020-01-01T00:00:00+08:00")
    monkeypatch.setenv("OCSE_CLOCK_SKEW_MINUTES", "0")
    now = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    window = plausibility_window(load_contract("cases"), now=now)
    assert window == PlausibilityWindow(datetime(2019, 12, 31, 16, 0, tzinfo=UTC), now)


def test_plausible_from_needs_an_offset(monkeypatch):
    from ocse.settings import get_settings

    monkeypatch.setenv("OCSE_PLAUSIBLE_FROM", "2000-01-01T00:00:00")
    with pytest.raises(ValueError, match="OCSE_PLAUSIBLE_FROM needs an explicit offset"):
        get_settings()


def test_every_contract_declares_its_window():
    for feed in FEEDS:
        plausible = load_contract(feed).plausible
        assert plausible.not_before == datetime(2000, 1, 1, tzinfo=UTC), feed
        assert plausible.clock_skew_minutes == 15, feed


# --- the gate ------------------------------------------------------------------------------


def _window_cases(feed: str) -> list[tuple[dict, str]]:
    """(changes to a valid row, expected reason) for every timestamp field of the feed."""
    cases = []
    for f in load_contract(feed).fields:
        if f.logical_type == "timestamp":
            n = f.name
            cases.append(({n: BEFORE}, f"timestamp_before_window:{n}"))
            cases.append(({n: FUTURE}, f"timestamp_in_future:{n}"))
            cases.append(({n: BAD_OFFSET}, f"invalid_offset:{n}"))
    return cases


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("feed", FEEDS)
def test_implausible_timestamps_are_quarantined_with_their_codes(feed, fmt, landing, conn, key):
    cases = _window_cases(feed)
    rows = [row(feed)] + [row(feed, **changes) for changes, _ in cases] + [row(feed)]
    WRITERS[fmt](landing / feed / f"mixed.{fmt}", rows)

    (result,) = ingest_landing(conn, landing, key).files

    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (
        len(rows),
        2,
        len(cases),
    )
    got = _quarantined(conn)
    for row_number, (changes, expected) in enumerate(cases, start=2):
        assert expected in got[row_number], (changes, got[row_number])
    loaded = conn.execute(f"select _row_number from raw.{feed} order by 1").fetchall()
    assert loaded == [(1,), (len(rows),)]


def test_the_codes_are_the_only_reasons_when_nothing_else_is_wrong(landing, conn, key):
    """detected_at 1900, 2999 (on a pending hit: no review rule is broken) and +25:00."""
    rows = [
        row("screening_hits", hit_id="hit-ok"),
        row("screening_hits", hit_id="hit-old", detected_at=BEFORE),
        row(
            "screening_hits",
            hit_id="hit-future",
            detected_at=FUTURE,
            review_status="pending",
            reviewed_at=None,
            reviewer_id=None,
        ),
        row("screening_hits", hit_id="hit-offset", detected_at=BAD_OFFSET),
    ]
    write_csv(landing / "screening_hits" / "hits.csv", rows)
    summary = ingest_landing(conn, landing, key)
    assert _quarantined(conn) == {
        2: ["timestamp_before_window:detected_at"],
        3: ["timestamp_in_future:detected_at"],
        4: ["invalid_offset:detected_at"],
    }
    assert summary.reasons() == {
        "timestamp_before_window:detected_at": 1,
        "timestamp_in_future:detected_at": 1,
        "invalid_offset:detected_at": 1,
    }
    assert conn.execute("select hit_id from raw.screening_hits").fetchall() == [("hit-ok",)]


@pytest.mark.parametrize(
    ("offset", "valid"),
    [
        ("Z", True),
        ("+00:00", True),
        ("-00:00", True),
        ("+08:00", True),
        ("+0800", True),
        ("+08", True),
        ("+05:45", True),
        ("+05:30", True),
        ("-03:30", True),
        ("+14:00", True),
        ("-12:00", True),
        ("-14:00", True),
        ("+14:15", False),
        ("+14:30", False),
        ("-15:00", False),
        ("+25:00", False),
        ("+08:75", False),
        ("+08:07", False),
        ("+99:99", False),
        ("+2500", False),
    ],
)
def test_only_real_offsets_are_accepted(offset, valid, landing, conn, key):
    # 2025-03-02 keeps every offset's UTC instant after posted_at and before reviewed_at.
    write_csv(
        landing / "screening_hits" / "o.csv",
        [
            row(
                "screening_hits",
                posted_at="2025-02-28T00:00:00Z",
                detected_at=f"2025-03-02T00:00:00{offset}",
                reviewed_at="2025-03-03T12:00:00Z",
                updated_at="2025-03-03T12:00:00Z",
            )
        ],
    )
    ingest_landing(conn, landing, key)
    if valid:
        assert _quarantined(conn) == {}
    else:
        assert _quarantined(conn) == {1: ["invalid_offset:detected_at"]}


def test_the_clock_skew_allowance(landing, conn, key, monkeypatch):
    """15 minutes ahead of the gate's clock by default; OCSE_CLOCK_SKEW_MINUTES changes it."""
    now = datetime.now(UTC)

    def hit(hit_id: str, ahead: timedelta) -> dict:
        t = _iso(now + ahead)
        return row("screening_hits", hit_id=hit_id, detected_at=t, reviewed_at=t, updated_at=t)

    monkeypatch.delenv("OCSE_CLOCK_SKEW_MINUTES", raising=False)
    write_csv(
        landing / "screening_hits" / "a.csv",
        [hit("hit-5", timedelta(minutes=5)), hit("hit-30", timedelta(minutes=30))],
    )
    ingest_landing(conn, landing, key)
    assert _quarantined(conn) == {
        2: [f"timestamp_in_future:{n}" for n in ("detected_at", "reviewed_at", "updated_at")]
    }
    monkeypatch.setenv("OCSE_CLOCK_SKEW_MINUTES", "60")
    write_csv(landing / "screening_hits" / "b.csv", [hit("hit-30b", timedelta(minutes=30))])
    ingest_landing(conn, landing, key)
    loaded = {h for (h,) in conn.execute("select hit_id from raw.screening_hits").fetchall()}
    assert loaded == {"hit-5", "hit-30b"}


def test_plausible_from_moves_the_lower_bound(landing, conn, key, monkeypatch):
    monkeypatch.setenv("OCSE_PLAUSIBLE_FROM", "2025-03-01T16:00:00+08:00")
    write_csv(
        landing / "screening_hits" / "a.csv",
        [row("screening_hits"), row("screening_hits", posted_at="2025-03-01T07:59:59Z")],
    )
    ingest_landing(conn, landing, key)
    assert _quarantined(conn) == {2: ["timestamp_before_window:posted_at"]}


def test_a_run_ahead_of_the_clock_accepts_records_up_to_its_t():
    """The window passed to checked_table_sql (the gate passes the run's T) decides."""
    contract = load_contract("screening_hits")
    t = datetime.now(UTC) + timedelta(days=2)
    detected = _iso(t - timedelta(hours=1))
    conn = duckdb.connect()
    values = row("screening_hits", detected_at=detected, reviewed_at=detected, updated_at=detected)
    names = list(values)
    conn.execute(
        "create temp table _batch as select 1 as _row_number, "
        + ", ".join(f"$v{i}::varchar as {n}" for i, n in enumerate(names)),
        {f"v{i}": values[n] for i, n in enumerate(names)},
    )
    conn.execute(checked_table_sql(contract, set(names)))
    assert conn.execute("select reason_codes from _checked").fetchone()[0] == [
        "timestamp_in_future:detected_at",
        "timestamp_in_future:reviewed_at",
        "timestamp_in_future:updated_at",
    ]
    conn.execute(checked_table_sql(contract, set(names), window=plausibility_window(contract, t)))
    assert conn.execute("select reason_codes from _checked").fetchone()[0] == []


def test_the_contract_check_enforces_the_window_too(landing, conn, key):
    """The Great Expectations suite (an independent implementation of the contract) passes
    on what the gate loaded and fails on an implausible timestamp that got past it."""
    from ocse.ingest.expectations import validate_frame

    write_csv(landing / "screening_hits" / "a.csv", [row("screening_hits")])
    ingest_landing(conn, landing, key)
    contract = load_contract("screening_hits")
    frame = conn.execute("select * from raw.screening_hits").df()
    assert validate_frame(contract, frame).success
    frame.loc[0, "detected_at"] = datetime(1999, 12, 31, tzinfo=UTC)
    result = validate_frame(contract, frame)
    assert not result.success
    assert any("be_between(detected_at)" in f for f in result.failed), result.failed


# --- the marts -----------------------------------------------------------------------------

AS_OF = datetime(2025, 3, 31, 16, 0, tzinfo=UTC)
WEEKLY_MARTS = ("rpt_detection_quality_weekly", "rpt_category_trends_weekly")


def _clean_rows() -> dict[str, list[dict]]:
    second_week = {
        "posted_at": "2025-03-10T09:00:00Z",
        "detected_at": "2025-03-10T09:10:00Z",
        "reviewed_at": "2025-03-10T10:00:00Z",
        "updated_at": "2025-03-10T10:00:00Z",
    }
    return {
        "screening_hits": [
            row("screening_hits"),
            row("screening_hits", hit_id="hit-2", content_id="cnt-2", **second_week),
        ],
        "reports": [row("reports")],
        "enforcement_actions": [row("enforcement_actions")],
        "cases": [row("cases")],
    }


def _implausible_rows() -> dict[str, list[tuple[dict, list[str]]]]:
    """Rows that would open weeks in 1900 or 2999 in the weekly marts if they loaded, each
    with the only reason it should be quarantined for."""
    pending = {"review_status": "pending", "reviewed_at": None, "reviewer_id": None}
    return {
        "screening_hits": [
            (
                row("screening_hits", hit_id="hit-old", content_id="cnt-old", detected_at=BEFORE),
                ["timestamp_before_window:detected_at"],
            ),
            (
                row(
                    "screening_hits",
                    hit_id="hit-future",
                    content_id="cnt-future",
                    detected_at=FUTURE,
                    **pending,
                ),
                ["timestamp_in_future:detected_at"],
            ),
            (
                row(
                    "screening_hits",
                    hit_id="hit-offset",
                    content_id="cnt-offset",
                    detected_at=BAD_OFFSET,
                ),
                ["invalid_offset:detected_at"],
            ),
        ],
        "reports": [
            (
                row("reports", report_id="rpt-old", received_at=BEFORE),
                ["timestamp_before_window:received_at"],
            ),
            (
                row(
                    "reports",
                    report_id="rpt-future",
                    received_at=FUTURE,
                    acknowledged_at=None,
                    resolved_at=None,
                    resolution="pending",
                    feedback_sent_at=None,
                ),
                ["timestamp_in_future:received_at"],
            ),
        ],
        "enforcement_actions": [
            (
                row(
                    "enforcement_actions",
                    action_id="act-old",
                    content_id="cnt-old",
                    detected_at=BEFORE,
                ),
                ["timestamp_before_window:detected_at"],
            ),
            (
                row(
                    "enforcement_actions",
                    action_id="act-future",
                    content_id="cnt-future",
                    actioned_at=FUTURE,
                ),
                ["timestamp_in_future:actioned_at"],
            ),
            (
                row(
                    "enforcement_actions",
                    action_id="act-offset",
                    content_id="cnt-offset",
                    actioned_at="2025-03-01T09:30:00+25:00",
                ),
                ["invalid_offset:actioned_at"],
            ),
        ],
        "cases": [
            (
                row("cases", case_id="case-old", opened_at=BEFORE),
                ["timestamp_before_window:opened_at"],
            ),
        ],
    }


def _build(root, rows: dict[str, list[dict]], mp: pytest.MonkeyPatch):
    from ocse.pipeline import run_pipeline

    for feed, feed_rows in rows.items():
        write_csv(root / "landing" / feed / "2025-03-11" / f"{feed}.csv", feed_rows)
    mp.setenv("OCSE_LANDING_DIR", str(root / "landing"))
    mp.setenv("OCSE_WAREHOUSE", str(root / "wh" / "ocse.duckdb"))
    mp.setenv("OCSE_SERVING", str(root / "wh" / "serving.duckdb"))
    result = run_pipeline(AS_OF)
    assert result.success, result.failure
    return result


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """The same files built twice: as they are, and with the implausible rows among them."""
    root = tmp_path_factory.mktemp("plausibility")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OCSE_PSEUDONYM_KEY", TEST_KEY)
        mp.delenv("OCSE_PSEUDONYM_KEY_FILE", raising=False)
        mp.delenv("OCSE_AS_OF", raising=False)
        mp.delenv("OCSE_PLAUSIBLE_FROM", raising=False)
        mp.delenv("OCSE_CLOCK_SKEW_MINUTES", raising=False)
        mp.setenv("OCSE_ACCESS_DB", str(root / "access.sqlite"))
        (root / "dagster_home").mkdir()
        mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        clean = _clean_rows()
        bad = _implausible_rows()
        # Implausible rows in the middle of the clean rows of the same file.
        dirty = {
            feed: [clean[feed][0], *(r for r, _ in bad[feed]), *clean[feed][1:]] for feed in clean
        }
        runs = {
            "clean": _build(root / "clean", clean, mp),
            "dirty": _build(root / "dirty", dirty, mp),
        }
        yield {"root": root, "runs": runs, "clean": clean, "bad": bad}


def _mart(root, name: str) -> list[tuple]:
    conn = duckdb.connect(str(root / "wh" / "serving.duckdb"), read_only=True)
    try:
        return conn.execute(f"select * from marts.{name} order by all").fetchall()
    finally:
        conn.close()


@pytest.mark.integration
def test_implausible_rows_are_quarantined_and_the_rest_of_each_file_loads(worlds):
    root = worlds["root"] / "dirty"
    conn = duckdb.connect(str(root / "wh" / "ocse.duckdb"), read_only=True)
    try:
        for feed, bad in worlds["bad"].items():
            got = dict(
                conn.execute(
                    "select row_number, reason_codes from ingest.quarantine where feed = ?",
                    [feed],
                ).fetchall()
            )
            # Row 1 is clean, then the bad rows, then the rest of the clean rows.
            assert got == {n: reasons for n, (_, reasons) in enumerate(bad, start=2)}, feed
            loaded = conn.execute(f"select count(*) from raw.{feed}").fetchone()[0]
            assert loaded == len(worlds["clean"][feed]), feed
            (outcome,) = conn.execute(
                "select outcome from ingest.ledger where feed = ?", [feed]
            ).fetchone()
            assert outcome == "partially_quarantined"
    finally:
        conn.close()


@pytest.mark.integration
@pytest.mark.parametrize("mart", WEEKLY_MARTS)
def test_weekly_marts_do_not_grow_because_of_implausible_rows(worlds, mart):
    clean, dirty = _mart(worlds["root"] / "clean", mart), _mart(worlds["root"] / "dirty", mart)
    assert len(clean) > 0
    assert len(dirty) == len(clean)
    assert dirty == clean
    weeks = {r[0] for r in dirty}
    assert min(weeks).year == max(weeks).year == 2025
