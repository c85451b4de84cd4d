"""Keyed pseudonyms for personal identifiers: `p<key version>:<HMAC-SHA256 hex>`.

The HMAC is computed inside DuckDB, vectorised over a whole file, from the key's inner and
outer pads passed as query parameters: the key itself is never part of any SQL text, table,
log or error. `pseudonym()` is the reference implementation in Python (used by tests and by
anyone who needs to look up the ref of an id they already hold).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

_BLOCK = 64  # SHA-256 block size in bytes (RFC 2104)


@dataclass(frozen=True)
class PseudonymKey:
    version: int
    inner_pad: bytes
    outer_pad: bytes
    _key: bytes

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

    def __repr__(self) -> str:  # never print key material
        return f"PseudonymKey(version={self.version})"


def pseudonym(key: PseudonymKey, raw_value: str) -> str:
    digest = hmac.new(key._key, raw_value.encode("utf-8"), hashlib.sha256).hexdigest()
    return key.prefix + digest


def pseudonym_sql(column_sql: str) -> str:
    """SQL for the pseudonym of a VARCHAR expression; null stays null.

    Expects the named parameters $ipad, $opad (BLOB) and $prefix (VARCHAR).
    """
    inner = f"unhex(sha256($ipad::blob || encode({column_sql})))"
    outer = f"$prefix || sha256($opad::blob || {inner})"
    return f"case when {column_sql} is null then null else {outer} end"


def sql_params(key: PseudonymKey) -> dict[str, object]:
    return {"ipad": key.inner_pad, "opad": key.outer_pad, "prefix": key.prefix}
