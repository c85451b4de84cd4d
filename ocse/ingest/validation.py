"""Row-level contract validation, compiled from the contract into one vectorised SQL query.

`checked_table_sql` turns the all-VARCHAR `_batch` into `_checked`: for every contract field
the source text (`s_<field>`), the typed value (`<field>`), and `reason_codes`, the list of
every rule the row breaks. A row is valid when that list is empty.

Reason codes (`<kind>:<field or rule id>`):
- `missing_required:<field>`    required field empty or absent
- `unknown_code:<field>`        value not in the contract's enumeration / category list
- `invalid_timestamp:<field>`   not an ISO-8601 date-time
- `timestamp_without_offset:<field>`  a date-time with no explicit offset (never guessed)
- `invalid_offset:<field>`      a date-time whose UTC offset no clock has (beyond ±14:00, or
                                minutes other than 00/15/30/45, e.g. `+25:00`)
- `timestamp_before_window:<field>`  earlier than the contract's plausibility window
                                (`plausibleTimestamps.notBefore`, default 2000-01-01T00:00Z)
- `timestamp_in_future:<field>` later than the run's T (or the gate's clock, if later) plus
                                the clock-skew allowance (default 15 minutes)
- `invalid_number:<field>` / `invalid_integer:<field>`  not a (finite) number / whole number
- `out_of_range:<field>`        outside the contract's minimum/maximum
- `invalid_format:<field>`      an identifier not matching its contract `pattern` (not given
                                when `personal_data` is, for the same field)
- `personal_data:<field>`       a field that is not personal holds what looks like an e-mail
                                address or a phone number (contracts.EMAIL_LIKE/PHONE_LIKE)
- `rule:<rule id>`              a cross-field rule of the contract is broken

A future timestamp is quarantined, not held back: the file is processed once, and
`ocse replay --quarantine --reason timestamp_in_future` loads the row from its file once the
clock has caught up with it. The upper bound is the later of T and the gate's own clock: a
backfill at an earlier T still loads what has happened since (the marts ignore what lies
after their T; quarantining it would lose it from every later run).

A value that breaks `personal_data` never leaves `_checked` as it arrived: its `s_<field>`
is `REDACTED` and its typed value null (the marker for a string field), so the quarantine,
which stores the source text of non-personal fields, cannot become a leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ocse.contracts import (
    EMAIL_LIKE,
    PHONE_LIKE,
    TIMESTAMP_WITH_OFFSET,
    TIMESTAMP_WITH_REAL_OFFSET,
    FeedContract,
    Field,
    _sql_list,
    rule_holds_sql,
)

REASON_KINDS = (
    "missing_required",
    "unknown_code",
    "invalid_timestamp",
    "timestamp_without_offset",
    "invalid_offset",
    "timestamp_before_window",
    "timestamp_in_future",
    "invalid_number",
    "invalid_integer",
    "out_of_range",
    "invalid_format",
    "personal_data",
    "rule",
)
# What the quarantine holds instead of a non-personal value that looked like personal data.
# It matches no identifier pattern, code, timestamp or number, so it can never be loaded.
REDACTED = "<redacted:personal_data>"


def _q(text: str) -> str:
    return text.replace("'", "''")


_OFFSET_RE = _q(TIMESTAMP_WITH_OFFSET)
_REAL_OFFSET_RE = _q(TIMESTAMP_WITH_REAL_OFFSET)
_EMAIL_RE = _q(EMAIL_LIKE)
_PHONE_RE = _q(PHONE_LIKE)
_INTEGER_RE = r"^[+-]?\d+$"


@dataclass(frozen=True)
class PlausibilityWindow:
    """Timestamps outside [not_before, not_after] are quarantined (both bounds UTC-aware)."""

    not_before: datetime
    not_after: datetime

    def __post_init__(self) -> None:
        if self.not_before.tzinfo is None or self.not_after.tzinfo is None:
            raise ValueError("a plausibility window needs time zone aware bounds")


def plausibility_window(
    contract: FeedContract,
    as_of: datetime | None = None,
    *,
    now: datetime | None = None,
    settings=None,
) -> PlausibilityWindow:
    """The window of `contract` for a run at T = `as_of` (None: now): from
    OCSE_PLAUSIBLE_FROM, else the contract's `plausibleTimestamps.notBefore`, to the later of
    T and `now` (the gate's clock) plus OCSE_CLOCK_SKEW_MINUTES, else the contract's
    `clockSkewMinutes`."""
    if settings is None:
        from ocse.settings import get_settings

        settings = get_settings()
    now = now or datetime.now(UTC)
    t = max(as_of, now) if as_of is not None else now
    not_before = settings.plausible_from or contract.plausible.not_before
    skew = settings.clock_skew_minutes
    if skew is None:
        skew = contract.plausible.clock_skew_minutes
    return PlausibilityWindow(
        not_before=not_before.astimezone(UTC),
        not_after=(t + timedelta(minutes=skew)).astimezone(UTC),
    )


def _ts_literal(value: datetime) -> str:
    return f"'{value.astimezone(UTC).isoformat()}'::timestamptz"


def _typed_sql(f: Field) -> str:
    s = f"s_{f.name}"
    match f.logical_type:
        case "string":
            return s
        case "timestamp":
            return (
                f"case when regexp_full_match({s}, '{_REAL_OFFSET_RE}') "
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


def _looks_personal_sql(f: Field) -> str:
    """True when the source text of non-personal field `f` looks like personal data. A valid
    timestamp never does, so timestamps are looked at only when they failed to parse."""
    s = f"s_{f.name}"
    parsed_ok = f" and {f.name} is null" if f.logical_type == "timestamp" else ""
    return (
        f"coalesce({s} is not null{parsed_ok} and ("
        f"(contains({s}, '@') and regexp_matches({s}, '{_EMAIL_RE}')) or "
        f"(length({s}) between 7 and 40 and regexp_full_match({s}, '{_PHONE_RE}'))"
        "), false)"
    )


def _field_reasons(f: Field, window: PlausibilityWindow) -> list[str]:
    s, t, n = f"s_{f.name}", f.name, f.name
    reasons = []
    if f.required:
        reasons.append(f"case when {s} is null then 'missing_required:{n}' end")
    if f.logical_type == "timestamp":
        reasons.append(
            f"case when {s} is not null and {t} is null then "
            f"case when regexp_full_match({s}, '{_OFFSET_RE}') "
            f"and try_cast({s} as timestamptz) is not null then 'invalid_offset:{n}' "
            f"when not regexp_full_match({s}, '{_OFFSET_RE}') "
            f"and try_cast({s} as timestamp) is not null "
            f"then 'timestamp_without_offset:{n}' else 'invalid_timestamp:{n}' end end"
        )
        reasons.append(
            f"case when {t} < {_ts_literal(window.not_before)} "
            f"then 'timestamp_before_window:{n}' end"
        )
        reasons.append(
            f"case when {t} > {_ts_literal(window.not_after)} then 'timestamp_in_future:{n}' end"
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
    if f.pattern:
        reasons.append(
            f"case when {s} is not null and not _pd_{n} "
            f"and not regexp_full_match({s}, '{_q(f.pattern)}') then 'invalid_format:{n}' end"
        )
    if not f.personal:
        reasons.append(f"case when _pd_{n} then 'personal_data:{n}' end")
    return reasons


def _masked_columns(f: Field) -> tuple[str, str]:
    """`s_<field>` and `<field>` as `_checked` keeps them: redacted if they looked personal."""
    s, n = f"s_{f.name}", f.name
    if f.personal:  # pseudonymised by the gate, never stored as they came
        return s, n
    typed_marker = f"'{REDACTED}'" if f.logical_type == "string" else "null"
    return (
        f"case when _pd_{n} then '{REDACTED}' else {s} end as {s}",
        f"case when _pd_{n} then {typed_marker} else {n} end as {n}",
    )


def checked_table_sql(
    contract: FeedContract,
    present_columns: set[str],
    lineage: tuple[str, ...] = ("_row_number",),
    window: PlausibilityWindow | None = None,
) -> str:
    """SQL creating temp table `_checked` from `_batch` (see module docstring), carrying the
    `lineage` columns of `_batch` through. `window` bounds every timestamp (default: the
    contract's `plausibility_window` at the gate's clock)."""
    window = window or plausibility_window(contract)
    source = ",\n        ".join(
        (
            f"nullif({f.name}, '') as s_{f.name}"
            if f.name in present_columns
            else f"null::varchar as s_{f.name}"
        )
        for f in contract.fields
    )
    typed = ",\n        ".join(f"{_typed_sql(f)} as {f.name}" for f in contract.fields)
    flags = "".join(
        f",\n        {_looks_personal_sql(f)} as _pd_{f.name}"
        for f in contract.fields
        if not f.personal
    )
    reasons = [r for f in contract.fields for r in _field_reasons(f, window)]
    reasons += [
        f"case when not coalesce({rule_holds_sql(rule.check)}, true) then 'rule:{rule.rule_id}' end"
        for rule in contract.rules
    ]
    reason_list = ",\n            ".join(reasons)
    masked = [_masked_columns(f) for f in contract.fields]
    # Columns: lineage, every s_<field>, every <field>, reason_codes (the _pd_ flags stay here).
    output = ",\n    ".join([*lineage, *(m[0] for m in masked), *(m[1] for m in masked)])
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
),
flagged as (
    select
        typed.*{flags}
    from typed
),
checked as (
    select
        flagged.*,
        list_filter([
            {reason_list}
        ], lambda x: x is not null) as reason_codes
    from flagged
)
select
    {output},
    reason_codes
from checked
"""
