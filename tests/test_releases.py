"""The release register: the data steward decides which grains and k a research partner
receives, and nothing that overlaps what it already holds at another grain or k leaves the
platform (a reader holding both could subtract one from the other). Every refusal is in
the access log."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from ocse.access import AccessStore, ReleaseRefused, ReleaseRegister, ReleaseRegisterError
from ocse.cli import main
from ocse.exports import research
from ocse.exports.publication import sha256_file
from tests.publication_worlds import world

MARCH = (date(2025, 3, 1), date(2025, 3, 31))
# the whole weeks of the research-export worlds whose month, March, has ended
WEEK_OF_MARCH_3 = (date(2025, 3, 3), date(2025, 3, 9))


@pytest.fixture
def db(_access_store_in_tmp) -> Path:
    return _access_store_in_tmp


@pytest.fixture
def register(db) -> ReleaseRegister:
    register = ReleaseRegister(db)
    register.set_partner("uni-a", ["week", "month"], 10)
    AccessStore(db).add_user("rita", "researcher", None)
    register.assign("rita", "uni-a")
    return register


def released(register, grain="month", k=10, period=MARCH, channel="export"):
    return register.record(
        "uni-a", grain, k, *period, username="rita", role="researcher", channel=channel
    )


def denied(db) -> list:
    return AccessStore(db).entries(event="denied")


# --- the register itself ---------------------------------------------------------------------


def test_partners_are_registered_changed_and_validated(db):
    register = ReleaseRegister(db)
    created = register.set_partner("uni-a", ["month"], 10)
    assert (created.name, created.grains, created.k) == ("uni-a", ("month",), 10)
    changed = register.set_partner("uni-a", "month,week", 12)
    assert (changed.grains, changed.k) == (("week", "month"), 12)
    assert changed.created_at == created.created_at and changed.updated_at >= created.updated_at
    register.set_partner("lab-b", ["week"], 5)
    assert [p.name for p in register.partners()] == ["lab-b", "uni-a"]
    assert register.partner("nobody") is None
    for name, grains, k, message in [
        ("a", ["month"], 10, "not allowed"),
        ("uni a", ["month"], 10, "not allowed"),
        ("uni-a", [], 10, "one or both of week, month"),
        ("uni-a", ["month", "quarter"], 10, "not quarter"),
        ("uni-a", ["month"], 4, "at least 5"),
        ("uni-a", ["month"], True, "at least 5"),
    ]:
        with pytest.raises(ReleaseRegisterError, match=message):
            register.set_partner(name, grains, k)
    assert register.partner("uni-a").k == 12, "a refused change changes nothing"


def test_members_belong_to_one_partner_and_a_partner_goes_only_without_members(db):
    register = ReleaseRegister(db)
    register.set_partner("uni-a", ["month"], 10)
    register.set_partner("lab-b", ["week"], 10)
    AccessStore(db).add_user("rita", "researcher", None)
    with pytest.raises(ReleaseRegisterError, match="no user 'sam'"):
        register.assign("sam", "uni-a")
    with pytest.raises(ReleaseRegisterError, match="no partner 'nobody'"):
        register.assign("rita", "nobody")
    assert register.partner_of("rita") is None
    register.assign("rita", "uni-a")
    register.assign("rita", "uni-a")  # again: nothing changes
    assert register.partner_of("rita").name == "uni-a"
    assert register.members("uni-a") == ["rita"] and register.members("lab-b") == []
    with pytest.raises(ReleaseRegisterError, match="member of uni-a: unassign"):
        register.assign("rita", "lab-b")
    with pytest.raises(ReleaseRegisterError, match=r"still has members \(rita\)"):
        register.remove_partner("uni-a")
    assert register.partner("uni-a") is not None
    register.unassign("rita")
    with pytest.raises(ReleaseRegisterError, match="not assigned"):
        register.unassign("rita")
    register.remove_partner("uni-a")
    assert [p.name for p in register.partners()] == ["lab-b"]
    with pytest.raises(ReleaseRegisterError, match="no partner 'uni-a'"):
        register.remove_partner("uni-a")


# --- the rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("partner", "username", "grain", "k", "period", "reason", "message"),
    [
        ("nobody", "rita", "month", 10, MARCH, "unknown_partner", "not a registered"),
        ("uni-a", "sam", "month", 10, MARCH, "not_partner_member", "sam is not a member"),
        ("lab-b", "rita", "month", 10, MARCH, "not_partner_member", "rita is not a member"),
        ("uni-a", "rita", "month", 9, MARCH, "k_below_register", "k=9 is below it"),
        (
            "uni-a",
            "rita",
            "week",
            10,
            WEEK_OF_MARCH_3,
            "overlaps_earlier_release",
            "holds 2025-01-01 .. 2025-03-31 at month grain, k=10 (export of ",
        ),
        (
            "uni-a",
            "rita",
            "month",
            12,
            (date(2025, 3, 1), date(2025, 4, 30)),
            "overlaps_earlier_release",
            "Allowed for an overlapping period: month grain at k=10",
        ),
        # inclusive dates: the week starting on the month's last day overlaps it
        (
            "uni-a",
            "rita",
            "week",
            10,
            (date(2025, 3, 31), date(2025, 4, 6)),
            "overlaps_earlier_release",
            "2025-03-31 .. 2025-04-06 at week grain",
        ),
    ],
)
def test_each_refusal_says_why_and_leaves_one_denied_row(
    register, db, partner, username, grain, k, period, reason, message
):
    register.set_partner("lab-b", ["week", "month"], 10)
    AccessStore(db).add_user("sam", "researcher", None)
    released(register, period=(date(2025, 1, 1), date(2025, 3, 31)))
    with pytest.raises(ReleaseRefused, match=re.escape(message)) as refused:
        register.check(
            partner, grain, k, *period, username=username, role="researcher", target="f.zip"
        )
    assert refused.value.reason == reason
    (entry,) = denied(db)
    assert (entry.username, entry.role, entry.target) == (username, "researcher", "f.zip")
    assert entry.detail == {
        "partner": partner,
        "grain": grain,
        "k": k,
        "from": str(period[0]),
        "to": str(period[1]),
        "reason": reason,
    }
    assert len(register.history()) == 1, "a refusal records no release"


def test_a_grain_the_partner_is_not_registered_for_is_refused(db):
    register = ReleaseRegister(db)
    register.set_partner("lab-b", ["week"], 10)
    with pytest.raises(ReleaseRefused, match="registered for week releases, not month") as refused:
        register.check("lab-b", "month", 10, *MARCH, username="steward", role="cli")
    assert refused.value.reason == "grain_not_registered"
    assert [e.detail["reason"] for e in denied(db)] == ["grain_not_registered"]
    assert denied(db)[0].target == "research"


def test_the_same_grain_and_k_again_is_allowed_where_it_overlaps(register, db):
    released(register, period=(date(2025, 1, 1), date(2025, 3, 31)))
    feb_to_apr = (date(2025, 2, 1), date(2025, 4, 30))
    assert register.check("uni-a", "month", 10, *feb_to_apr, username="rita", role="researcher")
    released(register, period=feb_to_apr, channel="download")
    assert denied(db) == []
    assert [(r.channel, r.period_start) for r in register.history()] == [
        ("download", date(2025, 2, 1)),
        ("export", date(2025, 1, 1)),
    ]


def test_another_grain_or_k_is_allowed_for_periods_the_partner_does_not_hold(register, db):
    released(register)
    released(register, "week", 10, (date(2025, 4, 7), date(2025, 4, 20)))
    released(register, "month", 15, (date(2025, 5, 1), date(2025, 5, 31)))
    assert denied(db) == []
    # and what it now holds binds it too: April's weeks at week grain only
    with pytest.raises(ReleaseRefused, match="holds 2025-04-07 .. 2025-04-20 at week grain"):
        released(register, "month", 10, (date(2025, 4, 1), date(2025, 4, 30)))


def test_a_view_binds_like_a_file(register, db):
    """The research page's tables are a release: a week file of a month shown is refused."""
    released(register, channel="view")
    with pytest.raises(ReleaseRefused, match=r"\(view of "):
        released(register, "week", 10, WEEK_OF_MARCH_3, channel="download")
    assert [e.detail["reason"] for e in denied(db)] == ["overlaps_earlier_release"]


def test_record_checks_again_so_two_requests_at_once_cannot_both_pass(register, db):
    """Both pass the check before either is delivered; the second to be recorded is
    refused, logged, and never recorded."""
    register.check("uni-a", "month", 10, *MARCH, username="rita", role="researcher")
    register.check("uni-a", "week", 10, *WEEK_OF_MARCH_3, username="rita", role="researcher")
    released(register, channel="download")
    with pytest.raises(ReleaseRefused) as refused:
        register.record(
            "uni-a",
            "week",
            10,
            *WEEK_OF_MARCH_3,
            username="rita",
            role="researcher",
            channel="download",
            name="w.zip",
        )
    assert refused.value.reason == "overlaps_earlier_release"
    (entry,) = denied(db)
    assert entry.target == "w.zip" and entry.detail["grain"] == "week"
    assert [r.grain for r in register.history()] == ["month"]


def test_a_view_shown_again_is_recorded_once(register):
    first = research.record_view("uni-a", "month", 10, *MARCH, "rita", "researcher")
    again = research.record_view("uni-a", "month", 10, *MARCH, "rita", "researcher")
    assert again == first
    (release,) = register.history()
    assert (release.channel, release.name, release.sha256, release.size_bytes) == (
        "view",
        "",
        "",
        0,
    )
    released(register, channel="download")  # a file of the same is a release of its own
    assert len(register.history()) == 2


def test_the_register_is_append_only(register, db):
    released(register)
    conn = sqlite3.connect(db)
    try:
        for statement in ("update releases set k = 5", "delete from releases"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
        assert conn.execute("select k from releases").fetchall() == [(10,)]
    finally:
        conn.close()


def test_terms_default_to_the_partners_only_grain_and_its_k(register):
    register.set_partner("lab-b", ["week"], 15)
    assert register.terms("lab-b") == ("week", 15)
    assert register.terms("lab-b", "week", 20) == ("week", 20)
    assert register.terms("nobody") == (None, None)  # check() refuses it, and logs it
    with pytest.raises(ReleaseRegisterError, match="week and month: choose the grain"):
        register.terms("uni-a")


def test_cli_keeps_the_register(db):
    runner = CliRunner()
    AccessStore(db).add_user("rita", "researcher", None)
    empty = runner.invoke(main, ["releases", "list"])
    assert empty.exit_code == 0 and "No research partners yet" in empty.output
    made = runner.invoke(
        main, ["releases", "set", "uni-a", "--grain", "month", "--grain", "week", "--k", "12"]
    )
    assert made.exit_code == 0 and "Partner uni-a: week, month at k=12." in made.output
    small = runner.invoke(main, ["releases", "set", "lab-b", "--grain", "week", "--k", "4"])
    assert small.exit_code != 0 and ReleaseRegister(db).partner("lab-b") is None
    assert runner.invoke(main, ["releases", "assign", "rita", "uni-a"]).exit_code == 0
    nobody = runner.invoke(main, ["releases", "assign", "sam", "uni-a"])
    assert nobody.exit_code != 0 and "no user 'sam'" in nobody.output
    listing = runner.invoke(main, ["releases", "list"]).output.splitlines()
    assert listing[1].split() == ["uni-a", "week,month", "12", "rita"]
    refused = runner.invoke(main, ["releases", "remove", "uni-a"])
    assert refused.exit_code != 0 and "unassign them first" in refused.output
    assert runner.invoke(main, ["releases", "unassign", "rita"]).exit_code == 0
    assert runner.invoke(main, ["releases", "remove", "uni-a"]).exit_code == 0
    assert ReleaseRegister(db).partners() == []
    assert "Nothing released yet" in runner.invoke(main, ["releases", "history"]).output


# --- releases of a real published snapshot -----------------------------------------------------


@pytest.mark.integration
def test_cli_export_obeys_the_register_end_to_end(tmp_path_factory, tmp_path, db):
    serving = world("sparse", tmp_path_factory) / "serving.duckdb"
    runner = CliRunner()

    def export(out: str, *extra: str):
        return runner.invoke(
            main,
            [
                "export",
                "research",
                "--from",
                "2025-02-24",
                "--to",
                "2025-04-06",
                "--out",
                str(tmp_path / out),
                "--snapshot",
                str(serving),
                "--as-user",
                "steward",
                *extra,
            ],
        )

    no_partner = export("none")
    assert no_partner.exit_code != 0 and "--partner" in no_partner.output
    unknown = export("unknown", "--partner", "uni-a")
    assert unknown.exit_code != 0 and "not a registered research partner" in unknown.output
    set_up = runner.invoke(main, ["releases", "set", "uni-a", "--grain", "month", "--k", "10"])
    assert set_up.exit_code == 0, set_up.output

    made = export("march", "--partner", "uni-a")  # grain and k: the partner's
    assert made.exit_code == 0, made.output
    assert "ocse_research_2025-03-01_2025-03-31_month_k10" in made.output
    assert "takedown_sla" in made.output and "Released to partner uni-a" in made.output
    out = tmp_path / "march"
    (release,) = ReleaseRegister(db).history()
    assert (release.channel, release.grain, release.k) == ("export", "month", 10)
    assert (release.period_start, release.period_end) == MARCH
    assert release.sha256 == sha256_file(out / "manifest.json")
    assert release.size_bytes == sum(p.stat().st_size for p in out.iterdir())
    (entry,) = AccessStore(db).entries(event="export")
    assert entry.detail["sha256"] == release.sha256 and entry.detail["partner"] == "uni-a"
    assert entry.detail["size_bytes"] == release.size_bytes
    history = runner.invoke(main, ["releases", "history", "uni-a"]).output
    assert release.sha256[:12] in history and "2025-03-01 .. 2025-03-31" in history

    week = export("week", "--partner", "uni-a", "--grain", "week")
    assert week.exit_code != 0 and "registered for month releases, not week" in week.output
    both = ["releases", "set", "uni-a", "--grain", "month", "--grain", "week", "--k", "10"]
    assert runner.invoke(main, both).exit_code == 0
    week = export("week", "--partner", "uni-a", "--grain", "week")
    assert week.exit_code != 0
    assert "holds 2025-03-01 .. 2025-03-31 at month grain, k=10" in week.output
    higher_k = export("k12", "--partner", "uni-a", "--grain", "month", "--k", "12")
    assert higher_k.exit_code != 0 and "subtracted" in higher_k.output
    lower_k = export("k8", "--partner", "uni-a", "--grain", "month", "--k", "8")
    assert lower_k.exit_code != 0 and "k=8 is below it" in lower_k.output
    assert [e.detail["reason"] for e in reversed(denied(db))] == [
        "unknown_partner",
        "grain_not_registered",
        "overlaps_earlier_release",
        "overlaps_earlier_release",
        "k_below_register",
    ]
    assert {e.username for e in denied(db)} == {"steward"}
    written = {p.name for p in tmp_path.iterdir() if p.is_dir()}
    assert written == {"march"}, "a refusal writes nothing"
    assert len(ReleaseRegister(db).history()) == 1
    again = export("march", "--partner", "uni-a", "--grain", "month")  # the same: allowed
    assert again.exit_code == 0, again.output
    assert len(ReleaseRegister(db).history()) == 2


@pytest.mark.integration
def test_a_downloaded_zip_is_recorded_as_the_bytes_it_is(tmp_path_factory, register, db):
    serving = world("sparse", tmp_path_factory) / "serving.duckdb"
    zipped = research.research_export_zip(
        serving,
        date(2025, 2, 24),
        MARCH[1],
        partner="uni-a",
        grain="month",
        username="rita",
        role="researcher",
    )
    assert zipped.sha256 == hashlib.sha256(zipped.data).hexdigest()
    assert (zipped.partner, zipped.grain, zipped.k) == ("uni-a", "month", 10)
    assert (zipped.start, zipped.end) == MARCH
    assert register.history() == [], "prepared is not yet released"
    release = research.record_download(zipped, "rita", "researcher")
    assert (release.channel, release.name) == ("download", zipped.file_name)
    assert release.sha256 == hashlib.sha256(zipped.data).hexdigest()
    assert release.size_bytes == len(zipped.data)
    assert (release.period_start, release.period_end, release.k) == (*MARCH, 10)
    (download,) = AccessStore(db).entries(event="download")
    assert download.target == zipped.file_name and download.username == "rita"
    assert {
        key: download.detail[key]
        for key in ("file", "partner", "grain", "k", "covered_from", "covered_to", "sha256")
    } == {
        "file": zipped.file_name,
        "partner": "uni-a",
        "grain": "month",
        "k": 10,
        "covered_from": "2025-03-01",
        "covered_to": "2025-03-31",
        "sha256": release.sha256,
    }
    assert download.detail["size_bytes"] == len(zipped.data)
    # the weeks of the month now held are refused before anything is computed
    with pytest.raises(ReleaseRefused, match="holds 2025-03-01 .. 2025-03-31"):
        research.research_export_zip(
            serving,
            *WEEK_OF_MARCH_3,
            partner="uni-a",
            grain="week",
            username="rita",
            role="researcher",
        )
    (refusal,) = denied(db)
    assert refusal.target == "ocse_research_2025-03-03_2025-03-09_week_k10"
    # another partner's member is refused the partner's zip
    AccessStore(db).add_user("sam", "researcher", None)
    with pytest.raises(ReleaseRefused, match="sam is not a member of partner uni-a"):
        research.research_export_zip(
            serving, *MARCH, partner="uni-a", grain="month", username="sam", role="researcher"
        )
    assert len(denied(db)) == 2
