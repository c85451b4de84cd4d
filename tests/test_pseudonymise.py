"""Pseudonyms: the vectorised SQL HMAC equals the reference HMAC-SHA256; refs join across
feeds; the key never shows."""

from __future__ import annotations

import duckdb
import pytest

from ocse.ingest.gate import ingest_landing
from ocse.pseudonymise import PseudonymKey, pseudonym, pseudonym_sql, sql_params
from tests.feeds import row, write_csv

VALUES = ["acct-00000000a1", "用户-42", "", " leading space", "x" * 500, "quote'd"]


@pytest.mark.parametrize("secret", [b"k" * 16, b"a-much-longer-secret-key-" * 5])
def test_sql_hmac_equals_python_hmac(secret):
    key = PseudonymKey.from_secret(secret, 3)
    conn = duckdb.connect()
    conn.execute("create table t (v varchar)")
    conn.executemany("insert into t values (?)", [[v] for v in VALUES] + [[None]])
    got = conn.execute(f"select {pseudonym_sql('v')} from t", sql_params(key)).fetchall()
    assert [g for (g,) in got] == [pseudonym(key, v) for v in VALUES] + [None]
    assert all(g.startswith("p3:") and len(g) == 67 for (g,) in got[:-1])


def test_key_version_and_key_change_the_ref():
    a = pseudonym(PseudonymKey.from_secret(b"k" * 16, 1), "acct-1")
    assert a != pseudonym(PseudonymKey.from_secret(b"k" * 16, 2), "acct-1")
    assert a != pseudonym(PseudonymKey.from_secret(b"j" * 16, 1), "acct-1")


def test_key_is_not_in_repr():
    key = PseudonymKey.from_secret(b"super-secret-key-material", 1)
    assert "super-secret" not in repr(key) and "super-secret" not in str(key)


def test_same_account_gets_same_ref_in_every_feed(landing, conn, key):
    for feed in ("screening_hits", "reports", "enforcement_actions", "cases"):
        write_csv(landing / feed / "a.csv", [row(feed)])
    ingest_landing(conn, landing, key)
    refs = conn.execute(
        """
        select uploader_id_ref from raw.screening_hits
        union all select reported_user_id_ref from raw.reports
        union all select user_id_ref from raw.enforcement_actions
        union all select subject_user_id_ref from raw.cases
        """
    ).fetchall()
    assert {r for (r,) in refs} == {pseudonym(key, "acct-00000000a1")}


def test_quarantined_rows_hold_pseudonyms_not_identifiers(landing, conn, key):
    write_csv(landing / "reports" / "a.csv", [row("reports", channel="fax")])
    ingest_landing(conn, landing, key)
    (record,) = conn.execute("select record from ingest.quarantine").fetchone()
    assert "acct-" not in record
    assert pseudonym(key, "acct-00000000c1") in record
    assert '"reporter_id_ref"' in record and '"reporter_id"' not in record
