"""Figure building blocks shared by the run plots: a canvas off pyplot, an atomic PNG save, a log
axis in plain numbers, and a Pareto front drawn as a staircase."""
from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from nas.run.files import atomic_write_bytes
from nas.strategies.base import Objective

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def new_figure() -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot(1, 1, 1)


def save_figure(figure: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def log_x(ax: Axes) -> None:
    """A log x-axis ticked at 1, 2, 5 x 10^k in plain numbers (not 2x10^0, which crowd)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def draw_front(ax: Axes, front: pd.DataFrame, x: Objective, y: str, staircase: bool, colour: str,
               label: str, gid: str = "front") -> None:
    """``front`` (sorted by x) as points, joined as a staircase when ``staircase``."""
    if staircase:  # the best y reachable without a worse x changes only at front points
        ax.step(front[x.metric], front[y], where="post" if x.direction == "min" else "pre", color=colour,
                lw=1.2, zorder=4, gid=gid)
    ax.scatter(front[x.metric], front[y], s=22, color=colour, zorder=5, label=label, gid=f"{gid}-points")
