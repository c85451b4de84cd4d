"""No personal data in non-personal fields. Identifiers that are not personal (content_id,
hit_id, report_id, action_id, case_id, matched_list, evidence_ref) have a format in their
contract; a value that looks like an e-mail address or a phone number in any field that is
not personal is quarantined as `personal_data:<field>` and redacted there too, so the raw
value is in no byte the warehouse writes: tables, quarantine, snapshot, alerts, logs."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ocse.contracts import FEEDS, load_contract
from ocse.ingest.gate import ingest_landing
from ocse.ingest.validation import REDACTED
from ocse.settings import PROJECT_ROOT
from tests.feeds import TEST_KEY, row, write_csv, write_jsonl, write_parquet

WRITERS = {"csv": write_csv, "jsonl": write_jsonl, "parquet": write_parquet}
# feeds.md: the string fields that are neither personal nor enumerations.
IDENTIFIERS = {
    "screening_hits": {"hit_id", "content_id", "matched_list"},
    "reports": {"report_id", "content_id"},
    "enforcement_actions": {"action_id", "content_id", "hit_id", "report_id", "evidence_ref"},
    "cases": {"case_id", "action_id"},
}
EMAILS = [
    "jane.doe@example.com",
    "Jane.Doe+ocse@mail.example.co.uk",
    "张三@例子.中国",
    "see:jane@example.org",
]
PHONES = [
    "13812345678",
    "138 1234 5678",
    "138-1234-5678",
    "+8613812345678",
    "+86 138 1234 5678",
    "0086-138-1234-5678",
    "010-62345678",
    "(0571) 88888888",
    "(010) 6234 5678",
    "+1 (555) 123-4567",
    "555-123-4567",
    "+44 20 7946 0958",
]
NOT_FORMATTED = ["cnt 1", " cnt-1", "<script>", 'cnt"1', "cnt\\1", "x" * 257]
# Identifiers that stay valid: a numeric snowflake, an id in Chinese, URIs, base64, a date.
ACCEPTED = [
    "1234567890123456789",
    "9876543210",
    "儿童保护-列表",
    "evpkg://vault-3/2025/03/ab-12#p1",
    "urn:ocse:evidence:2025:000123",
    "AbC+/9xYz==",
    "2025-03-01",
    "cnt-138123456789ab",
    "x" * 256,
]


def _quarantine(conn) -> dict[int, tuple[list[str], dict]]:
    return {
        n: (reasons, json.loads(record))
        for n, reasons, record in conn.execute(
            "select row_number, reason_codes, record from ingest.quarantine"
        ).fetchall()
    }


def test_the_identifier_fields_are_exactly_the_free_non_personal_strings():
    for feed in FEEDS:
        contract = load_contract(feed)
        free = {
            f.name
            for f in contract.fields
            if f.logical_type == "string" and not f.personal and not f.valid_values
        }
        assert free == IDENTIFIERS[feed], feed
        assert set(contract.identifier_names) == IDENTIFIERS[feed], feed


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("feed", FEEDS)
def test_personal_data_in_an_identifier_is_quarantined_and_redacted(feed, fmt, landing, conn, key):
    cases = [(name, value) for name in sorted(IDENTIFIERS[feed]) for value in EMAILS + PHONES]
    rows = [row(feed)] + [row(feed, **{name: value}) for name, value in cases] + [row(feed)]
    WRITERS[fmt](landing / feed / f"ids.{fmt}", rows)

    (result,) = ingest_landing(conn, landing, key).files

    assert (result.rows_loaded, result.rows_quarantined) == (2, len(cases))
    got = _quarantine(conn)
    for n, (name, value) in enumerate(cases, start=2):
        reasons, record = got[n]
        assert reasons == [f"personal_data:{name}"], (name, value, reasons)
        assert record[name] == REDACTED
        assert value not in json.dumps(record, ensure_ascii=False)
    assert conn.execute(f"select _row_number from raw.{feed} order by 1").fetchall() == [
        (1,),
        (len(rows),),
    ]


@pytest.mark.parametrize("feed", FEEDS)
def test_identifiers_that_are_not_one_printable_token_are_quarantined(feed, landing, conn, key):
    cases = [(name, value) for name in sorted(IDENTIFIERS[feed]) for value in NOT_FORMATTED]
    rows = [row(feed, **{name: value}) for name, value in cases]
    write_csv(landing / feed / "ids.csv", rows)
    ingest_landing(conn, landing, key)
    got = _quarantine(conn)
    for n, (name, value) in enumerate(cases, start=1):
        assert got[n][0] == [f"invalid_format:{name}"], (name, value, got[n][0])
        # Not personal data: kept as it came, for the operator to see.
        assert got[n][1][name] == value


@pytest.mark.parametrize("feed", FEEDS)
def test_ordinary_identifiers_load(feed, landing, conn, key):
    rows = [row(feed, **{name: value}) for name in sorted(IDENTIFIERS[feed]) for value in ACCEPTED]
    write_jsonl(landing / feed / "ids.jsonl", rows)
    (result,) = ingest_landing(conn, landing, key).files
    assert _quarantine(conn) == {}
    assert result.rows_loaded == len(rows)


def test_personal_data_in_any_other_non_personal_field_is_redacted(landing, conn, key):
    """An e-mail address in a code, a timestamp, a number or a list would be quarantined
    anyway (unknown_code, invalid_timestamp, ...), but the quarantine keeps the text of
    non-personal fields: it is redacted there as well."""
    email = "leak.other@example.net"
    cases = {
        "screening_hits": ["category_code", "detected_at", "posted_at", "score", "content_type"],
        "cases": ["support_types", "victims_count", "outcome", "closed_at"],
    }
    for feed, fields in cases.items():
        write_csv(landing / feed / "x.csv", [row(feed, **{f: email}) for f in fields])
    ingest_landing(conn, landing, key)
    for feed, fields in cases.items():
        quarantined = conn.execute(
            "select row_number, reason_codes, record from ingest.quarantine where feed = ? "
            "order by row_number",
            [feed],
        ).fetchall()
        assert len(quarantined) == len(fields)
        for (_, reasons, record), name in zip(quarantined, fields, strict=True):
            assert f"personal_data:{name}" in reasons
            assert json.loads(record)[name] == REDACTED
            assert email not in record
    (hits,) = conn.execute(
        "select count(*) from ingest.quarantine where record like '%@%'"
    ).fetchone()
    assert hits == 0


def test_personal_fields_are_pseudonymised_whatever_they_look_like(landing, conn, key):
    """The rule is for fields that are not personal: an account id that is an e-mail or a
    phone number is what pseudonymisation is for."""
    write_csv(
        landing / "screening_hits" / "a.csv",
        [row("screening_hits", uploader_id="jane@example.com", reviewer_id="13812345678")],
    )
    (result,) = ingest_landing(conn, landing, key).files
    assert result.outcome == "loaded"
    refs = conn.execute(
        "select uploader_id_ref, reviewer_id_ref from raw.screening_hits"
    ).fetchone()
    assert all(r.startswith("p1:") for r in refs)


def test_the_contract_check_rejects_personal_data_in_identifiers(landing, conn, key):
    """The Great Expectations suite, the independent second implementation, checks the format
    and the personal-data rule on what was loaded."""
    from ocse.ingest.expectations import validate_frame

    write_csv(landing / "enforcement_actions" / "a.csv", [row("enforcement_actions")])
    ingest_landing(conn, landing, key)
    contract = load_contract("enforcement_actions")
    frame = conn.execute("select * from raw.enforcement_actions").df()
    assert validate_frame(contract, frame).success
    for value, expected in [
        ("13812345678", "not_match_regex(evidence_ref)"),
        ("a b", "match_regex(evidence_ref)"),
    ]:
        bad = frame.copy()
        bad.loc[0, "evidence_ref"] = value
        result = validate_frame(contract, bad)
        assert not result.success
        assert any(expected in f for f in result.failed), result.failed


# --- nowhere in any byte written -----------------------------------------------------------

AS_OF = datetime(2025, 3, 31, 16, 0, tzinfo=UTC)
EMAIL = "leak.probe.5d1e@example.org"
PHONE = "+86 139 5551 0199"
NEEDLES = [EMAIL, "leak.probe", "139 5551 0199", "13955510199", "5551 0199"]


def _leaky_landing(landing: Path) -> None:
    write_csv(
        landing / "screening_hits" / "2025-03-11" / "hits.csv",
        [
            row("screening_hits"),
            row("screening_hits", hit_id="hit-leak", content_id=EMAIL),
            row("screening_hits", hit_id="hit-leak2", content_id="cnt-2", matched_list=PHONE),
        ],
    )
    write_csv(
        landing / "reports" / "2025-03-11" / "reports.csv",
        [row("reports"), row("reports", report_id="rpt-leak", content_id=EMAIL)],
    )
    write_jsonl(
        landing / "enforcement_actions" / "2025-03-11" / "actions.jsonl",
        [
            row("enforcement_actions"),
            row("enforcement_actions", action_id="act-leak", content_id=EMAIL),
            row(
                "enforcement_actions", action_id="act-leak2", content_id="cnt-2", evidence_ref=PHONE
            ),
        ],
    )
    write_csv(
        landing / "cases" / "2025-03-11" / "cases.csv",
        [row("cases"), row("cases", case_id="case-leak", action_id=EMAIL)],
    )


def _duckdb_values_with(db: Path, needle: str) -> list[str]:
    """Tables of `db` with `needle` in any value (every column as text)."""
    conn = duckdb.connect(str(db), read_only=True)
    found = []
    try:
        tables = conn.execute(
            "select database_name, schema_name, table_name from duckdb_tables() "
            "union all select database_name, schema_name, view_name from duckdb_views() "
            "where not internal"
        ).fetchall()
        for _, schema, table in tables:
            cols = [c for c, *_ in conn.execute(f'describe "{schema}"."{table}"').fetchall()]
            text = " || ' ' || ".join(f"coalesce(\"{c}\"::varchar, '')" for c in cols)
            (n,) = conn.execute(
                f'select count(*) from "{schema}"."{table}" where contains({text}, ?)', [needle]
            ).fetchone()
            if n:
                found.append(f"{schema}.{table}")
    finally:
        conn.close()
    return found


def _sqlite_values_with(db: Path, needle: str) -> list[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    found = []
    try:
        tables = [t for (t,) in conn.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for values in conn.execute(f'select * from "{table}"'):
                if any(needle in str(v) for v in values if v is not None):
                    found.append(table)
                    break
    finally:
        conn.close()
    return found


@pytest.mark.integration
def test_personal_data_in_identifiers_is_in_no_byte_written(tmp_path, monkeypatch, capfd, caplog):
    from ocse.pipeline import run_pipeline

    caplog.set_level(logging.DEBUG)
    paths = {
        "landing": tmp_path / "landing",
        "wh": tmp_path / "wh",
        "dagster_home": tmp_path / "dagster_home",
    }
    paths["dagster_home"].mkdir()
    _leaky_landing(paths["landing"])
    monkeypatch.setenv("OCSE_LANDING_DIR", str(paths["landing"]))
    monkeypatch.setenv("OCSE_WAREHOUSE", str(paths["wh"] / "ocse.duckdb"))
    monkeypatch.setenv("OCSE_SERVING", str(paths["wh"] / "serving.duckdb"))
    monkeypatch.setenv("OCSE_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("DAGSTER_HOME", str(paths["dagster_home"]))
    monkeypatch.delenv("OCSE_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.delenv("OCSE_AS_OF", raising=False)
    monkeypatch.delenv("OCSE_ALERTS_DB", raising=False)
    started = datetime.now(UTC)
    result = run_pipeline(AS_OF)
    assert result.success, result.failure
    out, err = capfd.readouterr()

    warehouse, serving = paths["wh"] / "ocse.duckdb", paths["wh"] / "serving.duckdb"
    alerts = paths["wh"] / "alerts.sqlite"
    assert warehouse.is_file() and serving.is_file() and alerts.is_file()

    # The rows were seen and quarantined for the right reason (the test is not vacuous).
    with duckdb.connect(str(warehouse), read_only=True) as wh:
        reasons = dict(
            wh.execute(
                "select feed || ':' || row_number, reason_codes from ingest.quarantine"
            ).fetchall()
        )
        loaded = dict(
            wh.execute(
                "select 'screening_hits', count(*) from raw.screening_hits union all "
                "select 'reports', count(*) from raw.reports union all "
                "select 'enforcement_actions', count(*) from raw.enforcement_actions union all "
                "select 'cases', count(*) from raw.cases"
            ).fetchall()
        )
    assert reasons == {
        "screening_hits:2": ["personal_data:content_id"],
        "screening_hits:3": ["personal_data:matched_list"],
        "reports:2": ["personal_data:content_id"],
        "enforcement_actions:2": ["personal_data:content_id"],
        "enforcement_actions:3": ["personal_data:evidence_ref"],
        "cases:2": ["personal_data:action_id"],
    }
    assert loaded == dict.fromkeys(FEEDS, 1)

    for needle in NEEDLES:
        # Every value of every table and view, by SQL (DuckDB compresses strings on disk).
        assert _duckdb_values_with(warehouse, needle) == [], needle
        assert _duckdb_values_with(serving, needle) == [], needle
        assert _sqlite_values_with(alerts, needle) == [], needle
        # Every byte: the warehouse folder (DuckDB files, WAL, alert store, temp spills),
        # Dagster's instance (event logs), dbt's files of this run, and what was logged.
        written = [p for p in paths["wh"].rglob("*") if p.is_file()]
        written += [p for p in paths["dagster_home"].rglob("*") if p.is_file()]
        written += [
            p
            for folder in ("target", "logs")
            for p in (PROJECT_ROOT / "dbt" / folder).rglob("*")
            if p.is_file() and p.stat().st_mtime >= started.timestamp()
        ]
        for f in written:
            assert needle.encode() not in f.read_bytes(), f"{needle!r} in {f}"
        assert needle not in out and needle not in err
        assert needle not in caplog.text


@pytest.mark.parametrize("end", [AS_OF, None], ids=["past_end", "ending_now"])
def test_generated_data_breaks_none_of_the_new_rules(tmp_path, conn, key, end):
    """The sample-data generator's ids, timestamps and offsets pass the new rules: exactly
    the rows it planted as bad are quarantined, each with its planted reason. (A planted
    defect may break a new rule as well: `rule:actioned_after_detected` moves detected_at up
    to 36 hours later, which is in the future when the data ends now.)"""
    import polars as pl

    from sample_data.generator import generate

    landing = tmp_path / "generated"
    generate(landing, seed=5, days=3, scale=1500, end=end, bad_share=0.02, progress=None)
    summary = ingest_landing(conn, landing, key)
    assert summary.count("rows_loaded") > 1000
    planted = {
        (r["file"], r["row_number"]): r["expected_reason"]
        for r in pl.read_csv(landing / "_bad_rows.csv").iter_rows(named=True)
    }
    got = {
        (f, n): reasons
        for f, n, reasons in conn.execute(
            "select file_name, row_number, reason_codes from ingest.quarantine"
        ).fetchall()
    }
    assert set(got) == set(planted)
    wrong = {k: (planted[k], r) for k, r in got.items() if planted[k] not in r}
    assert wrong == {}
