"""The external assessment report, end to end on generated data: what the panel reads
offline must be complete, printable, the marts' own numbers, and safe."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from ocse.access import AccessStore
from ocse.cli import main
from ocse.report.assessment import write_assessment_report
from ocse.report.html import SECTIONS
from ocse.serving import open_snapshot
from tests.publication_worlds import identifiers, leaked, world

pytestmark = pytest.mark.integration

K = 10
QUARTER = ("2025-01-01", "2025-03-31")


class Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.cells: list[dict] = []
        self.svgs = 0
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        if tag == "td" and "data-table" in attrs:
            self.cells.append(attrs)
        self.svgs += tag == "svg"
        self.scripts += tag in ("script", "link", "img", "iframe")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = world("dense", tmp_path_factory)
    out = tmp_path_factory.mktemp("report") / "assessment"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OCSE_ACCESS_DB", str(root / "report_access.sqlite"))
        result = write_assessment_report(
            root / "serving.duckdb", "2025Q1", out, k=K, username="panel", role="assessor"
        )
    parser = Cells()
    parser.feed(result.html.read_text(encoding="utf-8"))
    return {"root": root, "result": result, "html": parser}


def test_the_html_has_every_section_and_nothing_external(report):
    html = report["html"]
    assert html.sections == [anchor for anchor, _ in SECTIONS]
    assert html.svgs >= 2 and html.scripts == 0
    text = report["result"].html.read_text(encoding="utf-8")
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text


def test_the_pdf_has_pages(report):
    pdf = PdfReader(str(report["result"].pdf))
    assert len(pdf.pages) >= 3
    text = "".join(page.extract_text() or "" for page in pdf.pages)
    assert "one-hour CSAM rule" in text and "Disclosure control" in text


def _sets(conn):
    codes = [
        c for (c,) in conn.execute("select category_code from marts.dim_categories").fetchall()
    ]
    csam = [
        c
        for (c,) in conn.execute(
            "select category_code from marts.dim_categories where is_csam"
        ).fetchall()
    ]
    return {**{c: [c] for c in codes}, "csam": csam, "all": codes}


def expected(conn, table: str, period: str, group: str, measure: str):
    """The same number, straight from the marts (written independently of the report)."""
    sets = _sets(conn)
    # data quality's second scope is every file up to T, labelled "<first day>/<last day>"
    # (no dates: the query takes all); every other period is a quarter such as "2024Q4"
    if "/" in period:
        start = end = None
    elif period == "2025Q1":
        start, end = "2025-01-01", "2025-03-31"
    else:
        start, end = _quarter_dates(period)
    if table == "takedown_sla":
        cats = sets[group]
        counts = dict(
            zip(
                ("takedowns", "prevented", "within_sla", "breached"),
                conn.execute(
                    "select sum(takedowns), sum(prevented), sum(within_sla), sum(breached) "
                    "from marts.rpt_takedown_sla_daily where report_date between ? and ? "
                    "and category_code in (select unnest(?))",
                    [start, end, cats],
                ).fetchone(),
                strict=True,
            )
        )
        facts = conn.execute(
            "select count(*) filter (where is_evidence_on_time), "
            "quantile_cont(exposure_minutes, 0.5) filter (where not is_prevented), "
            "quantile_cont(exposure_minutes, 0.9) filter (where not is_prevented) "
            "from marts.fct_content_takedowns where report_date between ? and ? "
            "and category_code in (select unnest(?))",
            [start, end, cats],
        ).fetchone()
        counts["exposed"] = counts["takedowns"] - counts["prevented"]
        counts["evidence_on_time"] = facts[0]
        derived = {
            "compliance_rate": counts["within_sla"] / counts["takedowns"],
            "evidence_on_time_rate": counts["evidence_on_time"] / counts["takedowns"],
            "median_exposure_minutes": facts[1],
            "p90_exposure_minutes": facts[2],
        }
        return {**counts, **derived}[measure]
    if table == "report_handling":
        names = [
            "received",
            "ack_decided",
            "ack_on_time",
            "resolution_decided",
            "resolution_on_time",
            "resolved",
            "feedback_sent",
        ]
        row = conn.execute(
            "select " + ", ".join(f"sum({n})" for n in names) + " from "
            "marts.rpt_report_handling_daily where report_date between ? and ? "
            "and category_code in (select unnest(?))",
            [start, end, sets[group]],
        ).fetchone()
        v = dict(zip(names, row, strict=True))
        v["ack_compliance_rate"] = v["ack_on_time"] / v["ack_decided"]
        v["resolution_compliance_rate"] = v["resolution_on_time"] / v["resolution_decided"]
        v["feedback_rate"] = v["feedback_sent"] / v["resolved"]
        return v[measure]
    if table == "case_outcomes":
        names = [
            "cases_opened",
            "confirmed",
            "referred",
            "referral_decided",
            "referral_on_time",
            "authority_accepted",
            "prosecuted",
            "convicted",
            "victims",
            "support_offered",
            "support_accepted",
        ]
        row = conn.execute(
            "select " + ", ".join(f"sum({n})" for n in names) + " from "
            "marts.rpt_case_outcomes_monthly where month_start between ? and ? "
            "and category_code in (select unnest(?))",
            [start, end, sets[group]],
        ).fetchone()
        v = dict(zip(names, row, strict=True))
        v["referral_compliance_rate"] = v["referral_on_time"] / v["referral_decided"]
        (v["median_hours_to_referral"],) = conn.execute(
            "select quantile_cont(hours_to_referral, 0.5) filter (where referred_at is not null) "
            "from marts.fct_cases where month_start between ? and ? "
            "and category_code in (select unnest(?))",
            [start, end, sets[group]],
        ).fetchone()
        return v[measure]
    if table == "data_quality":
        where = (
            "true"
            if "/" in period
            else "timezone('Asia/Shanghai', ingested_at)::date between ? and ?"
        )
        params = [] if "/" in period else [start, end]
        feeds = None if group == "all" else group
        row = conn.execute(
            "select count(*), count(*) filter (where outcome = 'rejected'), "
            "count(*) filter (where outcome = 'duplicate'), "
            "count(*) filter (where ingested_at - received_at > interval 60 minutes), "
            "sum(rows_read), sum(rows_loaded), sum(rows_quarantined) "
            f"from marts.ops_ingest_ledger where {where} and (? is null or feed = ?)",
            [*params, feeds, feeds],
        ).fetchone()
        names = (
            "files files_rejected files_duplicate files_late rows_read rows_loaded rows_quarantined"
        )
        v = dict(zip(names.split(), row, strict=True))
        v["quarantine_rate"] = v["rows_quarantined"] / v["rows_read"]
        v["late_file_rate"] = v["files_late"] / v["files"]
        return v[measure]
    if table == "list_statistics":
        return _list_value(conn, period, group, measure)
    raise AssertionError(table)


def _quarter_dates(label: str) -> tuple[str, str]:
    assert len(label) == 6 and label[4] == "Q" and label[5] in "1234", label
    year, q = int(label[:4]), int(label[-1])
    ends = {1: "03-31", 2: "06-30", 3: "09-30", 4: "12-31"}
    return f"{year}-{3 * q - 2:02d}-01", f"{year}-{ends[q]}"


def _list_value(conn, period, group, measure):
    start, end = _quarter_dates(period)
    rules = {
        "black": ["black:zero_tolerance", "black:repeat_180d"],
        "grey": ["grey:violation_180d", "grey:reports_30d"],
        "all": [
            "black:zero_tolerance",
            "black:repeat_180d",
            "grey:violation_180d",
            "grey:reports_30d",
            "white:cleared",
        ],
    }.get(group, [group])
    bound = (
        "least(timezone('Asia/Shanghai', (?::date + 1)::timestamp), "
        "(select as_of from meta.snapshot))"
    )
    if measure == "accounts_at_end":
        (n,) = conn.execute(
            f"select count(*) from marts.fct_user_tier_history where tier || ':' || tier_reason "
            f"in (select unnest(?)) and valid_from <= {bound} "
            f"and (valid_to is null or valid_to > {bound})",
            [rules, end, end],
        ).fetchone()
        return n
    (n,) = conn.execute(
        "select count(*) from (select *, lag(tier) over (partition by user_ref order by "
        "valid_from) as prior from marts.fct_user_tier_history) where tier || ':' || "
        "tier_reason in (select unnest(?)) and tier is distinct from coalesce(prior, 'none') "
        f"and valid_from >= timezone('Asia/Shanghai', ?::date::timestamp) and valid_from < {bound}",
        [rules, start, end],
    ).fetchone()
    return n


def test_every_number_is_the_marts_number_for_the_period(report):
    conn = open_snapshot(report["root"] / "serving.duckdb")
    try:
        published = [c for c in report["html"].cells if c["data-status"] == "published"]
        assert len(published) > 100
        checked = set()
        for cell in published:
            want = expected(
                conn,
                cell["data-table"],
                cell["data-period"],
                cell["data-group"],
                cell["data-measure"],
            )
            got = float(cell["data-value"])
            if isinstance(want, int):
                assert got == want, cell
            else:
                assert got == pytest.approx(
                    want,
                    abs=0.051
                    if "minutes" in cell["data-measure"] or "hours" in cell["data-measure"]
                    else 0.00006,
                ), cell
            checked.add(cell["data-table"])
    finally:
        conn.close()
    assert checked == {
        "takedown_sla",
        "report_handling",
        "case_outcomes",
        "list_statistics",
        "data_quality",
    }


def test_the_report_follows_the_same_suppression_rules(report):
    cells = report["html"].cells
    counts = {
        "takedown_sla": {
            "takedowns",
            "prevented",
            "exposed",
            "within_sla",
            "breached",
            "evidence_on_time",
        },
    }
    withheld = [c for c in cells if c["data-status"] == "suppressed"]
    assert withheld and all("data-value" not in c for c in withheld)
    for cell in cells:
        if cell["data-status"] == "published" and cell["data-measure"] in counts.get(
            cell["data-table"],
            {
                "received",
                "cases_opened",
                "accounts_at_end",
                "entries",
                "victims",
                "files",
                "rows_read",
            },
        ):
            assert float(cell["data-value"]) >= K, cell
    manifest = (report["result"].out_dir / "manifest.json").read_text(encoding="utf-8")
    assert '"k": 10' in manifest and "cells_suppressed" in manifest


def test_no_identifier_appears_in_the_report(report):
    ids = identifiers(report["root"] / "serving.duckdb")
    html = report["result"].html.read_text(encoding="utf-8")
    pdf_text = "".join(p.extract_text() or "" for p in PdfReader(str(report["result"].pdf)).pages)
    assert leaked(html, ids) == set()
    assert leaked(pdf_text, ids) == set()
    assert leaked(report["result"].pdf.read_bytes().decode("latin-1"), ids) == set()


def test_the_report_is_logged_and_the_cli_makes_it(report, tmp_path):
    entries = AccessStore(report["root"] / "report_access.sqlite").entries(event="export")
    assert entries[0].username == "panel" and entries[0].detail["period"] == "2025Q1"
    runner = CliRunner(env={"OCSE_ACCESS_DB": str(tmp_path / "access.sqlite")})
    serving = str(report["root"] / "serving.duckdb")
    ok = runner.invoke(
        main,
        [
            "report",
            "assessment",
            "--period",
            "2025Q1",
            "--out",
            str(tmp_path / "r"),
            "--snapshot",
            serving,
            "--no-pdf",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "r" / "assessment_2025Q1.html").is_file()
    bad = runner.invoke(
        main,
        [
            "report",
            "assessment",
            "--period",
            "2025-Q5",
            "--out",
            str(tmp_path / "b"),
            "--snapshot",
            serving,
        ],
    )
    assert bad.exit_code != 0 and "not a quarter" in bad.output
    empty = runner.invoke(
        main,
        [
            "report",
            "assessment",
            "--period",
            "2019Q1",
            "--out",
            str(tmp_path / "e"),
            "--snapshot",
            serving,
            "--no-pdf",
        ],
    )
    assert empty.exit_code != 0 and "no takedowns, reports or cases" in empty.output
