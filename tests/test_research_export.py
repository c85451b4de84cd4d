"""Research exports end to end, on generated data of two sizes through the real pipeline:
what a research partner receives, and what they could work out from it."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ocse.access import AccessStore, ReleaseRegister
from ocse.cli import main
from ocse.exports import research
from ocse.exports.publication import ExportError
from ocse.serving import open_snapshot
from tests.disclosure_attack import integer_recoveries, linear_recoveries
from tests.publication_worlds import identifiers, leaked, world

pytestmark = pytest.mark.integration

K = 10
PARTNER = "uni-a"
START, END = date(2025, 2, 24), date(2025, 4, 6)  # 6 whole weeks; March is the whole month
CSAM_CATEGORIES = ("csam_possession", "csam_production_distribution")
# What any reader knows from the data dictionary (written out here, not taken from the code).
IDENTITIES = {
    "takedown_sla": [
        ("takedowns", ("within_sla", "breached")),
        ("takedowns", ("prevented", "exposed")),
    ],
    "detection_quality": [
        ("hits", ("reviewed", "pending")),
        ("reviewed", ("confirmed", "false_positives")),
    ],
}
SAME_QUANTITY = [
    (("category_trends", "reports_received"), ("report_handling", "received"), None),
    (("category_trends", "takedowns"), ("takedown_sla", "takedowns"), None),
    (("category_trends", "confirmed_hits"), ("detection_quality", "confirmed"), "all"),
]
SUBSETS = {
    "category_trends": [("proactive_takedowns", "takedowns")],
    "takedown_sla": [("evidence_on_time", "takedowns"), ("prevented", "within_sla")],
    "report_handling": [
        ("ack_on_time", "ack_decided"),
        ("ack_decided", "received"),
        ("resolution_on_time", "resolution_decided"),
        ("resolution_decided", "received"),
        ("feedback_sent", "resolved"),
    ],
    "case_outcomes": [
        ("confirmed", "cases_opened"),
        ("referred", "cases_opened"),
        ("convicted", "prosecuted"),
        ("support_accepted", "support_offered"),
        ("referral_on_time", "referral_decided"),
    ],
}


@pytest.fixture
def access_db(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "access.sqlite"
    monkeypatch.setenv("OCSE_ACCESS_DB", str(path))
    return path


@pytest.fixture(autouse=True)
def partner(access_db) -> str:
    """The research partner every export of these tests goes to (both grains, k=K), whose
    members alice and bob are."""
    register = ReleaseRegister(access_db)
    register.set_partner(PARTNER, research.RESEARCH_GRAINS, K)
    for name in ("alice", "bob"):
        AccessStore(access_db).add_user(name, "researcher", None)
        register.assign(name, PARTNER)
    return PARTNER


def export(name, tmp_path_factory, tmp_path, grain, **kwargs):
    serving = world(name, tmp_path_factory) / "serving.duckdb"
    out = tmp_path / f"export_{name}_{grain}"
    result = research.write_research_export(
        serving,
        START,
        END,
        out,
        partner=PARTNER,
        grain=grain,
        k=K,
        username="alice",
        role="researcher",
        **kwargs,
    )
    return serving, out, result


def read_tables(out: Path) -> dict[str, list[dict]]:
    dictionary = json.loads((out / "data_dictionary.json").read_text(encoding="utf-8"))
    tables = {}
    for table in dictionary["tables"]:
        with (out / f"{table['name']}.csv").open(encoding="utf-8") as fh:
            tables[table["name"]] = {
                "rows": list(csv.DictReader(fh)),
                "counts": [c["name"] for c in table["columns"] if c["type"] == "integer"],
                "dimension": next(c["name"] for c in table["columns"][2:3]),
            }
    return tables


def reader_system(tables):
    """The published cells, the withheld cells and every equation a reader can write."""
    published, withheld, equations, subsets = {}, {}, [], []
    for name, table in tables.items():
        dim = table["dimension"]
        by_period: dict[str, dict[str, dict]] = {}
        for row in table["rows"]:
            by_period.setdefault(row["period_start"], {})[row[dim]] = row
            hidden = set(filter(None, row["suppressed"].split("|")))
            for column in table["counts"]:
                cell = (name, row["period_start"], row[dim], column)
                if column in hidden:
                    withheld[cell] = None
                else:
                    # an empty cell not named as withheld cannot exist: a known zero
                    published[cell] = int(row[column]) if row[column] != "" else 0
        for period, groups in by_period.items():
            plain = [g for g in groups if g not in ("all", "csam")]
            for column in table["counts"]:
                cell = lambda g, c=column, p=period, t=name: (t, p, g, c)  # noqa: E731
                equations.append([(cell("all"), 1), *((cell(g), -1) for g in plain)])
                if "csam" in groups:
                    equations.append([(cell("csam"), 1), *((cell(g), -1) for g in CSAM_CATEGORIES)])
            for group in groups:
                for whole, parts in IDENTITIES.get(name, []):
                    equations.append(
                        [((name, period, group, whole), 1)]
                        + [((name, period, group, p), -1) for p in parts]
                    )
                for part, whole in SUBSETS.get(name, []):
                    subsets.append(((name, period, group, part), (name, period, group, whole)))
    for (ta, ca), (tb, cb), only in SAME_QUANTITY:
        if ta not in tables or tb not in tables:
            continue
        for cell in list(published) + list(withheld):
            if cell[0] == ta and cell[3] == ca and (only is None or cell[2] == only):
                other = (tb, cell[1], cell[2], cb)
                if other in published or other in withheld:
                    equations.append([(cell, 1), (other, -1)])
    return published, withheld, equations, subsets


@pytest.mark.parametrize("size", ["sparse", "dense"])
@pytest.mark.parametrize("grain", ["week", "month"])
def test_no_small_cell_is_published_and_no_withheld_cell_can_be_worked_out(
    size, grain, tmp_path_factory, tmp_path, access_db
):
    """A partner holding the files finds no count below k, and solving every table's row
    totals, identities and the quantities shared between tables gives back no withheld
    cell (exact rational elimination; at month grain also the non-negative integer
    search)."""
    _, out, result = export(size, tmp_path_factory, tmp_path, grain)
    tables = read_tables(out)
    assert set(tables) == {
        "category_trends",
        "takedown_sla",
        "report_handling",
        "case_outcomes",
        "detection_quality",
    }
    published, withheld, equations, subsets = reader_system(tables)
    assert min(v for v in published.values() if v) >= K
    # zeros are withheld like any small count: a published 0 is only a cell that cannot exist
    for name, table in tables.items():
        for row in table["rows"]:
            hidden = set(filter(None, row["suppressed"].split("|")))
            for column in table["counts"]:
                if row[column] != "":
                    assert int(row[column]) >= K, (name, row["period_start"], column)
                else:
                    assert column in hidden or row[table["dimension"]] == "unclassified"
    assert withheld, "generated data this small must have small cells"
    assert linear_recoveries(equations, published, withheld) == {}
    if grain == "month":
        assert integer_recoveries(equations, published, withheld, subsets) == {}
    assert result.cells_suppressed == len(
        [1 for t in tables.values() for r in t["rows"] for m in r["suppressed"].split("|") if m]
    )


def test_the_attacker_of_the_export_test_finds_cells_when_they_are_recoverable(
    tmp_path_factory, tmp_path, access_db
):
    """Publishing one withheld count of a real export (and so leaving its partner alone in
    its equation) makes the same reader recover the partner: the test above can fail."""
    _, out, _ = export("sparse", tmp_path_factory, tmp_path, "month")
    tables = read_tables(out)
    published, withheld, equations, _ = reader_system(tables)
    serving = world("sparse", tmp_path_factory) / "serving.duckdb"
    truth = takedown_truth(serving)
    leaked_cell = next(
        c
        for c in sorted(withheld)
        if c[0] == "takedown_sla"
        and c[3] == "breached"
        and c[2] not in ("all", "csam")
        and (*c[:3], "within_sla") in withheld
        and (*c[:3], "takedowns") in published
    )
    partner = (*leaked_cell[:3], "within_sla")
    assert linear_recoveries(equations, published, withheld) == {}
    published[leaked_cell] = truth[(leaked_cell[1], leaked_cell[2])]["breached"]
    del withheld[leaked_cell]
    recovered = linear_recoveries(equations, published, withheld)
    assert recovered[partner] == truth[(leaked_cell[1], leaked_cell[2])]["within_sla"]


def takedown_truth(serving: Path) -> dict:
    conn = open_snapshot(serving)
    try:
        rows = conn.execute(
            "select cast(date_trunc('month', report_date) as date)::varchar, category_code, "
            "count(*) filter (where is_within_sla), count(*) filter (where not is_within_sla) "
            "from marts.fct_content_takedowns group by all"
        ).fetchall()
    finally:
        conn.close()
    return {(p, c): {"within_sla": w, "breached": b} for p, c, w, b in rows}


def test_published_numbers_are_the_marts_numbers(tmp_path_factory, tmp_path, access_db):
    serving, out, _ = export("dense", tmp_path_factory, tmp_path, "week")
    tables = read_tables(out)
    conn = open_snapshot(serving)
    try:
        weekly = {
            (str(w), c): (h, r, t)
            for w, c, h, r, t in conn.execute(
                "select week_start, category_code, confirmed_hits, reports_received, takedowns "
                "from marts.rpt_category_trends_weekly"
            ).fetchall()
        }
        daily = {
            (str(w), c): (t, p, s, b)
            for w, c, t, p, s, b in conn.execute(
                "select cast(date_trunc('week', report_date) as date), category_code, "
                "sum(takedowns), sum(prevented), sum(within_sla), sum(breached) "
                "from marts.rpt_takedown_sla_daily group by all"
            ).fetchall()
        }
    finally:
        conn.close()
    checked = 0
    for row in tables["category_trends"]["rows"]:
        key = (row["period_start"], row["category_code"])
        if key in weekly:
            for column, expected in zip(
                ("confirmed_hits", "reports_received", "takedowns"), weekly[key], strict=True
            ):
                if row[column] != "":
                    assert int(row[column]) == expected
                    checked += 1
    for row in tables["takedown_sla"]["rows"]:
        key = (row["period_start"], row["category_code"])
        if key in daily:
            for column, expected in zip(
                ("takedowns", "prevented", "within_sla", "breached"), daily[key], strict=True
            ):
                if row[column] != "":
                    assert int(row[column]) == expected
                    checked += 1
    assert checked > 20


def test_no_identifier_appears_in_any_exported_file(tmp_path_factory, tmp_path, access_db):
    serving, out, _ = export("dense", tmp_path_factory, tmp_path, "week")
    ids = identifiers(serving)
    texts = {}
    for path in out.iterdir():
        data = path.read_bytes()
        texts[path.name] = data.decode("utf-8", errors="replace")
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            texts[path.name + ":values"] = " ".join(map(str, table.to_pylist()))
    zipped = research.research_export_zip(
        serving, START, END, partner=PARTNER, grain="week", k=K, username="alice", role="researcher"
    )
    with zipfile.ZipFile(io.BytesIO(zipped.data)) as archive:
        for info in archive.infolist():
            texts[info.filename] = archive.read(info).decode("utf-8", errors="replace")
    for name, text in texts.items():
        assert leaked(text, ids) == set(), name
    # the search finds what is there
    planted = sorted(ids)[0]
    assert leaked(texts["takedown_sla.csv"] + planted, ids) == {planted}
    # no time of day anywhere: dates only
    assert "T00:" not in texts["manifest.json"] and "+00:00" not in texts["manifest.json"]


def test_exports_are_atomic_idempotent_and_logged(
    tmp_path_factory, tmp_path, access_db, monkeypatch
):
    serving, out, result = export("sparse", tmp_path_factory, tmp_path, "month")
    manifest = research.read_manifest(out)
    for name, digest in manifest["files"].items():
        assert research.sha256_file(out / name) == digest
    assert set(manifest["files"]) | {"manifest.json"} == {p.name for p in out.iterdir()}
    assert manifest["k"] == K and manifest["grain"] == "month"
    assert manifest["covered_period"] == {"from": "2025-03-01", "to": "2025-03-31"}
    assert manifest["policy_versions"] == [1]
    assert {t["name"]: t["cells_suppressed"] for t in manifest["tables"]} == {
        t.name: t.cells_suppressed for t in result.tables
    }
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # the same request again: the same bytes
    research.write_research_export(
        serving,
        START,
        END,
        out,
        partner=PARTNER,
        grain="month",
        k=K,
        username="alice",
        role="researcher",
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    # a failure half-way leaves the previous export whole and nothing half-written
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(research, "write_parquet", broken)
    # another partner's export at another k (lab-b's own), into the same folder
    ReleaseRegister(access_db).set_partner("lab-b", ["month"], 12)
    AccessStore(access_db).add_user("lena", "researcher", None)
    ReleaseRegister(access_db).assign("lena", "lab-b")
    with pytest.raises(OSError, match="disk full"):
        research.write_research_export(
            serving, START, END, out, partner="lab-b", username="lena", role="researcher"
        )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []
    monkeypatch.undo()
    monkeypatch.setenv("OCSE_ACCESS_DB", str(access_db))
    # a folder that is not an export is never replaced
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    with pytest.raises(ExportError, match="refusing to replace"):
        research.write_research_export(
            serving,
            START,
            END,
            other,
            partner=PARTNER,
            grain="month",
            username="alice",
            role="researcher",
        )
    assert (other / "mine.txt").read_text() == "keep me"
    entries = AccessStore(access_db).entries(event="export")
    assert len(entries) == 2  # the failed export was never delivered, so never logged
    assert {(e.username, e.role) for e in entries} == {("alice", "researcher")}
    detail = entries[0].detail
    assert detail["from"] == str(START) and detail["to"] == str(END) and detail["k"] == K
    assert detail["covered_from"] == "2025-03-01" and detail["grain"] == "month"
    assert detail["partner"] == PARTNER
    assert detail["sha256"] == research.sha256_file(out / "manifest.json")
    # nor released: the register holds the two exports delivered, to uni-a only
    releases = ReleaseRegister(access_db).history()
    assert [(r.partner, r.channel, r.sha256) for r in releases] == [
        (PARTNER, "export", detail["sha256"])
    ] * 2


def test_zip_download_holds_the_same_files(tmp_path_factory, tmp_path, access_db):
    serving, out, _ = export("sparse", tmp_path_factory, tmp_path, "month")
    zipped = research.research_export_zip(
        serving, START, END, partner=PARTNER, grain="month", k=K, username="bob", role="researcher"
    )
    assert zipped.file_name == "ocse_research_2025-03-01_2025-03-31_month_k10.zip"
    with zipfile.ZipFile(io.BytesIO(zipped.data)) as archive:
        inside = {Path(i.filename).name: archive.read(i) for i in archive.infolist()}
    assert inside == {p.name: p.read_bytes() for p in out.iterdir()}
    again = research.research_export_zip(
        serving, START, END, partner=PARTNER, grain="month", k=K, username="bob", role="researcher"
    )
    assert again.data == zipped.data
    downloads = [e for e in AccessStore(access_db).entries(event="export") if e.username == "bob"]
    assert len(downloads) == 2 and downloads[0].detail["destination"] == "download"


def test_cli_export_and_its_errors(tmp_path_factory, tmp_path, access_db):
    serving = world("sparse", tmp_path_factory) / "serving.duckdb"
    runner = CliRunner()
    out = tmp_path / "cli_export"
    args = [
        "export",
        "research",
        "--partner",
        PARTNER,
        "--from",
        "2025-03-01",
        "--to",
        "2025-03-31",
        "--grain",
        "month",
    ]
    result = runner.invoke(
        main, [*args, "--out", str(out), "--snapshot", str(serving), "--as-user", "carol"]
    )
    assert result.exit_code == 0, result.output
    assert "takedown_sla" in result.output and (out / "manifest.json").is_file()
    assert AccessStore(access_db).entries(event="export")[0].username == "carol"
    missing = runner.invoke(
        main, [*args, "--out", str(tmp_path / "x"), "--snapshot", str(tmp_path / "none.duckdb")]
    )
    assert missing.exit_code != 0 and "No serving snapshot" in missing.output
    small_k = runner.invoke(main, [*args, "--out", str(tmp_path / "y"), "--k", "4"])
    assert small_k.exit_code != 0 and "--k" in small_k.output
    empty = runner.invoke(
        main,
        [
            "export",
            "research",
            "--partner",
            PARTNER,
            "--grain",
            "month",
            "--from",
            "2019-01-01",
            "--to",
            "2019-03-31",
            "--out",
            str(tmp_path / "z"),
            "--snapshot",
            str(serving),
        ],
    )
    assert empty.exit_code != 0 and "no takedowns, reports, cases or hits" in empty.output
    no_whole_week = runner.invoke(
        main,
        [
            "export",
            "research",
            "--partner",
            PARTNER,
            "--from",
            "2025-03-04",
            "--to",
            "2025-03-08",
            "--grain",
            "week",
            "--out",
            str(tmp_path / "w"),
            "--snapshot",
            str(serving),
        ],
    )
    assert no_whole_week.exit_code != 0 and "no whole week" in no_whole_week.output
