"""Server-side SVG charts for the console: no JavaScript chart library, nothing to load.

Every function returns a ``markupsafe.Markup`` holding one ``<svg>`` element that is inlined in
the page. Text that comes from data (labels, names, titles) is escaped here, once; colors are
presentation attributes (``fill=``), never ``style=``, so the page's CSP (no inline styles) holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from markupsafe import Markup

PALETTE = ("#2563eb", "#b7791f", "#059669", "#db2777", "#7c3aed", "#0891b2", "#dc2626", "#4d7c0f")
STATUS_COLORS = {"final": "#23824a", "open": "#2563eb", "needs_review": "#d97706"}
AXIS = "#8a94a3"
GRID = "#e6e9ee"
TEXT = "#5f6b7a"
FONT = 'font-family="system-ui, sans-serif"'


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def nice_scale(value: float, ticks: int = 4) -> tuple[float, float]:
    """A round y axis for counts up to ``value``: (top, step) with step a whole 1/2/5 x 10^k and
    at most ``ticks`` steps, so gridlines fall on whole numbers."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / ticks
    exp = 10 ** max(0, math.floor(math.log10(raw))) if raw >= 1 else 1
    step = next(m * exp for m in (1, 2, 5, 10) if m * exp >= raw)
    return float(step * math.ceil(value / step)), float(step)


def nice_max(value: float) -> float:
    return nice_scale(value)[0]


def fmt_count(v: float) -> str:
    if v >= 1_000_000:
        return f"{v / 1_000_000:.1f}M".replace(".0M", "M")
    if v >= 10_000:
        return f"{v / 1000:.0f}k"
    if v >= 1000:
        return f"{v / 1000:.1f}k".replace(".0k", "k")
    return f"{v:g}"


def _svg_open(width: int, height: int, title: str, cls: str) -> list[str]:
    return [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {_e(cls)}" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{_e(title)}">'
        ),
        f"<title>{_e(title)}</title>",
    ]


def _y_axis(parts: list[str], left: int, top: int, plot_w: int, plot_h: int, scale: tuple[float, float]) -> None:
    top_value, step = scale
    n = round(top_value / step)
    for k in range(n + 1):
        v = step * k
        y = top + plot_h - plot_h * v / top_value
        parts.append(f'<line x1="{left}" y1="{_num(y)}" x2="{left + plot_w}" y2="{_num(y)}" stroke="{GRID}"/>')
        parts.append(f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end" font-size="11" fill="{TEXT}" {FONT}>'
                     f"{_e(fmt_count(v))}</text>")


def _x_labels(parts: list[str], labels: Sequence[str], xs: Sequence[float], y: float, every: int) -> None:
    for i, (label, x) in enumerate(zip(labels, xs)):
        if i % every == 0 or i == len(labels) - 1 and (len(labels) - 1) % every >= every / 2:
            parts.append(f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="middle" font-size="11" fill="{TEXT}" {FONT}>'
                         f"{_e(label)}</text>")


def bar_chart(values: Sequence[float], labels: Sequence[str], *, title: str, width: int = 560, height: int = 220,
              color: str = PALETTE[0], label_every: int = 1, cls: str = "bar-chart") -> Markup:
    """Vertical bars, one per value, labeled below (every ``label_every``-th label)."""
    left, right, top, bottom = 44, 10, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    scale = nice_scale(max(values, default=0))
    top_value = scale[0]
    parts = _svg_open(width, height, title, cls)
    _y_axis(parts, left, top, plot_w, plot_h, scale)
    n = max(1, len(values))
    slot = plot_w / n
    gap = min(6.0, slot * 0.2)
    xs = []
    for i, (v, label) in enumerate(zip(values, labels)):
        h = plot_h * (v / top_value) if top_value else 0
        x = left + i * slot + gap / 2
        xs.append(left + i * slot + slot / 2)
        parts.append(
            f'<rect x="{_num(x)}" y="{_num(top + plot_h - h)}" width="{_num(max(1.0, slot - gap))}" '
            f'height="{_num(h)}" fill="{_e(color)}" rx="2"><title>{_e(label)}: {_e(fmt_count(v))}</title></rect>'
        )
    _x_labels(parts, labels, xs, height - 8, label_every)
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="{AXIS}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # nosec B704  # every value in parts went through _e (html.escape)


def line_chart(series: Sequence[tuple[str, Sequence[float]]], labels: Sequence[str], *, title: str,
               width: int = 560, height: int = 220, label_every: int = 1, cls: str = "line-chart") -> Markup:
    """One polyline per (name, values) series over shared x labels, with a legend."""
    left, right, top, bottom = 44, 10, 26, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    scale = nice_scale(max((max(v, default=0) for _, v in series), default=0))
    top_value = scale[0]
    parts = _svg_open(width, height, title, cls)
    _y_axis(parts, left, top, plot_w, plot_h, scale)
    n = max(1, len(labels) - 1)
    xs = [left + plot_w * i / n for i in range(len(labels))]
    legend_x = left
    for k, (name, values) in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        points = " ".join(
            f"{_num(xs[i])},{_num(top + plot_h - plot_h * (v / top_value))}" for i, v in enumerate(values)
        )
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2.2" '
                     f'stroke-linejoin="round" stroke-linecap="round"/>')
        for i, v in enumerate(values):
            parts.append(f'<circle cx="{_num(xs[i])}" cy="{_num(top + plot_h - plot_h * (v / top_value))}" r="2.6" '
                         f'fill="{color}"><title>{_e(name)} {_e(labels[i])}: {_e(fmt_count(v))}</title></circle>')
        parts.append(f'<rect x="{legend_x}" y="6" width="10" height="10" rx="2" fill="{color}"/>')
        parts.append(f'<text x="{legend_x + 14}" y="15" font-size="11" fill="{TEXT}" {FONT}>{_e(name)}</text>')
        legend_x += 24 + 7 * len(str(name))
    _x_labels(parts, labels, xs, height - 8, label_every)
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="{AXIS}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # nosec B704  # every value in parts went through _e (html.escape)


def donut(parts_in: Sequence[tuple[str, float, str]], *, title: str, size: int = 180,
          cls: str = "donut-chart") -> Markup:
    """Shares as a ring: (label, value, color). The total sits in the middle."""
    total = sum(v for _, v, _ in parts_in)
    r, stroke = size / 2 - 14, 22
    c = size / 2
    circumference = 2 * math.pi * r
    parts = _svg_open(size, size, title, cls)
    parts.append(f'<circle cx="{_num(c)}" cy="{_num(c)}" r="{_num(r)}" fill="none" stroke="{GRID}" '
                 f'stroke-width="{stroke}"/>')
    offset = 0.0
    for label, value, color in parts_in:
        if total <= 0 or value <= 0:
            continue
        length = circumference * value / total
        parts.append(
            f'<circle cx="{_num(c)}" cy="{_num(c)}" r="{_num(r)}" fill="none" stroke="{_e(color)}" '
            f'stroke-width="{stroke}" stroke-dasharray="{length:.2f} {circumference - length:.2f}" '
            f'stroke-dashoffset="{-offset:.2f}" transform="rotate(-90 {_num(c)} {_num(c)})">'
            f"<title>{_e(label)}: {_e(fmt_count(value))} ({value / total:.0%})</title></circle>"
        )
        offset += length
    parts.append(f'<text x="{_num(c)}" y="{_num(c + 2)}" text-anchor="middle" font-size="22" font-weight="700" '
                 f'fill="#1d2330" {FONT}>{_e(fmt_count(total))}</text>')
    parts.append(f'<text x="{_num(c)}" y="{_num(c + 20)}" text-anchor="middle" font-size="11" fill="{TEXT}" '
                 f'{FONT}>items</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # nosec B704  # every value in parts went through _e (html.escape)


def histogram(bins: Sequence[int], *, title: str, width: int = 560, height: int = 220) -> Markup:
    """Counts of confidences in equal bins over [0, 1]."""
    n = len(bins)
    labels = [f"{k / n:.1f}" for k in range(n)]
    return bar_chart(bins, labels, title=title, width=width, height=height, color=PALETTE[4], cls="histogram")


def _mix(weight: float) -> str:
    """White to the accent blue, by weight in [0, 1]."""
    w = max(0.0, min(1.0, weight))
    r, g, b = (int(255 + (t - 255) * w) for t in (0x25, 0x63, 0xEB))
    return f"#{r:02x}{g:02x}{b:02x}"


def confusion_matrix(labels: Sequence[str], matrix: Sequence[Sequence[float]], *, title: str,
                     counts: bool = False, cell: int = 56) -> Markup:
    """A heatmap: rows are the true (consensus) label, columns the annotator's answer.
    ``counts``: cells are counts (shaded by row share); else probabilities."""
    k = len(labels)
    longest = max((len(str(label)) for label in labels), default=4)
    left = 16 + min(22, longest) * 7
    top = 40
    width, height = left + k * cell + 10, top + k * cell + 34
    parts = _svg_open(width, height, title, "confusion")
    parts.append(f'<text x="{left + k * cell / 2:.1f}" y="12" text-anchor="middle" font-size="11" fill="{TEXT}" {FONT}>'
                 "answered</text>")
    for j, label in enumerate(labels):
        short = str(label) if len(str(label)) <= 8 else str(label)[:7] + "…"
        parts.append(f'<text x="{left + j * cell + cell / 2:.1f}" y="{top - 8}" text-anchor="middle" font-size="11" '
                     f'fill="#1d2330" {FONT}>{_e(short)}<title>{_e(label)}</title></text>')
    for i, label in enumerate(labels):
        row = list(matrix[i]) if i < len(matrix) else [0] * k
        row_total = sum(row) if counts else 1.0
        short = str(label) if len(str(label)) <= 22 else str(label)[:21] + "…"
        parts.append(f'<text x="{left - 8}" y="{top + i * cell + cell / 2 + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#1d2330" {FONT}>{_e(short)}<title>{_e(label)}</title></text>')
        for j in range(k):
            v = float(row[j]) if j < len(row) else 0.0
            share = v / row_total if row_total else 0.0
            text = fmt_count(v) if counts else f"{v:.2f}"
            ink = "#ffffff" if share > 0.55 else "#1d2330"
            parts.append(
                f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell - 2}" height="{cell - 2}" rx="3" '
                f'fill="{_mix(share)}" stroke="{GRID}"><title>true {_e(label)}, answered {_e(labels[j])}: '
                f"{_e(text)}</title></rect>"
            )
            parts.append(f'<text x="{left + j * cell + cell / 2 - 1:.1f}" y="{top + i * cell + cell / 2 + 3:.1f}" '
                         f'text-anchor="middle" font-size="12" fill="{ink}" {FONT}>{_e(text)}</text>')
    parts.append(f'<text x="8" y="{height - 10}" font-size="11" fill="{TEXT}" {FONT}>rows: consensus label</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # nosec B704  # every value in parts went through _e (html.escape)


def hour_label(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:00")


def day_label(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%b %d")


def hour_labels(starts: Sequence[int]) -> list[str]:
    return [hour_label(ms) for ms in starts]


def day_labels(starts: Sequence[int]) -> list[str]:
    return [day_label(ms) for ms in starts]
