"""Reference zoo: exact parameter counts and MACs against torchvision's models."""
from __future__ import annotations

import collections
import csv

import pytest
import torch
import torchvision
from torch.profiler import profile
from torch.utils.flop_counter import FlopCounterMode

from search_spaces import zoo
from search_spaces.builder import build_model
from search_spaces.cost import cost
from search_spaces.errors import UnknownNameError

NAMES = zoo.names()
# The middle of the EfficientNet family adds little to b0, b1, b3 and b7: CI runs it, the quick loop not.
_MIDDLE = {"efficientnet_b2", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6"}


def _middle_in_ci_only(names: list[str]) -> list:
    return [pytest.param(n, marks=pytest.mark.integration) if n in _MIDDLE else n for n in names]


@pytest.fixture(scope="module")
def reference_rows(shared_dir):
    with open(shared_dir / "reference" / "torchvision_models.csv") as f:
        return {row["model"]: row for row in csv.DictReader(f)}


def flop_counter_macs(model: torch.nn.Module, resolution: int) -> int:
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, resolution, resolution, device="meta"))
    return counter.get_total_flops() // 2


def test_zoo_names_cover_the_issue_list():
    assert set(NAMES) == {
        *(f"efficientnet_b{i}" for i in range(8)), "efficientnet_v2_s", "mobilenet_v2",
        "mobilenet_v3_large", "mobilenet_v3_small", "resnet18", "resnet50", "resnext50_32x4d",
        "convnext_tiny", "shufflenet_v2_x1_0", "shufflenet_v2_x0_5", "regnet_y_400mf",
    }


@pytest.mark.parametrize("name", ["shufflenet_v2_x1_0", "shufflenet_v2_x0_5"])
def test_shufflenet_has_torchvisions_parameters_and_flop_counter_macs(name):
    """Added through the block-kind registry alone (search_spaces/kinds/shuffle.py)."""
    arch = zoo.reference(name)
    with torch.device("meta"):
        ours, theirs = build_model(arch).eval(), getattr(torchvision.models, name)().eval()
    params = sum(p.numel() for p in theirs.parameters())
    assert params == {"shufflenet_v2_x1_0": 2_278_604, "shufflenet_v2_x0_5": 1_366_792}[name]
    assert sum(p.numel() for p in ours.parameters()) == cost(arch).params == params
    assert cost(arch).macs == flop_counter_macs(ours, 224) == flop_counter_macs(theirs, 224)


def test_a_shufflenet_unit_computes_what_torchvisions_does():
    """Same weights in, same outputs out: the split, both branches and the shuffle in torchvision's order."""
    torch.manual_seed(0)
    ours = build_model(zoo.reference("shufflenet_v2_x0_5")).eval()
    theirs = torchvision.models.shufflenet_v2_x0_5().eval()
    ours.load_state_dict(dict(zip(ours.state_dict(), theirs.state_dict().values())))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)


@pytest.mark.parametrize("name", _middle_in_ci_only([n for n in NAMES if not n.startswith("shufflenet")]))
def test_params_exact_and_macs_within_one_percent(name, reference_rows):
    row = reference_rows[name]
    arch = zoo.reference(name)
    assert arch.resolution == int(row["resolution"])
    with torch.device("meta"):
        model = build_model(arch).eval()
    assert sum(p.numel() for p in model.parameters()) == int(row["params"])
    macs = flop_counter_macs(model, arch.resolution)
    assert abs(macs - int(row["macs"])) <= 0.01 * int(row["macs"])
    assert cost(arch).params == int(row["params"])
    assert cost(arch).macs == macs


def test_regnet_y_400mf_has_torchvisions_parameters_macs_and_outputs():
    """Bottlenecks with SE on the inner width, squeezing round(0.25 * block input), as RegNetY."""
    arch = zoo.reference("regnet_y_400mf")
    torch.manual_seed(0)
    ours, theirs = build_model(arch).eval(), torchvision.models.regnet_y_400mf().eval()
    params = sum(p.numel() for p in theirs.parameters())
    assert params == 4_344_144 == sum(p.numel() for p in ours.parameters()) == cost(arch).params
    with FlopCounterMode(display=False) as counter:
        theirs(torch.zeros(1, 3, 224, 224))
    theirs_macs = counter.get_total_flops() // 2
    assert cost(arch).macs == flop_counter_macs(build_model(arch).to("meta"), 224) == theirs_macs
    # Same weights in, same outputs out. torchvision lists a block's projection shortcut before its
    # body, this builder after: a stable sort on "is a shortcut" within each block lines them up.
    state = theirs.state_dict()
    unit = {k: k.split(".proj.")[0].split(".f.")[0] for k in state}
    rank = {u: i for i, u in enumerate(dict.fromkeys(unit.values()))}
    aligned = sorted(state, key=lambda k: (rank[unit[k]], ".proj." in k))
    ours.load_state_dict(dict(zip(ours.state_dict(), (state[k] for k in aligned))))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)


@pytest.mark.parametrize("name", _middle_in_ci_only(NAMES))
def test_same_parameter_shapes_as_torchvision(name):
    with torch.device("meta"):
        ours = build_model(zoo.reference(name))
    # torchvision's RegNet computes its widths with tensors, which the meta device cannot read back
    with torch.device("cpu" if name.startswith("regnet") else "meta"):
        theirs = getattr(torchvision.models, name)()
    assert sorted(tuple(p.shape) for p in ours.parameters()) == sorted(
        tuple(p.shape) for p in theirs.parameters()
    )


def test_efficientnet_family_comes_from_b0_by_the_scaling_table(shared_dir):
    with open(shared_dir / "reference" / "efficientnet_scaling.csv") as f:
        rows = list(csv.DictReader(f))
    b0 = zoo.reference("efficientnet_b0")
    for row in rows:
        arch = zoo.reference(row["model"])
        assert (arch.width, arch.depth, arch.resolution, arch.head.dropout) == (
            float(row["width_mult"]), float(row["depth_mult"]), int(row["resolution"]),
            float(row["dropout"]),
        )
        # Same stages as B0: only the multipliers, resolution and dropout differ.
        assert arch.stages == b0.stages and arch.stem == b0.stem


def test_unknown_reference_name_suggests_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean resnet50"):
        zoo.reference("resnet05")


@pytest.mark.parametrize("name", ["efficientnet_b0", "resnet50", "mobilenet_v3_small"])
def test_training_step_runs_the_same_operations_as_torchvision(name):
    """Same aten ops, same counts, forward and backward: equal speed by construction, not luck."""

    x, y = torch.randn(2, 3, 64, 64), torch.tensor([1, 2])
    counts = []
    for model in (build_model(zoo.reference(name)), getattr(torchvision.models, name)()):
        model.train()
        with profile() as prof:
            torch.nn.functional.cross_entropy(model(x), y).backward()
        counts.append(collections.Counter({e.key: e.count for e in prof.key_averages()}))
    ours, theirs = counts
    assert {op: (ours[op], theirs[op]) for op in ours | theirs if ours[op] != theirs[op]} == {}
