"""The sample-data generator (`ocse generate`) delivers what the ingestion gate, the marts and
the live demo rely on: contract-shaped files, versioned records, a live edge at the end time,
no personal identifier outside its own columns, and exactly the bad input it says it
planted. The contracts are read here with pyyaml, independently of the generator."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import yaml
from click.testing import CliRunner

from ocse.contracts import CONTRACTS_DIR, FEEDS, load_contract
from sample_data.cli import generate_command
from sample_data.generator import follow_batch, generate, read_state, resolve_period
from sample_data.rhythm import plan_spikes, week_number

CONTRACTS = CONTRACTS_DIR
KEYS = {feed: load_contract(feed).record_key for feed in FEEDS}
ACCOUNT = re.compile(r"acct-[0-9a-f]{10}")
REVIEWER = re.compile(r"mod-[0-9a-f]{8}")
ACCOUNT_FIELDS = {"uploader_id", "user_id", "reporter_id", "reported_user_id", "subject_user_id"}
OFFSET_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
END = datetime(2025, 3, 31, 16, 0, tzinfo=UTC)  # midnight in Asia/Shanghai
RUN = {"seed": 7, "days": 8, "scale": 6000, "end": END, "bad_share": 0.02}


# -- contracts, read independently ---------------------------------------------------------


def contract(feed: str) -> dict:
    return yaml.safe_load((CONTRACTS / f"{feed}.odcs.yaml").read_text(encoding="utf-8"))


def fields(feed: str) -> list[dict]:
    return contract(feed)["schema"][0]["properties"]


def field_names(feed: str) -> list[str]:
    return [f["name"] for f in fields(feed)]


def categories() -> list[str]:
    with (CONTRACTS / "categories.csv").open(encoding="utf-8") as fh:
        return [row["category_code"] for row in csv.DictReader(fh)]


def valid_values(prop: dict) -> list[str] | None:
    for q in prop.get("quality", []):
        if q.get("metric") == "invalidValues":
            return q["arguments"]["validValues"]
    custom = {c["property"]: c["value"] for c in prop.get("customProperties", [])}
    if custom.get("validValuesFrom") == "categories":
        return categories() + list(custom.get("extraValidValues", []))
    return None


def row_conditions(feed: str) -> dict[str, str]:
    """Each cross-field rule as a row condition, from its ODCS `query`
    (`select count(*) from ${object} where not (<condition>)`)."""
    rules = {}
    for check in contract(feed)["schema"][0].get("quality", []):
        found = re.search(r"where not \((.*)\)\s*$", check["query"], re.S)
        assert found, check["id"]
        rules[check["id"]] = found.group(1)
    return rules


# -- reading a landing folder ------------------------------------------------------------------


def read_file(path: Path) -> pl.DataFrame:
    """All columns as text (lists '|'-joined), like the gate sees them."""
    if path.suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    frame = (
        pl.read_ndjson(path, infer_schema_length=None)
        if path.suffix == ".jsonl"
        else pl.read_parquet(path)
    )
    return frame.with_columns(
        [pl.col(c).list.join("|") for c, t in frame.schema.items() if isinstance(t, pl.List)]
        + [
            pl.col(c).cast(pl.String)
            for c, t in frame.schema.items()
            if not isinstance(t, pl.List) and t != pl.String
        ]
    )


def summary_of(out: Path) -> dict:
    return json.loads((out / "_generation_summary.json").read_text())


def data_files(out: Path) -> list[Path]:
    """Files the gate would load: no .tmp or dot names, no rejected bad files, no resends.
    (The file with an extra column loads, without that column.)"""
    summary = summary_of(out)
    skip = {
        item["path"]
        for kind, items in summary["bad_files"].items()
        for item in items
        if kind != "extra_unknown_column"
    }
    skip |= {d["copy"] for d in summary["duplicate_deliveries"]}
    files = []
    for feed in FEEDS:
        for path in sorted((out / feed).rglob("*")):
            rel = path.relative_to(out).as_posix()
            if (
                path.is_file()
                and path.suffix != ".tmp"
                and not path.name.startswith(".")
                and rel not in skip
            ):
                files.append(path)
    return files


def load(out: Path, feeds=FEEDS) -> dict[str, pl.DataFrame]:
    """Every delivered row per feed, in contract columns, with its file and row number."""
    frames: dict[str, list[pl.DataFrame]] = {feed: [] for feed in feeds}
    for path in data_files(out):
        feed = path.relative_to(out).parts[0]
        if feed not in frames:
            continue
        frame = read_file(path)
        frame = frame.select(
            [
                pl.col(c) if c in frame.columns else pl.lit(None, pl.String).alias(c)
                for c in field_names(feed)
            ]
        )
        frames[feed].append(
            frame.with_columns(
                file=pl.lit(path.relative_to(out).as_posix()),
                row_number=pl.int_range(1, frame.height + 1),
            )
        )
    return {feed: pl.concat(parts) for feed, parts in frames.items()}


def manifest(out: Path) -> pl.DataFrame:
    return pl.read_csv(out / "_bad_rows.csv", infer_schema=False).with_columns(
        pl.col("row_number").cast(pl.Int64)
    )


def reasons(feed: str, rows: pl.DataFrame) -> pl.DataFrame:
    """Reason codes per row from the contract: required, codes, timestamps, ranges, rules."""
    conn = duckdb.connect()
    conn.register("src", rows.to_arrow())
    typed, checks = [], []
    for prop in fields(feed):
        name, kind = prop["name"], prop["logicalType"]
        s = f'src."{name}"'
        if prop.get("required"):
            checks.append(f"case when {s} is null then 'missing_required:{name}' end")
        if kind == "timestamp":
            typed.append(
                f"case when regexp_full_match({s}, '{OFFSET_RE}') "
                f"then try_cast({s} as timestamptz) end as {name}"
            )
            checks.append(
                f"case when {s} is not null and not regexp_full_match({s}, '{OFFSET_RE}') then "
                f"case when try_cast({s} as timestamp) is not null "
                f"then 'timestamp_without_offset:{name}' else 'invalid_timestamp:{name}' end "
                f"when {s} is not null and try_cast({s} as timestamptz) is null "
                f"then 'invalid_timestamp:{name}' end"
            )
        elif kind == "number":
            typed.append(f"try_cast({s} as double) as {name}")
            checks.append(
                f"case when {s} is not null and try_cast({s} as double) is null "
                f"then 'invalid_number:{name}' when try_cast({s} as double) not "
                f"between 0 and 1 then 'out_of_range:{name}' end"
            )
        elif kind == "integer":
            typed.append(f"try_cast({s} as bigint) as {name}")
            checks.append(
                f"case when {s} is not null and not regexp_full_match({s}, "
                f"'-?[0-9]+') then 'invalid_integer:{name}' when "
                f"try_cast({s} as bigint) < 0 then 'out_of_range:{name}' end"
            )
        else:
            typed.append(f"{s} as {name}")
        allowed = valid_values(prop)
        if allowed:
            listed = ", ".join(f"'{v}'" for v in allowed)
            bad = (
                f"len(list_filter(string_split({s}, '|'), lambda x: x not in ({listed}))) > 0"
                if kind == "array"
                else f"{s} not in ({listed})"
            )
            checks.append(f"case when {s} is not null and {bad} then 'unknown_code:{name}' end")
    for rule, condition in row_conditions(feed).items():
        checks.append(f"case when not coalesce(({condition}), true) then 'rule:{rule}' end")
    # Checks read the source text (s_<field>); rules read the typed values (<field>).
    check_list = ", ".join(checks).replace('src."', 't."s_')
    sources = ", ".join(f'src."{f}" as "s_{f}"' for f in field_names(feed))
    sql = f"""
        with t as (select src.file, src.row_number, {", ".join(typed)}, {sources} from src)
        select file, row_number, list_filter([{check_list}], lambda x: x is not null) as reasons
        from t
    """
    return conn.sql(sql).pl()


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "landing"
    generate(out, progress=None, **RUN)
    return out


@pytest.fixture(scope="module")
def rows(landing: Path) -> dict[str, pl.DataFrame]:
    return load(landing)


def tree(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


# -- tests ---------------------------------------------------------------------------------------


def test_same_seed_and_end_give_identical_bytes_another_seed_does_not(landing, tmp_path):
    again = tmp_path / "again"
    generate(again, progress=None, **RUN)
    assert tree(again) == tree(landing)
    other = tmp_path / "other"
    generate(other, progress=None, **{**RUN, "seed": 8})
    first, second = tree(landing), tree(other)
    shared = [p for p in set(first) & set(second) if p.split("/")[0] in FEEDS]
    assert len(shared) > 20
    same = [p for p in shared if first[p] == second[p]]
    assert len(same) <= 1, same  # at most the planted zero-byte file


def test_every_feed_has_files_in_every_format(landing):
    summary = summary_of(landing)
    for feed in FEEDS:
        assert summary["files"][feed] > 0, feed
        assert any((landing / feed).rglob("*.csv")), feed
    suffixes = {p.suffix for p in data_files(landing)}
    assert suffixes == {".csv", ".jsonl", ".parquet"}


def test_file_columns_follow_the_contract_order(landing):
    for path in data_files(landing):
        feed = path.relative_to(landing).parts[0]
        expected = field_names(feed)
        if path.suffix == ".csv":
            with path.open(encoding="utf-8") as fh:
                header = next(csv.reader(fh))
            if "reporter_phone" in header:  # the planted extra column, checked elsewhere
                header.remove("reporter_phone")
            assert header == expected, path
        elif path.suffix == ".parquet":
            assert list(pl.read_parquet_schema(path)) == expected, path
        else:
            first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
            assert [k for k in expected if k in first] == list(first), path


def test_valid_rows_pass_the_contract_and_bad_rows_break_exactly_what_the_manifest_says(
    landing, rows
):
    bad = manifest(landing)
    assert bad.height > 0
    for feed in FEEDS:
        found = reasons(feed, rows[feed])
        listed = bad.filter(pl.col("feed") == feed).select("file", "row_number", "expected_reason")
        joined = found.join(listed, on=["file", "row_number"], how="left")
        clean = joined.filter(pl.col("expected_reason").is_null())
        dirty = clean.filter(pl.col("reasons").list.len() > 0)
        assert dirty.height == 0, (feed, dirty.head(5).to_dicts())
        planted = joined.filter(pl.col("expected_reason").is_not_null())
        assert planted.height == listed.height, feed
        wrong = planted.filter(pl.col("reasons") != pl.concat_list("expected_reason"))
        assert wrong.height == 0, (feed, wrong.head(5).to_dicts())


def test_every_row_and_file_defect_kind_in_the_summary_is_planted(landing):
    summary = summary_of(landing)
    bad = manifest(landing)
    assert set(summary["bad_rows"]) == set(bad["kind"])
    for kind, count in summary["bad_rows"].items():
        assert bad.filter(pl.col("kind") == kind).height == count
    expected_kinds = {
        "missing_required",
        "unknown_enum",
        "unknown_category",
        "unparsable_timestamp",
        "timestamp_without_offset",
        "score_out_of_range",
        "score_not_numeric",
        "victims_count_negative",
        "victims_count_not_integer",
    }
    assert expected_kinds <= set(summary["bad_rows"])
    for feed in FEEDS:  # every contract rule is broken somewhere
        for rule in row_conditions(feed):
            assert f"rule:{rule}" in summary["bad_rows_by_feed"][feed], rule

    files = summary["bad_files"]
    assert set(files) == {
        "wrong_encoding",
        "missing_required_column",
        "not_feed_format",
        "zero_byte",
        "extra_unknown_column",
    }
    for item in files["wrong_encoding"]:
        data = (landing / item["path"]).read_bytes()
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
    for item in files["missing_required_column"]:
        header = (landing / item["path"]).read_text().splitlines()[0].split(",")
        assert item["missing_column"] not in header
        assert set(header) < set(field_names(item["feed"]))
    for item in files["not_feed_format"]:
        path = landing / item["path"]
        with pytest.raises(Exception):  # noqa: B017 - any reader error will do
            read_file(path)
    for item in files["zero_byte"]:
        assert (landing / item["path"]).stat().st_size == 0
    for item in files["extra_unknown_column"]:
        frame = pl.read_csv(landing / item["path"], infer_schema=False)
        assert frame.columns == [
            *field_names("reports")[:5],
            "reporter_phone",
            *field_names("reports")[5:],
        ]
        assert frame["reporter_phone"].str.contains(r"^\+86-\d{3}-\d{4}-\d{4}$").all()


def test_personal_ids_match_their_pattern_and_appear_nowhere_else(landing, rows):
    for feed in FEEDS:
        frame = rows[feed]
        for name in field_names(feed):
            values = frame[name].drop_nulls()
            if name in ACCOUNT_FIELDS:
                assert values.str.contains(rf"^{ACCOUNT.pattern}$").all(), (feed, name)
            elif name == "reviewer_id":
                assert values.str.contains(rf"^{REVIEWER.pattern}$").all(), (feed, name)
            else:
                leaks = values.str.contains(ACCOUNT.pattern) | values.str.contains(REVIEWER.pattern)
                assert not leaks.any(), (feed, name)
    for name in ("_generation_summary.json", "_bad_rows.csv"):
        text = (landing / name).read_text()
        assert not ACCOUNT.search(text) and not REVIEWER.search(text), name


def test_an_account_keeps_its_raw_id_across_feeds(rows):
    hits = rows["screening_hits"].select("hit_id", "uploader_id").unique()
    actions = rows["enforcement_actions"].filter(pl.col("hit_id").is_not_null())
    joined = actions.join(hits, on="hit_id").filter(
        pl.col("uploader_id").is_not_null() & pl.col("user_id").is_not_null()
    )
    assert joined.height > 100
    assert (joined["user_id"] == joined["uploader_id"]).all()
    cases = rows["cases"].filter(pl.col("subject_user_id").is_not_null())
    linked = cases.join(
        rows["enforcement_actions"].select("action_id", "user_id").unique(), on="action_id"
    )
    assert linked.height > 0
    assert (linked["subject_user_id"] == linked["user_id"]).all()


def valid(landing: Path, rows: dict[str, pl.DataFrame], feed: str) -> pl.DataFrame:
    """The rows of a feed that are not listed as deliberately bad."""
    bad = manifest(landing).select("file", "row_number")
    return rows[feed].join(bad, on=["file", "row_number"], how="anti")


def _instant(column: str) -> pl.Expr:
    return pl.col(column).map_elements(
        lambda v: datetime.fromisoformat(v).timestamp() if v else None, return_dtype=pl.Float64
    )


def test_versions_arrive_in_later_files_with_later_updated_at(landing, rows):
    for feed in FEEDS:
        frame = valid(landing, rows, feed).with_columns(
            t=_instant("updated_at"),
            batch=pl.col("file").str.extract(r"_(\d{8}T\d{4,6})"),
        )
        key = KEYS[feed]
        assert frame.group_by("file", key).len()["len"].max() == 1, feed
        ordered = frame.sort("batch", "t").group_by(key, maintain_order=True).agg("t", "batch")
        multi = ordered.filter(pl.col("t").list.len() > 1)
        assert multi.height > 0, feed
        for times, batches in multi.select("t", "batch").iter_rows():
            assert times == sorted(times) and len(set(times)) == len(times), (feed, times)
            assert batches == sorted(batches)
    # A report is received (pending), then resolved, never the other way round.
    histories = (
        valid(landing, rows, "reports")
        .with_columns(t=_instant("updated_at"))
        .sort("t")
        .group_by("report_id", maintain_order=True)
        .agg("resolution")
        .filter(pl.col("resolution").list.len() > 1)
    )
    assert histories.filter(pl.col("resolution").list.first() == "pending").height > 0
    for (history,) in histories.select("resolution").iter_rows():
        decided = next((i for i, r in enumerate(history) if r != "pending"), len(history))
        assert "pending" not in history[decided:], history


def test_timestamps_of_valid_rows_carry_an_offset_in_both_styles(landing, rows):
    seen = set()
    for feed in FEEDS:
        frame = valid(landing, rows, feed)
        for name in field_names(feed):
            if name.endswith("_at"):
                values = frame[name].drop_nulls()
                assert values.str.contains(OFFSET_RE).all(), (feed, name)
                seen |= set(values.str.slice(-6).unique().to_list())
    assert "+08:00" in seen and any(s.endswith("Z") for s in seen)


def test_stray_tmp_and_dot_files_and_a_duplicate_delivery_exist(landing):
    summary = summary_of(landing)
    assert len(list(landing.rglob("*.tmp"))) >= 2
    assert [p for p in landing.rglob(".*") if p.is_file() and p.parent.name != ".ocse_generator"]
    by_hash: dict[str, list[str]] = {}
    for path in landing.rglob("*"):
        if path.is_file() and path.parts[len(landing.parts)] in FEEDS and path.stat().st_size:
            by_hash.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), []).append(
                path.relative_to(landing).as_posix()
            )
    duplicates = [paths for paths in by_hash.values() if len(paths) > 1]
    assert duplicates
    assert any(len({Path(p).parent for p in paths}) > 1 for paths in duplicates)
    assert len(summary["duplicate_deliveries"]) >= 1
    assert summary["late_deliveries"]


def test_the_end_is_live_with_open_clocks_near_and_past_their_targets(landing, rows):
    end = END.timestamp()

    def current(feed: str) -> pl.DataFrame:
        frame = (
            valid(landing, rows, feed)
            .with_columns(t=_instant("updated_at"))
            .filter(pl.col("t") <= end)
        )
        return frame.sort("t").group_by(KEYS[feed], maintain_order=True).last()

    hits = current("screening_hits").filter(
        (pl.col("review_status") != "false_positive")
        & pl.col("posted_at").is_not_null()
        & pl.col("category_code").str.starts_with("csam")
    )
    actions = current("enforcement_actions").filter(
        pl.col("action_type").is_in(["content_removed", "upload_blocked", "transmission_blocked"])
        & pl.col("reversed_at").is_null()
    )
    open_csam = hits.join(actions.select("content_id"), on="content_id", how="anti").with_columns(
        minutes=(end - _instant("posted_at")) / 60
    )
    assert open_csam.filter(pl.col("minutes").is_between(45, 60)).height >= 1
    assert open_csam.filter(pl.col("minutes") > 60).height >= 1
    reports = (
        current("reports")
        .filter(pl.col("acknowledged_at").is_null())
        .with_columns(hours=(end - _instant("received_at")) / 3600)
    )
    assert reports.filter(pl.col("hours").is_between(18, 24)).height >= 1
    assert reports.filter(pl.col("hours") > 24).height >= 1
    cases = current("cases").filter(
        pl.col("confirmed_at").is_not_null() & pl.col("referred_at").is_null()
    )
    assert cases.height >= 1


def _whole_weeks(start: int, end: int) -> list[int]:
    """Week numbers (rhythm.week_number) of the Monday-to-Monday weeks inside [start, end]."""
    first, last = week_number(np.array([start, end]))
    tz, day = 8 * 3600, 86400
    return [
        w
        for w in range(int(first), int(last) + 1)
        if (w * 7 - 3) * day - tz >= start and (w * 7 + 4) * day - tz <= end
    ]


def test_spikes_of_a_six_month_period_each_have_a_clean_eight_week_baseline():
    """The demo's period: every spike has 8 whole weeks before it in the period (the mart's
    baseline), none of them a spike of its category, and there are about one per 8 weeks."""
    start, end = resolve_period(183, None, END)
    whole = _whole_weeks(start, end)
    for seed in range(25):
        spikes = plan_spikes(np.random.default_rng([seed, 0x9A]), start, end)
        assert len(spikes) >= 3, seed
        assert len({s.week for s in spikes}) == len(spikes)
        for spike in spikes:
            assert spike.week in whole and whole.index(spike.week) >= 8, (seed, spike)
            assert 3.5 <= spike.multiplier <= 6.0
            assert not [
                other
                for other in spikes
                if other.category == spike.category and 0 < spike.week - other.week <= 8
            ], (seed, spikes)
        # One in the last stretch of weeks: the trends page (16 weeks by default) shows it.
        assert max(s.week for s in spikes) >= whole[-1] - 7, (seed, spikes)


def test_a_planted_surge_is_flagged_by_the_weekly_spike_rule(tmp_path):
    """Weekly takedowns per category from the generated actions, with the rule of
    marts.rpt_category_trends_weekly (more than the mean plus 3 sample standard deviations of
    the 8 weeks before, at least 4 of them): every planted spike week is flagged."""
    out = tmp_path / "weeks"
    # Ten whole weeks from a Monday (Asia/Shanghai): one spike, in week 9 or 10.
    summary = generate(
        out, progress=None, seed=11, days=70, scale=30000, start=date(2025, 1, 6), bad_share=0
    )
    assert summary["spikes"]
    actions = load(out, ["enforcement_actions"])["enforcement_actions"]
    conn = duckdb.connect()
    conn.register("actions", actions.to_arrow())
    flagged = conn.sql(
        """
        with latest as (
            select * from actions
            qualify row_number() over (
                partition by action_id order by cast(updated_at as timestamptz) desc) = 1
        ),
        takedowns as (
            select content_id, any_value(category_code) as category_code,
                min(cast(actioned_at as timestamptz)) as taken_down_at
            from latest
            where action_type in ('content_removed', 'upload_blocked', 'transmission_blocked')
                and reversed_at is null
            group by content_id
        ),
        weekly as (
            select cast(date_trunc('week', timezone('Asia/Shanghai', taken_down_at)) as date)
                    as week_start,
                category_code, count(*) as takedowns
            from takedowns
            group by all
        ),
        grid as (
            select w.week_start, c.category_code, coalesce(weekly.takedowns, 0) as takedowns
            from (select distinct week_start from weekly) as w
            cross join (select distinct category_code from weekly) as c
            left join weekly using (week_start, category_code)
        )
        select strftime(week_start, '%Y-%m-%d') as week_start, category_code,
            takedowns, previous_mean
        from (
            select *,
                count(*) over previous_8 as previous_weeks,
                avg(takedowns) over previous_8 as previous_mean,
                stddev_samp(takedowns) over previous_8 as previous_stddev
            from grid
            window previous_8 as (
                partition by category_code order by week_start
                rows between 8 preceding and 1 preceding)
        )
        where previous_weeks >= 4 and takedowns > previous_mean + 3 * previous_stddev
        """
    ).fetchall()
    by_week = {(week, category): (n, mean) for week, category, n, mean in flagged}
    for spike in summary["spikes"]:
        key = (spike["week_start"], spike["category"])
        assert key in by_week, (spike, flagged)
        takedowns, mean = by_week[key]
        assert takedowns > 2.5 * mean, (spike, takedowns, mean)  # a visible surge, not noise


def test_follow_batch_delivers_later_versions_that_clear_open_clocks(tmp_path):
    out = tmp_path / "live"
    generate(out, progress=None, seed=3, days=2, scale=1500, end=END)
    before = load(out)["enforcement_actions"]["action_id"].unique()
    state = read_state(out)
    result = follow_batch(
        out,
        seed=3,
        batch_start=END,
        batch_end=END + timedelta(hours=2),
        scale_per_day=state["scale_per_day"],
        batch_no=1,
    )
    assert sum(result["rows"].values()) > 0
    follow_files = [p for p in out.rglob("*_f00001.*")]
    assert follow_files
    actions = pl.concat(
        [read_file(p) for p in follow_files if p.relative_to(out).parts[0] == "enforcement_actions"]
    )
    removed = actions.filter(
        pl.col("category_code").str.starts_with("csam")
        & (pl.col("action_type") == "content_removed")
    )
    assert removed.height > 0  # the planted near-breach CSAM is taken down after the end
    assert not removed["action_id"].is_in(before.implode()).all()
    assert read_state(out)["last_end"] == int((END + timedelta(hours=2)).timestamp())
    assert summary_of(out)["follow"]["batches"] == 1


def test_cli_default_end_is_now_and_follow_keeps_landing_batches(tmp_path):
    out = tmp_path / "now"
    started = datetime.now(UTC)
    result = CliRunner().invoke(
        generate_command,
        [
            "--out",
            str(out),
            "--days",
            "2",
            "--scale",
            "1500",
            "--follow",
            "--interval",
            "0",
            "--max-batches",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("batch ") >= 2
    delivered = load(out)
    latest = max(
        datetime.fromisoformat(v)
        for feed in FEEDS
        for v in valid(out, delivered, feed)["updated_at"].drop_nulls().to_list()
    )
    assert started - timedelta(hours=1) <= latest <= datetime.now(UTC)
    again = CliRunner().invoke(generate_command, ["--out", str(out)])
    assert again.exit_code != 0 and "already holds generated data" in again.output


def test_generator_schema_agrees_with_the_contracts():
    from sample_data import schema

    assert list(schema.CATEGORY_CODES) == categories()
    for feed in schema.FEEDS:
        props = {p["name"]: p for p in fields(feed.name)}
        assert list(feed.fields) == field_names(feed.name)
        assert feed.required == {n for n, p in props.items() if p.get("required")}
        assert set(feed.personal) == {
            n for n, p in props.items() if p.get("classification") == "personal"
        }
        assert set(feed.timestamps) == {
            n for n, p in props.items() if p["logicalType"] == "timestamp"
        }
        for name, values in feed.enums.items():
            assert list(values) == valid_values(props[name]), (feed.name, name)
