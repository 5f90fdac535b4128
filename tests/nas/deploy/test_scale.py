"""Compound scaling (``nas scale``): torchvision's B1..B7 reproduced exactly, the MACs budget per
phi, the family YAML and table, one-line errors, latency only with a profile, the coefficient search."""
from __future__ import annotations

import json
import math
import random

import pytest
import torch
import torchvision
import yaml

from evaluators.latency import LatencySettings, Measurer, ProfileStore
from evaluators.latency.parts import network_keys, part_module
from nas.cli.commands import main
from nas.deploy.scale import (
    Grid,
    ResolutionRule,
    ScaleCoefficients,
    compound_family,
    efficientnet_pairs,
    pairs_family,
    scale_member,
)
from search_spaces import Architecture, load_space, zoo
from search_spaces.builder import build_model
from search_spaces.cost import cost
from search_spaces.layout import resolve
from search_spaces.scaling import make_divisible, scale_architecture

B0 = zoo.reference("efficientnet_b0")
# A small network of tests/spaces.py's tiny space: trains and times in a fraction of a second.
TINY = "tiny@32_relu:stem_k3_s2_c16:mb_k5_e3_c16:mb_k5_e6_c24_s2_se0.25_r2:head_c64"
FAST = ["latency.warmup=0", "latency.repeats=2", "latency.rounds=2"]


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("label", [f"b{i}" for i in range(1, 8)])
def test_torchvision_pairs_reproduce_b1_to_b7_parameter_counts(label):
    labels, pairs = efficientnet_pairs()
    width, depth, resolution, dropout = pairs[labels.index(label)]
    member = pairs_family(B0, [[width, depth, resolution]]).members[0]
    with torch.device("meta"):  # shapes only: B7 in milliseconds
        theirs = _params(getattr(torchvision.models, f"efficientnet_{label}")(weights=None))
        ours = _params(build_model(Architecture.parse(member.arch)))
    assert member.params == ours == theirs == cost(member.arch).params
    assert member.resolution == resolution
    # With torchvision's dropout as well, the member is the zoo's model, string for string.
    full = pairs_family(B0, [[width, depth, resolution, dropout]]).members[0]
    assert full.arch == str(zoo.reference(f"efficientnet_{label}"))


def _phi1_ratios(rule: ResolutionRule) -> list[float]:
    space, rng = load_space("mbconv"), random.Random(0)
    ratios = []
    for _ in range(20):
        arch = space.sample(rng)
        ratios.append(cost(scale_member(arch, 1, rule=rule)).macs / cost(arch).macs)
    return ratios


def test_macs_double_per_phi_on_random_mbconv_members():
    ratios = _phi1_ratios(ResolutionRule())
    print(f"MACs(phi=1)/MACs(phi=0) over 20 mbconv members: min {min(ratios):.3f} max {max(ratios):.3f}")
    # The resolution absorbs the builder's rounding up to the jump a stride-32 feature map makes
    # (6x6 -> 7x7) at some sizes: measured 1.860-2.130.
    assert all(1.8 <= r <= 2.2 for r in ratios)
    assert 1.95 <= sum(ratios) / len(ratios) <= 2.05


def test_budget_null_follows_the_coefficients_product():
    product = ScaleCoefficients().product  # 1.92
    ratios = _phi1_ratios(ResolutionRule(budget=None))
    assert all(abs(r / product - 1) <= 0.10 for r in ratios)
    assert 1.85 <= sum(ratios) / len(ratios) <= 1.95
    # The two members whose 7x7 jump is 9% over 1.92 stay under it, below the paper's 2.0 - 10%.
    assert sum(r < 1.8 for r in ratios) == 2


def test_without_matching_the_rounding_up_of_shallow_stages_shows():
    space, rng = load_space("mbconv"), random.Random(0)
    plain = ResolutionRule(match_macs=False)
    ratios = []
    for _ in range(20):
        arch = space.sample(rng)
        member = scale_member(arch, 1, rule=plain)
        assert member.resolution % 8 == 0 and abs(member.resolution - arch.resolution * 1.15) <= 4
        ratios.append(cost(member).macs / cost(arch).macs)
    assert max(ratios) > 2.2  # why match_macs is the default


def test_a_member_is_the_builders_rounding_of_the_compound_multipliers():
    assert scale_member(B0, 0) is B0
    plain = scale_member(B0, 2, rule=ResolutionRule(match_macs=False))
    assert plain == scale_architecture(B0, width=1.1**2, depth=1.2**2, resolution=296)  # 224 * 1.3225 = 296.2
    matched = scale_member(B0, 2)
    assert matched.replace(resolution=296) == plain
    target = cost(B0).macs * 2.0 ** 2  # the default budget: MACs double per phi
    macs = {r: cost(matched.replace(resolution=r)).macs for r in range(8, 400, 8)}
    assert matched.resolution == min(macs, key=lambda r: abs(macs[r] / target - 1))
    # Layers and channels as the builder rounds them: ceil(n * 1.44) per stage, make_divisible(c * 1.21, 8).
    layers = resolve(matched).layers
    assert len(layers) == sum(math.ceil(n * 1.44) for n in (1, 2, 2, 3, 3, 4, 1)) == 26
    assert layers[-1].out_channels == make_divisible(320 * 1.21) == 384


def test_phis_keep_their_order_and_the_base_member_is_the_base():
    family = compound_family(B0, [0, 1, 2.5])
    assert [m.phi for m in family.members] == [0, 1, 2.5]
    assert family.members[0].arch == str(B0) and family.members[0].params == cost(B0).params
    assert family.members[2].label == "phi=2.5" and family.members[2].depth == round(1.2**2.5, 6)


def test_the_grid_holds_the_papers_coefficients():
    points = Grid().points()
    assert len(Grid().values()) == 21 and Grid().values()[4] == 1.2
    assert all(abs(p.product - 2) <= 0.1 + 1e-9 for p in points)
    assert ScaleCoefficients(1.2, 1.1, 1.15) in points and len(points) == 109


def test_cli_writes_the_family_yaml_and_prints_the_table(capsys, tmp_path):
    code, out, err = run(capsys, "scale", "efficientnet_b0", "phi=2", f"out={tmp_path}")
    assert code == 0, err
    path = tmp_path / "families" / "efficientnet_b0.yaml"
    family = yaml.safe_load(path.read_text())
    assert [m["phi"] for m in family["members"]] == [0, 1, 2]
    assert family["coefficients"] == {"alpha": 1.2, "beta": 1.1, "gamma": 1.15, "product": 1.92027}
    assert family["base"] == str(B0) and family["base_macs"] == 385814752
    phi1 = family["members"][1]
    assert (phi1["width"], phi1["depth"], phi1["latency_ms"]) == (1.1, 1.2, None)
    assert phi1["params"] == cost(phi1["arch"]).params == 9109994  # B2's depth and width
    assert "phi=2" in out and "5,288,548" in out and f"{phi1['macs'] / 1e6:,.1f}" in out and str(path) in out
    assert "latency_ms |" not in out and phi1["arch"] in out
    assert family["resolution"] == {"multiple": 8, "match_macs": True, "budget": 2.0}
    assert abs(phi1["macs"] / family["base_macs"] - 2.0) < 0.1


def test_cli_budget_null_matches_the_coefficients_product(capsys, tmp_path):
    code, _, err = run(capsys, "scale", "efficientnet_b0", "phi=1", "budget=null", f"out={tmp_path}")
    assert code == 0, err
    family = yaml.safe_load((tmp_path / "families" / "efficientnet_b0.yaml").read_text())
    assert family["resolution"]["budget"] is None
    member = scale_member(B0, 1, rule=ResolutionRule(budget=None))
    assert family["members"][1]["resolution"] == member.resolution


def test_cli_explicit_pairs_and_json(capsys, tmp_path):
    code, out, _ = run(capsys, "scale", "efficientnet_b0", "pairs=efficientnet", f"out={tmp_path}", "name=bfamily",
                       "json=true")

    family = json.loads(out)
    assert code == 0 and family["rule"] == "pairs" and (tmp_path / "families" / "bfamily.yaml").is_file()
    assert [m["params"] for m in family["members"]] == [
        5288548, 7794184, 9109994, 12233232, 19341616, 30389784, 43040704, 66347960]
    code, out, _ = run(capsys, "scale", "efficientnet_b0", "pairs=[[1.1,1.2,260],[2,3.1]]", f"out={tmp_path}",
                       "json=true")
    members = json.loads(out)["members"]
    assert [m["resolution"] for m in members] == [260, 224] and members[0]["params"] == 9109994


@pytest.mark.parametrize(("argv", "fragment"), [
    (["phi=-1"], "phi: must be a number >= 0"),
    (["phi=3..1"], "phi: must be N (0..N), a range A..B"),
    (["alpha=0"], "alpha: must be a number > 0, got 0"),
    (["gamma=fast"], "gamma: expected float"),
    (["alph=1.3"], "unknown key 'alph' (did you mean alpha?)"),
    (["evaluator.epoch=1"], "(did you mean evaluator.epochs,"),
    (["pairs=[[1.1]]"], "pairs: each entry is [width, depth]"),
    (["pairs=efficientnet", "phi=2"], "pairs: give phi or pairs, not both"),
    (["latency=table"], "unknown latency 'table'; allowed: auto, none"),
    (["search=true", "grid_step=0.3", "tolerance=0"], "tolerance: no (alpha, beta, gamma) on the grid"),
    (["name=../x"], "name: may use letters"),
    (["budget=0"], "budget: must be a number > 0 or null"),
    (["budget=twice"], "budget: expected float"),
])
def test_bad_input_is_a_one_line_error_and_writes_nothing(argv, fragment, capsys, tmp_path):
    code, _, err = run(capsys, "scale", "efficientnet_b0", f"out={tmp_path}", *argv)
    assert code == 2
    assert fragment in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_an_unknown_architecture_names_the_close_matches(capsys, tmp_path):
    code, _, err = run(capsys, "scale", "efficientnet_b9", f"out={tmp_path}")
    assert code == 2 and "did you mean efficientnet_b" in err and not list(tmp_path.iterdir())


def _tiny_profile(out) -> ProfileStore:
    """A profile holding only the tiny network's parts (10 classes): enough for ``exists``."""
    settings = LatencySettings(warmup=0, repeats=2, rounds=2)
    store = ProfileStore.for_fingerprint(out, settings.fingerprint())
    arch = Architecture.parse(TINY)
    layout = resolve(arch)
    parts = dict(zip(network_keys(arch, 10), (layout.stem, *layout.layers, layout.head)))
    measured = Measurer(settings).measure_many([part_module(p, 10) for p in parts.values()])
    store.add_parts(dict(zip(parts, measured)))
    return store


def test_latency_is_predicted_only_where_a_profile_exists(capsys, tmp_path):
    args = ["scale", TINY, "phi=1", "num_classes=10", "res_multiple=1", *FAST]
    code, out, _ = run(capsys, *args, f"out={tmp_path / 'bare'}", "json=true")
    assert code == 0 and [m["latency_ms"] for m in json.loads(out)["members"]] == [None, None]
    assert not (tmp_path / "bare" / "latency").exists()  # nothing was timed

    store = _tiny_profile(tmp_path / "profiled")
    code, out, _ = run(capsys, *args, f"out={tmp_path / 'profiled'}", "json=true")
    family = json.loads(out)
    base, member = family["members"]
    assert code == 0 and family["latency_profile"] == str(store.path)
    assert base["latency_ms"] == round(store.table().predict(Architecture.parse(TINY), 10), 4)
    # The phi=1 member's new parts were timed into the profile; its prediction is their sum.
    table = store.table()
    assert not table.missing(Architecture.parse(member["arch"]), 10)
    assert member["latency_ms"] == round(table.predict(Architecture.parse(member["arch"]), 10), 4) > 0

    code, out, _ = run(capsys, *args, f"out={tmp_path / 'profiled'}")
    assert code == 0 and "latency_ms" in out
    code, out, _ = run(capsys, *args, f"out={tmp_path / 'profiled'}", "latency=none", "json=true")
    assert [m["latency_ms"] for m in json.loads(out)["members"]] == [None, None]


@pytest.mark.integration
def test_search_picks_the_most_accurate_grid_point_deterministically(capsys, tmp_path):
    args = ["scale", TINY, "phi=1", "search=true", "grid_step=0.5", "tolerance=0.6", "res_multiple=1",
            "evaluator.steps=4", "evaluator.threads=1", "evaluator.resolution=null", "data.limit=100", "progress=false",
            f"out={tmp_path}"]
    code, out, err = run(capsys, *args, "name=first")
    assert code == 0, err
    first = yaml.safe_load((tmp_path / "families" / "first.yaml").read_text())
    points = first["search"]["points"]
    assert [(p["alpha"], p["beta"], p["gamma"]) for p in points] == [
        (1.0, 1.0, 1.5), (1.0, 1.5, 1.0), (1.5, 1.0, 1.0), (2.0, 1.0, 1.0)]
    assert all(0 <= p["accuracy"] <= 100 for p in points)
    best = max(points, key=lambda p: (p["accuracy"], -p["macs"]))
    assert first["search"]["best"] == {k: best[k] for k in ("alpha", "beta", "gamma")}
    assert first["coefficients"]["alpha"] == best["alpha"] and first["members"][1]["arch"] == best["arch"]
    assert first["search"]["options"]["data"] == {"name": "digits", "limit": 100}
    assert "coefficient search" in out and "best: alpha=" in out

    code, _, _ = run(capsys, *args, "name=second")
    second = yaml.safe_load((tmp_path / "families" / "second.yaml").read_text())
    assert code == 0 and second["search"] == first["search"] and second["members"] == first["members"]
