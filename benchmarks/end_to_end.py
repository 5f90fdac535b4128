"""End to end on digits: the default search's winner, the winner of a random search with as many
evaluations, and the run's baselines, each retrained with ``nas retrain`` (one recipe, several seeds).

(a) the default search (``nas run space=mbconv strategy=evolution``: proxy training, race selection,
baselines=auto) with ``--budget`` and ``--search-seed``; (b) ``strategy=random`` with as many
evaluations as (a) made (its trials less the baseline rows) and (a)'s other settings but the seed
``--random-seed`` (default: the search seed + 1). Evolution's first members (8) are drawn like
random search's, so with the same seed (b) would start from (a)'s networks. Then (a)'s
winner, (b)'s winner and each baseline of (a)'s best.yaml are retrained with ``nas.deploy.retrain.retrain``
(the entry point of ``nas retrain``; one Ray cluster shared by all the retrains), ``--retrain-seeds``
seeds each, all with the same recipe. Each network retrains at its own resolution scaled like the
proxy's (the space's base resolution becomes ``--resolution`` pixels), so the searched resolution
multiplier keeps its effect. Printed: one table (search accuracy mean ± std and n from the search,
retrained test accuracy mean ± std over the seeds, latency, params, MACs), then each pair's
difference of retrained means with its standard error. Files (search runs, retrains, summary.yaml)
go to ``--out``.

    python benchmarks/end_to_end.py [--budget 20] [--search-seed 0] [--random-seed 1] [--retrain-seeds 3] [--epochs 8]
        [--batch 64] [--warmup-epochs 1] [--resolution 24] [--out /tmp/nas_end_to_end]

**On Fashion-MNIST** (``--data fashion``): the default search and random search with as many
evaluations, ``--search-seeds`` seeds each (random search's seed is the search seed + 1000), both on
the ground truth's subset (benchmarks/ground_truth.py); every winner retrained with the ground
truth's recipe and seeds, exactly as its rows are (``nas retrain`` commands, resumable), so the
winners are placed among its 40 members, and the baselines' rows taken from it. Latency: the plain
stopwatch (benchmarks/stopwatch.py, 1 thread, batch 1, each network at its own resolution), the
winners and baselines interleaved in one pass. Every search and retrain resumes where a killed job
stopped (``--out`` is reused, not refused).

    python benchmarks/end_to_end.py --data fashion [--budget 20] [--search-seeds 3] [--out /tmp/nas_e2e_fashion]

**One-shot search beside them** (``--oneshot CKPT``, issue 35): per search seed a third search,
``strategy=evolution evaluator=supernet supernet.ckpt=CKPT`` with ``--oneshot-budget`` evaluations,
its winner retrained and placed like the others. Compute per search: the seconds its trials took
(their ``wall_s``), and for one-shot also the supernet's training (the checkpoint's epoch seconds),
counted in full for every search seed, as a user who trains one supernet per search pays it.

    python benchmarks/end_to_end.py --data fashion --oneshot results/supernets/fashion [--oneshot-budget 200]
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ray
import yaml

import nas
from evaluators.proxy import scaled_resolution
from evaluators.supernet import load_checkpoint
from nas.backends.ray_cluster import connect
from nas.deploy.retrain import retrain
from search_spaces import load_space
from search_spaces.arch import Architecture

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ground_truth as gt
from stopwatch import stopwatch


def search(strategy: str, budget: int, seed: int, out: Path, data: dict | None = None,
           run_id: str | None = None, evaluator: str = "proxy", evaluator_options: dict | None = None) -> Any:
    """One search with the run defaults of ``nas run`` (only strategy, budget, seed, data set and
    evaluator set); a run already in ``out`` is resumed (a finished one comes back as it is)."""
    begin = time.perf_counter()
    run_id = run_id or strategy
    extra = {"data": data} if data is not None else {}
    resume = (out / "runs" / run_id / "state.json").exists()
    result = nas.search(space="mbconv", strategy=strategy, budget=budget, seed=seed, out=out,
                        run_id=run_id, progress=False, resume=resume, evaluator=evaluator,
                        evaluator_options=evaluator_options, **extra)
    searched = int((result.trials["stage"] != "baseline").sum())
    print(f"search {strategy}: {searched} evaluations (+{len(result.trials) - searched} of baselines) in "
          f"{time.perf_counter() - begin:.0f} s; winner {result.best['accuracy']:.2f} ± "
          f"{_num(result.best.get('accuracy_std')):.2f} (n={result.best['n']})", flush=True)
    return result


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def networks(evolution: Any, random: Any) -> list[dict[str, Any]]:
    """The networks to retrain, each with what its search measured; one entry per architecture."""
    rows = [{"name": "evolution winner", "source": evolution.best},
            {"name": "random winner", "source": random.best}]
    rows += [{"name": b["name"], "source": b} for b in evolution.summary.get("baselines", []) if "accuracy" in b]
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        src = row["source"]
        entry = found.setdefault(src["arch"], {
            "name": row["name"], "arch": src["arch"], "search_acc": float(src["accuracy"]),
            "search_std": _num(src.get("accuracy_std")), "search_n": int(src.get("n", 1)),
            "latency_ms": _num(src.get("latency_ms")), "params": int(src["params"]), "macs": int(src["macs"]),
        })
        if entry["name"] != row["name"]:
            entry["name"] += f" = {row['name']}"
    return list(found.values())


def retrain_all(nets: list[dict[str, Any]], args: argparse.Namespace, out: Path) -> None:
    """``--retrain-seeds`` retrains of each network, same recipe; fills ``test`` and ``val`` lists."""
    base = load_space("mbconv").base_resolution
    started = connect(None, num_cpus=os.cpu_count(), log_to_driver=False)  # retrain joins it, no restart
    try:
        for i, net in enumerate(nets):
            arch = Architecture.parse(net["arch"])
            net["resolution"] = scaled_resolution(arch, args.resolution, base)
            net["test"], net["val"], net["retrain_s"] = [], [], []
            for seed in range(args.retrain_seeds):
                recipe = {"epochs": args.epochs, "batch": args.batch, "warmup_epochs": args.warmup_epochs,
                          "resolution": net["resolution"], "seed": seed}
                result = retrain(arch, recipe, {"name": "digits"}, out=out, run_id=f"net{i}-seed{seed}")
                net["test"].append(result.test_accuracy)
                net["val"].append(result.val_accuracy)
                net["retrain_s"].append(result.wall_s)
                print(f"retrain {net['name']} seed {seed}: test {result.test_accuracy:.2f}% "
                      f"(val {result.val_accuracy:.2f}%) at {net['resolution']} px in {result.wall_s:.0f} s",
                      flush=True)
    finally:
        if started:
            ray.shutdown()


def mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def table(nets: list[dict[str, Any]], seeds: int) -> None:
    head = ("network", "search acc % (n)", f"retrained test % ({seeds} seeds)", "latency ms", "params", "MACs")
    lines = []
    for net in nets:
        test, test_std = mean_std(net["test"])
        lines.append((net["name"], f"{net['search_acc']:.2f} ± {net['search_std']:.2f} ({net['search_n']})",
                      f"{test:.2f} ± {test_std:.2f}", f"{net['latency_ms']:.2f}", f"{net['params']:,}",
                      f"{net['macs'] / 1e6:.1f}M"))
    widths = [max(len(row[i]) for row in [head, *lines]) for i in range(len(head))]
    for row in [head, tuple("-" * w for w in widths), *lines]:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))


def differences(nets: list[dict[str, Any]]) -> None:
    """Each pair: difference of retrained means, its standard error (Welch), within ~2 SE or not."""
    print("\nretrained test accuracy, pairwise (difference ± standard error of the difference):")
    for a, b in itertools.combinations(nets, 2):
        (ma, sa), (mb, sb) = mean_std(a["test"]), mean_std(b["test"])
        diff = ma - mb
        se = math.sqrt(sa ** 2 / len(a["test"]) + sb ** 2 / len(b["test"]))
        verdict = "n/a (one seed)" if math.isnan(se) else (
            "within noise (|diff| <= 2 SE)" if abs(diff) <= 2 * se else "beyond 2 SE")
        print(f"  {a['name']} - {b['name']}: {diff:+.2f} ± {se:.2f} points: {verdict}")


def fashion(args: argparse.Namespace, out: Path) -> None:
    """The Fashion-MNIST end to end: searches, winners retrained with the ground truth's recipe,
    placed among its members, one latency pass, one table (see the module's docstring)."""
    recipe = gt.load_recipe()
    data = dict(recipe["data"])
    seeds = list(range(args.search_seed, args.search_seed + args.search_seeds))
    winners: list[dict[str, Any]] = []
    supernet_s = supernet_seconds(args.oneshot) if args.oneshot else 0.0
    for seed in seeds:
        evolution = search("evolution", args.budget, seed, out, data, run_id=f"evolution-s{seed}")
        evaluations = int((evolution.trials["stage"] != "baseline").sum())
        random = search("random", evaluations, seed + 1000, out, data, run_id=f"random-s{seed + 1000}")
        searches = [("evolution", evolution, 0.0), ("random", random, 0.0)]
        if args.oneshot:
            oneshot = search("evolution", args.oneshot_budget, seed, out, data, run_id=f"oneshot-s{seed}",
                             evaluator="supernet", evaluator_options={"ckpt": args.oneshot})
            searches.append(("oneshot", oneshot, supernet_s))
        for strategy, result, upfront in searches:
            winners.append({"strategy": strategy, "seed": seed, "arch": result.best["arch"],
                            "search_acc": float(result.best["accuracy"]), "search_n": int(result.best.get("n", 1)),
                            "compute_s": upfront + float(result.trials["wall_s"].fillna(0).sum())})
    truth = gt.read_table()
    truth = truth[(truth["recipe"] == gt.recipe_id(recipe)) & (truth["epochs"] == recipe["recipe"]["epochs"])]
    rows = [r for _, r in truth.iterrows()]
    have = {(r["arch"], int(r["seed"])) for r in rows}
    work = out / "retrain"
    for w in winners:  # a winner that is a ground-truth network reuses its rows
        arch = Architecture.parse(w["arch"])
        for seed in recipe["seeds"]:
            if (str(arch), seed) not in have:
                name = f"{w['strategy']}-s{w['seed']}"
                row = gt.train_one(recipe, "winner", name, arch, seed, recipe["recipe"]["epochs"], work)
                rows.append(row)
                have.add((str(arch), seed))
    table = pd.DataFrame(rows)
    tests = table.groupby("arch")["test_accuracy"].agg(["mean", "std", "size"])
    members = tests.loc[truth.loc[truth["role"] == "member", "arch"].unique()]
    baselines = truth[truth["role"] == "baseline"].groupby("name")["arch"].first()
    archs = list(dict.fromkeys([w["arch"] for w in winners] + list(baselines)))
    print(f"latency of {len(archs)} networks (plain stopwatch, 1 thread, batch 1, own resolution)...", flush=True)
    ms = dict(zip(archs, stopwatch(archs, num_classes=10, builds=3)))
    print(f"\nend to end on Fashion-MNIST ({recipe['data']['limit']} training images searched; ground truth "
          f"recipe: {recipe['recipe']['epochs']} epochs, seeds {recipe['seeds']}; {len(members)} members with "
          f"every seed)\n")
    print(f"{'network':<26}{'search %':>10}{'test % (mean ± std, n)':>26}{'latency ms':>12}{'percentile':>12}")
    for w in winners:
        t = tests.loc[w["arch"]]
        w.update(test=float(t["mean"]), test_std=float(t["std"]), latency_ms=ms[w["arch"]],
                 percentile=100 * float((members["mean"] < t["mean"]).mean()))
        print(f"{w['strategy'] + ' s' + str(w['seed']):<26}{w['search_acc']:>10.2f}"
              f"{t['mean']:>14.2f} ± {t['std']:.2f} ({int(t['size'])}){ms[w['arch']]:>12.2f}{w['percentile']:>12.0f}")
    for name, arch in baselines.items():
        t = tests.loc[arch]
        pct = 100 * float((members["mean"] < t["mean"]).mean())
        print(f"{name:<26}{'':>10}{t['mean']:>14.2f} ± {t['std']:.2f} ({int(t['size'])}){ms[arch]:>12.2f}{pct:>12.0f}")
    for strategy in dict.fromkeys(w["strategy"] for w in winners):
        mine = [w for w in winners if w["strategy"] == strategy]
        means = [w["test"] for w in mine]
        spread = statistics.stdev(means) if len(means) > 1 else float("nan")
        print(f"{strategy} winners over {len(mine)} search seeds: test {statistics.fmean(means):.2f} ± {spread:.2f} "
              f"(std over seeds), percentile {statistics.fmean(w['percentile'] for w in mine):.0f}, latency "
              f"{statistics.fmean(w['latency_ms'] for w in mine):.2f} ms, compute per search "
              f"{statistics.fmean(w['compute_s'] for w in mine) / 60:.1f} min")
    if args.oneshot:
        proxy = statistics.fmean(w["compute_s"] for w in winners if w["strategy"] == "evolution")
        shot = statistics.fmean(w["compute_s"] for w in winners if w["strategy"] == "oneshot")
        print(f"one-shot search's compute (supernet training {supernet_s / 60:.1f} min included) against the proxy "
              f"search's: {proxy / shot:.1f}x less")
    (out / "summary.yaml").write_text(yaml.safe_dump(
        {"args": vars(args), "winners": winners, "latency_ms": ms}, sort_keys=False))


def supernet_seconds(ckpt: str) -> float:
    """Seconds the supernet in ``ckpt`` trained for, summed over its epochs (resumes included)."""
    return float(sum(epoch["seconds"] for epoch in load_checkpoint(ckpt)["history"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("digits", "fashion"), default="digits")
    parser.add_argument("--search-seeds", type=int, default=1, help="--data fashion: search seeds from --search-seed")
    parser.add_argument("--budget", type=int, default=20, help="evaluations of the default search (a)")
    parser.add_argument("--search-seed", type=int, default=0)
    parser.add_argument("--random-seed", type=int, default=None, help="seed of the random search (b); "
                        "default: --search-seed + 1")
    parser.add_argument("--retrain-seeds", type=int, default=3, help="retrain seeds per network (0..N-1)")
    parser.add_argument("--epochs", type=int, default=8, help="retrain epochs")
    parser.add_argument("--batch", type=int, default=64, help="retrain global batch")
    parser.add_argument("--warmup-epochs", type=float, default=1.0, help="retrain linear warm-up")
    parser.add_argument("--resolution", type=int, default=24,
                        help="pixels of the space's base resolution in the retrain (as the proxy's)")
    parser.add_argument("--out", default="/tmp/nas_end_to_end", help="scratch folder (must be new or empty)")
    parser.add_argument("--oneshot", default=None, help="--data fashion: a supernet checkpoint trained on it; adds "
                        "a one-shot search (evaluator=supernet) per search seed")
    parser.add_argument("--oneshot-budget", type=int, default=200, help="evaluations of each one-shot search")
    args = parser.parse_args()
    if args.oneshot and args.data != "fashion":
        parser.error("--oneshot: only with --data fashion (the one-shot arm is placed among its ground truth)")
    out = Path(args.out)
    if args.data == "fashion":
        out.mkdir(parents=True, exist_ok=True)
        fashion(args, out)
        return
    if out.exists() and any(out.iterdir()):
        parser.error(f"--out {out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    begin = time.perf_counter()
    evolution = search("evolution", args.budget, args.search_seed, out)
    evaluations = int((evolution.trials["stage"] != "baseline").sum())
    random_seed = args.search_seed + 1 if args.random_seed is None else args.random_seed
    random = search("random", evaluations, random_seed, out)
    search_s = time.perf_counter() - begin
    nets = networks(evolution, random)
    print(f"retrain recipe (nas retrain defaults otherwise): epochs={args.epochs} batch={args.batch} "
          f"warmup_epochs={args.warmup_epochs} optimizer=adamw lr=0.004 weight_decay=0.05 label_smoothing=0.1 "
          f"augment=none, resolution = the network's own scaled so 224 -> {args.resolution} px, workers=1, "
          f"seeds 0..{args.retrain_seeds - 1}; test split of digits (never seen by the searches)", flush=True)
    retrain_all(nets, args, out)
    total = time.perf_counter() - begin
    print(f"\nend to end on digits: evolution seed {args.search_seed} budget {args.budget}, random seed "
          f"{random_seed}, {evaluations} evaluations for each search; searches {search_s / 60:.1f} min, retrains "
          f"{(total - search_s) / 60:.1f} min, total {total / 60:.1f} min\n")
    table(nets, args.retrain_seeds)
    differences(nets)
    for net in nets:
        print(f"  {net['name']}: {net['arch']} ({net['resolution']} px)")
    (out / "summary.yaml").write_text(yaml.safe_dump({"args": vars(args), "networks": nets}, sort_keys=False))


if __name__ == "__main__":
    main()
