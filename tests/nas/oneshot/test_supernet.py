"""One-shot NAS: the weight-sharing supernet, its training, resume, scoring and export."""
from __future__ import annotations

import random

import pandas as pd
import pytest
import torch

import nas
from evaluators.base import DEFAULT_DATA
from evaluators.proxy import scaled_resolution
from evaluators.supernet import SupernetEvaluator, SupernetTraining, load_checkpoint
from evaluators.supernet_config import SupernetConfig
from evaluators.threads import intra_op_threads
from evaluators.training import evaluate, fit, recalibrate_batchnorm
from nas.cli.commands import main
from nas.deploy.retrain import load_model
from nas.oneshot.supernet import train_supernet
from search_spaces import load_space
from search_spaces.elastic import ElasticSupernet, kind_groups
from search_spaces.errors import ConfigError
from search_spaces.macro import extreme_member

# A small, fast setting: nasbench_macro's space (per-layer ops), 300 digits, 2 epochs.
DATA = {**DEFAULT_DATA, "limit": 300}
FAST = {"epochs": 2, "batch_size": 64, "sampling": "sandwich", "random_subnets": 1, "resolution": 16}
LATENCY = {"warmup": 0, "repeats": 2, "rounds": 2}  # measured on the CPU; behaviour, not precision


@pytest.fixture(scope="module")
def mbconv_net() -> ElasticSupernet:
    torch.manual_seed(0)
    return ElasticSupernet(load_space("mbconv"), 10)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(out folder, checkpoint) of a supernet trained for 2 epochs without interruption."""
    out = tmp_path_factory.mktemp("supernet")
    ckpt = train_supernet("nasbench_macro", DATA, out, "ref", threads=1, **FAST)
    return out, ckpt


def test_extracted_weights_are_the_supernets_slices(mbconv_net):
    space = load_space("mbconv")
    arch = space.from_string(
        "mbconv@224_silu_sd0.2:stem_k3_s2_c32:mb_k3_e1_c16:mb_k5_e3_c24_s2_se0.25_r2:mb_k3_e4_c40_s2:"
        "mb_k7_e6_c80_s2_r2:mb_k3_e1_c112_r2:mb_k3_e3_c192_s2_r3:mb_k5_e6_c320:head_c1280_d0.2")
    model = mbconv_net.extract(arch)
    state = model.state_dict()
    full = dict(mbconv_net.named_parameters())
    # Stage 2, first layer: 5x5 depthwise over 16 * 3 = 48 channels, cut from the 7x7 over the widest.
    dw = full["weights.stages__1__0__mb__block__dw__0__weight"]
    assert dw.shape[2:] == (7, 7)
    assert torch.equal(state["stages.1.0.block.1.0.weight"], dw[:48, :, 1:6, 1:6])
    # Its expansion conv: the leading 48 outputs and 16 inputs; the SE squeeze of 16 * 0.25 = 4.
    expand = full["weights.stages__1__0__mb__block__expand__0__weight"]
    assert torch.equal(state["stages.1.0.block.0.0.weight"], expand[:48, :16])
    fc1 = full["weights.stages__1__0__mb__block__se__fc1__weight"]
    assert torch.equal(state["stages.1.0.block.2.fc1.weight"], fc1[:4, :48])
    # Stage 1 has expansion 1: no expansion conv, and a depthwise conv of its own (kind mb1).
    assert torch.equal(state["stages.0.0.block.0.0.weight"],
                       full["weights.stages__0__0__mb1__block__dw__0__weight"][:32, :, 2:5, 2:5])
    # Elastic depth: stage 4 uses its first 2 of 4 layer positions; the classifier its 10 rows.
    assert "stages.3.2.block.0.0.weight" not in state
    assert torch.equal(state["head.4.weight"], full["weights.head__4__weight"][:10, :1280])
    # Every tensor of the member is a slice of a shared one, and the member computes what the
    # supernet computes for it.
    for name, tensor in mbconv_net.tensors(arch).items():
        assert torch.equal(state[name], tensor)
    mbconv_net.eval()
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(model(x), mbconv_net(x, arch), atol=1e-5)


@pytest.mark.integration
@pytest.mark.parametrize("name", ["mbconv", "mixed", "convnext", "nasbench_macro"])
def test_every_sampled_member_is_cut_exactly(name):
    space = load_space(name)
    net = ElasticSupernet(space, 10).eval()
    rng = random.Random(1)
    x = torch.randn(2, 3, 32, 32)
    for _ in range(4):
        arch = space.sample(rng)
        model = net.extract(arch).eval()
        assert torch.allclose(model(x), net(x, arch), atol=1e-5)
    largest = extreme_member(space, lambda a: sum(p.numel() for p in net.tensors(a).values()), largest=True)
    assert sum(p.numel() for p in net.extract(largest).parameters()) <= sum(p.numel() for p in net.parameters())


def test_kind_groups_are_the_choices_between_weights_that_share_nothing():
    mbconv = kind_groups(load_space("mbconv"))
    assert mbconv == {f"s{i}.expansion": ((1,), (3, 4, 6)) for i in range(1, 8)}
    mixed = kind_groups(load_space("mixed"))
    assert mixed["s1.block"] == (("mb",), ("fmb",), ("bottleneck",), ("convnext",))
    assert mixed["s1.fmb.expansion"] == ((1,), (4,))
    assert not any(name.endswith((".kernel", ".se", ".depth")) for name in mixed)
    assert kind_groups(load_space("convnext")) == {}


@pytest.mark.parametrize("name", ["mbconv", "mixed"])
def test_fair_sampling_trains_every_kind_equally_often(name, tmp_path):
    training = SupernetTraining(name, DATA, tmp_path, SupernetConfig(sampling="fair", random_subnets=4))
    space, rng = training.space, random.Random(0)
    largest = space.to_choices(training.largest)
    for _ in range(5):
        members = training.members(rng)
        assert len(members) == 5
        first = space.to_choices(members[0])  # the largest, at the step's resolution and width
        assert {k: v for k, v in first.items() if k not in ("resolution", "width")} == \
            {k: v for k, v in largest.items() if k not in ("resolution", "width")}
        choices = [space.to_choices(m) for m in members[1:]]
        for dim, groups in training.kind_groups.items():
            active = [c[dim] for c in choices if dim in c]
            counts = [sum(v in group for v in active) for group in groups]
            assert max(counts) - min(counts) <= 1, (dim, active)  # 2 + 2 of expansion 1 and not; 1 block type each
        if name == "mbconv":
            assert all(sum(c[f"s{i}.expansion"] == 1 for c in choices) == 2 for i in range(1, 8))


def test_zero_init_starts_residual_blocks_as_the_identity_and_the_classifier_at_zero():
    space = load_space("mbconv")
    torch.manual_seed(0)
    net = ElasticSupernet(space, 10, zero_init=True).eval()
    torch.manual_seed(0)
    plain = ElasticSupernet(space, 10)
    zeroed = {k for k, t in net.weights.items() if k.endswith("weight") and not t.any()}
    # The branch end of every layer position after a stage's first (residual in every member),
    # for expansion 1 (mb1) and above (mb); the first positions are not always residual.
    assert "stages__3__1__mb__block__project__1__weight" in zeroed
    assert "stages__3__1__mb1__block__project__1__weight" in zeroed
    assert "stages__3__0__mb__block__project__1__weight" not in zeroed
    assert zeroed == {k for k in net.weights if k.endswith("block__project__1__weight") and "__0__m" not in k} | {
        "head__4__weight"}
    # Everything else is initialised as without zero_init (same seed, same draws).
    assert all(torch.equal(t, plain.weights[k]) for k, t in net.weights.items() if k not in zeroed)
    # So a deeper stage computes what the shallower one does, until training moves the zeros.
    with torch.no_grad():
        net.weights["head__4__weight"].normal_()
    choices = space.to_choices(space.sample(random.Random(2)))
    shallow = space.from_choices({**choices, "s4.depth": 2, "s6.depth": 3})
    deep = space.from_choices({**choices, "s4.depth": 4, "s6.depth": 5})
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(net(x, shallow), net(x, deep), atol=1e-5)


def test_only_the_largest_member_is_regularised_in_training(mbconv_net):
    space = load_space("mbconv")
    arch = space.sample(random.Random(3))  # drop path 0.2, dropout 0.2
    mbconv_net.train()
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        plain = [mbconv_net(x, arch, regularize=False) for _ in range(2)]
        regularised = [mbconv_net(x, arch) for _ in range(2)]
    assert torch.equal(*plain) and not torch.equal(*regularised)
    with pytest.raises(ConfigError, match="regularize: 'some' is not one of largest, all"):
        SupernetConfig(regularize="some")


def test_gradients_of_a_member_reach_only_its_slices(mbconv_net):
    space = load_space("mbconv")
    arch = space.sample(random.Random(4))
    mbconv_net.zero_grad(set_to_none=True)
    mbconv_net.train()
    mbconv_net(torch.randn(4, 3, 32, 32), arch).sum().backward()
    dw = mbconv_net.weights["stages__0__0__mb__block__dw__0__weight"]
    k = space.to_choices(arch)["s1.kernel"]
    mask = torch.zeros_like(dw, dtype=torch.bool)
    o = (7 - k) // 2
    mid = mbconv_net.tensors(arch)["stages.0.0.block.1.0.weight" if space.to_choices(arch)["s1.expansion"] != 1
                                   else "stages.0.0.block.0.0.weight"].shape[0]
    mask[:mid, :, o:o + k, o:o + k] = True
    assert dw.grad is not None and (dw.grad[~mask] == 0).all() and dw.grad[mask].abs().sum() > 0
    mbconv_net.zero_grad(set_to_none=True)


@pytest.fixture(scope="module")
def briefly_trained(tmp_path_factory):
    """A supernet checkpoint after one short epoch: enough for what BN recalibration does."""
    out = tmp_path_factory.mktemp("supernet_brief")
    return train_supernet("nasbench_macro", {"name": "digits", "limit": 100}, out, "brief", threads=1,
                          **{**FAST, "epochs": 1})


def test_bn_recalibration_changes_only_bn_buffers(briefly_trained):
    ckpt = briefly_trained
    evaluator = SupernetEvaluator(str(ckpt))
    net = evaluator.supernet
    arch = net.space.sample(random.Random(3))
    shared = {k: v.clone() for k, v in net.state_dict().items()}
    model = net.extract(arch)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loader = evaluator.data.loader("train", 16, 64, 0)
    recalibrate_batchnorm(model, loader, torch.device("cpu"), 4, only_norms=True)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in changed)
    # The evaluator's quick path (no copy) recalibrates the same way and leaves the supernet alone.
    tensors = net.recalibrated(arch, (x for _, (x, _) in zip(range(4), evaluator.data.loader("train", 16, 64, 0))))
    for name in changed:
        assert torch.allclose(tensors[name].float(), after[name].float(), atol=1e-6)
    assert all(torch.equal(v, shared[k]) for k, v in net.state_dict().items())
    direct = evaluate(model, evaluator.data.batches("val", 16), torch.device("cpu"))
    scored = evaluator(arch)
    assert scored["accuracy"] == pytest.approx(direct[0]) and scored["loss"] == pytest.approx(direct[1], abs=1e-4)


@pytest.mark.integration
def test_finetune_steps_train_a_copy_of_the_member_and_leave_the_supernet_alone(trained):
    _, ckpt = trained
    plain = SupernetEvaluator(str(ckpt), threads=1)
    tuned = SupernetEvaluator(str(ckpt), finetune_steps=3, finetune_lr=0.01, threads=1)
    net = tuned.supernet
    arch = net.space.sample(random.Random(6))
    shared = {k: v.clone() for k, v in net.state_dict().items()}
    first, again = tuned(arch), tuned(arch)
    assert all(torch.equal(v, shared[k]) for k, v in net.state_dict().items())
    assert (first["accuracy"], first["loss"]) == (again["accuracy"], again["loss"])  # seeded
    assert first["loss"] != pytest.approx(plain(arch)["loss"], abs=1e-4)  # the steps trained it
    # What the evaluator does is extract + BN recalibration + 3 steps + validation, nothing else.
    pixels = scaled_resolution(arch, tuned.resolution, net.space.base_resolution)
    with intra_op_threads(1):  # as the evaluator ran: the thread count changes float sums
        torch.manual_seed(0)
        result = fit(net.extract(arch), tuned.data.loader("train", pixels, 64, 0),
                     tuned.data.batches("val", pixels), tuned.finetune, torch.device("cpu"))
    assert result.steps == 3
    assert (first["accuracy"], first["loss"]) == pytest.approx((result.accuracy, result.loss))


@pytest.mark.integration
def test_resumed_training_continues_from_its_checkpoint(trained, tmp_path):
    _, reference = trained

    def stop_after_first(stats):
        if stats.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_supernet("nasbench_macro", DATA, tmp_path, "cut", threads=1, on_epoch=stop_after_first, **FAST)
    cut = load_checkpoint(tmp_path / "supernets" / "cut")
    assert cut["epoch"] == 1
    with pytest.raises(ConfigError, match="resume=true"):
        train_supernet("nasbench_macro", DATA, tmp_path, "cut", threads=1, **FAST)
    with pytest.raises(ConfigError, match="epochs"):
        train_supernet("nasbench_macro", DATA, tmp_path, "cut", resume=True, threads=1, **{**FAST, "epochs": 3})
    ckpt = train_supernet(out=tmp_path, run_id="cut", resume=True, threads=1)  # the saved settings
    resumed, full = load_checkpoint(ckpt), load_checkpoint(reference)
    assert resumed["epoch"] == full["epoch"] == 2
    for key, tensor in full["model"].items():
        assert torch.allclose(resumed["model"][key].float(), tensor.float(), atol=1e-6), key
    assert [h["loss"] for h in resumed["history"]] == pytest.approx([h["loss"] for h in full["history"]])
    assert len(pd.read_csv(tmp_path / "supernets" / "cut" / "history.csv")) == 2


@pytest.mark.integration
def test_evolution_with_the_supernet_evaluator_lands_in_the_leaderboard(trained, tmp_path):
    _, ckpt = trained
    result = nas.search("nasbench_macro", strategy="evolution", evaluator="supernet",
                        evaluator_options={"ckpt": str(ckpt)}, budget=6, seed=0, out=tmp_path,
                        constraints={"params": 1_500_000}, progress=False)
    trials = result.trials
    assert len(trials) == 6 and (trials["status"] == "ok").all()
    assert trials["accuracy"].between(0, 100).all() and (trials["eval_s"] < 30).all()
    assert (trials["params"] <= 1_500_000).sum() >= 1
    assert result.best["params"] <= 1_500_000  # the constraint decides the best, as with any evaluator
    board = nas.leaderboard(tmp_path)
    assert len(board) == 6 and set(board["evaluator"]) == {"supernet"}


@pytest.mark.integration
def test_a_latency_budget_works_with_the_supernet_evaluator(trained, tmp_path):
    _, ckpt = trained
    # The bound: the median measured latency of a few members, so that some meet it and some not.
    probe = nas.search("nasbench_macro", strategy="random", evaluator="cost", budget=6, seed=1,
                       out=tmp_path / "probe", objectives=["latency_ms:min"], latency=LATENCY, progress=False)
    bound = float(probe.trials["latency_ms"].median())
    result = nas.search("nasbench_macro", strategy="evolution", evaluator="supernet",
                        evaluator_options={"ckpt": str(ckpt)}, budget=6, seed=0, out=tmp_path / "run",
                        max_latency_ms=bound, latency=LATENCY, progress=False)
    ok = result.trials[result.trials["status"] == "ok"]
    assert len(ok) == 6 and (ok["latency_source"] == "measured").all() and (ok["latency_ms"] > 0).all()
    # members over the budget were measured and refused before the supernet scored them
    assert (ok["latency_ms"] <= bound).all() and ok["accuracy"].between(0, 100).all()


@pytest.mark.integration
def test_cli_train_extract_and_run(trained, tmp_path, capsys):
    out, ckpt = trained
    # The supernet's checkpoint is refused a second training, one line, nothing overwritten.
    before = ckpt.read_bytes()
    code = main(["supernet", "train", "space=nasbench_macro", f"out={out}", "run_id=ref", "epochs=2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "resume=true" in err and ckpt.read_bytes() == before
    # A member as a standalone model.pt, loaded with weights_only=True.
    space = load_space("nasbench_macro")
    arch = space.sample(random.Random(5))
    target = tmp_path / "member.pt"
    assert main(["supernet", "extract", space.to_string(arch), f"ckpt={ckpt}", f"to={target}"]) == 0
    model = load_model(target)
    evaluator = SupernetEvaluator(str(ckpt))
    weights = evaluator.supernet.extract(arch).state_dict()
    for name, tensor in model.state_dict().items():
        if not name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(tensor, weights[name])
    # nas run with the evaluator's own spelling of its option.
    code = main(["run", "space=nasbench_macro", "strategy=random", "evaluator=supernet", f"supernet.ckpt={ckpt}",
                 "budget=2", f"out={tmp_path}", "progress=false"])
    assert code == 0, capsys.readouterr().err
    assert len(nas.leaderboard(tmp_path)) == 2
    # Another space than the supernet's, and a missing checkpoint: one line each.
    for args, words in ((["space=mbconv", f"evaluator.ckpt={ckpt}"], ("space", "nasbench_macro", "mbconv")),
                        (["space=nasbench_macro", "evaluator.ckpt=/nope.pt"], ("ckpt", "/nope.pt"))):
        capsys.readouterr()
        code = main(["run", "evaluator=supernet", *args, "budget=1", f"out={tmp_path}", "progress=false"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert all(word in err for word in words), err
