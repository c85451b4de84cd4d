"""`ocse generate`: write sample landing feeds, and with --follow keep them coming."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import click

from sample_data.generator import follow_batch, generate, read_state

# A follow batch never covers more than this: after a pause, the catch-up arrives as several
# batches of ordinary size instead of one huge one.
MAX_BATCH_SECONDS = 6 * 3600


def _parse_end(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 timestamp") from exc
    if parsed.tzinfo is None:
        # The feeds refuse offset-less timestamps for the same reason: a guessed zone shifts
        # every clock by hours.
        raise click.BadParameter(
            f"{value!r} has no offset; write e.g. 2025-03-31T16:00:00Z or ...T24:00:00+08:00"
        )
    return parsed


def _follow(out: Path, interval: float, max_batches: int | None, seed: int) -> None:
    state = read_state(out)
    if state is None:
        raise click.ClickException(f"{out} has no generator state to follow")
    if state["seed"] != seed:
        click.echo(
            f"continuing the landing's own seed {state['seed']} (not {seed}), so that "
            "accounts and repeat offenders stay the same"
        )
    last_end, batch_no = int(state["last_end"]), int(state["batch_no"])
    click.echo(
        f"following: a batch every {interval:g}s after "
        f"{datetime.fromtimestamp(last_end, UTC).isoformat()} (Ctrl-C stops)"
    )
    done = 0
    while max_batches is None or done < max_batches:
        # A batch covers (last end, now], never the future: wait at least into the next second.
        due = last_end + max(interval, 1.0)
        if time.time() < due:
            time.sleep(due - time.time())
        batch_end = min(int(time.time()), last_end + MAX_BATCH_SECONDS)
        batch_no += 1
        result = follow_batch(
            out,
            seed=int(state["seed"]),
            batch_start=last_end,
            batch_end=batch_end,
            scale_per_day=float(state["scale_per_day"]),
            batch_no=batch_no,
        )
        rows = result["rows"]
        click.echo(
            f"batch {batch_no} {result['start']} .. {result['end']}: "
            + ", ".join(f"{feed} {n}" for feed, n in rows.items())
            + f" rows; {sum(result['files'].values())} files"
            + (f"; bad rows {sum(result['bad_rows'].values())}" if result["bad_rows"] else "")
        )
        last_end = batch_end
        done += 1


@click.option(
    "--seed", type=click.IntRange(min=0), default=42, show_default=True, help="Random seed."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("landing"),
    show_default=True,
    help="Landing folder to write into.",
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Length of the period.",
)
@click.option(
    "--scale",
    type=click.IntRange(min=0),
    default=20000,
    show_default=True,
    help="Screening hits over the whole period (reports, actions, cases follow).",
)
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="First day (Asia/Shanghai midnight); the period is start .. start+days.",
)
@click.option(
    "--end",
    "end_text",
    default=None,
    metavar="TIMESTAMP",
    help="End of the period, ISO-8601 with offset. Default: now, to the minute.",
)
@click.option(
    "--bad-share",
    type=click.FloatRange(0, 0.5, max_open=True),
    default=0.01,
    show_default=True,
    help="Share of rows that are deliberately invalid.",
)
@click.option(
    "--follow",
    is_flag=True,
    help="After the initial data, keep writing a batch every --interval seconds.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    default=300,
    show_default=True,
    help="Seconds between follow batches.",
)
@click.option(
    "--max-batches",
    type=click.IntRange(min=1),
    default=None,
    help="Stop following after this many batches.",
)
def _generate(
    seed, out, days, scale, start, end_text, bad_share, follow, interval, max_batches
) -> None:
    """Write deterministic sample landing feeds (screening hits, reports, enforcement
    actions, cases) ending now, with deliberate bad rows and files.

    With --follow, a landing that already holds generated data is continued from where it
    stopped (no new initial period); otherwise the initial period is generated first.
    """
    end = _parse_end(end_text)
    if start is not None and end is not None:
        raise click.UsageError("give --start or --end, not both")
    has_state = read_state(out) is not None
    if has_state and not follow:
        raise click.ClickException(
            f"{out} already holds generated data (files are written once and never changed). "
            "Use another --out, delete it, or continue it with --follow."
        )
    if not has_state:
        generate(
            out,
            seed=seed,
            days=days,
            scale=scale,
            start=start.date() if start else None,
            end=end,
            bad_share=bad_share,
            progress=click.echo,
        )
    if follow:
        try:
            _follow(out, interval, max_batches, seed)
        except KeyboardInterrupt:
            click.echo("stopped following")


generate_command = click.command(
    "generate", context_settings={"help_option_names": ["-h", "--help"]}
)(_generate)

if __name__ == "__main__":
    generate_command()
