"""English and Chinese: the language switch and the lookup every page uses.

Each page keeps its words in one `TEXT = {"en": {...}, "zh": {...}}` table next to the code
that shows them; `words(TEXT)` picks the current language. A test checks that both
languages have the same keys and placeholders, so a string cannot go missing in one of them.
Category labels come from the data (`dim_categories`: the spec's Chinese and English names).
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

LANGUAGES = {"en": "English", "zh": "中文"}
DEFAULT_LANGUAGE = "en"
_KEY = "ocse_language"


def language() -> str:
    try:
        chosen = st.session_state.get(_KEY, DEFAULT_LANGUAGE)
    except Exception:  # outside a Streamlit run (benchmarks, plain imports)
        return DEFAULT_LANGUAGE
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def set_language(code: str) -> None:
    if code in LANGUAGES:
        st.session_state[_KEY] = code


def words(table: Mapping[str, Mapping[str, object]]) -> Mapping[str, object]:
    """The current language's strings of a page's TEXT table."""
    return table.get(language()) or table[DEFAULT_LANGUAGE]


def language_from_url() -> None:
    """First thing of a new session: the language the URL names (`?lang=zh`), so a reload,
    a bookmark and the sign-in form (which passes it on) keep it."""
    if _KEY not in st.session_state and st.query_params.get("lang") in LANGUAGES:
        set_language(st.query_params["lang"])


def language_switch() -> None:
    """Sidebar control; the choice lives in the session and in the URL (read first thing by
    app.py, `language_from_url`)."""
    current = language()
    choice = st.segmented_control(
        "Language / 语言",
        options=list(LANGUAGES),
        format_func=LANGUAGES.__getitem__,
        default=current,
        key="ocse_language_choice",
        label_visibility="collapsed",
    )
    if choice and choice != current:
        set_language(choice)
        st.rerun()
    # every run: Streamlit clears the query string on a page switch
    if current == DEFAULT_LANGUAGE:
        if "lang" in st.query_params:
            del st.query_params["lang"]
    elif st.query_params.get("lang") != current:
        st.query_params["lang"] = current


def category_label(labels: Mapping[str, tuple[str, str]], code: str | None) -> str:
    """`labels`: category_code -> (label_en, label_zh), from `queries.category_labels`."""
    if code is None:
        return "–"
    pair = labels.get(code)
    if pair is None:
        return code
    return pair[1] if language() == "zh" else pair[0]
