"""The life of screened content, reports and cases, simulated vectorised with numpy.

Each function turns a batch of draws into *record* frames: one row per hit, report, action
or case holding every event time of its whole life (detection, review, takedown, referral,
...), some of which may lie after the end of the period. `versions.py` later cuts those
lives into the versioned rows the feeds deliver.

Times are float epoch seconds with NaN for "never" while simulating (NaN propagates through
arithmetic the way a missing event should); they are floored to whole seconds, which keeps
every `a <= b` ordering, when the frames are built.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import polars as pl

from sample_data import ids as idspace
from sample_data.ids import IdMaker
from sample_data.rhythm import Spike, category_weights, sample_times
from sample_data.schema import CATEGORY_CODES, CSAM, ZERO_TOLERANCE

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0

CATS = np.array(CATEGORY_CODES)
IS_CSAM = np.array([c in CSAM for c in CATEGORY_CODES])
IS_ZT = np.array([c in ZERO_TOLERANCE for c in CATEGORY_CODES])

METHODS = np.array(["hash_match", "keyword_match", "classifier", "human_moderator"])
HASH, KEYWORD, CLASSIFIER, HUMAN = range(4)
TYPES = np.array(["image", "video", "text", "livestream", "chat_message", "profile", "other"])
IMAGE, VIDEO, TEXT, LIVESTREAM, CHAT, PROFILE, OTHER = range(7)
POSTED, HELD, BLOCKED = range(3)

# Detection method by category (rows in CATEGORY_CODES order): CSAM is mostly known material
# caught by the hash database; contact offences surface in chat, through keywords.
_CONTACT = [0.00, 0.50, 0.32, 0.18]
METHOD_P = np.array(
    [
        _CONTACT,
        _CONTACT,
        [0.00, 0.45, 0.35, 0.20],
        [0.05, 0.15, 0.55, 0.25],
        [0.00, 0.35, 0.45, 0.20],
        [0.70, 0.05, 0.20, 0.05],
        [0.72, 0.04, 0.20, 0.04],
        [0.00, 0.50, 0.35, 0.15],
    ]
)
_CHATTY = [0.05, 0.02, 0.20, 0.03, 0.60, 0.08, 0.02]
TYPE_P = np.array(
    [
        _CHATTY,
        _CHATTY,
        _CHATTY,
        [0.20, 0.25, 0.05, 0.30, 0.15, 0.03, 0.02],
        [0.15, 0.10, 0.35, 0.05, 0.30, 0.03, 0.02],
        [0.55, 0.33, 0.00, 0.07, 0.03, 0.00, 0.02],
        [0.70, 0.27, 0.00, 0.00, 0.02, 0.00, 0.01],
        _CHATTY,
    ]
)
# Extra hits per content by type: a livestream is flagged segment after segment, a chat message
# by several keyword lists, an image by the hash list and a rescan.
EXTRA_HITS = np.array([3.0, 5.0, 3.2, 14.0, 4.4, 5.2, 2.6])
# False positives per hit by method (the review outcome differs by mechanism).
FP_RATE = np.array([0.01, 0.30, 0.15, 0.03])
# Review latency after detection: median seconds [non-CSAM, CSAM] and spread, by method.
REVIEW_MEDIAN = np.array([[180, 180], [4500, 900], [2400, 600], [60, 60]], dtype=float)
REVIEW_SIGMA = np.array([0.8, 1.1, 1.05, 0.5])
# How long content was visible before the hit: median seconds [non-CSAM, CSAM], spread.
POST_LAG_MEDIAN = np.array([[600, 600], [30, 30], [240, 240], [10800, 1500]], dtype=float)
POST_LAG_SIGMA = np.array([0.8, 1.0, 1.0, 1.2])
KEYWORD_LISTS = np.array(
    [
        "kw-meetup-v3",
        "kw-solicitation-v5",
        "kw-sextortion-v4",
        "kw-indecency-v2",
        "kw-bullying-v6",
        "kw-csam-terms-v9",
        "kw-csam-terms-v9",
        "kw-grooming-v7",
    ]
)

CHANNELS = np.array(
    ["in_app", "web_form", "hotline", "email", "partner_platform", "authority", "ngo"]
)
REPORTER_TYPES = np.array(
    ["user", "guardian", "minor", "trusted_flagger", "ngo", "authority", "anonymous"]
)
# Reporter type by channel (rows: CHANNELS).
REPORTER_P = np.array(
    [
        [0.62, 0.18, 0.12, 0.00, 0.00, 0.00, 0.08],
        [0.40, 0.25, 0.10, 0.00, 0.00, 0.00, 0.25],
        [0.20, 0.50, 0.05, 0.00, 0.00, 0.00, 0.25],
        [0.40, 0.30, 0.05, 0.00, 0.00, 0.00, 0.25],
        [0.00, 0.00, 0.00, 1.00, 0.00, 0.00, 0.00],
        [0.00, 0.00, 0.00, 0.00, 0.00, 1.00, 0.00],
        [0.00, 0.00, 0.00, 0.30, 0.70, 0.00, 0.00],
    ]
)
STANDALONE_CHANNEL_P = np.array([0.52, 0.15, 0.06, 0.06, 0.06, 0.05, 0.10])
ON_CONTENT_CHANNEL_P = np.array([0.80, 0.10, 0.04, 0.00, 0.03, 0.00, 0.03])
# What reporters pick (CATEGORY_CODES order, then `unclassified`).
REPORT_CATEGORY_P = np.array([0.03, 0.04, 0.10, 0.14, 0.18, 0.10, 0.05, 0.22, 0.14])
RESOLUTIONS = np.array(["actioned", "no_violation", "insufficient_information", "duplicate"])

ACCOUNT_ACTIONS = np.array(
    ["warning_issued", "account_restricted", "account_suspended", "account_banned", ""]
)
# Account sanction after a confirmed violation: [warning, restrict, suspend, ban, none].
ACCOUNT_P_ZT = np.array([0.00, 0.00, 0.08, 0.25, 0.67])
ACCOUNT_P_REPEAT = np.array([0.06, 0.08, 0.06, 0.00, 0.80])
ACCOUNT_P_FIRST = np.array([0.06, 0.02, 0.00, 0.00, 0.92])

# Chance that a takedown in the category opens a criminal case.
CASE_P = np.array([0.40, 0.30, 0.20, 0.02, 0.003, 0.04, 0.012, 0.03])
AGE_BANDS = np.array(["under_10", "10_13", "14_17", "unknown"])
AUTHORITIES = np.array(["public_security", "procuratorate", "court", "cyberspace_admin", "other"])
SUPPORT_TYPES = np.array(["psychological", "financial", "legal", "mediation", "other"])


def lognormal(rng: np.random.Generator, median, sigma, n: int) -> np.ndarray:
    return np.asarray(median, dtype=float) * np.exp(np.asarray(sigma) * rng.standard_normal(n))


def pick(rng: np.random.Generator, probs: np.ndarray, n: int | None = None) -> np.ndarray:
    """Categorical draws; `probs` is one row (shared) or one row per draw."""
    probs = np.asarray(probs, dtype=float)
    if probs.ndim == 1:
        return rng.choice(probs.size, size=n, p=probs / probs.sum())
    cum = probs.cumsum(axis=1)
    u = rng.random(probs.shape[0])[:, None] * cum[:, -1:]
    return np.minimum((u >= cum).sum(axis=1), probs.shape[1] - 1)


def seconds(values: np.ndarray) -> pl.Series:
    """Float seconds with NaN -> nullable Int64 (floor keeps orderings)."""
    return pl.Series(np.floor(values), nan_to_null=True).cast(pl.Int64)


def where(mask: np.ndarray, values: pl.Series) -> pl.Series:
    """values where mask, else null."""
    return pl.select(pl.when(pl.Series(mask)).then(values).otherwise(None)).to_series()


class Counters:
    """Hands out record counters inside one integer namespace (a day, a follow batch...)."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.used: dict[str, int] = defaultdict(int)

    def take(self, kind: str, n: int) -> np.ndarray:
        start = self.base + self.used[kind]
        self.used[kind] += n
        return np.arange(start, start + n, dtype=np.uint64)


@dataclass(frozen=True)
class Population:
    """Who uploads, reports and reviews.

    A pool of repeat offenders with Zipf-like activity (a handful upload violation after
    violation, most pool members a few times) beside a sea of accounts seen once. The sizes
    follow the daily volume so that a bigger platform has proportionally more offenders.
    """

    pool_size: int
    pool_cdf: np.ndarray
    n_moderators: int
    n_flaggers: int = 40
    pool_share: float = 0.18

    @classmethod
    def for_rate(cls, scale_per_day: float) -> Population:
        size = max(40, int(scale_per_day * 0.6))
        weights = 1.0 / np.arange(1, size + 1) ** 1.05
        cdf = np.cumsum(weights) / weights.sum()
        moderators = int(min(2000, max(40, scale_per_day / 50)))
        return cls(pool_size=size, pool_cdf=cdf, n_moderators=moderators)

    def offenders(self, rng: np.random.Generator, n: int) -> np.ndarray:
        rank = np.searchsorted(self.pool_cdf, rng.random(n), side="right")
        return np.minimum(rank, self.pool_size - 1).astype(np.uint64)

    def fresh(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(idspace.FRESH_ACCOUNT_LOW, 2**40, size=n, dtype=np.uint64)

    def uploaders(self, rng: np.random.Generator, n: int) -> np.ndarray:
        from_pool = rng.random(n) < self.pool_share
        return np.where(from_pool, self.offenders(rng, n), self.fresh(rng, n))

    def flaggers(self, rng: np.random.Generator, n: int) -> np.ndarray:
        base = idspace.TRUSTED_FLAGGER_BASE
        return rng.integers(base, base + self.n_flaggers, size=n, dtype=np.uint64)

    def moderators(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, self.n_moderators, size=n, dtype=np.uint64)


@dataclass
class Records:
    """Record frames (whole lives) of the four feeds."""

    hits: pl.DataFrame
    reports: pl.DataFrame
    actions: pl.DataFrame
    cases: pl.DataFrame

    @staticmethod
    def concat(parts: list[Records]) -> Records:
        def cat(name: str) -> pl.DataFrame:
            frames = [getattr(p, name) for p in parts if getattr(p, name).width]
            return pl.concat(frames, how="vertical") if frames else pl.DataFrame()

        return Records(cat("hits"), cat("reports"), cat("actions"), cat("cases"))


@dataclass
class ContentDraw:
    t0: np.ndarray
    cat: np.ndarray
    method: np.ndarray
    ctype: np.ndarray
    vis: np.ndarray
    hits: np.ndarray

    def take(self, index: np.ndarray) -> ContentDraw:
        return ContentDraw(*(getattr(self, f)[index] for f in self.__dataclass_fields__))


def draw_contents(
    rng: np.random.Generator, a: int, b: int, n_hits: int, spikes: tuple[Spike, ...]
) -> ContentDraw:
    """Content first detected in (a, b], with exactly n_hits hits between them."""
    z = np.zeros(0, dtype=np.int64)
    parts: list[ContentDraw] = [ContentDraw(np.zeros(0), z, z, z, z, z)]
    total = 0
    while total < n_hits:
        n = max(8, int((n_hits - total) / 5.0) + 8)
        t0 = sample_times(rng, a, b, n, spikes)
        cat = pick(rng, category_weights(t0, spikes))
        method = pick(rng, METHOD_P[cat])
        ctype = pick(rng, TYPE_P[cat])
        hashed = method == HASH
        ctype = np.where(hashed, np.where(rng.random(n) < 0.7, IMAGE, VIDEO), ctype)
        vis = np.full(n, POSTED)
        vis[hashed & (rng.random(n) < 0.92)] = BLOCKED
        holdable = (method == CLASSIFIER) & np.isin(ctype, [IMAGE, VIDEO, PROFILE])
        holdable |= (method == KEYWORD) & np.isin(ctype, [CHAT, TEXT])
        vis[holdable & (rng.random(n) < 0.25)] = HELD
        hits = np.where(vis == BLOCKED, 1 + rng.poisson(2.2, n), 1 + rng.poisson(EXTRA_HITS[ctype]))
        parts.append(ContentDraw(t0, cat, method, ctype, vis, hits))
        total += int(hits.sum())
    draw = ContentDraw(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in ContentDraw.__dataclass_fields__)
    )
    before = np.cumsum(draw.hits) - draw.hits
    keep = before < n_hits
    draw = draw.take(np.flatnonzero(keep))
    draw.hits = np.minimum(draw.hits, n_hits - before[keep])
    return draw


def _evidence(rng: np.random.Generator, acted: np.ndarray, zt: np.ndarray, floor_t: np.ndarray):
    """Evidence preserved before the takedown mostly; sometimes late, sometimes never."""
    n = acted.size
    mode = pick(rng, np.where(zt[:, None], [0.93, 0.05, 0.02], [0.84, 0.10, 0.06]))
    on_time = np.maximum(floor_t, acted - rng.uniform(0, 120, n))
    late = acted + lognormal(rng, 3 * HOUR, 1.0, n)
    return np.where(mode == 0, on_time, np.where(mode == 1, late, np.nan))


def content_records(
    rng: np.random.Generator,
    ids: IdMaker,
    counters: Counters,
    pop: Population,
    d: ContentDraw,
    protect: bool = False,
) -> tuple[Records, dict]:
    """Hits, takedowns, account sanctions and reports of the drawn content.

    Returns the records and the takedowns that may open a criminal case.
    """
    n = d.t0.size
    t0, cat, m, vis = d.t0, d.cat, d.method, d.vis
    csam, zt = IS_CSAM[cat], IS_ZT[cat]
    content_id = ids.make("cnt", counters.take("cnt", n))
    uploader_idx = pop.uploaders(rng, n)
    uploader = ids.accounts(uploader_idx)
    repeat = uploader_idx < pop.pool_size
    fp = rng.random(n) < FP_RATE[m]
    conf = ~fp

    review = t0 + lognormal(rng, REVIEW_MEDIAN[m, csam.astype(int)], REVIEW_SIGMA[m], n)
    lag = lognormal(rng, POST_LAG_MEDIAN[m, csam.astype(int)], POST_LAG_SIGMA[m], n)
    posted = np.where(vis == POSTED, t0 - lag, np.nan)
    # Held content cleared as a false alarm is published at the review.
    posted = np.where((vis == HELD) & fp, review, posted)

    acted = np.full(n, np.nan)
    atype = np.full(n, "", dtype=object)
    blocked = vis == BLOCKED
    acted[blocked] = t0[blocked] + rng.uniform(0, 3, blocked.sum())
    atype[blocked] = "upload_blocked"
    held = (vis == HELD) & conf
    acted[held] = review[held] + rng.uniform(5, 120, held.sum())
    atype[held] = np.where(m[held] == CLASSIFIER, "upload_blocked", "transmission_blocked")
    live = (vis == POSTED) & conf
    auto = live & (m == HASH)  # known material found by a rescan is removed without waiting
    acted[auto] = t0[auto] + rng.uniform(1, 30, auto.sum())
    manual = live & ~auto
    acted[manual] = review[manual] + lognormal(rng, 150, 0.8, manual.sum())
    stream = rng.random(n) < np.where(d.ctype == LIVESTREAM, 0.7, np.where(d.ctype == CHAT, 0.3, 0))
    atype[live] = np.where(stream[live], "transmission_blocked", "content_removed")
    has_action = ~np.isnan(acted)

    reversed_at = np.full(n, np.nan)
    fp_block = blocked & fp  # a blocked upload the review found innocent is released
    reversed_at[fp_block] = review[fp_block] + lognormal(rng, HOUR, 1.0, fp_block.sum())
    appeal = conf & has_action & (rng.random(n) < np.where(csam, 0.003, 0.015))
    reversed_at[appeal] = acted[appeal] + lognormal(rng, 3 * DAY, 0.8, appeal.sum())
    evidence = _evidence(rng, acted, zt, t0)

    # Hits: the first at t0, the rest spread until the takedown (or a while, if innocent).
    k = d.hits
    total = int(k.sum())
    owner = np.repeat(np.arange(n), k)
    first = np.cumsum(k) - k
    j = np.arange(total) - first[owner]
    span = np.where(
        blocked, 2.0, np.where(has_action & conf, acted - t0, lognormal(rng, HOUR, 1.0, n))
    )
    det = np.floor(t0[owner] + np.where(j == 0, 0.0, rng.random(total) * span[owner]))
    rev_o = review[owner]
    reviewed = np.where(det < rev_o, rev_o, det + rng.uniform(10, 300, total))
    automated = (m == HASH) & (rng.random(n) < 0.4)  # verified hash: confirmed by the system
    content_reviewer = pop.moderators(rng, n)
    reviewer_idx = np.where(det < rev_o, content_reviewer[owner], pop.moderators(rng, total))
    mo = m[owner]
    score = np.full(total, np.nan)
    h = mo == HASH
    score[h] = np.where(rng.random(h.sum()) < 0.7, 1.0, rng.uniform(0.93, 0.999, h.sum()))
    c = mo == CLASSIFIER
    conf_o = conf[owner]
    score[c] = np.where(
        conf_o[c], 0.6 + 0.4 * rng.beta(6, 2, c.sum()), 0.5 + 0.45 * rng.beta(2, 2, c.sum())
    )
    kw = (mo == KEYWORD) & (rng.random(total) < 0.5)
    score[kw] = rng.uniform(0.5, 1.0, kw.sum())
    month = t0[owner].astype("datetime64[s]").astype("datetime64[M]")
    month = month - rng.integers(0, 3, total).astype("timedelta64[M]")
    month_str = np.datetime_as_string(month, unit="M")
    hash_list = pl.Series(np.where(j % 2 == 0, "csam-hashes-", "partner-hashes-")) + pl.Series(
        month_str.astype(str)
    )
    matched = pl.select(
        pl.when(pl.Series(h))
        .then(hash_list)
        .when(pl.Series(mo == KEYWORD))
        .then(pl.Series(KEYWORD_LISTS[cat[owner]]))
        .otherwise(None)
    ).to_series()
    hit_ids = ids.make("hit", counters.take("hit", total))
    hits = pl.DataFrame(
        {
            "hit_id": hit_ids,
            "content_id": content_id.gather(owner),
            "content_type": TYPES[d.ctype[owner]].astype(str),
            "uploader_id": uploader.gather(owner),
            "posted_at": seconds(posted[owner]),
            "detected_at": seconds(det),
            "detection_method": METHODS[mo].astype(str),
            "matched_list": matched,
            "score": pl.Series(np.round(score, 4), nan_to_null=True),
            "category_code": CATS[cat[owner]].astype(str),
            "final_status": np.where(conf_o, "confirmed", "false_positive").astype(str),
            "reviewed_at": seconds(reviewed),
            "reviewer_id": where(~automated[owner], ids.make("mod", reviewer_idx)),
            "_protect": np.full(total, protect),
        }
    )

    # Takedowns and blocks, then account sanctions after confirmed violations.
    ai = np.flatnonzero(has_action)
    first_hit = hit_ids.gather(first)
    content_actions = pl.DataFrame(
        {
            "action_id": ids.make("act", counters.take("act", ai.size)),
            "content_id": content_id.gather(ai),
            "user_id": uploader.gather(ai),
            "category_code": CATS[cat[ai]].astype(str),
            "action_type": atype[ai].astype(str),
            "trigger": np.full(ai.size, "proactive"),
            "hit_id": first_hit.gather(ai),
            "report_id": pl.Series([None] * ai.size, dtype=pl.String),
            "posted_at": seconds(np.where(atype[ai] == "upload_blocked", np.nan, posted[ai])),
            "detected_at": seconds(t0[ai]),
            "actioned_at": seconds(acted[ai]),
            "evidence_preserved_at": seconds(evidence[ai]),
            "evidence_ref": where(
                ~np.isnan(evidence[ai]), ids.make("ev", counters.take("ev", ai.size))
            ),
            "reversed_at": seconds(reversed_at[ai]),
            "_protect": np.full(ai.size, protect),
        }
    )
    sanction_p = np.where(
        zt[:, None], ACCOUNT_P_ZT, np.where(repeat[:, None], ACCOUNT_P_REPEAT, ACCOUNT_P_FIRST)
    )
    sanction = pick(rng, sanction_p)
    si = np.flatnonzero(conf & has_action & (sanction < 4))
    s_time = acted[si] + lognormal(rng, 30 * MINUTE, 1.0, si.size)
    s_rev = np.where(
        rng.random(si.size) < 0.03, s_time + lognormal(rng, 5 * DAY, 0.8, si.size), np.nan
    )
    account_actions = pl.DataFrame(
        {
            "action_id": ids.make("act", counters.take("act", si.size)),
            "content_id": pl.Series([None] * si.size, dtype=pl.String),
            "user_id": uploader.gather(si),
            "category_code": CATS[cat[si]].astype(str),
            "action_type": ACCOUNT_ACTIONS[sanction[si]].astype(str),
            "trigger": np.full(si.size, "proactive"),
            "hit_id": first_hit.gather(si),
            "report_id": pl.Series([None] * si.size, dtype=pl.String),
            "posted_at": pl.Series([None] * si.size, dtype=pl.Int64),
            "detected_at": seconds(t0[si]),
            "actioned_at": seconds(s_time),
            "evidence_preserved_at": pl.Series([None] * si.size, dtype=pl.Int64),
            "evidence_ref": pl.Series([None] * si.size, dtype=pl.String),
            "reversed_at": seconds(s_rev),
            "_protect": np.full(si.size, protect),
        }
    )

    # Users report some of the visible content while it is up.
    visible = vis == POSTED
    n_rep = np.where(
        visible & (rng.random(n) < np.where(csam, 0.08, 0.15)), 1 + rng.poisson(0.3, n), 0
    )
    ro = np.repeat(np.arange(n), n_rep)
    rj = np.arange(ro.size) - (np.cumsum(n_rep) - n_rep)[ro]
    decided = np.where(conf & has_action, acted, review)
    window = np.maximum(600.0, decided - posted)
    received = np.floor(posted[ro] + rng.random(ro.size) * window[ro]) + 1
    resolution = np.where(conf[ro], np.where(rj == 0, "actioned", "duplicate"), "no_violation")
    reports = report_records(
        rng,
        ids,
        counters,
        pop,
        received,
        channel=pick(rng, ON_CONTENT_CHANNEL_P, ro.size),
        category=np.where(
            rng.random(ro.size) < 0.88, cat[ro], pick(rng, REPORT_CATEGORY_P, ro.size)
        ),
        content_id=content_id.gather(ro),
        reported_user=where(rng.random(ro.size) < 0.9, uploader.gather(ro)),
        resolution=resolution.astype(str),
        decided=decided[ro],
        protect=protect,
    )
    candidates = {
        "action_id": content_actions["action_id"],
        "user_id": content_actions["user_id"],
        "cat": cat[ai],
        "acted": acted[ai],
        "eligible": (conf[ai] & np.isnan(reversed_at[ai])),
    }
    actions = pl.concat([content_actions, account_actions], how="vertical")
    return Records(hits, reports, actions, pl.DataFrame()), candidates


def report_people(rng: np.random.Generator, ids: IdMaker, pop: Population, channel: np.ndarray):
    """Reporter type and account from the channel; anonymous and authority reporters have no
    account on the platform."""
    n = channel.size
    rtype = pick(rng, REPORTER_P[channel])
    idx = np.where(np.isin(rtype, [3, 4]), pop.flaggers(rng, n), pop.fresh(rng, n))
    has_account = ~np.isin(rtype, [5, 6]) & ~((rtype == 4) & (rng.random(n) < 0.5))
    return rtype, where(has_account, ids.accounts(idx)), has_account


def report_records(
    rng: np.random.Generator,
    ids: IdMaker,
    counters: Counters,
    pop: Population,
    received: np.ndarray,
    *,
    channel: np.ndarray,
    category: np.ndarray,
    content_id: pl.Series,
    reported_user: pl.Series,
    resolution: np.ndarray,
    decided: np.ndarray,
    protect: bool,
) -> pl.DataFrame:
    """Report frames; `decided` is when the platform decided the matter (NaN: at handling)."""
    n = received.size
    rtype, reporter, has_account = report_people(rng, ids, pop, channel)
    fast = np.isin(channel, [4, 5, 6])  # partners, authorities and NGOs are triaged first
    ack = received + lognormal(rng, np.where(fast, 30 * MINUTE, 2 * HOUR), 1.2, n)
    handling = np.where(
        resolution == "duplicate",
        lognormal(rng, 30 * MINUTE, 1.0, n),
        lognormal(rng, 18 * HOUR, 0.9, n),
    )
    resolved = np.where(
        np.isnan(decided),
        ack + handling,
        np.maximum(ack, decided) + lognormal(rng, 20 * MINUTE, 0.8, n),
    )
    reachable = has_account | np.isin(channel, [2, 3, 4, 5, 6])
    feedback = np.where(
        reachable & (rng.random(n) < 0.93), resolved + lognormal(rng, 10 * MINUTE, 1.0, n), np.nan
    )
    cats = np.append(CATS, "unclassified")
    return pl.DataFrame(
        {
            "report_id": ids.make("rpt", counters.take("rpt", n)),
            "received_at": seconds(received),
            "channel": CHANNELS[channel].astype(str),
            "reporter_type": REPORTER_TYPES[rtype].astype(str),
            "reporter_id": reporter,
            "content_id": content_id,
            "reported_user_id": reported_user,
            "category_code": cats[category].astype(str),
            "acknowledged_at": seconds(ack),
            "resolved_at": seconds(resolved),
            "final_resolution": resolution,
            "feedback_sent_at": seconds(feedback),
            "_protect": np.full(n, protect),
        },
        schema_overrides={
            "content_id": pl.String,
            "reported_user_id": pl.String,
            "reporter_id": pl.String,
        },
    )


def standalone_reports(
    rng: np.random.Generator,
    ids: IdMaker,
    counters: Counters,
    pop: Population,
    received: np.ndarray,
    protect: bool = False,
) -> tuple[Records, dict]:
    """Reports about content or accounts no screening flagged; some lead to actions."""
    n = received.size
    channel = pick(rng, STANDALONE_CHANNEL_P, n)
    category = pick(rng, REPORT_CATEGORY_P, n)
    has_content = rng.random(n) < 0.7
    content_id = where(has_content, ids.make("cnt", counters.take("cnt", n)))
    who = pick(rng, [0.4, 0.4, 0.2], n)
    reported_idx = np.where(who == 0, pop.offenders(rng, n), pop.fresh(rng, n))
    reported = where(who < 2, ids.accounts(reported_idx))
    trusted = np.isin(channel, [4, 5, 6])
    res = pick(rng, np.where(trusted[:, None], [0.60, 0.20, 0.10, 0.10], [0.33, 0.37, 0.12, 0.18]))
    res = np.where((res == 0) & ~has_content & (who == 2), 2, res)
    resolution = RESOLUTIONS[res].astype(str)
    reports = report_records(
        rng,
        ids,
        counters,
        pop,
        received,
        channel=channel,
        category=category,
        content_id=content_id,
        reported_user=reported,
        resolution=resolution,
        decided=np.full(n, np.nan),
        protect=protect,
    )
    ack = reports["acknowledged_at"].to_numpy().astype(float)
    resolved = reports["resolved_at"].to_numpy().astype(float)

    ai = np.flatnonzero(res == 0)
    m = ai.size
    # The moderator classifies what the reporter left unclassified.
    acat = np.where(category[ai] == len(CATS), pick(rng, REPORT_CATEGORY_P[:-1], m), category[ai])
    acted = np.clip(resolved[ai] - rng.uniform(60, 1800, m), ack[ai], resolved[ai])
    with_content = has_content[ai]
    zt = IS_ZT[acat]
    account_kind = np.where(zt, pick(rng, [0, 0, 0.4, 0.6], m), pick(rng, [0.5, 0.35, 0.15, 0], m))
    atype = np.where(
        with_content,
        np.where(rng.random(m) < 0.9, "content_removed", "transmission_blocked"),
        ACCOUNT_ACTIONS[account_kind],
    )
    posted = np.where(with_content, received[ai] - lognormal(rng, 6 * HOUR, 1.2, m), np.nan)
    owner = pl.select(pl.coalesce(reported.gather(ai), ids.accounts(pop.fresh(rng, m)))).to_series()
    trigger = np.where(
        channel[ai] == 4,
        "partner_platform",
        np.where(channel[ai] == 5, "authority_request", "user_report"),
    )
    evidence = _evidence(rng, acted, zt, received[ai])
    evidence = np.where(with_content | zt, evidence, np.nan)
    rev = np.where(rng.random(m) < 0.02, acted + lognormal(rng, 4 * DAY, 0.8, m), np.nan)
    actions = pl.DataFrame(
        {
            "action_id": ids.make("act", counters.take("act", m)),
            "content_id": content_id.gather(ai),
            "user_id": owner,
            "category_code": CATS[acat].astype(str),
            "action_type": atype.astype(str),
            "trigger": trigger.astype(str),
            "hit_id": pl.Series([None] * m, dtype=pl.String),
            "report_id": reports["report_id"].gather(ai),
            "posted_at": seconds(posted),
            "detected_at": seconds(received[ai]),
            "actioned_at": seconds(acted),
            "evidence_preserved_at": seconds(evidence),
            "evidence_ref": where(~np.isnan(evidence), ids.make("ev", counters.take("ev", m))),
            "reversed_at": seconds(rev),
            "_protect": np.full(m, protect),
        }
    )
    candidates = {
        "action_id": actions["action_id"],
        "user_id": actions["user_id"],
        "cat": acat,
        "acted": acted,
        "eligible": np.isnan(rev),
    }
    return Records(pl.DataFrame(), reports, actions, pl.DataFrame()), candidates


def case_records(
    rng: np.random.Generator,
    ids: IdMaker,
    counters: Counters,
    cand: dict,
    protect: bool = False,
    case_rate: float = 1.0,
) -> pl.DataFrame:
    """Criminal cases opened from a share of serious takedowns, with their whole course:
    confirmation, referral, the authority's answer, prosecution, and help for victims."""
    chosen = cand["eligible"] & (rng.random(cand["cat"].size) < CASE_P[cand["cat"]] * case_rate)
    ci = np.flatnonzero(chosen)
    n = ci.size
    cat = cand["cat"][ci]
    opened = cand["acted"][ci] + lognormal(rng, 4 * HOUR, 1.0, n)
    csam = IS_CSAM[cat]
    victims_final = np.where(csam & (rng.random(n) < 0.5), 0, rng.geometric(0.6, n))
    victims_open = np.where(rng.random(n) < 0.7, victims_final, np.maximum(0, victims_final - 1))
    band = pick(rng, np.where(csam[:, None], [0.35, 0.35, 0.25, 0.05], [0.15, 0.45, 0.35, 0.05]))
    confirmed = np.where(rng.random(n) < 0.88, opened + lognormal(rng, 10 * HOUR, 1.1, n), np.nan)
    referred = np.where(
        ~np.isnan(confirmed) & (rng.random(n) < 0.93),
        confirmed + lognormal(rng, 5 * HOUR, 1.0, n),
        np.nan,
    )
    accepted = np.where(
        ~np.isnan(referred) & (rng.random(n) < 0.85),
        referred + lognormal(rng, 4 * DAY, 0.8, n),
        np.nan,
    )
    prosecuted = np.where(
        ~np.isnan(accepted) & (rng.random(n) < 0.55),
        accepted + lognormal(rng, 45 * DAY, 0.6, n),
        np.nan,
    )
    convicted = np.where(
        ~np.isnan(prosecuted) & (rng.random(n) < 0.75),
        prosecuted + lognormal(rng, 90 * DAY, 0.5, n),
        np.nan,
    )
    # How each case ends, if it does: no confirmation or no referral closes it internally;
    # an authority that declines, drops or loses it means no further action.
    closed_internal = np.where(
        np.isnan(confirmed),
        opened + lognormal(rng, 5 * DAY, 0.8, n),
        np.where(np.isnan(referred), confirmed + lognormal(rng, 10 * DAY, 0.8, n), np.nan),
    )
    nfa = np.where(
        ~np.isnan(referred) & np.isnan(accepted),
        referred + lognormal(rng, 40 * DAY, 0.6, n),
        np.where(
            ~np.isnan(accepted) & np.isnan(prosecuted),
            accepted + lognormal(rng, 60 * DAY, 0.6, n),
            np.where(
                ~np.isnan(prosecuted) & np.isnan(convicted),
                prosecuted + lognormal(rng, 120 * DAY, 0.5, n),
                np.nan,
            ),
        ),
    )
    terminal = np.fmin(np.fmin(closed_internal, nfa), convicted)
    terminal_outcome = np.where(
        ~np.isnan(convicted),
        "convicted",
        np.where(~np.isnan(nfa), "no_further_action", "closed_internal"),
    )
    has_victims = victims_final > 0
    offered = np.where(
        has_victims & ~np.isnan(confirmed) & (rng.random(n) < 0.85),
        confirmed + lognormal(rng, 1.5 * DAY, 0.8, n),
        np.nan,
    )
    answer = pick(rng, [0.65, 0.20, 0.15], n)  # accepted, declined, no answer yet
    answered = np.where(
        ~np.isnan(offered) & (answer < 2), offered + lognormal(rng, 3 * DAY, 0.8, n), np.nan
    )
    support_final = np.where(
        ~has_victims,
        "not_applicable",
        np.where(
            np.isnan(offered),
            "not_offered",
            np.where(answer == 0, "accepted", np.where(answer == 1, "declined", "offered")),
        ),
    )
    type_mask = rng.random((n, SUPPORT_TYPES.size)) < [0.75, 0.2, 0.35, 0.12, 0.05]
    type_mask[:, 0] |= ~type_mask.any(axis=1)
    support_types = pl.Series(
        [list(SUPPORT_TYPES[row]) for row in type_mask], dtype=pl.List(pl.String)
    )
    return pl.DataFrame(
        {
            "case_id": ids.make("case", counters.take("case", n)),
            "opened_at": seconds(opened),
            "category_code": CATS[cat].astype(str),
            "subject_user_id": where(rng.random(n) < 0.96, cand["user_id"].gather(ci)),
            "action_id": cand["action_id"].gather(ci),
            "victims_open": victims_open.astype(np.int64),
            "victims_final": victims_final.astype(np.int64),
            "age_band": where(has_victims, pl.Series(AGE_BANDS[band].astype(str))),
            "confirmed_at": seconds(confirmed),
            "referred_at": seconds(referred),
            "authority_type": where(
                ~np.isnan(referred),
                pl.Series(AUTHORITIES[pick(rng, [0.8, 0.06, 0.01, 0.08, 0.05], n)].astype(str)),
            ),
            "authority_accepted_at": seconds(accepted),
            "prosecuted_at": seconds(prosecuted),
            "terminal_at": seconds(terminal),
            "terminal_outcome": terminal_outcome.astype(str),
            "support_final": support_final.astype(str),
            "support_offered_at": seconds(offered),
            "support_answered_at": seconds(answered),
            "support_types": support_types,
            "_protect": np.full(n, protect),
        },
        schema_overrides={
            "subject_user_id": pl.String,
            "age_band": pl.String,
            "authority_type": pl.String,
        },
    )


def window_records(
    rng: np.random.Generator,
    ids: IdMaker,
    counters: Counters,
    pop: Population,
    a: int,
    b: int,
    n_hits: int,
    n_reports: int,
    spikes: tuple[Spike, ...],
    case_rate: float = 1.0,
) -> Records:
    """Everything that starts in (a, b]: content first detected, reports received, and the
    actions and cases that follow from them (whenever they happen)."""
    draw = draw_contents(rng, a, b, n_hits, spikes)
    from_content, cand_c = content_records(rng, ids, counters, pop, draw)
    received = sample_times(rng, a, b, n_reports, spikes, with_spikes=False)
    from_reports, cand_r = standalone_reports(rng, ids, counters, pop, received)
    cand = {
        key: (
            pl.concat([cand_c[key], cand_r[key]])
            if isinstance(cand_c[key], pl.Series)
            else np.concatenate([cand_c[key], cand_r[key]])
        )
        for key in cand_c
    }
    cases = case_records(rng, ids, counters, cand, case_rate=case_rate)
    records = Records.concat([from_content, from_reports])
    records.cases = cases
    return records
