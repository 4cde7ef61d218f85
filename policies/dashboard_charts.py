"""The dashboard's charts as geometry for inline SVG: computed here, drawn by the template.

No script and no chart library: the server works out every coordinate, the template
(``admin/policies/dashboard.html``) writes ``<polyline>`` and ``<rect>`` elements with a title, a
description and a table of the same numbers for screen readers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from math import ceil, log10

from django.utils.formats import date_format

from devices.choices import ComplianceState

from .selectors import reports

# Colour and line pattern per state: the pattern tells the lines apart without colour.
STATE_STYLE: dict[str, tuple[str, str]] = {
    ComplianceState.NONCOMPLIANT: ("#c62828", ""),
    ComplianceState.IN_GRACE: ("#e65100", "7 4"),
    ComplianceState.ERROR: ("#6a1b9a", "2 3"),
    ComplianceState.NOT_EVALUATED: ("#607d8b", "10 3 2 3"),
    ComplianceState.COMPLIANT: ("#2e7d32", ""),
}


def nice_ceiling(value: int, ticks: int = 4) -> tuple[int, int]:
    """An axis maximum at or above ``value`` and its tick step, both round (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return ticks, 1
    raw = value / ticks
    magnitude = 10 ** int(log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return int(ceil(value / step) * step), int(step)


@dataclass
class TrendSeries:
    state: str
    label: str
    color: str
    dash: str
    lines: list[str] = field(default_factory=list)  # polyline points, one per run of days with data
    dots: list[tuple[float, float]] = field(default_factory=list)  # a day with data between two gaps
    latest: int | None = None


@dataclass
class TrendChart:
    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    series: list[TrendSeries]
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    gaps: list[tuple[float, float, str]]
    description: str
    has_data: bool
    latest_day: date | None = None  # the day of the last snapshot: the legend's numbers are that day's

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    @property
    def plot_height(self) -> int:
        return self.height - self.bottom - self.top

    @property
    def label_y(self) -> int:
        return self.height - self.bottom + 18

    @property
    def middle(self) -> tuple[int, int]:
        return (self.left + self.plot_right) // 2, (self.top + self.plot_bottom) // 2


def trend_chart(days: list[reports.TrendDay]) -> TrendChart:
    """Lines per state over the days; a day without a snapshot breaks the lines and is shaded."""
    width, height, left, right, top, bottom = 760, 260, 52, 16, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    count = len(days)
    step = plot_w / (count - 1) if count > 1 else 0

    def x(i: int) -> float:
        return round(left + i * step, 1)

    highest = max((max(d.counts.values(), default=0) for d in days if d.counts is not None), default=0)
    y_max, y_step = nice_ceiling(highest)

    def y(value: int) -> float:
        return round(top + plot_h - value / y_max * plot_h, 1)

    series = []
    for state in reports.STATES:
        color, dash = STATE_STYLE[state]
        line = TrendSeries(state=state, label=reports.state_label(state), color=color, dash=dash)
        run: list[tuple[float, float]] = []
        for i, day in enumerate([*days, None]):
            if day is not None and day.counts is not None:
                run.append((x(i), y(day.counts.get(state, 0))))
                line.latest = day.counts.get(state, 0)
                continue
            if len(run) > 1:
                line.lines.append(" ".join(f"{px},{py}" for px, py in run))
            elif run:
                line.dots.append(run[0])
            run = []
        series.append(line)

    gaps, start = [], None
    for i, day in enumerate([*days, None]):
        missing = day is not None and day.counts is None
        if missing and start is None:
            start = i
        elif not missing and start is not None:
            first, last = days[start].day, days[i - 1].day
            x0, x1 = max(left, x(start) - step / 2), min(width - right, x(i - 1) + step / 2)
            label = date_format(first, "j M") + ("" if first == last else " to " + date_format(last, "j M"))
            gaps.append((round(x0, 1), round(x1 - x0, 1), f"No snapshot: {label}"))
            start = None

    y_ticks = [(y(v), f"{v:,}") for v in range(0, y_max + 1, y_step)]
    x_ticks = [(x(i), date_format(days[i].day, "j M")) for i in range(count) if (count - 1 - i) % 14 == 0]
    with_data = [d for d in days if d.counts is not None]
    missing = count - len(with_data)
    if with_data:
        latest = with_data[-1]
        parts = ", ".join(f"{latest.counts[s]:,} {reports.state_label(s).lower()}" for s in reports.STATES)
        description = (
            f"Devices per compliance state each day from {date_format(days[0].day, 'j F')} to "
            f"{date_format(days[-1].day, 'j F Y')}. On {date_format(latest.day, 'j F')}: {parts}."
        )
        if missing:
            description += f" {missing} day{'s' if missing != 1 else ''} without a snapshot are left blank."
    else:
        description = "No daily snapshot yet: the compliance sweep records one each day."
    return TrendChart(
        width, height, left, top, right, bottom, series, y_ticks, x_ticks, gaps, description, bool(with_data),
        latest_day=with_data[-1].day if with_data else None,
    )  # fmt: skip


@dataclass
class Bar:
    setting: reports.FailingSetting
    url: str | None
    y: float
    failing_width: float
    noncompliant_width: float
    value_x: float
    text_y: float


@dataclass
class BarChart:
    width: int
    height: int
    label_x: int
    bar_x: int
    bar_height: int
    bars: list[Bar]
    description: str


def failing_chart(settings: list[reports.FailingSetting], url_for: Callable[[str], str | None]) -> BarChart:
    """A horizontal bar per failing rule: devices failing it, the noncompliant part darker."""
    width, label_x, bar_x, row, bar_height, top = 760, 282, 290, 30, 20, 6
    shown = [s for s in settings if s.devices]
    scale_max = max((s.devices for s in shown), default=1)
    room = width - bar_x - 70
    bars = []
    for i, setting in enumerate(shown):
        failing_width = round(max(2.0, setting.devices / scale_max * room), 1)
        bars.append(
            Bar(
                setting=setting,
                url=url_for(setting.rule),
                y=top + i * row,
                failing_width=failing_width,
                noncompliant_width=round(setting.noncompliant / scale_max * room, 1),
                value_x=round(bar_x + failing_width + 6, 1),
                text_y=top + i * row + bar_height // 2 + 4,
            )
        )
    if shown:
        worst = shown[0]
        description = (
            f"Devices failing each setting, {len(shown)} setting{'s' if len(shown) != 1 else ''}. Most failed: "
            f"{worst.label}, {worst.devices:,} device{'s' if worst.devices != 1 else ''} "
            f"({worst.noncompliant:,} noncompliant now)."
        )
    else:
        description = "No device fails a compliance setting."
    return BarChart(width, top * 2 + len(shown) * row, label_x, bar_x, bar_height, bars, description)
