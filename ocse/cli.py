"""`ocse`: the command line of the warehouse.

ocse generate ...            write sample feed files (sample_data/)
ocse run --landing DIR --warehouse FILE [--serving FILE] [--as-of TIMESTAMP]
ocse dashboard               serve the dashboards on the serving snapshot
ocse replay --rejected [--feed F] [--since D]   re-process rejected files after a fix
ocse replay --quarantine --reason CODE          re-process quarantined rows after a fix
ocse keygen                  create a local pseudonymisation key for the demo
ocse keys status|rotate      key versions of the warehouse; rotate with a transition window
ocse backup --out DIR        consistent copy of the warehouse and its stores
ocse contracts sync|check    derive the dbt sources from data_contracts/
ocse users add|remove|list   dashboard accounts (roles: see ocse/access/roles.py)
ocse releases set|list|remove|assign|unassign|history   the research partners' release register
ocse alerts check|receive    alert routing, and a local receiver for the demo
ocse alerts status|retry     channels and deliveries; re-queue deliveries
ocse export research --partner P --from DATE --to DATE --out DIR   anonymised research export
ocse report assessment --period 2025Q1 --out DIR       external assessment report
ocse retention run [--dry-run] | show                   purge what is past its period
ocse erase --ref REF --request-id ID                    erase one person's pseudonym
ocse seal verify [--full] | accept --reason TEXT        the append-only seal
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import datetime
from pathlib import Path

import click

from ocse.access.roles import ROLES
from ocse.settings import PROJECT_ROOT
from sample_data.cli import generate_command

DEFAULT_KEY_FILE = Path.home() / ".config" / "ocse" / "pseudonym.key"


def _set_env(name: str, value: object | None) -> None:
    # CLI flags override the environment; settings are read from it afterwards, so Dagster,
    # dbt (profiles.yml) and this process all see the same values.
    if value is not None:
        os.environ[name] = str(value)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """OCSE Warehouse: screening hits, reports, takedowns and cases in; SLA, list, trend and
    case metrics out."""


@main.command()
@click.option(
    "--landing", type=click.Path(path_type=Path), help="Landing folder [OCSE_LANDING_DIR]."
)
@click.option(
    "--warehouse", type=click.Path(path_type=Path), help="Warehouse file [OCSE_WAREHOUSE]."
)
@click.option("--serving", type=click.Path(path_type=Path), help="Serving snapshot [OCSE_SERVING].")
@click.option(
    "--as-of",
    "as_of",
    help="As-of time T, ISO-8601 with offset (default: now) [OCSE_AS_OF].",
)
@click.option(
    "--full-refresh",
    is_flag=True,
    help="Rebuild the incremental staging models from raw history (automatic when T moves back).",
)
def run(
    landing: Path | None,
    warehouse: Path | None,
    serving: Path | None,
    as_of: str | None,
    full_refresh: bool,
):
    """Ingest new files, build and test the marts at T, publish the serving snapshot."""
    from ocse.pipeline import run_pipeline

    _set_env("OCSE_LANDING_DIR", landing and landing.resolve())
    _set_env("OCSE_WAREHOUSE", warehouse and warehouse.resolve())
    _set_env("OCSE_SERVING", serving and serving.resolve())
    _set_env("OCSE_AS_OF", as_of)
    settings = _settings_with_key()
    if not settings.landing_dir.is_dir():
        raise click.ClickException(
            f"Landing folder {settings.landing_dir} does not exist. "
            "Generate sample data with `ocse generate --out <dir>` or point --landing at it."
        )
    _check_alerting(settings.alerting_config)
    from ocse import runlock

    # The lease first: a run that is refused has done nothing at all.
    try:
        lease = runlock.acquire(settings.warehouse, trigger="cli")
    except runlock.WarehouseBusyError as exc:
        _refuse_busy(exc)
    try:
        _check_keys(settings)
        # T is taken now that the run holds the warehouse (never before it waited).
        t = settings.resolved_as_of()
        click.echo(f"ocse run: landing={settings.landing_dir} warehouse={settings.warehouse}")
        click.echo(f"          serving={settings.serving} as-of={t.isoformat()}")
        started = datetime.now()
        summary = run_pipeline(t, full_refresh=full_refresh, explicit_as_of=as_of is not None)
        elapsed = (datetime.now() - started).total_seconds()
    finally:
        runlock.release(lease)
    _print_summary(summary, elapsed)
    if not summary.success:
        sys.exit(1)
    if summary.channels_down:
        sys.exit(EXIT_ALERTS_UNDELIVERED)


@main.command()
@click.option(
    "--rejected", is_flag=True, help="Re-read the files whose latest outcome is rejected."
)
@click.option("--quarantine", is_flag=True, help="Re-read the quarantined rows with --reason.")
@click.option("--reason", help="Reason code or kind, e.g. invalid_enum or invalid_enum:category.")
@click.option("--feed", help="Only this feed.")
@click.option(
    "--since", help="Only files received at or after this time (ISO-8601 with offset, or a date)."
)
@click.option(
    "--landing", type=click.Path(path_type=Path), help="Landing folder [OCSE_LANDING_DIR]."
)
@click.option(
    "--warehouse", type=click.Path(path_type=Path), help="Warehouse file [OCSE_WAREHOUSE]."
)
@click.option(
    "--no-run", is_flag=True, help="Load only; the marts follow at the next run (default: now)."
)
def replay(rejected, quarantine, reason, feed, since, landing, warehouse, no_run):
    """Re-process what the gate refused, after a contract or policy fix; then run the pipeline.

    Every replay is a ledger row of its own (replay_of_file_id); nothing is loaded twice."""
    from ocse import runlock
    from ocse.ingest.replay import replay_quarantine, replay_rejected
    from ocse.warehouse import connect

    if rejected == quarantine:
        raise click.UsageError("Say what to replay: --rejected, or --quarantine --reason CODE.")
    if quarantine and not reason:
        raise click.UsageError("--quarantine needs --reason CODE (see `ocse replay --help`).")
    since_at = _parse_since(since)
    _set_env("OCSE_LANDING_DIR", landing and landing.resolve())
    _set_env("OCSE_WAREHOUSE", warehouse and warehouse.resolve())
    settings = _settings_with_key()
    try:
        lease = runlock.acquire(settings.warehouse, trigger="replay")
    except runlock.WarehouseBusyError as exc:
        _refuse_busy(exc)
    try:
        _check_keys(settings)
        key = settings.pseudonym_keys()
        conn = connect(settings.warehouse)
        try:
            if rejected:
                summary = replay_rejected(
                    conn, settings.landing_dir, key, feed=feed, since=since_at, progress=click.echo
                )
            else:
                summary = replay_quarantine(
                    conn,
                    settings.landing_dir,
                    key,
                    reason=reason,
                    feed=feed,
                    since=since_at,
                    progress=click.echo,
                )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            conn.close()
        what = "rejected file(s)" if rejected else f"quarantined row(s) with reason {reason}"
        click.echo(
            f"Replayed {summary.rows_considered:,} row(s) of {len(summary.files)} {what}: "
            f"{summary.rows_loaded:,} loaded, {summary.rows_still_quarantined:,} still refused."
        )
        for name in summary.missing:
            click.echo(
                click.style(f"Not replayed, no longer in the landing folder: {name}", fg="yellow")
            )
        for name in summary.changed:
            click.echo(
                click.style(
                    f"Not replayed, its bytes changed: {name} (the next run loads it as a new "
                    "version)",
                    fg="yellow",
                )
            )
        if no_run or not summary.rows_loaded:
            if summary.rows_loaded:
                click.echo("The marts include these rows after the next `ocse run`.")
            return
        from ocse.pipeline import run_pipeline

        started = datetime.now()
        result = run_pipeline(settings.resolved_as_of())
        _print_summary(result, (datetime.now() - started).total_seconds())
        if not result.success:
            sys.exit(1)
    finally:
        runlock.release(lease)


def _parse_since(since: str | None) -> datetime | None:
    if since is None:
        return None
    try:
        value = datetime.fromisoformat(since)
    except ValueError:
        raise click.BadParameter(
            f"{since!r} is not an ISO-8601 date or time", param_hint="--since"
        ) from None
    if value.tzinfo is None:
        if len(since) > 10:
            raise click.BadParameter(
                "a time needs an explicit offset, e.g. Z", param_hint="--since"
            )
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value


def _check_keys(settings) -> None:
    """Refuse, in one line and before anything runs, a key the warehouse does not know under
    its version (ocse/keys.py)."""
    from ocse import keys
    from ocse.settings import MissingPseudonymKeyError
    from ocse.warehouse import connect, ensure_schema

    try:
        key = settings.pseudonym_keys()
        conn = connect(settings.warehouse)
        try:
            ensure_schema(conn)
            _, warnings = keys.verify(conn, key)
        finally:
            conn.close()
    except (keys.KeyMismatchError, MissingPseudonymKeyError) as exc:
        raise click.ClickException(str(exc)) from None
    for warning in warnings:
        click.echo(click.style(f"warning: {warning}", fg="yellow"), err=True)


def _refuse_busy(exc: Exception) -> None:
    """Another writer holds the warehouse lease: say who, exit 75, having done nothing."""
    click.echo(click.style(f"Refused: {exc}", fg="red"), err=True)
    sys.exit(EXIT_BUSY)


def _settings_with_key():
    """The settings, with a readable key (a clear message otherwise, never a traceback)."""
    from ocse.settings import MissingPseudonymKeyError, get_settings

    try:
        settings = get_settings()
        settings.key_bytes  # noqa: B018 - fail here, not half-way
    except MissingPseudonymKeyError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.ClickException(f"Invalid setting: {exc}") from None
    return settings


@main.group()
def keys() -> None:
    """Pseudonymisation keys: status and rotation (ocse/keys.py; README "Operating the
    warehouse")."""


@keys.command("status")
def keys_status() -> None:
    """The key versions this warehouse used, and whether the configured keys match them."""
    from ocse import keys as key_registry
    from ocse.warehouse import connect

    settings = _settings_with_key()
    configured = settings.pseudonym_keys()
    if not settings.warehouse.exists():
        raise click.ClickException(f"No warehouse at {settings.warehouse} yet.")
    conn = connect(settings.warehouse, read_only=True)
    try:
        known = key_registry.registered(conn)
        links = key_registry.link_count(conn)
    finally:
        conn.close()
    by_version = {configured.version: ("current", configured)}
    if configured.previous is not None:
        by_version[configured.previous.version] = ("previous", configured.previous)
    for version, entry in known.items():
        role, key = by_version.get(version, (None, None))
        state = (
            ""
            if key is None
            else f"  [{role}: "
            + ("matches]" if key.fingerprint == entry.fingerprint else "DOES NOT MATCH]")
        )
        window = (
            f", transition until {entry.transition_until:%Y-%m-%d %H:%M}Z"
            if entry.transition_until
            else ""
        )
        click.echo(
            f"version {version}: fingerprint {entry.fingerprint}, registered "
            f"{entry.registered_at:%Y-%m-%d %H:%M}Z{window}{state}"
        )
    if not known:
        click.echo("No key registered yet: the first run registers the configured key.")
    click.echo(f"{links:,} pseudonym link(s) recorded across key versions.")


@keys.command("rotate")
@click.option(
    "--new-key-file",
    type=click.Path(path_type=Path),
    help="The new key (created, mode 600, when it does not exist). Default: beside the "
    "current key file, named for the new version.",
)
@click.option(
    "--window-days",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Transition window: both keys are used, and every person seen is linked. Cover the "
    "longest policy look-back (180 days).",
)
def keys_rotate(new_key_file: Path | None, window_days: int) -> None:
    """Register a new key version, replacing the current one, with a transition window."""
    from datetime import timedelta

    from ocse import keys as key_registry
    from ocse import runlock
    from ocse.pseudonymise import PseudonymKey
    from ocse.settings import read_key_file
    from ocse.warehouse import connect, ensure_schema

    settings = _settings_with_key()
    if settings.pseudonym_key_file is None:
        raise click.ClickException(
            "Rotation needs the current key in a file (OCSE_PSEUDONYM_KEY_FILE), not inline."
        )
    if settings.pseudonym_previous_key_file is not None:
        raise click.ClickException(
            "A rotation is already configured (OCSE_PSEUDONYM_PREVIOUS_KEY_FILE is set): finish "
            "it first (see `ocse keys status`)."
        )
    current = settings.pseudonym_keys()
    version = current.version + 1
    new_key_file = new_key_file or settings.pseudonym_key_file.with_name(
        f"pseudonym.v{version}.key"
    )
    if not new_key_file.exists():
        new_key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(new_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        click.echo(f"Created key file {new_key_file} (mode 600).")
    try:
        new = PseudonymKey.from_secret(read_key_file(new_key_file, "--new-key-file"), version)
        lease = runlock.acquire(settings.warehouse, trigger="keys rotate")
    except runlock.WarehouseBusyError as exc:
        _refuse_busy(exc)
    except Exception as exc:  # a bad key file: one line, never a traceback
        raise click.ClickException(str(exc)) from None
    try:
        conn = connect(settings.warehouse)
        try:
            ensure_schema(conn)
            entry = key_registry.rotate(conn, current, new, timedelta(days=window_days))
        except (key_registry.KeyMismatchError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            conn.close()
    finally:
        runlock.release(lease)
    click.echo(
        f"Key version {version} registered (fingerprint {entry.fingerprint}), replacing "
        f"version {current.version}; transition window until "
        f"{entry.transition_until:%Y-%m-%d %H:%M}Z."
    )
    click.echo(
        "Set these for every process that runs the pipeline (.env, the Dagster daemon):\n"
        f"  OCSE_PSEUDONYM_KEY_FILE={new_key_file.resolve()}\n"
        f"  OCSE_PSEUDONYM_KEY_VERSION={version}\n"
        f"  OCSE_PSEUDONYM_PREVIOUS_KEY_FILE={settings.pseudonym_key_file.resolve()}\n"
        f"  OCSE_PSEUDONYM_PREVIOUS_KEY_VERSION={current.version}\n"
        f"After {entry.transition_until:%Y-%m-%d}: unset the two PREVIOUS settings and destroy "
        "the old key file."
    )


@main.command("backup")
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="A new (or empty) folder."
)
def backup_command(out: Path) -> None:
    """Copy the warehouse, the alert store and the access store, consistently (under the
    warehouse lease), with a manifest of sizes and SHA-256. The key is not copied: keep it
    apart. Restore: README "Operating the warehouse"."""
    from ocse import runlock
    from ocse.backup import backup

    settings = _settings_with_key()
    try:
        manifest = backup(settings, out, progress=click.echo)
    except runlock.WarehouseBusyError as exc:
        _refuse_busy(exc)
    except (FileExistsError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    total = sum(f["bytes"] for f in manifest["files"])
    click.echo(
        f"Backed up {len(manifest['files'])} file(s), {total / 2**20:,.1f} MiB, to {out} "
        f"(manifest.json); key versions {[k['version'] for k in manifest['key_versions']]}."
    )


# Exit codes of `ocse run` besides 0 (success) and 1 (the run failed, nothing published).
EXIT_BUSY = 75  # EX_TEMPFAIL: another run holds the warehouse; try again later
EXIT_ALERTS_UNDELIVERED = 3  # published, but an alert channel was down


def _print_summary(summary, elapsed: float) -> None:
    line = "─" * 72
    click.echo(line)
    status = (
        click.style("succeeded", fg="green") if summary.success else click.style("FAILED", fg="red")
    )
    click.echo(
        f"Run {summary.run_id[:8]} {status} in {elapsed:.1f}s (as of {summary.as_of.isoformat()})"
    )
    files = (
        ", ".join(f"{n} {outcome}" for outcome, n in sorted(summary.files.items())) or "none new"
    )
    click.echo(f"Files:  {files}")
    click.echo(f"Rows:   {summary.rows_loaded:,} loaded, {summary.rows_quarantined:,} quarantined")
    if summary.reasons:
        click.echo("Quarantined rows by reason:")
        for reason, n in summary.reasons.most_common(12):
            click.echo(f"  {n:>8,}  {reason}")
    for name, error in summary.rejected[:10]:
        click.echo(f"Rejected file: {name}: {error}")
    if summary.alerts:
        a = summary.alerts
        click.echo(
            f"Alerts: {a.get('raised', 0)} raised, {a.get('backlog', 0)} backlog in "
            f"{a.get('backlog_digests', 0)} digest(s), {a.get('resolved', 0)} resolved"
            + (" (backfill: alerts follow the newest T)" if a.get("mode") == "backfill" else "")
        )
    for channel, info in sorted(summary.channels.items()):
        line = (
            f"Alert channel {channel}: {info['channel_state']}, {info['delivered']} delivered, "
            f"{info['waiting'] + info['retry_later']} waiting, {info['failed']} failed"
        )
        if info["channel_state"] == "down":
            click.echo(click.style(f"{line} ({info['error'] or 'down'})", fg="red"))
        elif info["delivered"] or info["failed"]:
            click.echo(line)
    if summary.channels_down:
        click.echo(
            click.style(
                "Alert delivery failed on: " + ", ".join(summary.channels_down) + ". The alerts "
                "stay queued and are retried (probes with backoff); see `ocse alerts status`.",
                fg="red",
            )
        )
    if summary.failure:
        click.echo(click.style(f"Failure: {summary.failure}", fg="red"))
        click.echo("The previous serving snapshot, if any, was left as it was.")
    elif summary.published_tables:
        click.echo(f"Published {len(summary.published_tables)} tables to the serving snapshot.")
        h = summary.headline
        if h:
            share = "n/a" if h["within_sla_share"] is None else f"{h['within_sla_share']:.1%}"
            click.echo(
                f"Marts:  {h['takedowns']:,} takedowns, {share} within SLA; open clocks: "
                f"{h['open_breaches']:,} breached, {h['open_near_breaches']:,} near breach; "
                f"list: {h['black_listed']:,} black, {h['grey_listed']:,} grey"
            )
    click.echo(line)


@main.command()
@click.option("--port", type=int, default=None, help="Port [OCSE_DASHBOARD_PORT, 8501].")
@click.option(
    "--address",
    default=None,
    help="Interface to listen on [OCSE_DASHBOARD_ADDRESS, 127.0.0.1]; serve other machines "
    "through a reverse proxy with TLS instead (README).",
)
def dashboard(port: int | None, address: str | None) -> None:
    """Serve the dashboards (read only the serving snapshot; sign-in in front)."""
    from ocse.settings import get_settings

    settings = get_settings()
    server = PROJECT_ROOT / "dashboards" / "server.py"
    streamlit = Path(sys.executable).parent / "streamlit"
    os.execv(
        str(streamlit),
        [
            str(streamlit),
            "run",
            str(server),
            "--server.address",
            address or settings.dashboard_address,
            "--server.port",
            str(port or settings.dashboard_port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
    )


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_KEY_FILE, show_default=True)
def keygen(out: Path) -> None:
    """Create a random pseudonymisation key file (outside git) if none exists; print its path."""
    if out.exists():
        click.echo(f"Key file already exists: {out}")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    click.echo(f"Created key file {out} (mode 600). Set OCSE_PSEUDONYM_KEY_FILE={out}")


@main.group()
def contracts() -> None:
    """Work with the feed contracts in data_contracts/."""


SOURCES_FILE = PROJECT_ROOT / "dbt" / "models" / "staging" / "raw" / "_raw__sources.yml"


@contracts.command("sync")
def contracts_sync() -> None:
    """Regenerate the dbt sources from the contracts."""
    from ocse.contracts import dbt_sources_yaml

    SOURCES_FILE.write_text(dbt_sources_yaml(), encoding="utf-8")
    click.echo(f"Wrote {SOURCES_FILE.relative_to(PROJECT_ROOT)}")


@contracts.command("check")
def contracts_check() -> None:
    """Fail if the dbt sources differ from what the contracts say."""
    from ocse.contracts import dbt_sources_yaml

    if SOURCES_FILE.read_text(encoding="utf-8") != dbt_sources_yaml():
        raise click.ClickException("dbt sources are out of date: run `ocse contracts sync`.")
    click.echo("dbt sources agree with the contracts.")


def _check_alerting(path: Path):
    from ocse.alerts.config import AlertingConfigError, load_alerting_config

    try:
        return load_alerting_config(path)
    except AlertingConfigError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def alerts() -> None:
    """Alert routing and a local receiver for the demo."""


@alerts.command("check")
def alerts_check() -> None:
    """Validate the alert routing (OCSE_ALERTING_CONFIG) and show where each alert goes."""
    from ocse.alerts.config import ALERT_TYPES, SEVERITIES
    from ocse.settings import get_settings

    path = get_settings().alerting_config
    config = _check_alerting(path)
    click.echo(f"{path}: valid. Channels: {', '.join(config.channels) or 'none'}")
    for alert_type in ALERT_TYPES:
        routes = {sev: config.channels_for(alert_type, sev) for sev in SEVERITIES}
        shown = ", ".join(f"{sev}→{'+'.join(ch) or '-'}" for sev, ch in routes.items())
        click.echo(f"  {alert_type:<24} {shown}")


@alerts.command("receive")
@click.option("--http-port", default=8765, show_default=True)
@click.option("--smtp-port", default=8025, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=PROJECT_ROOT / ".dagster_home" / "alerts_received.jsonl",
    show_default=True,
    help="Every alert received is appended here as one JSON line.",
)
def alerts_receive(http_port: int, smtp_port: int, out: Path) -> None:
    """Listen on 127.0.0.1 for webhook posts (/alerts) and e-mail, like the operations
    team's tools would, and print one line per alert received."""
    import time

    from ocse.alerts.receiver import SmtpReceiver, WebhookReceiver

    out.parent.mkdir(parents=True, exist_ok=True)
    web = WebhookReceiver(http_port, path=out, echo=True).start()
    mail = SmtpReceiver(smtp_port, path=out, echo=True).start()
    click.echo(
        f"Receiving alerts: webhook http://127.0.0.1:{web.port}/alerts, "
        f"SMTP 127.0.0.1:{mail.port}; writing {out}"
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        web.stop()
        mail.stop()


def _store():
    from ocse.alerts.store import open_store
    from ocse.settings import get_settings

    path = get_settings().alerts_store
    if not path.exists():
        raise click.ClickException(f"No alert store at {path}: no pipeline run raised alerts yet.")
    return open_store(path)


@alerts.command("status")
def alerts_status() -> None:
    """Each channel's state and its deliveries by state."""
    with _store() as store:
        channels = {
            c: (state, since, probe, error)
            for c, state, since, probe, error in store.rows(
                "select channel, state, down_since, next_probe_at, last_error from channels"
            )
        }
        counts = store.rows(
            "select channel, state, count(*) from deliveries group by 1, 2 order by 1, 2"
        )
    by_channel: dict[str, dict[str, int]] = {}
    for channel, state, n in counts:
        by_channel.setdefault(channel, {})[state] = n
    for channel in sorted(set(by_channel) | set(channels)):
        state, since, probe, error = channels.get(channel, ("up", None, None, None))
        shown = ", ".join(f"{n:,} {s}" for s, n in sorted(by_channel.get(channel, {}).items()))
        extra = (
            f" since {since}, next probe {probe}, last error: {error}" if state == "down" else ""
        )
        click.echo(f"{channel:<20} {state}{extra}\n{'':<20} {shown or 'no deliveries'}")


@alerts.command("retry")
@click.option("--failed", is_flag=True, help="Also re-queue deliveries that were failed for good.")
def alerts_retry(failed: bool) -> None:
    """Re-queue alert deliveries: every pending one due now and every down channel probed at
    the next delivery round (the alert job, within seconds under the daemon, or the next
    run); with --failed, failed deliveries too, their attempts reset. Logged in the store."""
    import getpass
    from datetime import UTC

    from ocse.alerts.deliver import requeue

    with _store() as store:
        n = requeue(store, failed=failed, requested_by=getpass.getuser(), now=datetime.now(UTC))
    click.echo(f"Re-queued {n:,} deliveries{' (failed ones included)' if failed else ''}.")


@main.group()
def users() -> None:
    """Dashboard accounts (OCSE_ACCESS_DB). Passwords are stored as salted argon2 hashes."""


@users.command("add")
@click.argument("username")
@click.option(
    "--role",
    required=True,
    type=click.Choice(list(ROLES)),
)
@click.option(
    "--password",
    envvar="OCSE_NEW_PASSWORD",
    help="The password (else prompted, or OCSE_NEW_PASSWORD). Not needed with --oidc-only.",
)
@click.option(
    "--oidc-only",
    is_flag=True,
    help="No password: the user signs in through OIDC (st.login); USERNAME is their e-mail.",
)
@click.option("--replace", is_flag=True, help="Overwrite an existing account of that name.")
def users_add(
    username: str, role: str, password: str | None, oidc_only: bool, replace: bool
) -> None:
    """Create a dashboard account."""
    from ocse.access import AccessStoreError, access_store

    if oidc_only:
        password = None
    elif password is None:
        if not sys.stdin.isatty():
            raise click.ClickException(
                "no password given: pass --password, set OCSE_NEW_PASSWORD, or run in a terminal"
            )
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = access_store().add_user(username, role, password, replace=replace)
    except (AccessStoreError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    how = "OIDC sign-in" if oidc_only else "password"
    click.echo(f"Added {user.username} ({user.role.value}, {how}).")


@users.command("remove")
@click.argument("username")
def users_remove(username: str) -> None:
    """Delete a dashboard account (its access-log entries stay)."""
    from ocse.access import AccessStoreError, access_store

    try:
        access_store().remove_user(username)
    except AccessStoreError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Removed {username}.")


@users.command("list")
def users_list() -> None:
    """The accounts, their roles and how they sign in."""
    from ocse.access import access_store

    store = access_store()
    accounts = store.users()
    if not accounts:
        click.echo(f"No accounts in {store.path}. Add one: ocse users add NAME --role ROLE")
        return
    click.echo(f"{'username':<32} {'role':<12} {'sign-in':<9} created (UTC)")
    for user in accounts:
        how = "password" if user.has_password else "oidc"
        click.echo(f"{user.username:<32} {user.role.value:<12} {how:<9} {user.created_at[:19]}")


@users.command("sessions")
def users_sessions() -> None:
    """The dashboard sessions active now: who, role, since when, last used, source."""
    from ocse.access.sessions import session_store

    active = session_store().active()
    if not active:
        click.echo("No active sessions.")
        return
    click.echo(f"{'username':<32} {'role':<12} {'via':<9} {'signed in (UTC)':<20} "
               f"{'last used (UTC)':<20} source")  # fmt: skip
    for s in active:
        click.echo(
            f"{s.username:<32} {s.role:<12} {s.via:<9} {s.created_at:%Y-%m-%d %H:%M:%S}  "
            f"{s.last_seen_at:%Y-%m-%d %H:%M:%S}  {s.source[:12]}"
        )


@users.command("revoke")
@click.argument("username")
def users_revoke(username: str) -> None:
    """End every active session of USERNAME now (each end is in the access log)."""
    import getpass

    from ocse.access.sessions import session_store

    ended = session_store().revoke(username, by=getpass.getuser())
    if not ended:
        raise click.ClickException(f"{username} has no active session")
    click.echo(f"Revoked {ended} session(s) of {username}: signed out on their next action.")


@main.group()
def releases() -> None:
    """The release register (OCSE_ACCESS_DB): which grains and k each research partner
    receives, its members, and every release made to it. Kept by the data steward."""


def _register_command(action):
    """action(the register)'s result, a register error shown as the command's error."""
    from ocse.access import ReleaseRegisterError, release_register

    try:
        return action(release_register())
    except ReleaseRegisterError as exc:
        raise click.ClickException(str(exc)) from None


@releases.command("set")
@click.argument("partner")
@click.option(
    "--grain",
    "grains",
    required=True,
    multiple=True,
    type=click.Choice(["week", "month"]),
    help="A grain the partner receives (repeat for both).",
)
@click.option("--k", "k", required=True, type=click.IntRange(min=5), help="Its threshold k.")
def releases_set(partner: str, grains: tuple[str, ...], k: int) -> None:
    """Register a research partner, or change its grains and k (what it already holds
    still binds it)."""
    registered = _register_command(lambda register: register.set_partner(partner, grains, k))
    click.echo(f"Partner {registered.name}: {', '.join(registered.grains)} at k={registered.k}.")


@releases.command("list")
def releases_list() -> None:
    """The partners, their grains, k and members."""
    from ocse.access import release_register

    register = release_register()
    partners = register.partners()
    if not partners:
        click.echo(
            "No research partners yet. Register one: ocse releases set NAME --grain month --k 10"
        )
        return
    click.echo(f"{'partner':<24} {'grains':<11} {'k':>4}  members")
    for partner in partners:
        members = ", ".join(register.members(partner.name)) or "-"
        click.echo(f"{partner.name:<24} {','.join(partner.grains):<11} {partner.k:>4}  {members}")


@releases.command("remove")
@click.argument("partner")
def releases_remove(partner: str) -> None:
    """Remove a partner without members (its releases stay in the register)."""
    _register_command(lambda register: register.remove_partner(partner))
    click.echo(f"Removed partner {partner}.")


@releases.command("assign")
@click.argument("username")
@click.argument("partner")
def releases_assign(username: str, partner: str) -> None:
    """Make an account a member of a partner (one partner per account)."""
    _register_command(lambda register: register.assign(username, partner))
    click.echo(f"{username} is a member of {partner}.")


@releases.command("unassign")
@click.argument("username")
def releases_unassign(username: str) -> None:
    """Take an account out of its partner."""
    _register_command(lambda register: register.unassign(username))
    click.echo(f"{username} is no longer a member of a partner.")


@releases.command("history")
@click.argument("partner", required=False)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
def releases_history(partner: str | None, limit: int) -> None:
    """What was released (newest first): when, to whom, how, which period, grain and k."""
    from ocse.access import release_register

    released = release_register().history(partner, limit=limit)
    if not released:
        click.echo("Nothing released yet.")
        return
    click.echo(
        f"{'at (UTC)':<19} {'partner':<16} {'user':<20} {'channel':<8} {'grain':<5} "
        f"{'k':>3} {'period':<24} {'sha256':<12} name"
    )
    for r in released:
        click.echo(
            f"{r.at[:19]:<19} {r.partner:<16} {r.username:<20} {r.channel:<8} {r.grain:<5} "
            f"{r.k:>3} {f'{r.period_start} .. {r.period_end}':<24} {r.sha256[:12] or '-':<12} "
            f"{r.name or '-'}"
        )


# --- research exports and the assessment report (ocse/exports, ocse/report) ----------------


def _who(as_user: str | None) -> tuple[str, str]:
    import getpass

    return (as_user, "cli") if as_user else (getpass.getuser(), "cli")


def _snapshot_path(snapshot: Path | None) -> Path:
    from ocse.settings import get_settings

    return snapshot or get_settings().serving


_K_OPTION = click.option(
    "--k",
    "k",
    type=click.IntRange(min=5),
    default=None,
    help="Disclosure threshold: counts below it are withheld; never below 5 "
    "[OCSE_DISCLOSURE_K, default 10].",
)
_SNAPSHOT_OPTION = click.option(
    "--snapshot",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Serving snapshot to read [OCSE_SERVING].",
)
_AS_USER_OPTION = click.option(
    "--as-user",
    "as_user",
    default=None,
    help="Name recorded in the access log (default: the login name).",
)


@main.group("export")
def export_group() -> None:
    """Anonymised, disclosure-controlled exports for research partners."""


@export_group.command("research")
@click.option(
    "--partner",
    required=True,
    help="The research partner receiving it (ocse releases list): its grains and k apply.",
)
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--grain",
    type=click.Choice(["week", "month"]),
    default=None,
    help="Week or month [the partner's grain, when it has only one].",
)
@click.option(
    "--k",
    "k",
    type=click.IntRange(min=5),
    default=None,
    help="Disclosure threshold: counts below it are withheld; never below the partner's "
    "registered k [the partner's k].",
)
@_SNAPSHOT_OPTION
@_AS_USER_OPTION
def export_research(partner, start, end, out, grain, k, snapshot, as_user) -> None:
    """Aggregate tables (CSV, Parquet), data dictionary and manifest for the whole weeks or
    months between --from and --to, for a partner of the release register, written
    atomically to --out and recorded in the register and the access log."""
    from ocse.exports.publication import USER_ERRORS
    from ocse.exports.research import write_research_export

    username, role = _who(as_user)
    try:
        result = write_research_export(
            _snapshot_path(snapshot),
            start.date(),
            end.date(),
            out,
            partner=partner,
            grain=grain,
            k=k,
            username=username,
            role=role,
            progress=click.echo,
        )
    except USER_ERRORS as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Research export {result.name}: {result.covered[0]} .. {result.covered[1]}, "
        f"k={result.k}, policy version(s) {', '.join(map(str, result.policy_versions))}"
    )
    for table in result.tables:
        click.echo(
            f"  {table.name:<18} {table.grain:<5} {table.rows:>5} rows, "
            f"{table.cells_suppressed:,} of {table.cells:,} cells withheld"
        )
    click.echo(f"Recorded in the access log as {username} ({role}).")
    click.echo(f"Released to partner {result.partner} (ocse releases history {result.partner}).")


@main.group("report")
def report_group() -> None:
    """Reports that leave the platform."""


@report_group.command("assessment")
@click.option("--period", required=True, help="The quarter, e.g. 2025Q1.")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--no-pdf", is_flag=True, help="Write the HTML only (no Chromium needed).")
@_K_OPTION
@_SNAPSHOT_OPTION
@_AS_USER_OPTION
def report_assessment(period, out, no_pdf, k, snapshot, as_user) -> None:
    """The external assessment panel's report for a quarter: self-contained HTML and its
    PDF, under the research exports' disclosure control, recorded in the access log."""
    from ocse.exports.publication import USER_ERRORS
    from ocse.report.assessment import write_assessment_report
    from ocse.report.pdf import PdfError

    username, role = _who(as_user)
    try:
        result = write_assessment_report(
            _snapshot_path(snapshot),
            period,
            out,
            k=k,
            username=username,
            role=role,
            pdf=not no_pdf,
            progress=click.echo,
        )
    except (*USER_ERRORS, PdfError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Assessment report {result.period} (k={result.k}) in {result.out_dir}:")
    for name in result.files:
        click.echo(f"  {name}")
    withheld = ", ".join(f"{t} {n:,}" for t, n in result.cells_suppressed.items())
    click.echo(f"Cells withheld: {withheld}. Recorded in the access log as {username} ({role}).")


# --- the data's life: retention, erasure, the append-only seal (ocse/lifecycle) ------------


def _lifecycle_settings(warehouse: Path | None):
    from ocse.settings import get_settings

    _set_env("OCSE_WAREHOUSE", warehouse and warehouse.resolve())
    try:
        return get_settings()
    except ValueError as exc:
        raise click.ClickException(f"Invalid setting: {exc}") from None


_WAREHOUSE_OPTION = click.option(
    "--warehouse", type=click.Path(path_type=Path), help="Warehouse file [OCSE_WAREHOUSE]."
)


@main.group("retention")
def retention_group() -> None:
    """Retention periods per table (retention.yaml, OCSE_RETENTION_CONFIG)."""


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would be purged; change nothing.")
@_WAREHOUSE_OPTION
@_AS_USER_OPTION
def retention_run(dry_run: bool, warehouse: Path | None, as_user: str | None) -> None:
    """Purge every table of what is older than its period, holding the warehouse lease, and
    record an audit row per table (lifecycle.audit), zeros included."""
    from ocse import runlock
    from ocse.lifecycle.config import RetentionConfigError
    from ocse.lifecycle.guard import AppendOnlyViolation
    from ocse.lifecycle.retention import run_retention

    settings = _lifecycle_settings(warehouse)
    username, _ = _who(as_user)
    try:
        result = run_retention(settings, dry_run=dry_run, requested_by=username, log=click.echo)
    except runlock.WarehouseBusyError as exc:
        _refuse_busy(exc)
    except (RetentionConfigError, AppendOnlyViolation) as exc:
        raise click.ClickException(str(exc)) from None
    if dry_run:
        click.echo(
            f"Dry run {result.run_id}: {result.rows_removed:,} row(s) would go; nothing was "
            "changed or recorded."
        )
    else:
        click.echo(
            f"Retention run {result.run_id}: {result.rows_removed:,} row(s) removed, "
            f"{result.rows_cleared:,} cleared; {len(result.purges)} audit rows in "
            f"lifecycle.audit (by {username})."
        )


@retention_group.command("show")
def retention_show() -> None:
    """The period, floor and today's cutoff of every table."""
    from datetime import UTC

    from ocse.lifecycle.config import RetentionConfigError, known_tables, load_retention_config
    from ocse.lifecycle.retention import cutoff
    from ocse.settings import get_settings

    settings = get_settings()
    try:
        config = load_retention_config(settings.retention_config)
    except RetentionConfigError as exc:
        raise click.ClickException(str(exc)) from None
    now = datetime.now(UTC)
    click.echo(f"{settings.retention_config}:")
    for name, rule in known_tables().items():
        days = config.period(name)
        cut = cutoff(days, now, settings.reporting_tz).isoformat() if days else "-"
        shown = f"{days} days" if days else "forever"
        click.echo(f"  {name:<26} {shown:<10} floor {rule.floor_days:>4}  cutoff today {cut}")


@main.command("erase")
@click.option("--ref", "ref", required=True, help="The pseudonym to erase (p<version>:<hex>).")
@click.option("--request-id", "request_id", required=True, help="The request's id (ticket).")
@click.option(
    "--no-publish",
    is_flag=True,
    help="Do not republish the serving snapshot now (it keeps the ref until the next run).",
)
@_WAREHOUSE_OPTION
@_AS_USER_OPTION
def erase_command(ref, request_id, no_publish, warehouse, as_user) -> None:
    """Erase one person's pseudonym from the warehouse, the alert store, the access log and
    the serving snapshot, holding the warehouse lease; once per request id."""
    from ocse import runlock
    from ocse.lifecycle.erasure import ErasureError, erase
    from ocse.lifecycle.guard import AppendOnlyViolation

    settings = _lifecycle_settings(warehouse)
    username, _ = _who(as_user)
    try:
        result = erase(
            ref, request_id, requested_by=username, settings=settings, publish=not no_publish
        )
    except runlock.WarehouseBusyError as exc:
        _refuse_busy(exc)
    except (ErasureError, AppendOnlyViolation) as exc:
        raise click.ClickException(str(exc)) from None
    who = f"request {result.request_id} (ref sha256 {result.ref_sha256[:16]}…)"
    if result.already_done:
        click.echo(f"Already erased: {who} completed at {result.completed_at}; nothing changed.")
    else:
        click.echo(
            f"Erased {who}: {result.refs} ref(s), {result.rows_removed:,} row(s) removed, "
            f"{result.values_cleared:,} row(s) with a field cleared."
        )
        for table, n in sorted(result.removed.items()):
            click.echo(f"  {table:<40} {n:>8,} removed")
        for table, n in sorted(result.cleared.items()):
            click.echo(f"  {table:<40} {n:>8,} cleared")
        for table, n in sorted(result.redacted.items()):
            click.echo(f"  {table:<40} {n:>8,} redacted")
        if result.republished:
            click.echo("Serving snapshot republished without it.")
        elif result.stale_snapshot:
            click.echo(
                f"The serving snapshot still shows it in {len(result.stale_snapshot)} table(s) "
                "until the next run publishes (--no-publish)."
            )
        else:
            click.echo("No serving snapshot yet: the first run publishes without it.")
        click.echo("The next pipeline run rebuilds the incremental marts in full.")
    if result.remaining:
        where = ", ".join(f"{t} ({n})" for t, n in sorted(result.remaining.items()))
        click.echo(click.style(f"Still found in: {where}", fg="red"), err=True)
        if result.already_done:
            click.echo("These rows arrived after the erasure: erase them with a new request id.")
        sys.exit(1)


@main.group("seal")
def seal_group() -> None:
    """The append-only seal of raw history, the ledger and the quarantine."""


@seal_group.command("verify")
@click.option("--full", is_flag=True, help="Recompute every checksum (reads every row).")
@_WAREHOUSE_OPTION
def seal_verify(full: bool, warehouse: Path | None) -> None:
    """Check that the append-only tables only grew since they were sealed; seal what the
    gate appended. Exit 1 naming the table when rows vanished or changed."""

    def body(conn) -> None:
        click.echo(_guard().verify(conn, full=full, by="ocse seal verify").line())

    _seal_command(warehouse, body)


@seal_group.command("accept")
@click.option("--reason", required=True, help="Why the change is accepted (recorded).")
@_WAREHOUSE_OPTION
@_AS_USER_OPTION
def seal_accept(reason: str, warehouse: Path | None, as_user: str | None) -> None:
    """After a violation was investigated: seal the tables as they are now (audit rows
    seal_accept with who, why, and the rows sealed before and now)."""
    username, _ = _who(as_user)

    def body(conn) -> None:
        counts = _guard().accept(conn, reason=reason, requested_by=username)
        click.echo(f"Sealed {len(counts)} tables as they are now, by {username}: {reason}")

    _seal_command(warehouse, body)


def _guard():
    from ocse.lifecycle import guard

    return guard


def _seal_command(warehouse: Path | None, body) -> None:
    from ocse import runlock
    from ocse.warehouse import connect, ensure_schema

    settings = _lifecycle_settings(warehouse)
    try:
        lease = runlock.acquire(settings.warehouse, trigger="seal")
    except runlock.WarehouseBusyError as exc:
        _refuse_busy(exc)
    try:
        conn = connect(settings.warehouse)
        try:
            ensure_schema(conn)
            body(conn)
        except _guard().AppendOnlyViolation as exc:
            raise click.ClickException(str(exc)) from None
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            conn.close()
    finally:
        runlock.release(lease)


main.add_command(generate_command)


if __name__ == "__main__":
    main()
