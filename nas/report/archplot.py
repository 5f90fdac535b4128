"""A picture of one architecture: stem, one bar per block group (grouped by stage), head.

The network reads top to bottom, one row per block group, so that rows never crowd each other however
many stages there are. A bar's width grows with log2 of its output channels and its height with its
number of layers, so the shape (where the width and the depth go) shows at a glance; the row's text
gives the exact numbers the builder uses (scaled channels, scaled repeats, feature-map sizes) from
`search_spaces.layout.resolve`.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nas.report.figures import save_figure
from search_spaces.arch import BLOCK_KINDS, Architecture, Block, format_number
from search_spaces.cost import cost
from search_spaces.errors import NasError
from search_spaces.layout import LayerLayout, NetworkLayout, resolve
from search_spaces.scaling import scale_stage_depth

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

# Longer names for the legend; a kind missing here is shown by its grammar token.
_KIND_NAMES = {
    "mb": "MBConv", "fmb": "fused-MBConv", "basic": "ResNet", "bottleneck": "ResNet / ResNeXt",
    "convnext": "ConvNeXt", "skip": "identity or 1x1 projection",
}
# Row cells by key, and the column names shown above them.
_COLUMNS = {"block": "block", "k": "kernel", "e": "exp", "SE": "SE", "act": "act", "g": "groups",
            "out": "out ch", "layers": "layers", "s": "stride", "map": "map", "": ""}
_END_GREY = "0.55"  # stem and head: not searched per stage, so kept neutral

# Sizes in inches (the axes' data coordinates are inches, so text and bars line up predictably).
_UNIT = 0.21  # height of one layer, while the network is shallow enough
_MIN_UNIT = 0.14  # still one text line for a single-layer row
_TALL = 5.0  # above this height the layers share it (down to _MIN_UNIT each)
_GAP = 0.07  # between rows
_FONT = 8.0  # points
_CHAR = _FONT * 0.602 / 72  # advance of one monospace character
_LABEL_W = 0.75  # stage labels
_BAR_W = 2.2  # the widest bar
_HEADER_H = 0.75


@dataclass(frozen=True)
class _Row:
    """One drawn row: its bar, its text cells and where it belongs."""

    kind: str  # a block kind, or "stem" / "head"
    cells: dict[str, str]
    channels: int
    layers: int
    stage: int | None = None
    gid: str = ""


def _kind_colour(kind: str) -> str:
    """A stable colour per block kind (its position among all kinds in a qualitative palette)."""
    from matplotlib import colormaps

    if kind not in BLOCK_KINDS:
        return _END_GREY
    palette = colormaps["tab10"].colors
    rgb = palette[BLOCK_KINDS.index(kind) % len(palette)]
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


def _token(block: Block, key: str) -> str:
    """The block's own grammar token for ``key`` (k, e, g, se), or '' where its kind has none."""
    pattern = re.compile(rf"h?{key}[0-9][0-9.]*" if key == "se" else rf"{key}[0-9][0-9.]*")
    return next((t for t in str(block).split("_")[1:] if pattern.fullmatch(t)), "")


def _si(value: int) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            return f"{value / scale:.2f} {suffix}"
    return str(value)


def _groups(arch: Architecture, layout: NetworkLayout) -> list[tuple[int, int, Block, list[LayerLayout]]]:
    """(stage, group, block, its resolved layers), with the depth scaling `resolve` applies."""
    out, start = [], 0
    for s, stage in enumerate(arch.stages):
        for g, (block, n) in enumerate(zip(stage, scale_stage_depth([b.repeats for b in stage], arch.depth))):
            out.append((s, g, block, list(layout.layers[start:start + n])))
            start += n
    assert start == len(layout.layers), "layout and architecture disagree on the number of layers"
    return out


def _rows(arch: Architecture, layout: NetworkLayout) -> list[_Row]:
    stem, head = layout.stem, layout.head
    stem_cells = {
        "block": "stem" if stem.kind == "conv" else "stem patch", "k": f"k{stem.kernel}",
        "act": stem.act if stem.act != arch.act and stem.kind == "conv" else "",
        "out": f"c{stem.out_channels}", "s": f"s{stem.stride}",
        "map": f"{stem.out_size}×{stem.out_size}",
        "": "+ max-pool 3/2" if stem.pool else ("+ LayerNorm" if stem.kind == "patch" else ""),
    }
    rows = [_Row("stem", stem_cells, stem.out_channels, 1, gid="stem")]
    for s, g, block, layers in _groups(arch, layout):
        last = layers[-1]
        # Kernel, expansion, groups and SE as the arch string writes them, so a kind shows just
        # the fields it uses.
        cells = {
            "block": block.kind, "k": _token(block, "k"), "e": _token(block, "e"), "SE": _token(block, "se"),
            "act": last.act if block.act and last.act != arch.act else "", "g": _token(block, "g"),
            "out": f"c{last.out_channels}", "layers": f"x{len(layers)}",
            "s": f"s{block.stride}" if block.stride != 1 else "",
            "map": f"{last.out_size}×{last.out_size}",
        }
        rows.append(_Row(block.kind, cells, last.out_channels, len(layers), s, f"stage{s + 1}.{g + 1}"))
    steps = {"conv": [f"conv 1x1 c{head.channels}", "pool"], "pool": ["pool"], "norm": ["pool", "LayerNorm"]}
    notes = steps.get(head.kind, [head.kind]) + ([f"fc {head.hidden}"] if head.hidden else [])
    notes += ([f"dropout {format_number(head.dropout)}"] if head.dropout else []) + ["classifier"]
    head_cells = {
        "block": "head", "act": head.act if head.act != arch.act and head.kind == "conv" else "",
        "out": f"c{head.features}", "map": "1×1", "": " → ".join(notes),
    }
    rows.append(_Row("head", head_cells, head.features, 1, gid="head"))
    return rows


def _table(rows: list[_Row]) -> tuple[str, list[str]]:
    """The column header and one line per row, in aligned monospace columns (empty columns dropped)."""
    used = [c for c in _COLUMNS if any(r.cells.get(c) for r in rows)]
    widths = {c: max([len(_COLUMNS[c])] + [len(r.cells.get(c, "")) for r in rows]) for c in used}

    def line(cells: dict[str, str]) -> str:
        return "  ".join(cells.get(c, "").ljust(widths[c]) for c in used).rstrip()

    return line(_COLUMNS), [line(r.cells) for r in rows]


def _bar_fraction(channels: int, low: float, high: float) -> float:
    """Share of the widest bar: log2 of channels between the narrowest and the widest row."""
    if high <= low:
        return 1.0
    return 0.2 + 0.8 * (math.log2(channels) - low) / (high - low)


def _legend_handles(rows: list[_Row]) -> list:
    from matplotlib.patches import Patch

    kinds = [k for k in BLOCK_KINDS if any(r.kind == k for r in rows)]
    names = {k: _KIND_NAMES.get(k, k) for k in kinds}
    labels = [k if names[k].lower() == k else f"{k} ({names[k]})" for k in kinds]
    handles = [Patch(facecolor=_kind_colour(k), edgecolor="0.15", lw=0.6, label=label)
               for k, label in zip(kinds, labels)]
    return handles + [Patch(facecolor=_END_GREY, edgecolor="0.15", lw=0.6, label="stem / head")]


def arch_figure(arch: Architecture, title: str = "") -> Figure:
    """A matplotlib Figure drawing ``arch``: header, stem, one bar per block group, head, legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    layout = resolve(arch)
    rows = _rows(arch, layout)
    header, lines = _table(rows)
    unit = max(_MIN_UNIT, min(_UNIT, _TALL / sum(r.layers for r in rows)))
    heights = [r.layers * unit for r in rows]
    # Extra space between stages so a stage's groups read as one unit.
    gaps = [_GAP * (2 if i and rows[i].stage != rows[i - 1].stage else 1) for i in range(len(rows))]
    text_x = _LABEL_W + _BAR_W + 0.3
    width = text_x + _CHAR * max(len(x) for x in [header, *lines]) + 0.2
    top = _HEADER_H + 0.45  # header, then the input row and the column names
    handles = _legend_handles(rows)
    # One legend row when the labels fit the figure's width, else as many as needed.
    label_w = max(len(h.get_label()) for h in handles) * _FONT * 0.55 / 72 + 0.5
    ncol = max(1, min(len(handles), int((width - 0.2) // label_w)))
    legend_h = 0.35 + 0.2 * math.ceil(len(handles) / ncol)
    height = top + sum(heights) + sum(gaps) + _GAP + legend_h

    figure = Figure(figsize=(width, height), dpi=150)
    FigureCanvasAgg(figure)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)  # y grows downwards: the network reads top to bottom
    ax.axis("off")

    c = cost(arch)
    extras = [f"act {arch.act}"]
    extras += [f"width x{format_number(arch.width)}"] if arch.width != 1 else []
    extras += [f"depth x{format_number(arch.depth)}"] if arch.depth != 1 else []
    extras += [f"stochastic depth {format_number(arch.drop_path)}"] if arch.drop_path else []
    ax.text(0.1, 0.12, title or f"{arch.space} architecture", fontsize=12, weight="bold", va="top")
    ax.text(0.1, 0.42, f"space {arch.space}  ·  {arch.resolution}×{arch.resolution} px  ·  "
            f"{_si(c.params)} params  ·  {_si(c.macs)} MACs  ·  {len(layout.layers)} layers  ·  "
            + "  ·  ".join(extras), fontsize=9, va="top", color="0.2")
    mono = {"family": "monospace", "fontsize": _FONT, "va": "center"}
    ax.text(text_x, _HEADER_H + 0.08, f"input 3×{arch.resolution}×{arch.resolution}", color="0.4", **mono)
    ax.text(text_x, _HEADER_H + 0.3, header, color="0.4", weight="bold", **mono)

    widths = [math.log2(r.channels) for r in rows]
    low, high = min(widths), max(widths)
    centre = _LABEL_W + _BAR_W / 2
    y = top
    bands: dict[int, list[float]] = {}
    for row, line, h, gap in zip(rows, lines, heights, gaps):
        y += gap
        w = _BAR_W * _bar_fraction(row.channels, low, high)
        colour = _kind_colour(row.kind)
        bar = Rectangle((centre - w / 2, y), w, h, facecolor=colour, edgecolor="0.15", lw=0.6,
                        gid=row.gid, zorder=2)
        ax.add_patch(bar)
        for k in range(1, row.layers):  # a faint line between layers: the repeats can be counted
            ax.plot([centre - w / 2, centre + w / 2], [y + k * unit] * 2, color="white", lw=0.5,
                    alpha=0.6, zorder=3)
        ax.text(text_x, y + h / 2, line, gid=row.gid, **mono)
        if row.stage is not None:
            band = bands.setdefault(row.stage, [y, y + h])
            band[1] = y + h
        y += h
    for s, (y0, y1) in bands.items():
        if s % 2 == 0:
            ax.add_patch(Rectangle((0.02, y0 - _GAP / 2), width - 0.04, y1 - y0 + _GAP, facecolor="0.94",
                                   edgecolor="none", zorder=0, gid="band"))
        ax.text(0.1, (y0 + y1) / 2, f"stage {s + 1}", fontsize=_FONT, va="center", color="0.3")

    y += _GAP + 0.05
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.05, y), bbox_transform=ax.transData,
              ncol=ncol, frameon=False, fontsize=_FONT, handlelength=1.4,
              columnspacing=1.2, borderaxespad=0, borderpad=0)
    notes = "bar width ~ log2(output channels), bar height ~ layers; map: feature-map size after the row"
    if any(r.cells.get("SE", "").startswith("hse") for r in rows):
        notes += "; hse: hard-sigmoid SE on the expanded channels (MobileNetV3)"
    ax.text(0.1, height - 0.08, notes, fontsize=7, color="0.45", va="bottom")
    return figure


def arch_plot(arch: Architecture, path: Path, title: str = "") -> None:
    """Draw ``arch`` (see `arch_figure`) and save it as a PNG at ``path``, atomically."""
    path = Path(path)
    if path.suffix.lower() != ".png":  # the bytes are PNG whatever the name says
        raise NasError(f"plot file {path}: must end in .png")
    try:
        save_figure(arch_figure(arch, title), path)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        raise NasError(f"cannot write the plot {path}: {exc.strerror or exc}{where}") from None
    log.info("architecture plot written to %s", path)
