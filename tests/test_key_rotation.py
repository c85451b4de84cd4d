"""Key rotation keeps a person one ref (ocse/keys.py); a key that does not match its version,
a version bump without the key it replaces, and a key file others can read are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from ocse import keys
from ocse.ingest.gate import ingest_landing
from ocse.pseudonymise import PseudonymKey, pseudonym
from ocse.settings import MissingPseudonymKeyError, get_settings
from tests.feeds import row, write_csv

OLD = PseudonymKey.from_secret(b"old-key-material-0123456789", 1)
NEW = PseudonymKey.from_secret(b"new-key-material-9876543210", 2)


def _refs(conn):
    return {
        r for (r,) in conn.execute("select user_id_ref from raw.enforcement_actions").fetchall()
    }


def _action(n: int, user: str) -> dict:
    return row("enforcement_actions", action_id=f"act-{n}", content_id=f"cnt-{n}", user_id=user)


def test_a_person_keeps_one_ref_across_a_rotation(landing, conn):
    write_csv(landing / "enforcement_actions" / "1.csv", [_action(1, "acct-A")])
    ingest_landing(conn, landing, OLD)
    a = pseudonym(OLD, "acct-A")
    assert _refs(conn) == {a}

    # The transition window: both keys; A keeps its ref, B (new) is linked too.
    during = NEW.with_previous(OLD)
    write_csv(
        landing / "enforcement_actions" / "2.csv", [_action(2, "acct-A"), _action(3, "acct-B")]
    )
    ingest_landing(conn, landing, during)
    b = pseudonym(OLD, "acct-B")
    assert _refs(conn) == {a, b}
    links = dict(conn.execute("select ref, canonical_ref from ingest.pseudonym_links").fetchall())
    assert links == {pseudonym(NEW, "acct-A"): a, pseudonym(NEW, "acct-B"): b}

    # After the window: the new key alone; linked people keep their ref, a newcomer gets a v2 ref.
    write_csv(
        landing / "enforcement_actions" / "3.csv", [_action(4, "acct-A"), _action(5, "acct-C")]
    )
    ingest_landing(conn, landing, NEW)
    assert _refs(conn) == {a, b, pseudonym(NEW, "acct-C")}
    # No raw identifier anywhere in the links.
    assert "acct-" not in str(conn.execute("select * from ingest.pseudonym_links").fetchall())


def test_a_second_rotation_links_to_the_first_ref(landing, conn):
    write_csv(landing / "enforcement_actions" / "1.csv", [_action(1, "acct-A")])
    ingest_landing(conn, landing, OLD)
    write_csv(landing / "enforcement_actions" / "2.csv", [_action(2, "acct-A")])
    ingest_landing(conn, landing, NEW.with_previous(OLD))
    third = PseudonymKey.from_secret(b"third-key-material-000000", 3)
    write_csv(landing / "enforcement_actions" / "3.csv", [_action(3, "acct-A")])
    ingest_landing(conn, landing, third.with_previous(NEW))
    assert _refs(conn) == {pseudonym(OLD, "acct-A")}


def test_a_key_that_does_not_match_its_version_is_refused(landing, conn):
    write_csv(landing / "reports" / "r.csv", [row("reports")])
    ingest_landing(conn, landing, OLD)
    other = PseudonymKey.from_secret(b"another-key-under-version-1", 1)
    write_csv(landing / "reports" / "r2.csv", [row("reports", report_id="rpt-2")])
    with pytest.raises(
        keys.KeyMismatchError, match="not the key this warehouse recorded as version 1"
    ):
        ingest_landing(conn, landing, other)
    with pytest.raises(keys.KeyMismatchError, match="Without the previous key every person"):
        ingest_landing(conn, landing, NEW)  # a version bump alone would split every person
    with pytest.raises(keys.KeyMismatchError, match="previous pseudonymisation key is not"):
        ingest_landing(conn, landing, NEW.with_previous(other))
    assert conn.execute("select count(*) from raw.reports").fetchone()[0] == 1
    assert "another-key" not in str(conn.execute("select * from ingest.key_versions").fetchall())


def test_the_transition_window_ends(landing, conn):
    write_csv(landing / "reports" / "r.csv", [row("reports")])
    ingest_landing(conn, landing, OLD)
    keys.rotate(conn, OLD, NEW, timedelta(days=1))
    later = datetime.now(UTC) + timedelta(days=2)
    key, warnings = keys.verify(conn, NEW.with_previous(OLD), later)
    assert key.previous is None and "no longer used" in warnings[0]
    key, warnings = keys.verify(conn, NEW.with_previous(OLD))
    assert key.previous is OLD and warnings == []


def test_key_files_readable_by_others_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "k.key"
    path.write_text("k" * 32)
    path.chmod(0o644)
    monkeypatch.delenv("OCSE_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("OCSE_PSEUDONYM_KEY_FILE", str(path))
    with pytest.raises(MissingPseudonymKeyError, match="readable by other users.*chmod 600"):
        get_settings().key_bytes  # noqa: B018
    path.chmod(0o600)
    assert get_settings().key_bytes == b"k" * 32


@pytest.mark.integration
def test_the_repeat_offender_stays_black_across_a_rotation(ocse_env, tmp_path, monkeypatch):
    """Two violations under key 1, one under key 2: one account, black (repeat_180d), not
    two grey ones."""
    import duckdb

    from ocse.cli import main

    key_file = tmp_path / "keys" / "pseudonym.key"
    key_file.parent.mkdir()
    key_file.write_text("first-key-material-0123456789\n")
    key_file.chmod(0o600)
    monkeypatch.delenv("OCSE_PSEUDONYM_KEY")
    monkeypatch.setenv("OCSE_PSEUDONYM_KEY_FILE", str(key_file))
    landing = ocse_env["landing"]

    def violation(n: int, day: int) -> dict:
        at = f"2025-03-{day:02d}T09:30:00Z"
        return row(
            "enforcement_actions",
            action_id=f"act-{n}",
            content_id=f"cnt-{n}",
            hit_id=None,
            user_id="acct-repeat-1",
            category_code="grooming",  # not zero tolerance: black only by repeat_180d
            posted_at=f"2025-03-{day:02d}T09:00:00Z",
            detected_at=f"2025-03-{day:02d}T09:10:00Z",
            actioned_at=at,
            evidence_preserved_at=f"2025-03-{day:02d}T09:25:00Z",
            updated_at=at,
        )

    write_csv(landing / "enforcement_actions" / "a.csv", [violation(1, 1), violation(2, 2)])
    runner = CliRunner()
    monkeypatch.setenv("OCSE_AS_OF", "2025-03-03T00:00:00Z")
    result = runner.invoke(main, ["run"])
    assert result.exit_code == 0, result.output

    result = runner.invoke(main, ["keys", "rotate"])
    assert result.exit_code == 0, result.output
    new_file = key_file.with_name("pseudonym.v2.key")
    assert new_file.stat().st_mode & 0o777 == 0o600
    assert f"OCSE_PSEUDONYM_KEY_FILE={new_file}" in result.output
    monkeypatch.setenv("OCSE_PSEUDONYM_KEY_FILE", str(new_file))
    monkeypatch.setenv("OCSE_PSEUDONYM_KEY_VERSION", "2")
    monkeypatch.setenv("OCSE_PSEUDONYM_PREVIOUS_KEY_FILE", str(key_file))

    write_csv(landing / "enforcement_actions" / "b.csv", [violation(3, 4)])
    monkeypatch.setenv("OCSE_AS_OF", "2025-03-05T00:00:00Z")
    result = runner.invoke(main, ["run"])
    assert result.exit_code == 0, result.output
    status = runner.invoke(main, ["keys", "status"])
    assert "version 1:" in status.output and "[current: matches]" in status.output

    with duckdb.connect(str(ocse_env["serving"]), read_only=True) as snap:
        tiers = snap.execute(
            "select user_ref, tier, tier_reason, violations_180d from marts.dim_user_tiers"
        ).fetchall()
    old = PseudonymKey.from_secret(b"first-key-material-0123456789", 1)
    assert tiers == [(pseudonym(old, "acct-repeat-1"), "black", "repeat_180d", 3)]

    # A key swapped under the same version is refused before anything runs.
    new_file.write_text("a-different-key-entirely-000\n")
    result = runner.invoke(main, ["run"])
    assert result.exit_code == 1
    assert "not the key this warehouse recorded as version 2" in result.output
