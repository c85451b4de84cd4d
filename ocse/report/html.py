"""The assessment report's HTML: one file, inline CSS and SVG, no script, no external
resource. Every text from data is escaped; the only data in the page are published cells
(after disclosure control), category codes and their labels, and dbt definitions."""

from __future__ import annotations

import re
from html import escape

from ocse.exports.dictionary import disclosure_rules
from ocse.exports.sources import CSAM, LATE_FILE_MINUTES, LIST_RULES, LIST_SUBTOTALS
from ocse.exports.tables import ALL, ProtectedTable
from ocse.report.charts import WITHHELD, grouped_bars, rate_lines

SECTIONS = (
    ("summary", "Summary"),
    ("period-over-period", "Period over period"),
    ("csam-one-hour", "The one-hour CSAM rule"),
    ("other-slas", "Other service levels"),
    ("list-statistics", "White / grey / black list"),
    ("case-outcomes", "Case outcomes and victim support"),
    ("data-quality", "Data quality"),
    ("disclosure-control", "Disclosure control"),
    ("methodology", "Methodology: the definitions"),
)

CSS = """
body { font-family: "Noto Sans", "DejaVu Sans", sans-serif; font-size: 11pt; color: #222;
       max-width: 1000px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 20pt; margin-bottom: 0.2em; } h2 { font-size: 14pt; margin-top: 1.6em;
     border-bottom: 1px solid #999; page-break-after: avoid; }
h3 { font-size: 11.5pt; page-break-after: avoid; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 9.5pt;
        page-break-inside: avoid; }
th, td { border: 1px solid #bbb; padding: 2px 6px; overflow-wrap: anywhere; }
th { background: #eef2f7; text-align: left; } td.n { text-align: right; }
td.suppressed { color: #888; text-align: center; } td.na { color: #bbb; text-align: center; }
.note { background: #fff7e0; border: 1px solid #e0c060; padding: 0.5em 0.8em; }
.meta td { border: none; padding: 1px 8px 1px 0; } code { font-size: 9pt; }
dl.defs dt { font-weight: bold; margin-top: 0.5em; } dl.defs dd { margin-left: 1.2em; }
svg { display: block; margin: 0.5em 0; page-break-inside: avoid; }
@page { size: A4; margin: 14mm; }
"""


def _fmt(measure: str, table: ProtectedTable, value) -> str:
    if measure in table.spec.counts:
        return f"{value:,}"
    if any(r.name == measure for r in table.spec.rates):
        return f"{value * 100:.1f}%"
    return f"{value:,.1f}"


def td(table: ProtectedTable, period, group: str, measure: str) -> str:
    cell = table.cell(period, group, measure)
    label = period if isinstance(period, str) else period.label
    attrs = (
        f'data-table="{escape(table.name)}" data-period="{escape(label)}" '
        f'data-group="{escape(group)}" data-measure="{escape(measure)}"'
    )
    if cell.status == "suppressed":
        return f'<td class="suppressed" {attrs} data-status="suppressed">{WITHHELD}</td>'
    if cell.status == "n/a":
        return f'<td class="na" {attrs} data-status="n/a">–</td>'
    return (
        f'<td class="n" {attrs} data-status="published" data-value="{cell.value!r}">'
        f"{_fmt(measure, table, cell.value)}</td>"
    )


def value(table: ProtectedTable, period, group: str, measure: str):
    cell = table.cell(period, group, measure)
    return cell.value if cell.published else None


def _grid(table, rows: list[tuple[str, str, str]], periods, head: str) -> str:
    """Rows = (label, group, measure); columns = periods."""
    out = [f"<table><tr><th>{escape(head)}</th>"]
    out += [f"<th>{escape(p.label)}</th>" for p in periods]
    out.append("</tr>")
    for label, group, measure in rows:
        out.append(f"<tr><th>{escape(label)}</th>")
        out += [td(table, p, group, measure) for p in periods]
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _by_group(table, period, groups: list[tuple[str, str]], measures: list[str]) -> str:
    out = ["<table><tr><th></th>"]
    out += [f"<th>{escape(m)}</th>" for m in measures]
    out.append("</tr>")
    for label, group in groups:
        out.append(f"<tr><th>{escape(label)}</th>")
        out += [td(table, period, group, m) for m in measures]
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _markdown(text: str) -> str:
    """Just enough of the dbt docs' Markdown: paragraphs, `code`, **bold**."""
    html = escape(text.strip())
    html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html)
    html = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html)
    return "".join(f"<p>{' '.join(p.split())}</p>" for p in re.split(r"\n\s*\n", html) if p)


def render_report(a) -> str:
    pub = a.publication
    q, quarters = a.quarter, a.quarters
    td_sla, handling, cases, lists, quality = (
        pub.table(n)
        for n in (
            "takedown_sla",
            "report_handling",
            "case_outcomes",
            "list_statistics",
            "data_quality",
        )
    )
    labels = a.categories.labels
    cats = [(f"{labels.get(c, c)} ({c})", c) for c in a.categories.classified]
    report_cats = [(f"{labels.get(c, c)} ({c})", c) for c in a.categories.codes]
    body: list[str] = []

    def section(anchor: str, *content: str) -> None:
        title = dict(SECTIONS)[anchor]
        body.append(f'<section id="{anchor}"><h2>{escape(title)}</h2>{"".join(content)}</section>')

    # --- summary
    prev = quarters[-2]
    headline = [
        ("CSAM taken down within 60 minutes of posting", td_sla, CSAM, "compliance_rate"),
        ("Takedowns (all categories)", td_sla, ALL, "takedowns"),
        ("Takedowns within target (all categories)", td_sla, ALL, "compliance_rate"),
        ("Reports received", handling, ALL, "received"),
        ("Reports acknowledged within 24 hours", handling, ALL, "ack_compliance_rate"),
        ("Reports resolved within 72 hours", handling, ALL, "resolution_compliance_rate"),
        ("Reporters given feedback", handling, ALL, "feedback_rate"),
        ("Cases opened", cases, ALL, "cases_opened"),
        ("Crimes referred within 24 hours of confirmation", cases, ALL, "referral_compliance_rate"),
        ("Child victims in the cases opened", cases, ALL, "victims"),
        ("Cases with victim support offered", cases, ALL, "support_offered"),
    ]
    rows = "".join(
        f"<tr><th>{escape(text)}</th>{td(t, prev, g, m)}{td(t, q, g, m)}</tr>"
        for text, t, g, m in headline
    )
    provisional = (
        '<p class="note">This quarter had not ended at the data\'s as-of date: its figures '
        "are provisional.</p>"
        if a.provisional
        else ""
    )
    section(
        "summary",
        provisional,
        f"<table><tr><th></th><th>{prev.label}</th><th>{q.label}</th></tr>{rows}</table>",
        f"<p>{WITHHELD} marks a value withheld by disclosure control "
        f'(<a href="#disclosure-control">section {_number("disclosure-control")}</a>).</p>',
    )

    # --- period over period
    chart = grouped_bars(
        "Takedowns by category",
        [c for _, c in cats],
        [(p.label, [value(td_sla, p, c, "takedowns") for _, c in cats]) for p in quarters],
    )
    section(
        "period-over-period",
        "<h3>Takedowns by category</h3>",
        _grid(
            td_sla,
            [(lbl, c, "takedowns") for lbl, c in [*cats, ("CSAM", CSAM), ("All", ALL)]],
            quarters,
            "category",
        ),
        chart,
        "<h3>Reports received by category</h3>",
        _grid(
            handling,
            [(lbl, c, "received") for lbl, c in [*report_cats, ("CSAM", CSAM), ("All", ALL)]],
            quarters,
            "category",
        ),
        "<h3>Cases opened by category</h3>",
        _grid(
            cases,
            [(lbl, c, "cases_opened") for lbl, c in [*cats, ("All", ALL)]],
            quarters,
            "category",
        ),
    )

    # --- the one-hour rule
    csam_rows = [
        ("Takedowns", "takedowns"),
        ("Prevented (never visible)", "prevented"),
        ("Visible before takedown", "exposed"),
        ("Within 60 minutes (prevented included)", "within_sla"),
        ("Breached", "breached"),
        ("Compliance rate", "compliance_rate"),
        ("Median exposure, minutes", "median_exposure_minutes"),
        ("90th percentile exposure, minutes", "p90_exposure_minutes"),
        ("Evidence preserved on time", "evidence_on_time_rate"),
    ]
    section(
        "csam-one-hour",
        "<p>The guideline asks that child sexual abuse material be deleted within one hour "
        "of being posted (the clock starts at publication, not at detection). Both CSAM "
        "categories together:</p>",
        _grid(td_sla, [(lbl, CSAM, m) for lbl, m in csam_rows], quarters, "CSAM"),
        f"<h3>By category, {q.label}</h3>",
        _by_group(
            td_sla,
            q,
            [(lbl, c) for lbl, c in cats if c in a.categories.csam] + [("CSAM", CSAM)],
            [m for _, m in csam_rows],
        ),
    )

    # --- other SLAs
    sla_rows = [
        (
            "Takedown within target, all categories",
            td_sla,
            "compliance_rate",
            "takedowns",
            "within_sla",
        ),
        (
            "Evidence preserved by the takedown",
            td_sla,
            "evidence_on_time_rate",
            "takedowns",
            "evidence_on_time",
        ),
        (
            "Report acknowledged within 24 h",
            handling,
            "ack_compliance_rate",
            "ack_decided",
            "ack_on_time",
        ),
        (
            "Report resolved within 72 h",
            handling,
            "resolution_compliance_rate",
            "resolution_decided",
            "resolution_on_time",
        ),
        (
            "Referral within 24 h of confirmation",
            cases,
            "referral_compliance_rate",
            "referral_decided",
            "referral_on_time",
        ),
    ]
    table = ["<table><tr><th>service level</th><th></th>"]
    table += [f"<th>{p.label}</th>" for p in quarters]
    table.append("</tr>")
    for text, t, rate, decided, on_time in sla_rows:
        for sub, measure in (("decided", decided), ("on time", on_time), ("rate", rate)):
            table.append(f"<tr><th>{escape(text)}</th><th>{sub}</th>")
            table += [td(t, p, ALL, measure) for p in quarters]
            table.append("</tr>")
    table.append("</table>")
    section(
        "other-slas",
        "<p>A clock is decided when it has stopped, or when its deadline passed without it "
        "stopping; the rate is clocks stopped within target over clocks decided.</p>",
        "".join(table),
        rate_lines(
            "Compliance by quarter",
            [p.label for p in quarters],
            [(text, [value(t, p, ALL, rate) for p in quarters]) for text, t, rate, _, _ in sla_rows]
            + [("CSAM one hour", [value(td_sla, p, CSAM, "compliance_rate") for p in quarters])],
        ),
        f"<h3>Takedowns by category, {q.label}</h3>",
        _by_group(
            td_sla,
            q,
            [*cats, ("All", ALL)],
            [
                "takedowns",
                "within_sla",
                "compliance_rate",
                "median_exposure_minutes",
                "evidence_on_time_rate",
            ],
        ),
        f"<h3>Report handling by category, {q.label}</h3>",
        _by_group(
            handling,
            q,
            [*report_cats, ("All", ALL)],
            [
                "received",
                "ack_compliance_rate",
                "resolution_compliance_rate",
                "resolved",
                "feedback_rate",
            ],
        ),
    )

    # --- list
    rules = (
        [(rule, rule) for rule in LIST_RULES]
        + [(f"{tier} (all rules)", tier) for tier in LIST_SUBTOTALS]
        + [("All listed", ALL)]
    )
    section(
        "list-statistics",
        "<p>Accounts are listed white, grey or black by the rules of the policy in force "
        "(a violation is a content takedown; black for any zero-tolerance violation or 3 in "
        "180 days; grey for one violation in 180 days or 2 reports in 30 days). No account "
        "is shown, only counts.</p>",
        "<h3>Accounts on the list at the end of each quarter</h3>",
        _grid(lists, [(lbl, g, "accounts_at_end") for lbl, g in rules], quarters, "tier:rule"),
        "<h3>Entries into each tier during the quarter</h3>",
        _grid(lists, [(lbl, g, "entries") for lbl, g in rules], quarters, "tier:rule"),
    )

    # --- cases
    case_measures = [
        "cases_opened",
        "confirmed",
        "referred",
        "referral_compliance_rate",
        "median_hours_to_referral",
        "authority_accepted",
        "prosecuted",
        "convicted",
        "victims",
        "support_offered",
        "support_accepted",
    ]
    section(
        "case-outcomes",
        f"<h3>By category, cases opened in {q.label}</h3>",
        _by_group(cases, q, [*cats, ("CSAM", CSAM), ("All", ALL)], case_measures),
        "<h3>All categories, by quarter</h3>",
        _grid(cases, [(m, ALL, m) for m in case_measures], quarters, "measure"),
        "<p>Outcomes are as known at the data's as-of date: prosecutions and convictions of "
        "recent quarters are still to come.</p>",
    )

    # --- data quality
    dq_measures = list(quality.data.measures)
    scope_names = {
        a.scopes[0].label: f"files ingested during {q.label}",
        **({a.scopes[1].label: "every file up to the snapshot"} if len(a.scopes) > 1 else {}),
    }
    dq = []
    for scope in a.scopes:
        dq.append(f"<h3>{escape(scope_names[scope.label])} ({scope.start} .. {scope.end})</h3>")
        dq.append(
            _by_group(
                quality,
                scope,
                [(f, f) for f in quality.data.groups] + [("All feeds", ALL)],
                dq_measures,
            )
        )
    section(
        "data-quality",
        "<p>Every landed file passes the ingestion gate: a row that breaks its feed's "
        "contract is quarantined with its reasons (the rest of its file loads); a file "
        "that cannot be read is rejected whole; the same bytes delivered twice are loaded "
        "once. <strong>Quarantine rate</strong> = rows quarantined / rows read. "
        f"<strong>Late data</strong>: a file processed more than {LATE_FILE_MINUTES} "
        "minutes after it landed, so its records reached the marts more than an hour after "
        "they could have. The published marts do not record when each record reached the "
        "landing folder relative to its own event time, so lateness upstream of the "
        "landing folder is not measured here.</p>",
        "".join(dq),
        "<p>The quarter's figures rest on every file ingested up to the snapshot, "
        "including files ingested after the quarter that carry records of it.</p>",
    )

    # --- disclosure control
    counts = "".join(
        f"<tr><th>{escape(t.spec.title)}</th>"
        f'<td class="n">{t.published_cells + t.suppressed_cells:,}</td>'
        f'<td class="n">{t.suppressed_cells:,}</td></tr>'
        for t in pub.tables
    )
    section(
        "disclosure-control",
        "<ol>" + "".join(f"<li>{escape(r)}</li>" for r in disclosure_rules(pub.k)) + "</ol>",
        "<p>Each quarter is protected on its own (no totals across quarters are published), "
        "so a quarter shows the same cells in every report that covers it.</p>",
        f"<table><tr><th>table</th><th>cells</th><th>withheld</th></tr>{counts}</table>",
    )

    # --- methodology
    defs = a.definitions
    marts = sorted({m for t in pub.tables for m in t.spec.source} | {"dim_categories"})
    method = []
    for mart in marts:
        method.append(
            f"<h3><code>marts.{escape(mart)}</code></h3>{_markdown(defs.get((mart, None), ''))}"
        )
        cols = [(c, d) for (t, c), d in defs.items() if t == mart and c is not None]
        used = {m for t in pub.tables for m in t.data.measures} | {
            "category_code",
            "report_date",
            "taken_down_at",
            "posted_at",
            "exposure_minutes",
            "is_within_sla",
            "is_prevented",
            "opened_at",
            "hours_to_referral",
            "tier",
            "tier_reason",
            "valid_from",
            "valid_to",
            "outcome",
            "ingested_at",
            "received_at",
        }
        items = "".join(
            f"<dt><code>{escape(c)}</code></dt><dd>{_markdown(d)}</dd>"
            for c, d in cols
            if c in used
        )
        if items:
            method.append(f'<dl class="defs">{items}</dl>')
    section(
        "methodology",
        "<p>The definitions below are the dbt documentation of the marts, published with "
        "the data this report was computed from. Periods are calendar quarters in the "
        f"reporting time zone ({escape(pub.info.reporting_tz)}); counts are summed over the "
        "quarter, quantiles taken over every unit of the quarter.</p>",
        *method,
    )

    toc = "".join(f'<li><a href="#{anchor}">{escape(title)}</a></li>' for anchor, title in SECTIONS)
    meta = (
        f'<table class="meta"><tr><td>Period</td><td>{q.label} ({q.start} .. {q.end})</td></tr>'
        f"<tr><td>Data as of</td><td>{pub.as_of_date()}</td></tr>"
        f"<tr><td>Policy version(s)</td><td>{', '.join(map(str, pub.policy_versions))}</td></tr>"
        f"<tr><td>Disclosure threshold</td><td>k = {pub.k}</td></tr>"
        f"<tr><td>Snapshot run</td><td><code>{escape(pub.info.run_id)}</code></td></tr></table>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(pub.title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{escape(pub.title)}</h1>{meta}<nav><ol>{toc}</ol></nav></header>"
        + "".join(body)
        + "</body></html>\n"
    )


def _number(anchor: str) -> int:
    return [a for a, _ in SECTIONS].index(anchor) + 1
