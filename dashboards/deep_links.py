"""Deep links: a page's filters in its URL, so a reload, a bookmark or a shared link opens
the same view (the sign-in gate brings the browser back to the URL it asked for).

Why not Streamlit's own `bind="query-params"`: a bound widget takes its value from the URL
alone, and Streamlit clears the query string on every page switch, so the period chosen on
one page would be lost on the next (measured in Chromium, Streamlit 1.67). Instead, each
widget is restored once when its page is entered (a new session, or arriving from another
page): from the URL when it names a valid value, else, for filters shared by every page (the
period), from the last page's choice. After the widget, its value is written back to the
URL, where a value equal to the default is left out to keep links short.

What never goes into a URL: anything that can name a person or an account (the offenders
search, a subject id). URLs end up in browser history, proxy logs and shared messages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import streamlit as st

_PAGE_KEY = "ocse_deep_link_page"
_FRESH_KEY = "ocse_deep_link_fresh"
_CARRY = "ocse_keep_"


def enter(page_id: str) -> None:
    """At the top of every page run: is this the page's first run in this session since it
    was entered (restore its widgets from the URL), or a rerun of the page on screen?"""
    st.session_state[_FRESH_KEY] = st.session_state.get(_PAGE_KEY) != page_id
    st.session_state[_PAGE_KEY] = page_id


def restore(
    key: str, param: str, decode: Callable[[str], object | None], *, carry: bool = False
) -> bool:
    """Before the widget `key`: on entering the page, its value from the URL parameter
    `param` (through `decode`, None for a value that is not valid), else with `carry` the
    value it had on the last page. True when it was set: the widget must then be created
    without a default of its own (Streamlit warns when both are given)."""
    if not st.session_state.get(_FRESH_KEY, True):
        return False
    value = _from_url(param, decode)
    if value is None and carry:
        value = st.session_state.get(_CARRY + key)
    if value is None:
        return False
    st.session_state[key] = value
    return True


def initial(
    key: str, param: str, decode: Callable[[str], object | None], default: object
) -> object:
    """For a widget given its value rather than its state (`st.date_input`, whose single or
    range mode follows the type of `value`): on entering the page the URL's value, else
    the value it had last (on this page or the one before), else `default`."""
    if st.session_state.get(_FRESH_KEY, True):
        value = _from_url(param, decode)
        if value is not None:
            return value
    carried = st.session_state.get(_CARRY + key)
    return default if carried is None else carried


def _from_url(param: str, decode: Callable[[str], object | None]) -> object | None:
    """The URL parameter's value, or None when it is absent or not valid."""
    raw = st.query_params.get(param)
    if not raw:
        return None
    try:
        return decode(raw)
    except (ValueError, TypeError):
        return None


def publish(
    key: str,
    param: str,
    value: object,
    default: object,
    encode: Callable[[object], str] = str,
    *,
    carry: bool = False,
) -> None:
    """After the widget `key`: its value into the URL (left out when it is the default),
    and with `carry` kept for the next page."""
    if carry:
        st.session_state[_CARRY + key] = value
    if value is None or value == default or value == []:
        if param in st.query_params:
            del st.query_params[param]
        return
    encoded = encode(value)
    if st.query_params.get(param) != encoded:
        st.query_params[param] = encoded


# --- encodings ---------------------------------------------------------------------------


def one_of(options) -> Callable[[str], object | None]:
    """A value that must be one of `options` (compared as text)."""
    by_text = {str(option): option for option in options}
    return by_text.get


def some_of(options) -> Callable[[str], list | None]:
    """A comma-separated list of `options`; None if none is valid."""
    by_text = {str(option): option for option in options}

    def decode(raw: str) -> list | None:
        chosen = [by_text[part] for part in raw.split(",") if part in by_text]
        return list(dict.fromkeys(chosen)) or None

    return decode


def join(values) -> str:
    return ",".join(str(v) for v in values)


def integer(low: int, high: int) -> Callable[[str], int | None]:
    def decode(raw: str) -> int | None:
        number = int(raw)
        return number if low <= number <= high else None

    return decode


def date_range(low: date, high: date) -> Callable[[str], tuple[date, date] | None]:
    """`2026-11-01_2026-11-30`, both days within [low, high], the first not after the last."""

    def decode(raw: str) -> tuple[date, date] | None:
        first, last = (date.fromisoformat(part) for part in raw.split("_", 1))
        return (first, last) if low <= first <= last <= high else None

    return decode


def format_range(value) -> str:
    first, last = value
    return f"{first:%Y-%m-%d}_{last:%Y-%m-%d}"
