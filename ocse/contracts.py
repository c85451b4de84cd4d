"""Feed contracts (ODCS v3 YAML in `data_contracts/`): loading and everything derived from them.

The contracts are the single source of truth. From them come:
- the row-level validation SQL of the ingestion gate (`validation_sql`),
- the Great Expectations suite run as a blocking asset check (`ocse.ingest.expectations`),
- the dbt sources YAML (`dbt_sources_yaml`), kept in the dbt project and checked by a test.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "data_contracts"
FEEDS = ("screening_hits", "reports", "enforcement_actions", "cases")

# ISO-8601 date-time with an explicit offset. Without an offset a timestamp is invalid: guessing
# a time zone would silently shift SLA clocks (feeds.md).
TIMESTAMP_WITH_OFFSET = (
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?[ ]?(Z|z|[+-]\d{2}(:?\d{2})?)$"
)
# The same, with a real UTC offset only: at most 14 hours either way, in whole quarter hours
# (every offset in use is one). `+25:00` parses, but no clock shows it.
TIMESTAMP_WITH_REAL_OFFSET = (
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?[ ]?"
    r"(Z|z|[+-](0\d|1[0-3])(:?(00|15|30|45))?|[+-]14(:?00)?)$"
)
# A value that looks like personal data in a field that is not personal (written for both
# DuckDB's RE2 and Python's re). An e-mail address anywhere in the value; a phone number as
# the whole value: international (+ or 00 prefix), a mainland mobile (1, 3-9, 9 more digits;
# +86 optional), a landline with its 0 area code, or digits grouped by spaces, dots or
# dashes. Other runs of digits are not phone numbers (a numeric content id is not), and
# neither is a phone number inside a longer id (hex ids would match by chance).
EMAIL_LIKE = r"[^@\s]+@[^@\s]+\.[^@\s]+"
PHONE_LIKE = (
    r"^\s*(?:"
    r"(?:\+|00)[1-9](?:[ .-]?\(?[0-9]\)?){6,14}"
    r"|(?:(?:\+|00)?86[ .-]?)?1[3-9][0-9](?:[ .-]?[0-9]){8}"
    r"|\(?0[1-9][0-9]{1,2}\)?[ .-]?[2-9][0-9]{6,7}"
    r"|\(?[0-9]{2,4}\)?[ .-][0-9]{3,4}[ .-][0-9]{3,5}"
    r")\s*$"
)
# Key version travels in every pseudonym, so refs made with different keys never silently join.
PSEUDONYM_SUFFIX = "_ref"


@dataclass(frozen=True)
class Field:
    name: str
    logical_type: str  # string | timestamp | number | integer | array
    required: bool
    personal: bool
    description: str
    valid_values: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None  # logicalTypeOptions.pattern: the format of an identifier

    @property
    def stored_name(self) -> str:
        """Column name in the warehouse: personal identifiers only ever land as `<field>_ref`."""
        return self.name + PSEUDONYM_SUFFIX if self.personal else self.name


@dataclass(frozen=True)
class Rule:
    rule_id: str
    description: str
    check: dict[str, Any]
    query: str | None

    def columns(self) -> set[str]:
        cols = {self.check["column"]}
        if "other" in self.check:
            cols.add(self.check["other"])
        if "when" in self.check:
            cols.add(self.check["when"]["column"])
        return cols


@dataclass(frozen=True)
class PlausibleTimestamps:
    """The contract-level window every timestamp of a record must fall in (customProperty
    `plausibleTimestamps` of the schema object): not before `not_before`, not after the
    run's T (or the gate's clock, if later) plus `clock_skew_minutes`. The settings
    OCSE_PLAUSIBLE_FROM and OCSE_CLOCK_SKEW_MINUTES override both for every feed."""

    not_before: datetime
    clock_skew_minutes: float


DEFAULT_PLAUSIBLE = PlausibleTimestamps(datetime.fromisoformat("2000-01-01T00:00:00+00:00"), 15)


@dataclass(frozen=True)
class FeedContract:
    feed: str
    version: str
    record_key: str
    fields: tuple[Field, ...]
    rules: tuple[Rule, ...]
    path: Path = field(compare=False)
    plausible: PlausibleTimestamps = DEFAULT_PLAUSIBLE

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required_names(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    @property
    def personal_names(self) -> list[str]:
        return [f.name for f in self.fields if f.personal]

    @property
    def identifier_names(self) -> list[str]:
        """Non-personal identifier fields: those with a format (`pattern`)."""
        return [f.name for f in self.fields if f.pattern]


@cache
def categories() -> tuple[dict[str, str], ...]:
    """The eight OCSE categories (data_contracts/categories.csv, a copy of the spec's)."""
    with (CONTRACTS_DIR / "categories.csv").open(encoding="utf-8") as fh:
        return tuple(csv.DictReader(fh))


def category_codes() -> tuple[str, ...]:
    return tuple(row["category_code"] for row in categories())


def _custom(node: dict, name: str, default: Any = None) -> Any:
    for prop in node.get("customProperties") or []:
        if prop["property"] == name:
            return prop["value"]
    return default


def _valid_values(prop: dict) -> tuple[str, ...] | None:
    values: list[str] = []
    if _custom(prop, "validValuesFrom") == "categories":
        values += category_codes()
    values += _custom(prop, "extraValidValues", [])
    for rule in prop.get("quality") or []:
        if rule.get("metric") == "invalidValues":
            values += rule["arguments"]["validValues"]
    for value in values:
        # YAML reads 10_13 as the integer 1013: codes must be quoted strings in the contract.
        if not isinstance(value, str):
            raise ValueError(f"contract field {prop['name']}: code {value!r} is not a string")
    return tuple(values) or None


def _pattern(prop: dict, options: dict) -> str | None:
    pattern = options.get("pattern")
    if pattern is None:
        return None
    if prop.get("logicalType") != "string" or prop.get("classification") == "personal":
        raise ValueError(f"contract field {prop['name']}: a pattern is for non-personal strings")
    re.compile(pattern)
    return pattern


def _plausible(obj: dict) -> PlausibleTimestamps:
    value = _custom(obj, "plausibleTimestamps")
    if value is None:
        return DEFAULT_PLAUSIBLE
    not_before = datetime.fromisoformat(str(value["notBefore"]).replace("Z", "+00:00"))
    if not_before.tzinfo is None:
        raise ValueError("plausibleTimestamps.notBefore needs an explicit offset")
    return PlausibleTimestamps(not_before, float(value["clockSkewMinutes"]))


@cache
def load_contract(feed: str) -> FeedContract:
    path = CONTRACTS_DIR / f"{feed}.odcs.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    (obj,) = doc["schema"]
    fields = []
    for prop in obj["properties"]:
        options = prop.get("logicalTypeOptions") or {}
        fields.append(
            Field(
                name=prop["name"],
                logical_type=prop["logicalType"],
                required=bool(prop.get("required", False)),
                personal=prop.get("classification") == "personal",
                description=str(prop.get("description", "")).strip(),
                valid_values=_valid_values(prop),
                minimum=options.get("minimum"),
                maximum=options.get("maximum"),
                pattern=_pattern(prop, options),
            )
        )
    rules = tuple(
        Rule(
            rule_id=rule["id"],
            description=rule.get("description", ""),
            check=_custom(rule, "check"),
            query=rule.get("query"),
        )
        for rule in obj.get("quality") or []
    )
    return FeedContract(
        feed=doc["name"],
        version=str(doc["version"]),
        record_key=_custom(obj, "recordKey"),
        fields=tuple(fields),
        rules=rules,
        path=path,
        plausible=_plausible(obj),
    )


def all_contracts() -> list[FeedContract]:
    return [load_contract(feed) for feed in FEEDS]


# --- rules as SQL --------------------------------------------------------------------------


def _sql_list(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _when_sql(when: dict) -> str:
    col = when["column"]
    if "in" in when:
        return f"{col} in ({_sql_list(when['in'])})"
    if "not_in" in when:
        return f"{col} not in ({_sql_list(when['not_in'])})"
    raise ValueError(f"unknown 'when' form in contract check: {when}")


def rule_holds_sql(check: dict[str, Any]) -> str:
    """A SQL boolean that is true when a row satisfies the rule (over typed columns)."""
    kind, col = check["kind"], check["column"]
    if kind == "not_before":
        return f"{col} is null or {check['other']} is null or {col} >= {check['other']}"
    when = _when_sql(check["when"])
    if kind == "present_iff":
        return f"({when}) = ({col} is not null)"
    if kind == "present_when":
        return f"not ({when}) or {col} is not null"
    if kind == "absent_when":
        return f"not ({when}) or {col} is null"
    raise ValueError(f"unknown check kind in contract: {kind}")


def rule_query(check: dict[str, Any]) -> str:
    """The ODCS `query` of a rule: the number of rows breaking it (must be 0)."""
    return f"select count(*) from ${{object}} where not ({rule_holds_sql(check)})"


# --- dbt sources ---------------------------------------------------------------------------


def dbt_sources_yaml() -> str:
    """The dbt sources of the raw history tables, derived from the contracts.

    Written to dbt/models/staging/raw/_raw__sources.yml by `ocse contracts sync`; a test fails
    when the committed file differs, so dbt can never drift from the contracts. A feed is
    stale (`dbt source freshness`) when nothing of it was ingested for as long as the
    feed-silence alert waits (alerting.yaml, thresholds.feed_silence_minutes): warn then,
    error after four times that.
    """
    from ocse.alerts.config import load_alerting_config
    from ocse.settings import PROJECT_ROOT

    silence = load_alerting_config(PROJECT_ROOT / "alerting.yaml").thresholds.feed_silence_minutes
    tables = []
    for contract in all_contracts():
        columns = []
        for f in contract.fields:
            col: dict[str, Any] = {"name": f.stored_name, "description": _source_description(f)}
            tests: list[Any] = []
            if f.required:
                tests.append("not_null")
            if f.valid_values and f.logical_type != "array":
                tests.append({"accepted_values": {"arguments": {"values": list(f.valid_values)}}})
            if tests:
                col["data_tests"] = tests
            columns.append(col)
        for name, desc in LINEAGE_COLUMNS:
            columns.append({"name": name, "description": desc, "data_tests": ["not_null"]})
        tables.append(
            {
                "name": contract.feed,
                "description": (
                    f"Every valid version of every {contract.feed} record, as loaded by the "
                    f"ingestion gate (contract {contract.path.name} v{contract.version}). "
                    "Personal identifiers are stored only as keyed HMAC-SHA256 pseudonyms."
                ),
                "meta": {"contract": f"data_contracts/{contract.path.name}"},
                "config": {
                    "freshness": {
                        "warn_after": {"count": silence[contract.feed], "period": "minute"},
                        "error_after": {"count": 4 * silence[contract.feed], "period": "minute"},
                    }
                },
                "columns": columns,
            }
        )
    doc = {
        "version": 2,
        "sources": [
            {
                "name": "raw",
                "schema": "raw",
                "description": "Raw history written by the ingestion gate (Dagster asset group "
                "`ingest`). Generated from data_contracts/ by `ocse contracts sync`: do not edit.",
                "config": {"loaded_at_field": "_ingested_at"},
                "tables": tables,
            },
        ],
    }
    header = "# Generated from data_contracts/ by `ocse contracts sync`. Do not edit by hand.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def _source_description(f: Field) -> str:
    desc = f.description
    if f.personal:
        desc = f"Pseudonym of {f.name} (keyed HMAC-SHA256, 'p<key version>:<hex>'). {desc}"
    return desc


LINEAGE_COLUMNS = (
    ("_file_id", "Ledger id of the file this version came from (ingestion order)."),
    ("_row_number", "1-based record number within that file (CSV: header not counted)."),
    ("_ingested_at", "When the gate loaded the file (UTC)."),
)
