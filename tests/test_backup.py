"""`ocse backup`: the warehouse and both stores copied consistently, with a manifest."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import duckdb
from click.testing import CliRunner

from ocse.cli import main
from ocse.ingest.gate import ingest_landing
from ocse.settings import get_settings
from ocse.warehouse import connect
from tests.feeds import row, write_csv


def test_backup_copies_the_warehouse_and_the_stores(ocse_env, key, tmp_path, monkeypatch):
    monkeypatch.setenv("OCSE_ACCESS_DB", str(tmp_path / "wh" / "access.sqlite"))
    write_csv(ocse_env["landing"] / "reports" / "r.csv", [row("reports")])
    conn = connect(ocse_env["warehouse"])
    ingest_landing(conn, ocse_env["landing"], key)
    conn.close()
    settings = get_settings()
    with sqlite3.connect(settings.alerts_store) as alerts:
        alerts.execute("create table outbox (alert_key text)")
        alerts.execute("insert into outbox values ('takedown:cnt-1:breach')")
    with sqlite3.connect(settings.access_db) as access:
        access.execute("create table access_log (event text)")

    out = tmp_path / "backup"
    result = CliRunner().invoke(main, ["backup", "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["role"] for f in manifest["files"]] == ["warehouse", "alerts", "access"]
    for f in manifest["files"]:
        assert hashlib.sha256((out / f["file"]).read_bytes()).hexdigest() == f["sha256"]
    assert manifest["key_versions"] == [{"version": 1, "fingerprint": key.fingerprint}]
    with duckdb.connect(str(out / "ocse.duckdb"), read_only=True) as copy:
        assert copy.execute("select count(*) from raw.reports").fetchone()[0] == 1
    with sqlite3.connect(out / "alerts.sqlite") as copy:
        assert copy.execute("select * from outbox").fetchall() == [("takedown:cnt-1:breach",)]
    # The key is never part of a backup.
    assert all(key._key not in (out / f["file"]).read_bytes() for f in manifest["files"])

    again = CliRunner().invoke(main, ["backup", "--out", str(out)])
    assert again.exit_code == 1 and "is not empty" in again.output


def test_backup_without_a_warehouse_says_so(ocse_env, tmp_path):
    result = CliRunner().invoke(main, ["backup", "--out", str(tmp_path / "b")])
    assert result.exit_code == 1 and "No warehouse at" in result.output
