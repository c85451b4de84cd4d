"""Row-level contract rules: every reason code the contracts can produce is produced, on the
right row, and the rest of the file still loads. Cases are derived from the contracts, so a
field or rule added to a contract is covered (or this test fails to build a case for it)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ocse.contracts import FEEDS, Field, Rule, load_contract
from ocse.ingest.gate import ingest_landing
from tests.feeds import VALID_ROWS, row, write_csv, write_jsonl, write_parquet


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _field_cases(f: Field) -> list[tuple[dict, str]]:
    """(changes to a valid row, expected reason code) for one field."""
    n, cases = f.name, []
    if f.required:
        cases.append(({n: None}, f"missing_required:{n}"))
    if f.logical_type == "timestamp":
        cases.append(({n: "yesterday at noon"}, f"invalid_timestamp:{n}"))
        cases.append(({n: "2025-03-01T09:15:00"}, f"timestamp_without_offset:{n}"))
        cases.append(({n: "2025-02-30T09:15:00Z"}, f"invalid_timestamp:{n}"))
    if f.logical_type == "number":
        cases.append(({n: "high"}, f"invalid_number:{n}"))
    if f.logical_type == "integer":
        cases.append(({n: "2.5"}, f"invalid_integer:{n}"))
    if f.minimum is not None:
        cases.append(({n: str(f.minimum - 1)}, f"out_of_range:{n}"))
    if f.maximum is not None:
        cases.append(({n: str(f.maximum + 0.5)}, f"out_of_range:{n}"))
    if f.valid_values:
        bad = "psychological|bribery" if f.logical_type == "array" else "Not_A_Code"
        cases.append(({n: bad}, f"unknown_code:{n}"))
    return cases


def _rule_case(feed: str, rule: Rule) -> tuple[dict, str]:
    """Changes to a valid row that break exactly this rule."""
    check, col = rule.check, rule.check["column"]
    base = VALID_ROWS[feed]
    kind = check["kind"]
    if kind == "not_before":
        other = base[check["other"]] or "2025-03-01T12:00:00Z"
        earlier = (_ts(other) - timedelta(minutes=1)).isoformat()
        changes = {check["other"]: other, col: earlier}
    else:
        when = check["when"]
        if kind in ("present_when", "absent_when") or (kind == "present_iff" and "in" in when):
            # Make the condition true...
            value = when["in"][0] if "in" in when else None
        if kind == "present_iff" and "not_in" in when:
            # ...condition false (status pending) but the column present
            changes = {when["column"]: when["not_in"][0], col: base[col] or "2025-03-02T00:00:00Z"}
        elif kind in ("present_when", "present_iff"):
            changes = {when["column"]: value, col: None}
        else:  # absent_when
            changes = {when["column"]: value, col: base[col] or "2025-03-01T09:00:00Z"}
    return changes, f"rule:{rule.rule_id}"


def _all_cases(feed: str) -> list[tuple[dict, str]]:
    contract = load_contract(feed)
    cases = [c for f in contract.fields for c in _field_cases(f)]
    cases += [_rule_case(feed, r) for r in contract.rules]
    return cases


@pytest.mark.parametrize("feed", FEEDS)
def test_valid_row_of_each_feed_loads(feed, landing, conn, key):
    write_csv(landing / feed / "ok.csv", [row(feed)])
    summary = ingest_landing(conn, landing, key)
    assert [f.outcome for f in summary.files] == ["loaded"]
    assert conn.execute(f"select count(*) from raw.{feed}").fetchone()[0] == 1


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
@pytest.mark.parametrize("feed", FEEDS)
def test_every_reason_code_is_produced_on_its_row(feed, fmt, landing, conn, key):
    cases = _all_cases(feed)
    rows = [row(feed)] + [row(feed, **changes) for changes, _ in cases]
    writer = {"csv": write_csv, "jsonl": write_jsonl, "parquet": write_parquet}[fmt]
    writer(landing / feed / "day1" / f"mixed.{fmt}", rows)

    summary = ingest_landing(conn, landing, key)

    (result,) = summary.files
    assert result.outcome == "partially_quarantined"
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (
        len(rows),
        1,
        len(cases),
    )
    got = dict(conn.execute("select row_number, reason_codes from ingest.quarantine").fetchall())
    for row_number, (changes, expected) in enumerate(cases, start=2):
        assert expected in got.get(row_number, []), (
            f"row {row_number} {changes} should be quarantined with {expected}, "
            f"got {got.get(row_number)}"
        )
    assert conn.execute(f"select _row_number from raw.{feed}").fetchall() == [(1,)]


def test_every_contract_rule_has_a_case():
    for feed in FEEDS:
        expected = {f"rule:{r.rule_id}" for r in load_contract(feed).rules}
        covered = {reason for _, reason in _all_cases(feed)}
        assert expected <= covered


def test_offsets_are_normalised_to_utc(landing, conn, key):
    write_csv(landing / "screening_hits" / "a.csv", [row("screening_hits")])
    ingest_landing(conn, landing, key)
    (reviewed,) = conn.execute(
        "select strftime(reviewed_at, '%Y-%m-%dT%H:%M:%S') from raw.screening_hits"
    ).fetchone()
    assert reviewed == "2025-03-01T09:20:00"  # 17:20+08:00
