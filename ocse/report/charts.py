"""Inline SVG charts for the assessment report: pure functions, published values in, SVG
text out. No JavaScript, so the PDF prints exactly what the HTML shows. A withheld value is
drawn as a marked gap, never as a bar or a point."""

from __future__ import annotations

from html import escape

PALETTE = ("#1f4e79", "#c55a11", "#548235", "#7030a0", "#bf9000", "#2e75b6", "#a5a5a5", "#843c0c")
WITHHELD = "▪"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def grouped_bars(
    title: str,
    categories: list[str],
    series: list[tuple[str, list[float | None]]],
    *,
    width: int = 720,
    height: int = 300,
) -> str:
    """One group of bars per category, one bar per series (e.g. per quarter)."""
    left, right, top, bottom = 48, 12, 28, 100
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, vs in series for v in vs if v is not None]
    top_value = _nice_max(max(values, default=0))
    group_w = plot_w / max(len(categories), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    parts = [_frame(title, width, height)]
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">'
            f"{top_value * i / 4:g}</text>"
        )
    for c, category in enumerate(categories):
        x0 = left + c * group_w + group_w * 0.1
        for s, (_, vs) in enumerate(series):
            x = x0 + s * bar_w
            value = vs[c]
            if value is None:
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - 3}" font-size="10" '
                    f'text-anchor="middle" fill="#888">{WITHHELD}</text>'
                )
                continue
            h = plot_h * value / top_value
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w * 0.92:.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[s % len(PALETTE)]}"/>'
            )
        label = escape(category)
        cx = left + c * group_w + group_w / 2
        parts.append(
            f'<text x="{cx:.1f}" y="{top + plot_h + 12}" font-size="9" text-anchor="end" '
            f'transform="rotate(-30 {cx:.1f} {top + plot_h + 12})">{label}</text>'
        )
    parts.append(_legend([name for name, _ in series], left, height - 10))
    parts.append("</svg>")
    return "".join(parts)


def rate_lines(
    title: str,
    periods: list[str],
    series: list[tuple[str, list[float | None]]],
    *,
    width: int = 720,
    height: int = 260,
) -> str:
    """Rates in [0, 1] over periods; a withheld point breaks its line."""
    left, right, top, bottom = 48, 12, 28, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(periods) - 1, 1)
    parts = [_frame(title, width, height)]
    for i in range(5):
        y = top + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">'
            f"{25 * i}%</text>"
        )
    for p, period in enumerate(periods):
        parts.append(
            f'<text x="{left + p * step:.1f}" y="{top + plot_h + 14}" font-size="10" '
            f'text-anchor="middle">{escape(period)}</text>'
        )
    for s, (_, values) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        segment: list[str] = []
        for p, value in enumerate([*values, None]):
            if value is None:
                if len(segment) > 1:
                    parts.append(
                        f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                        f'points="{" ".join(segment)}"/>'
                    )
                segment = []
                continue
            x, y = left + p * step, top + plot_h - plot_h * value
            segment.append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
    parts.append(_legend([name for name, _ in series], left, height - 8))
    parts.append("</svg>")
    return "".join(parts)


def _frame(title: str, width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif">'
        f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>'
    )


def _legend(names: list[str], x: int, y: int) -> str:
    parts, offset = [], 0
    for i, name in enumerate(names):
        parts.append(
            f'<rect x="{x + offset}" y="{y - 9}" width="10" height="10" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{x + offset + 14}" y="{y}" font-size="10">{escape(name)}</text>'
        )
        offset += 24 + 7 * len(name)
    return "".join(parts)
