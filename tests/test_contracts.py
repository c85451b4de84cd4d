"""The contracts encode feeds.md completely, and everything derived from them agrees:
the dbt sources, the rule queries, the categories. (Generator output: test_pipeline.py.)"""

from __future__ import annotations

import re

import pytest

from ocse.contracts import (
    CONTRACTS_DIR,
    FEEDS,
    categories,
    dbt_sources_yaml,
    load_contract,
    rule_query,
)
from ocse.settings import PROJECT_ROOT

SPEC = PROJECT_ROOT.parent / "shared" / "spec"
PERSONAL = {
    "uploader_id",
    "reviewer_id",
    "reporter_id",
    "reported_user_id",
    "user_id",
    "subject_user_id",
}

needs_spec = pytest.mark.skipif(not SPEC.is_dir(), reason="shared/spec is not beside the repo")


def _spec_fields(feed: str) -> list[dict]:
    text = (SPEC / "feeds.md").read_text(encoding="utf-8")
    section = text.split(f"## Feed: `{feed}`", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("field", "") or set(cells[0]) <= {"-"}:
            continue
        name, typ, req, meaning = cells
        rows.append({"name": name, "type": typ, "required": req == "yes", "meaning": meaning})
    return rows


@needs_spec
@pytest.mark.parametrize("feed", FEEDS)
def test_contract_fields_match_feeds_md(feed):
    contract = load_contract(feed)
    spec = _spec_fields(feed)
    assert [f["name"] for f in spec] == contract.names
    for s in spec:
        f = contract.field(s["name"])
        assert f.required == s["required"], s["name"]
        assert f.personal == ("(personal)" in s["meaning"]), s["name"]
        typ = s["type"]
        if typ == "timestamp":
            assert f.logical_type == "timestamp"
        elif typ.startswith("number"):
            assert (f.logical_type, f.minimum, f.maximum) == ("number", 0, 1)
        elif typ.startswith("integer"):
            assert (f.logical_type, f.minimum) == ("integer", 0)
        elif "enum" in typ:
            codes = re.findall(r"`([a-z0-9_]+)`", s["meaning"])
            if s["name"] == "category_code":
                expected = {c["category_code"] for c in categories()}
                expected |= {"unclassified"} if "unclassified" in s["meaning"] else set()
            else:
                expected = set(codes)
            assert set(f.valid_values) == expected, s["name"]
            assert f.logical_type == ("array" if typ.startswith("list") else "string")
        else:
            assert f.logical_type == "string" and f.valid_values is None, s["name"]


@needs_spec
def test_personal_identifiers_are_exactly_those_of_feeds_md():
    found = {f.name for c in FEEDS for f in load_contract(c).fields if f.personal}
    assert found == PERSONAL


@needs_spec
def test_categories_are_the_spec_categories():
    assert (CONTRACTS_DIR / "categories.csv").read_bytes() == (SPEC / "categories.csv").read_bytes()


@needs_spec
@pytest.mark.parametrize("feed", FEEDS)
def test_every_rule_of_feeds_md_is_in_the_contract(feed):
    text = (SPEC / "feeds.md").read_text(encoding="utf-8")
    section = text.split(f"## Feed: `{feed}`", 1)[1].split("\n## ", 1)[0]
    rules_line = next(line for line in section.splitlines() if line.startswith("Rules:"))
    columns_in_rules = set(re.findall(r"`([a-z_]+_(?:at|id))`", rules_line))
    covered = set().union(*(r.columns() for r in load_contract(feed).rules))
    assert columns_in_rules <= covered


def test_dbt_sources_are_generated_from_the_contracts():
    sources = PROJECT_ROOT / "dbt" / "models" / "staging" / "raw" / "_raw__sources.yml"
    committed = sources.read_text(encoding="utf-8")
    assert committed == dbt_sources_yaml(), "run `ocse contracts sync`"


@pytest.mark.parametrize("feed", FEEDS)
def test_rule_queries_are_the_compiled_checks(feed):
    for rule in load_contract(feed).rules:
        assert rule.query == rule_query(rule.check), rule.rule_id


def test_raw_and_staging_columns_carry_refs_not_identifiers():
    for feed in FEEDS:
        stored = [f.stored_name for f in load_contract(feed).fields]
        assert not set(stored) & PERSONAL
        staging = next(
            (PROJECT_ROOT / "dbt" / "models" / "staging" / "raw").glob(f"stg_{feed}__*.sql")
        )
        sql = staging.read_text(encoding="utf-8")
        for name in PERSONAL & set(load_contract(feed).names):
            assert re.search(rf"\b{name}\b(?!_ref)", sql) is None
