"""Install counts of apps and their bar chart, worked out on the server and drawn as inline SVG.

Like the compliance dashboard (``policies.dashboard_charts``): no script and no chart library;
the template writes one ``<rect>`` per state with a title, a description and the same numbers
as a table.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.dashboard_charts import nice_ceiling

from ..choices import InstallState
from ..selectors import STATE_ORDER

STATE_COLOR = {
    InstallState.INSTALLED: "#2e7d32",
    InstallState.PENDING: "#1f5fbf",
    InstallState.FAILED: "#c62828",
    InstallState.CONFLICT: "#e65100",
    InstallState.NOT_INSTALLED: "#8d6e63",
    InstallState.NOT_APPLICABLE: "#78909c",
}


@dataclass
class StateBar:
    state: str
    label: str
    count: int
    color: str
    y: float
    width: float
    text_y: float
    value_x: float


@dataclass
class InstallChart:
    width: int
    height: int
    label_x: int
    bar_x: int
    bar_height: int
    plot_right: int
    bars: list[StateBar]
    x_ticks: list[tuple[float, str]]
    description: str
    total: int

    @property
    def axis_y(self) -> float:
        return self.height - 18

    @property
    def tick_label_y(self) -> float:
        return self.height - 4


def install_chart(counts: dict[str, int], app_name: str) -> InstallChart:
    """A horizontal bar per install state, on one scale with round ticks."""
    width, label_x, bar_x, row, bar_height, top, right = 720, 120, 128, 30, 20, 6, 56
    room = width - bar_x - right
    highest = max(counts.values(), default=0)
    scale_max, step = nice_ceiling(highest)
    bars = []
    for i, state in enumerate(STATE_ORDER):
        n = counts.get(state, 0)
        bar_width = round(n / scale_max * room, 1) if n else 0.0
        if n and bar_width < 2:
            bar_width = 2.0
        y = top + i * row
        bars.append(
            StateBar(
                state=state,
                label=InstallState(state).label,
                count=n,
                color=STATE_COLOR[state],
                y=y,
                width=bar_width,
                text_y=y + bar_height / 2 + 4,
                value_x=round(bar_x + bar_width + 6, 1),
            )
        )
    plot_bottom = top + len(STATE_ORDER) * row
    x_ticks = [(round(bar_x + v / scale_max * room, 1), f"{v:,}") for v in range(0, scale_max + 1, step)]
    total = sum(counts.values())
    if total:
        parts = ", ".join(f"{counts.get(s, 0):,} {InstallState(s).label.lower()}" for s in STATE_ORDER)
        description = f"Devices per install state of {app_name}: {parts}."
    else:
        description = f"{app_name} has no install on any device you may see yet."
    return InstallChart(
        width=width,
        height=plot_bottom + 24,
        label_x=label_x,
        bar_x=bar_x,
        bar_height=bar_height,
        plot_right=width - right,
        bars=bars,
        x_ticks=x_ticks,
        description=description,
        total=total,
    )
