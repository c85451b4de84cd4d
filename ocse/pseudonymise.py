"""Keyed pseudonyms for personal identifiers: `p<key version>:<HMAC-SHA256 hex>`.

A key may carry the key it replaces (`previous`), during a rotation's transition window: the
gate then computes both pseudonyms of every identifier it sees and records the link, so a
person keeps one ref across key versions (ocse/keys.py).

The HMAC is computed inside DuckDB, vectorised over a whole file, from the key's inner and
outer pads passed as query parameters: the key itself is never part of any SQL text, table,
log or error. `pseudonym()` is the reference implementation in Python (used by tests and by
anyone who needs to look up the ref of an id they already hold).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, replace

_BLOCK = 64  # SHA-256 block size in bytes (RFC 2104)


@dataclass(frozen=True)
class PseudonymKey:
    version: int
    inner_pad: bytes
    outer_pad: bytes
    _key: bytes
    previous: PseudonymKey | None = None

    @classmethod
    def from_secret(cls, key: bytes, version: int) -> PseudonymKey:
        block = hashlib.sha256(key).digest() if len(key) > _BLOCK else key
        block = block.ljust(_BLOCK, b"\0")
        return cls(
            version=version,
            inner_pad=bytes(b ^ 0x36 for b in block),
            outer_pad=bytes(b ^ 0x5C for b in block),
            _key=key,
        )

    @property
    def prefix(self) -> str:
        return f"p{self.version}:"

    def with_previous(self, previous: PseudonymKey | None) -> PseudonymKey:
        if previous is not None and previous.version >= self.version:
            raise ValueError(
                f"the previous key's version ({previous.version}) must be lower than the "
                f"current one ({self.version})"
            )
        return replace(self, previous=previous)

    @property
    def fingerprint(self) -> str:
        """Identifies the key without revealing it (a keyed hash of a fixed label): the
        warehouse records it per version and refuses a different key under a known version."""
        return hmac.new(self._key, b"ocse pseudonym key fingerprint", hashlib.sha256).hexdigest()[
            :16
        ]

    def __repr__(self) -> str:  # never print key material
        return f"PseudonymKey(version={self.version})"


def pseudonym(key: PseudonymKey, raw_value: str) -> str:
    digest = hmac.new(key._key, raw_value.encode("utf-8"), hashlib.sha256).hexdigest()
    return key.prefix + digest


def pseudonym_sql(column_sql: str, suffix: str = "") -> str:
    """SQL for the pseudonym of a VARCHAR expression; null stays null.

    Expects the named parameters $ipad, $opad (BLOB) and $prefix (VARCHAR), each followed by
    `suffix` (two keys in one statement: `sql_params(key, suffix)`).
    """
    inner = f"unhex(sha256($ipad{suffix}::blob || encode({column_sql})))"
    outer = f"$prefix{suffix} || sha256($opad{suffix}::blob || {inner})"
    return f"case when {column_sql} is null then null else {outer} end"


def sql_params(key: PseudonymKey, suffix: str = "") -> dict[str, object]:
    return {
        f"ipad{suffix}": key.inner_pad,
        f"opad{suffix}": key.outer_pad,
        f"prefix{suffix}": key.prefix,
    }
