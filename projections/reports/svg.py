"""Small inline SVG charts for the HTML report, with no library and no script.

- `line_chart`: a series' history, its segment means, dashed lines at change points and the
  latest point marked when it is anomalous.
- `interval_chart`: one row per configuration, a dot at its mean and a bar over its interval.

Both return an `<svg>` element as a string that is also well-formed XML; all text is escaped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from projections.reports import display

WIDTH = 640
HEIGHT = 180
PAD_LEFT = 64
PAD_RIGHT = 12
PAD_TOP = 24
PAD_BOTTOM = 22
ROW_HEIGHT = 22
LABEL_WIDTH = 200

LINE = "#1f6feb"
SEGMENT = "#8b949e"
CHANGE = "#cf222e"
BEST = "#1a7f37"


@dataclass(frozen=True, slots=True)
class Interval:
    """One row of an interval chart: a label, a centre and its interval (None: no bar)."""

    label: str
    centre: float
    low: float | None
    high: float | None


def line_chart(
    values: Sequence[float],
    *,
    title: str,
    unit: str = "",
    changes: Sequence[int] = (),
    highlight_last: bool = False,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """History of `values` with change points (first index of each new segment) marked."""
    n = len(values)
    low, high = _range(values)
    plot_w = width - PAD_LEFT - PAD_RIGHT
    plot_h = height - PAD_TOP - PAD_BOTTOM

    def x(i: float) -> float:
        return PAD_LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return PAD_TOP + plot_h * (1 - (v - low) / (high - low))

    parts = _frame(_titled(title, unit), width, height)
    parts += _y_axis(low, high, y, width)
    parts.append(_text(PAD_LEFT, height - 6, "0", anchor="start"))
    parts.append(_text(width - PAD_RIGHT, height - 6, str(n - 1), anchor="end"))
    bounds = [0, *sorted(c for c in changes if 0 < c < n), n]
    for start, end in itertools.pairwise(bounds):
        mean = math.fsum(values[start:end]) / (end - start)
        parts.append(
            f'<line x1="{_f(x(start))}" y1="{_f(y(mean))}" x2="{_f(x(end - 1))}" '
            f'y2="{_f(y(mean))}" stroke="{SEGMENT}" stroke-width="2" opacity="0.7"/>'
        )
    for c in bounds[1:-1]:
        xc = x(c - 0.5)
        parts.append(
            f'<line x1="{_f(xc)}" y1="{PAD_TOP}" x2="{_f(xc)}" y2="{height - PAD_BOTTOM}" '
            f'stroke="{CHANGE}" stroke-dasharray="4 3"><title>change at index {c}</title></line>'
        )
    points = " ".join(f"{_f(x(i))},{_f(y(v))}" for i, v in enumerate(values))
    parts.append(f'<polyline points="{points}" fill="none" stroke="{LINE}" stroke-width="1.5"/>')
    if n <= 60:
        parts += [
            f'<circle cx="{_f(x(i))}" cy="{_f(y(v))}" r="2" fill="{LINE}"/>'
            for i, v in enumerate(values)
        ]
    if highlight_last and n:
        parts.append(
            f'<circle cx="{_f(x(n - 1))}" cy="{_f(y(values[-1]))}" r="5" fill="none" '
            f'stroke="{CHANGE}" stroke-width="2"><title>anomalous latest value</title></circle>'
        )
    return "\n".join([*parts, "</svg>"])


def interval_chart(
    rows: Sequence[Interval], *, title: str, unit: str = "", width: int = WIDTH
) -> str:
    """One row per interval, the first (the best) in green, on a shared axis."""
    height = PAD_TOP + PAD_BOTTOM + ROW_HEIGHT * len(rows)
    edges = [v for r in rows for v in (r.centre, r.low, r.high) if v is not None]
    low, high = _range(edges)
    left, right = LABEL_WIDTH, width - PAD_RIGHT

    def x(v: float) -> float:
        return left + (right - left) * (v - low) / (high - low)

    parts = _frame(title, width, height)
    parts.append(_text(left, height - 6, display.num(low, unit), anchor="start"))
    parts.append(_text(right, height - 6, display.num(high, unit), anchor="end"))
    for k, row in enumerate(rows):
        yc = PAD_TOP + ROW_HEIGHT * k + ROW_HEIGHT / 2
        colour = BEST if k == 0 else LINE
        parts.append(_text(left - 8, yc + 4, row.label, anchor="end"))
        if row.low is not None and row.high is not None:
            parts.append(
                f'<line x1="{_f(x(row.low))}" y1="{_f(yc)}" x2="{_f(x(row.high))}" '
                f'y2="{_f(yc)}" stroke="{colour}" stroke-width="3" opacity="0.5"/>'
            )
        tip = f"{row.label}: {display.num(row.centre, unit)}"
        if row.low is not None and row.high is not None:
            tip += f" [{display.num(row.low)}, {display.num(row.high)}]"
        parts.append(
            f'<circle cx="{_f(x(row.centre))}" cy="{_f(yc)}" r="4" fill="{colour}">'
            f"<title>{escape(tip)}</title></circle>"
        )
    return "\n".join([*parts, "</svg>"])


def _frame(title: str, width: int, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(title)} '
        'font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        _text(PAD_LEFT, 14, title, anchor="start", weight="bold"),
    ]


def _y_axis(low: float, high: float, y: Callable[[float], float], width: int) -> list[str]:
    parts = []
    for v in (low, (low + high) / 2, high):
        yv = y(v)
        parts.append(
            f'<line x1="{PAD_LEFT}" y1="{_f(yv)}" x2="{width - PAD_RIGHT}" y2="{_f(yv)}" '
            'stroke="#d0d7de" stroke-width="0.5"/>'
        )
        parts.append(_text(PAD_LEFT - 4, yv + 4, display.num(v), anchor="end"))
    return parts


def _titled(title: str, unit: str) -> str:
    """The title with the unit, which the axis labels leave out to stay short."""
    return f"{title} ({unit})" if unit else title


def _range(values: Sequence[float]) -> tuple[float, float]:
    """The span to draw: the values' range with a margin, never empty."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    margin = (high - low) * 0.05 or abs(high) * 0.05 or 1.0
    return low - margin, high + margin


def _text(x: float, y: float, text: str, *, anchor: str, weight: str = "normal") -> str:
    return (
        f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}" font-weight="{weight}" '
        f'fill="#24292f">{escape(text)}</text>'
    )


def _f(v: float) -> str:
    return f"{v:.1f}"
