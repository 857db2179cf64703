"""Charts as inline SVG, drawn on the server: no script, no CDN, nothing to build.

Every mark carries its figure in a ``data-*`` attribute (and a ``<title>`` tooltip), so a test
reads the numbers the browser draws. Text is escaped by ``markupsafe``; sizes are in a
``viewBox`` and the SVG scales to the width of the screen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

Z95 = 1.96  # two-sided 95% normal quantile


@dataclass(frozen=True, slots=True)
class TrendPoint:
    label: str
    promoters: int
    passives: int
    detractors: int

    @property
    def responses(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def nps(self) -> float | None:
        n = self.responses
        return None if n == 0 else round(100.0 * (self.promoters - self.detractors) / n, 1)


def nps_interval(promoters: int, passives: int, detractors: int) -> tuple[float, float] | None:
    """95% interval of NPS: the score is a mean of +1/0/-1 per answer, so its standard error is
    sqrt((p + d - (p - d)^2) / n); clipped to -100..100. None under two answers."""
    n = promoters + passives + detractors
    if n < 2:
        return None
    p, d = promoters / n, detractors / n
    se = math.sqrt(max(p + d - (p - d) ** 2, 0.0) / n)
    nps = p - d
    return max(-100.0, 100 * (nps - Z95 * se)), min(100.0, 100 * (nps + Z95 * se))


def trend_chart(points: Sequence[TrendPoint]) -> Markup:
    """NPS per period as a line with its 95% band; the answer count under each point."""
    width, height, left, right, top, bottom = 480, 220, 32, 8, 12, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(points), 1)

    def x(i: int) -> float:
        return left + step * (i + 0.5)

    def y(value: float) -> float:
        return top + plot_h * (100 - value) / 200

    parts = [
        f'<svg class="chart trend" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="NPS по периодам" preserveAspectRatio="xMidYMid meet">'
    ]
    for value in (100, 50, 0, -50, -100):
        cls = "axis zero" if value == 0 else "axis"
        parts.append(
            f'<line class="{cls}" x1="{left}" x2="{width - right}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}"/><text class="tick" x="{left - 4}" y="{y(value) + 4:.1f}" '
            f'text-anchor="end">{value}</text>'
        )
    band_top, band_bottom = [], []
    for i, p in enumerate(points):
        interval = nps_interval(p.promoters, p.passives, p.detractors)
        if interval is not None:
            band_top.append(f"{x(i):.1f},{y(interval[1]):.1f}")
            band_bottom.append(f"{x(i):.1f},{y(interval[0]):.1f}")
    if len(band_top) >= 2:
        polygon = " ".join(band_top + band_bottom[::-1])
        parts.append(f'<polygon class="band" points="{polygon}"/>')
    line = [f"{x(i):.1f},{y(p.nps):.1f}" for i, p in enumerate(points) if p.nps is not None]
    if len(line) >= 2:
        parts.append(f'<polyline class="line" points="{" ".join(line)}"/>')
    crowded = len(points) > 8  # a phone is ~400 px wide: label every other period
    for i, p in enumerate(points):
        label = escape(p.label)
        if not crowded or (len(points) - 1 - i) % 2 == 0:
            parts.append(
                f'<text class="label" x="{x(i):.1f}" y="{height - 24}" '
                f'text-anchor="middle">{label}</text>'
            )
        parts.append(
            f'<text class="count" x="{x(i):.1f}" y="{height - 8}" text-anchor="middle">'
            f"{p.responses}</text>"
        )
        if p.nps is None:
            continue
        interval = nps_interval(p.promoters, p.passives, p.detractors)
        band = "" if interval is None else f", 95%: {interval[0]:.0f}…{interval[1]:.0f}"
        parts.append(
            f'<circle class="point" cx="{x(i):.1f}" cy="{y(p.nps):.1f}" r="4" '
            f'data-label="{label}" data-nps="{p.nps}" data-n="{p.responses}">'
            f"<title>{label}: NPS {p.nps:+.0f}, ответов {p.responses}{band}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True, slots=True)
class Bar:
    key: str
    label: str
    value: int
    href: str
    previous: int | None = None  # the same bar in the previous period


def pareto_chart(bars: Sequence[Bar]) -> Markup:
    """Horizontal bars, largest first, with the cumulative share; each bar is a link."""
    total = sum(b.value for b in bars)
    row, label_w, width = 28, 168, 440
    bar_w = width - label_w - 100
    top = max((b.value for b in bars), default=0) or 1
    height = row * len(bars) + 8
    parts = [
        f'<svg class="chart pareto" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Причины по убыванию">'
    ]
    cumulative = 0
    for i, b in enumerate(bars):
        cumulative += b.value
        y = 4 + i * row
        length = bar_w * b.value / top
        share = 100 * cumulative / total if total else 0.0
        change = "" if b.previous is None else f" ({b.value - b.previous:+d})"
        label = escape(b.label)
        parts.append(
            f'<a href="{escape(b.href)}" class="bar-link">'
            f'<text class="label" x="{label_w - 6}" y="{y + 18}" text-anchor="end">{label}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{length:.1f}" height="{row - 10}"'
            f' data-key="{escape(b.key)}" data-count="{b.value}" data-cumulative="{share:.1f}">'
            f"<title>{label}: {b.value}{change}, накопленно {share:.0f}%</title></rect>"
            f'<text class="value" x="{label_w + length + 6:.1f}" y="{y + 18}">{b.value}'
            f"{escape(change)} · {share:.0f}%</text></a>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def coefficient_chart(cohorts: Sequence[tuple[str, float | None]], norm: float) -> Markup:
    """Vertical bars of a 0..1 coefficient per cohort with the norm as a dashed line."""
    width, height, left, bottom, top = 480, 200, 32, 28, 10
    plot_h = height - top - bottom
    step = (width - left - 8) / max(len(cohorts), 1)

    def y(value: float) -> float:
        return top + plot_h * (1 - min(value, 1.0))

    parts = [
        f'<svg class="chart coefficient" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Коэффициент повторных сделок по стажу">'
    ]
    for value in (0.0, 0.5, 1.0):
        parts.append(
            f'<line class="axis" x1="{left}" x2="{width - 8}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}"/><text class="tick" x="{left - 4}" y="{y(value) + 4:.1f}" '
            f'text-anchor="end">{value:.1f}</text>'
        )
    for i, (label, share) in enumerate(cohorts):
        x = left + step * i + step * 0.2
        text = escape(label)
        parts.append(
            f'<text class="label" x="{x + step * 0.3:.1f}" y="{height - 8}" '
            f'text-anchor="middle">{text}</text>'
        )
        if share is None:
            continue
        value = share
        cls = "bar good" if value >= norm else "bar poor"
        parts.append(
            f'<rect class="{cls}" x="{x:.1f}" y="{y(value):.1f}" width="{step * 0.6:.1f}" '
            f'height="{top + plot_h - y(value):.1f}" data-cohort="{text}" data-value="{value}">'
            f"<title>{text}: {value:.2f}</title></rect>"
        )
    parts.append(
        f'<line class="norm" x1="{left}" x2="{width - 8}" y1="{y(norm):.1f}" y2="{y(norm):.1f}"/>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))
