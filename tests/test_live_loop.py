"""The soak test: the live loop as operators run it, for several minutes (bench/live.py).

The real Dagster daemon with the landing sensor, the pipeline schedule (every minute), the
delivery and failure sensors; the real receiver; a batch landing every few seconds; CSAM
breach files planted along the way; one receiver outage long enough that the old delivery
(every due alert tried on every round) would have spent every attempt; one pipeline run
killed with `kill -9` while its dbt child works.

What operations would see go wrong: an alert missing, an alert twice, a critical alert
dropped during an outage, runs piling up in the queue, a run at an older T than the one
before it, a killed run that never ends (and never alerts), an orphan dbt."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from bench.live import BIN, PROJECT_ROOT, LiveLoop
from tests.feeds import TEST_KEY

pytestmark = pytest.mark.soak


def _received_ids(loop: LiveLoop) -> Counter:
    """(channel, idempotency key) of every message received; e-mail carries it as its
    Message-ID."""
    ids = Counter()
    for r in loop.received_records():
        if r["channel"] == "webhook":
            ids[("hook", r["idempotency_key"])] += 1
        else:
            ids[("mail", r["message_id"])] += 1
    return ids


def _expected_id(alert_key: str, channel: str) -> tuple[str, str]:
    key = f"{alert_key}/{channel}"
    if channel == "hook":
        return ("hook", key)
    return ("mail", f"<{key.replace(':', '.').replace('/', '.')}@ocse>")


@pytest.fixture
def loop(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OCSE_")},
        "OCSE_PSEUDONYM_KEY": TEST_KEY,
        "OCSE_DUCKDB_MEMORY_LIMIT": "1GB",
    }
    live = LiveLoop(work=tmp_path, env=env, follow_interval=8)
    env = live.configure()
    subprocess.run(
        [str(BIN / "ocse"), "generate", "--seed", "11", "--days", "2", "--scale", "600"]
        + ["--out", str(live.landing)],
        env=env,
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
    )
    live.start()
    yield live
    live.stop()


def test_the_live_loop_delivers_every_alert_once_through_an_outage_and_a_killed_run(loop):
    # 1. the daemon's first run (the sensor sees the landing), then a live breach
    loop.wait_for(lambda: loop.successful_runs() >= 1, 420, "the first pipeline run")
    first = loop.plant_breach("a")
    loop.wait_for(lambda: loop.received_for(first), 240, "the alert of breach a")

    # 2. the receiver goes down for 75 s (rounds every few seconds: the sensor, the runs);
    # a breach lands meanwhile
    loop.stop_receiver()
    during = loop.plant_breach("b")
    time.sleep(75)
    loop.start_receiver()
    loop.alerts_retry("--failed")  # the operator's step once the receiver is back
    loop.wait_for(lambda: loop.received_for(during), 240, "the alert of breach b")

    # 3. a run killed while dbt works; the loop carries on and says so
    killed = loop.kill_a_running_run()
    assert loop.orphans == []  # its dbt died with it
    after = loop.plant_breach("c")
    loop.wait_for(lambda: loop.received_for(after), 360, "the alert of breach c")
    loop.wait_for(
        lambda: any(killed in json.dumps(r) for r in loop.received_records()),
        180,
        "the failed-run alert of the killed run",
    )
    loop.stop_follow()
    loop.settle(timeout=420)
    report = loop.report()
    store = sqlite3.connect(f"file:{loop.work / 'alerts.sqlite'}?mode=ro", uri=True)

    # No run waits behind another: at most one waiting, one running, ever
    assert report["max_waiting"] <= 1, report
    assert report["max_started"] <= 1, report
    assert report["runs"].get("SUCCESS", 0) >= 4, report
    # T of successive runs never decreases, and no run was taken for a backfill
    evaluations = store.execute(
        "select mode, as_of from evaluations where mode != 'event' order by evaluation_id"
    ).fetchall()
    assert {mode for mode, _ in evaluations} == {"live"}
    as_ofs = [t for _, t in evaluations]
    assert as_ofs == sorted(as_ofs)

    # The killed run ended as failed, alerted once per routed channel, and left no dbt behind
    with loop.instance() as instance:
        assert instance.get_run_by_id(killed).status.value == "FAILURE"
    assert not loop.processes_of_this_loop("dbt build")

    # Every delivery of every alert was made, none failed or left pending...
    states = dict(store.execute("select state, count(*) from deliveries group by 1").fetchall())
    assert set(states) <= {"delivered", "digested"}, states
    # ... and each was received exactly once per channel
    delivered = store.execute(
        "select alert_key, channel from deliveries where state = 'delivered'"
    ).fetchall()
    received = _received_ids(loop)
    expected = Counter(_expected_id(k, c) for k, c in delivered)
    assert received == expected
    # the critical ones included: each planted breach on both channels
    for content_id in (first, during, after):
        channels = Counter(r["channel"] for r in loop.received_for(content_id))
        assert channels == {"webhook": 1, "smtp": 1}, (content_id, channels)
    killed_alert = store.execute(
        "select count(*) from deliveries where alert_key = ? and state = 'delivered'",
        (f"pipeline_failed:{killed}",),
    ).fetchone()[0]
    assert killed_alert == 2

    # During the outage the channel was probed, not hammered: one attempt per round while it
    # was down. The round that found it down sent its canary alone first; only an outage that
    # began in the middle of that round's parallel sends can have caught more in flight.
    rounds = store.execute(
        "select channel, channel_state, delivered + retry_later + failed from delivery_rounds "
        "order by round_id"
    ).fetchall()
    before: dict[str, str] = {}
    while_down, finding = [], []
    for channel, state, tried in rounds:
        if state == "down":
            (while_down if before.get(channel) == "down" else finding).append(tried)
        before[channel] = state
    assert finding and while_down, rounds
    assert max(while_down) <= 1, rounds
    assert max(finding) <= 8, rounds  # deliver_due's threads per channel

    # Every alert the marts justify at the last T is in the store: each open clock past 75 %
    published = duckdb.connect(str(loop.work / "serving.duckdb"), read_only=True)
    clocks = published.execute(
        "select clock || ':' || subject_id || ':' || strftime(clock_started_at at time zone "
        "'UTC', '%Y%m%dT%H%M%SZ') || ':' || status from marts.fct_open_sla_breaches"
    ).fetchall()
    published.close()
    known = {k for (k,) in store.execute("select alert_key from outbox").fetchall()}
    assert clocks and {k for (k,) in clocks} <= known
    Path(loop.work / "report.json").write_text(json.dumps(report, indent=2))
