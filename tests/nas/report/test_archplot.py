"""Architecture pictures: one bar per block group with the builder's numbers, PNG files, ``nas show --plot``."""
from __future__ import annotations

import json
import struct
from functools import cache

import pytest

from nas.cli.commands import main
from nas.report.archplot import arch_figure, arch_plot
from search_spaces import zoo
from search_spaces.arch import Architecture
from search_spaces.errors import NasError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def rows(figure) -> dict[str, str]:
    """The text of each drawn row, by its gid (stem, stage<S>.<G>, head)."""
    (ax,) = figure.axes
    return {t.get_gid(): t.get_text() for t in ax.texts if t.get_gid()}


@cache
def reference_rows(name: str) -> dict[str, str]:
    return rows(arch_figure(zoo.reference(name)))


def bars(figure) -> list[str]:
    (ax,) = figure.axes
    return [p.get_gid() for p in ax.patches if (p.get_gid() or "").startswith("stage")]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("name", ["efficientnet_b0", "resnet50", "convnext_tiny", "mobilenet_v3_large"])
def test_one_bar_and_one_text_row_per_block_group(name):
    arch = zoo.reference(name)
    figure = arch_figure(arch, title=name)
    groups = [f"stage{s + 1}.{g + 1}" for s, stage in enumerate(arch.stages) for g in range(len(stage))]
    assert bars(figure) == groups
    assert set(rows(figure)) == {"stem", "head", *groups}
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts[0] == name and any("params" in t and "MACs" in t for t in texts)


@pytest.mark.parametrize(
    "name, gid, fragments",
    [
        ("efficientnet_b0", "stem", ["stem", "k3", "c32", "s2", "112×112"]),
        ("efficientnet_b0", "stage2.1", ["mb", "k3", "e6", "se0.25", "c24", "x2", "s2", "56×56"]),
        ("efficientnet_b0", "stage6.1", ["mb", "k5", "c192", "x4", "s2", "7×7"]),
        ("efficientnet_b0", "head", ["c1280", "1×1", "dropout 0.2"]),
        ("resnet50", "stem", ["k7", "c64", "max-pool", "56×56"]),
        ("resnet50", "stage1.1", ["bottleneck", "e0.25", "c256", "x3", "56×56"]),
        ("resnet50", "stage3.1", ["bottleneck", "c1024", "x6", "s2", "14×14"]),
        ("convnext_tiny", "stem", ["stem patch", "k4", "s4", "c96", "56×56"]),
        ("convnext_tiny", "stage3.1", ["convnext", "k7", "e4", "c384", "x9", "s2", "14×14"]),
        ("mobilenet_v3_large", "stage2.1", ["k3", "e4", "relu", "c24", "x1", "s2", "56×56"]),
        ("mobilenet_v3_large", "stage3.1", ["k5", "hse0.25", "relu", "c40", "x3", "s2", "28×28"]),
        ("mobilenet_v3_large", "stage4.3", ["e2.3", "c80", "x2", "14×14"]),
        ("mobilenet_v3_large", "head", ["c1280", "conv 1x1 c960", "fc 1280"]),
        ("resnext50_32x4d", "stage2.1", ["bottleneck", "g32", "c512", "x4", "s2"]),
    ],
)
def test_rows_show_the_builders_numbers(name, gid, fragments):
    text = reference_rows(name)[gid]
    tokens = text.split()
    assert all((f in text) if " " in f else (f in tokens) for f in fragments), (text, fragments)


def test_rows_use_scaled_channels_and_depths_and_mark_only_other_activations():
    b2 = reference_rows("efficientnet_b2")  # B0's c40_r2 at w1.1 d1.2, 260 px
    assert b2["stage3.1"].split()[4:] == ["c48", "x3", "s2", "33×33"]
    assert "silu" not in b2["stage3.1"]  # the default activation is in the header only
    assert "s2" not in reference_rows("efficientnet_b0")["stage5.1"].split()


def test_every_block_kind_has_its_own_colour():
    arch = Architecture.parse(
        "mixed@64_relu:stem_k3_s1_c16:skip_c16:fmb_k3_e4_c24_s2_r2,mb_k5_e3_c24_hswish:basic_k3_c48_s2:"
        "bottleneck_k3_e0.5_c64_g8_s2:convnext_k7_e4_c96_s2:head_c256"
    )
    figure = arch_figure(arch)
    ax = figure.axes[0]
    colours = {p.get_gid(): p.get_facecolor() for p in ax.patches if (p.get_gid() or "").startswith("stage")}
    kinds = {gid: rows(figure)[gid].split()[0] for gid in colours}
    assert len(set(kinds.values())) == 6
    assert len({colours[g] for g in colours}) == 6
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(legend) == 7 and legend[-1] == "stem / head"
    assert "hswish" in rows(figure)["stage2.2"]


def test_png_is_written_atomically_with_a_sensible_size(tmp_path):
    path = tmp_path / "plots" / "b0.png"
    arch_plot(zoo.reference("efficientnet_b0"), path, title="efficientnet_b0")
    width, height = png_size(path.read_bytes())
    assert 600 <= width <= 4000 and 400 <= height <= 4000
    assert [p.name for p in path.parent.iterdir()] == ["b0.png"]  # no temporary file left


def test_bad_plot_paths_are_nas_errors(tmp_path):
    (tmp_path / "file").write_text("")
    b0 = zoo.reference("efficientnet_b0")
    with pytest.raises(NasError, match="cannot write the plot"):
        arch_plot(b0, tmp_path / "file" / "x.png")
    with pytest.raises(NasError, match="must end in .png"):
        arch_plot(b0, tmp_path / "x.pdf")


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_show_plot_writes_the_png_and_says_where(capsys, tmp_path):
    path = tmp_path / "arch.png"
    code, out, _ = run(capsys, "show", "efficientnet_b0", "--plot", str(path))
    assert code == 0 and f"plot: {path}" in out
    assert png_size(path.read_bytes())[0] > 0


def test_show_plot_keeps_json_on_stdout(capsys, tmp_path):
    path = tmp_path / "arch.png"
    code, out, err = run(capsys, "show", "resnet18", "--json", "--plot", str(path))
    assert code == 0 and json.loads(out)["params"] == 11689512
    assert str(path) in err and path.is_file()


def test_show_plot_to_a_bad_path_is_one_line_and_exit_2(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    code, out, err = run(capsys, "show", "efficientnet_b0", "--plot", str(tmp_path / "file" / "x.png"))
    assert code == 2 and out == ""
    assert err.startswith("error: cannot write the plot") and err.count("\n") == 1
    assert "Traceback" not in err
