"""Identifiers from integers, vectorised and collision-free.

Every id is a keyed bijection of an integer (a counter, a pool rank, a random draw) printed
as fixed-width hex. A bijection means two different integers never give the same id, so ids
need no lookup table and the same account index gives the same raw id in every feed and on
every day without keeping state. The key comes from the seed: another seed, other ids.
"""

from __future__ import annotations

import numpy as np
import polars as pl

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)

# Bits per kind of id (hex width x 4). Account and reviewer widths are fixed by the leak regexes.
ACCOUNT_BITS = 40  # acct-[0-9a-f]{10}
REVIEWER_BITS = 32  # mod-[0-9a-f]{8}
RECORD_BITS = 48  # hit-, cnt-, rpt-, act-, case-, ev- + 12 hex

# Integer namespaces for record counters (within RECORD_BITS): a day of the initial run, a
# follow batch and the live scenario never hand out the same counter.
DAY_SHIFT = 28  # up to 2**28 records of one kind per day
FOLLOW_FLAG = 1 << 47
SCENARIO_FLAG = 1 << 46
FOLLOW_SHIFT = 20  # counter = FOLLOW_FLAG | epoch_minute << 20 | i

# Account index ranges: offender-pool ranks are small integers, trusted flaggers sit just above,
# everyone else is a random draw far above both.
TRUSTED_FLAGGER_BASE = 1 << 22
FRESH_ACCOUNT_LOW = 1 << 24


def _permute(values: np.ndarray, bits: int, key: int) -> np.ndarray:
    """A keyed bijection of [0, 2**bits): odd multiplications and xor-shifts are invertible."""
    mask = np.uint64((1 << bits) - 1)
    k1 = np.uint64(key & ((1 << bits) - 1))
    k2 = np.uint64((key >> 17) & ((1 << bits) - 1))
    x = values.astype(np.uint64) & mask
    with np.errstate(over="ignore"):
        x = (x ^ k1) & mask
        x = (x * np.uint64(0x9E3779B97F4A7C15)) & mask
        x ^= x >> np.uint64(bits // 2)
        x = (x * np.uint64(0xBF58476D1CE4E5B9)) & mask
        x ^= x >> np.uint64(bits // 3 + 1)
        x = (x + k2) & mask
        x = (x * np.uint64(0x94D049BB133111EB)) & mask
        x ^= x >> np.uint64(bits // 2 + 1)
    return x


def _hex(values: np.ndarray, width: int) -> np.ndarray:
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    digits = _HEX[((values[:, None] >> shifts) & np.uint64(15)).astype(np.intp)]
    return np.ascontiguousarray(digits).view(f"S{width}").ravel()


class IdMaker:
    """Prints ids for one seed. Each kind gets its own key so a counter shared by two kinds
    still gives unrelated-looking ids."""

    def __init__(self, seed: int) -> None:
        keys = np.random.default_rng([seed, 0x1D5]).integers(1, 2**62, size=16)
        self._keys = {
            name: int(k)
            for name, k in zip(
                ("acct", "mod", "hit", "cnt", "rpt", "act", "case", "ev"), keys, strict=False
            )
        }

    def make(self, kind: str, values: np.ndarray) -> pl.Series:
        bits = {"acct": ACCOUNT_BITS, "mod": REVIEWER_BITS}.get(kind, RECORD_BITS)
        permuted = _permute(np.asarray(values, dtype=np.uint64), bits, self._keys[kind])
        body = pl.Series(_hex(permuted, bits // 4)).cast(pl.String)
        return (kind + "-") + body

    def accounts(self, values: np.ndarray) -> pl.Series:
        return self.make("acct", values)
