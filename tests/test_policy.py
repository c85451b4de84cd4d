"""The policy reference data (dbt/seeds/): what the committee changes without a code change.
A version missing a target or a rule would leave clocks unjudged or tiers wrong."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from ocse.contracts import CONTRACTS_DIR, category_codes

SEEDS = Path(__file__).resolve().parents[1] / "dbt" / "seeds"
SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec"
CLOCKS = ("takedown", "report_acknowledgement", "report_resolution", "referral")
TIER_RULES = {
    "zero_tolerance": "black",
    "repeat_180d": "black",
    "violation_180d": "grey",
    "reports_30d": "grey",
    "cleared": "white",
}


def _rows(name: str) -> list[dict[str, str]]:
    with (SEEDS / f"{name}.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_category_seed_is_the_contracts_copy_of_the_spec():
    seed = (SEEDS / "ref_categories.csv").read_bytes()
    assert seed == (CONTRACTS_DIR / "categories.csv").read_bytes()
    if (SPEC / "categories.csv").exists():
        assert seed == (SPEC / "categories.csv").read_bytes()


def test_every_version_is_dated_with_an_offset_and_unique():
    versions = _rows("policy_versions")
    assert [v["policy_version"] for v in versions] == [str(n) for n in range(1, len(versions) + 1)]
    dates = [datetime.fromisoformat(v["effective_from"]) for v in versions]
    assert all(d.tzinfo is not None for d in dates)
    assert dates == sorted(dates) and len(set(dates)) == len(dates)
    assert all(0 < float(v["near_breach_share"]) < 1 for v in versions)


def test_every_version_has_a_target_for_every_clock_and_category():
    targets = _rows("policy_sla_targets")
    for version in {v["policy_version"] for v in _rows("policy_versions")}:
        rows = [t for t in targets if t["policy_version"] == version]
        takedown = {t["category_code"] for t in rows if t["clock"] == "takedown"}
        assert takedown == set(category_codes()), f"v{version} takedown targets"
        for clock in CLOCKS[1:]:
            generic = [t for t in rows if t["clock"] == clock and not t["category_code"]]
            assert len(generic) == 1, f"v{version} {clock}"
        assert all(int(t["target_minutes"]) > 0 for t in rows)


def test_version_1_is_the_specification_default():
    targets = {
        (t["clock"], t["category_code"]): int(t["target_minutes"])
        for t in _rows("policy_sla_targets")
        if t["policy_version"] == "1"
    }
    with (CONTRACTS_DIR / "categories.csv").open(encoding="utf-8") as fh:
        csam = {r["category_code"] for r in csv.DictReader(fh) if r["is_csam"] == "true"}
    for code in category_codes():
        assert targets["takedown", code] == (60 if code in csam else 24 * 60)
    assert targets["report_acknowledgement", ""] == 24 * 60
    assert targets["report_resolution", ""] == 72 * 60
    assert targets["referral", ""] == 24 * 60
    rules = {r["rule_id"]: r for r in _rows("policy_tier_rules") if r["policy_version"] == "1"}
    # the seed holds thresholds and windows only: which tier each rule gives, and their
    # order, are policy.md's table, in the tier models (see dim_policy_tier_rules' docs)
    assert set(rules) == set(TIER_RULES) and "tier" not in rules["repeat_180d"]
    assert (rules["repeat_180d"]["min_count"], rules["repeat_180d"]["window_days"]) == ("3", "180")
    assert (rules["violation_180d"]["min_count"], rules["violation_180d"]["window_days"]) == (
        "1",
        "180",
    )
    assert (rules["reports_30d"]["min_count"], rules["reports_30d"]["window_days"]) == ("2", "30")


def test_every_version_has_every_list_rule():
    rules = _rows("policy_tier_rules")
    for version in {v["policy_version"] for v in _rows("policy_versions")}:
        assert {r["rule_id"] for r in rules if r["policy_version"] == version} == set(TIER_RULES)
