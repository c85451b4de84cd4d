"""Row-level contract validation, compiled from the contract into one vectorised SQL query.

`checked_table_sql` turns the all-VARCHAR `_batch` into `_checked`: for every contract field
the source text (`s_<field>`), the typed value (`<field>`), and `reason_codes`, the list of
every rule the row breaks. A row is valid when that list is empty.

Reason codes (`<kind>:<field or rule id>`):
- `missing_required:<field>`    required field empty or absent
- `unknown_code:<field>`        value not in the contract's enumeration / category list
- `invalid_timestamp:<field>`   not an ISO-8601 date-time
- `timestamp_without_offset:<field>`  a date-time with no explicit offset (never guessed)
- `invalid_number:<field>` / `invalid_integer:<field>`  not a (finite) number / whole number
- `out_of_range:<field>`        outside the contract's minimum/maximum
- `rule:<rule id>`              a cross-field rule of the contract is broken
"""

from __future__ import annotations

from ocse.contracts import TIMESTAMP_WITH_OFFSET, FeedContract, Field, _sql_list, rule_holds_sql

REASON_KINDS = (
    "missing_required",
    "unknown_code",
    "invalid_timestamp",
    "timestamp_without_offset",
    "invalid_number",
    "invalid_integer",
    "out_of_range",
    "rule",
)
_OFFSET_RE = TIMESTAMP_WITH_OFFSET.replace("'", "''")
_INTEGER_RE = r"^[+-]?\d+$"


def _typed_sql(f: Field) -> str:
    s = f"s_{f.name}"
    match f.logical_type:
        case "string":
            return s
        case "timestamp":
            return (
                f"case when regexp_full_match({s}, '{_OFFSET_RE}') "
                f"then try_cast({s} as timestamptz) end"
            )
        case "number":
            return f"case when isfinite(try_cast({s} as double)) then try_cast({s} as double) end"
        case "integer":
            return (
                f"case when regexp_full_match(trim({s}), '{_INTEGER_RE}') "
                f"then try_cast(trim({s}) as bigint) end"
            )
        case "array":
            return f"string_split({s}, '|')"
    raise ValueError(f"unsupported logicalType {f.logical_type!r} in contract")


def _field_reasons(f: Field) -> list[str]:
    s, t, n = f"s_{f.name}", f.name, f.name
    reasons = []
    if f.required:
        reasons.append(f"case when {s} is null then 'missing_required:{n}' end")
    if f.logical_type == "timestamp":
        reasons.append(
            f"case when {s} is not null and {t} is null then "
            f"case when not regexp_full_match({s}, '{_OFFSET_RE}') "
            f"and try_cast({s} as timestamp) is not null "
            f"then 'timestamp_without_offset:{n}' else 'invalid_timestamp:{n}' end end"
        )
    elif f.logical_type in ("number", "integer"):
        reasons.append(
            f"case when {s} is not null and {t} is null then 'invalid_{f.logical_type}:{n}' end"
        )
    if f.minimum is not None:
        reasons.append(f"case when {t} < {f.minimum} then 'out_of_range:{n}' end")
    if f.maximum is not None:
        reasons.append(f"case when {t} > {f.maximum} then 'out_of_range:{n}' end")
    if f.valid_values:
        allowed = _sql_list(list(f.valid_values))
        if f.logical_type == "array":
            bad = f"len(list_filter({t}, lambda x: x is null or x not in ({allowed}))) > 0"
        else:
            bad = f"{t} not in ({allowed})"
        reasons.append(f"case when {s} is not null and {bad} then 'unknown_code:{n}' end")
    return reasons


def checked_table_sql(
    contract: FeedContract, present_columns: set[str], lineage: tuple[str, ...] = ("_row_number",)
) -> str:
    """SQL creating temp table `_checked` from `_batch` (see module docstring), carrying the
    `lineage` columns of `_batch` through."""
    source = ",\n        ".join(
        (
            f"nullif({f.name}, '') as s_{f.name}"
            if f.name in present_columns
            else f"null::varchar as s_{f.name}"
        )
        for f in contract.fields
    )
    typed = ",\n        ".join(f"{_typed_sql(f)} as {f.name}" for f in contract.fields)
    reasons = [r for f in contract.fields for r in _field_reasons(f)]
    reasons += [
        f"case when not coalesce({rule_holds_sql(rule.check)}, true) then 'rule:{rule.rule_id}' end"
        for rule in contract.rules
    ]
    reason_list = ",\n            ".join(reasons)
    return f"""
create or replace temp table _checked as
with source as (
    select
        {", ".join(lineage)},
        {source}
    from _batch
),
typed as (
    select
        source.*,
        {typed}
    from source
)
select
    typed.*,
    list_filter([
            {reason_list}
        ], lambda x: x is not null) as reason_codes
from typed
"""
