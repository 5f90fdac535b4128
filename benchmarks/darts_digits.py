"""DARTS on mbconv and digits: search time, and how the derived network ranks among random ones.

The supernet of ``mbconv`` (every stage's 24 MBConv variants and its depths, EfficientNet-B0's
resolution and width) trains on digits at 32 px with Gumbel-sampled paths (GDAS), first-order
bilevel steps, for ``--epochs``, once per search seed (``--seed`` .. ``--seed + --seeds-search - 1``).
Each derived architecture is then trained with the proxy recipe (ProxyEvaluator's defaults) next
to the same ``--random`` seeded-random members, trained once; printed per search seed: the search
time (target <= 10 minutes on 2 cores) and the derived network's percentile among the random ones
(target >= 75th), each accuracy the mean over ``--seeds`` proxy seeds; then the percentile's mean
and std across search seeds.

``--select-budget B`` (B > 0) runs each search as a run instead, ``nas.search(strategy="darts",
budget=B, baselines="none", latency="none")`` with the run's default selection (race: the top 3 by
mean kept at 3 evaluations): the derived network is that run's first proposal (its supernet is
seeded by the run, so it is not the one the plain search of the same seed derives), and the run's
winner after selection is printed with its mean ± std (n) from the run and its percentile among
the random members. Those runs' files go to ``--out``.

``--truth fashion`` judges DARTS against the Fashion-MNIST ground truth instead (issue "Weight sharing
that ranks"): each search runs on the ground truth's subset, and each derived network is trained with
the ground truth's recipe and seeds (its ``nas retrain`` commands, resumable under ``--out``) and placed
at a percentile among the ground truth's members by mean test accuracy (target: 75th, mean over
search seeds); no random members are trained.

    python benchmarks/darts_digits.py [--truth digits|fashion] [--epochs 25] [--warmup 5] [--alpha-lr 0.01]
        [--random 20] [--seeds 2] [--seed 0] [--seeds-search 1] [--select-budget 0] [--out /tmp/nas_darts_digits]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import nas
from evaluators.data import dataset_from_options, load_dataset
from evaluators.proxy import ProxyEvaluator
from nas.strategies.darts import DartsConfig
from nas.strategies.darts_training import darts_search
from search_spaces import load_space
from search_spaces.supernet import Supernet

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ground_truth as gt


@dataclass
class Searched:
    seed: int
    derived: Any  # the Architecture
    seconds: float
    stopped: str | None
    run: Any = None  # the SearchResult with --select-budget


def plain_search(space: Any, data: Any, seed: int, args: argparse.Namespace) -> Searched:
    """darts_search on a supernet seeded by ``seed``, on the CPU."""
    torch.manual_seed(seed)
    net = Supernet(space, 224, 1.0, data.num_classes)
    cfg = DartsConfig(epochs=args.epochs, warmup_epochs=args.warmup, alpha_lr=args.alpha_lr, seed=seed)
    start = time.perf_counter()
    result = darts_search(net, data, cfg, torch.device("cpu"))
    return Searched(seed, result.derived, time.perf_counter() - start, result.stopped)


def run_search(space: Any, seed: int, args: argparse.Namespace) -> Searched:
    """A ``strategy=darts`` run of ``--select-budget`` evaluations; the search part from darts.json."""
    run = nas.search(space="mbconv", strategy="darts", budget=args.select_budget, seed=seed, out=args.out,
                     run_id=f"darts-seed{seed}", baselines="none", latency="none", progress=False,
                     epochs=args.epochs, warmup_epochs=args.warmup, alpha_lr=args.alpha_lr, device="cpu")
    history = json.loads((run.run_dir / "darts.json").read_text())
    return Searched(seed, space.from_string(history["derived"]), history["seconds"], history["stopped"], run)


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def percentile(value: float, others: list[float]) -> float:
    return float(100 * np.mean([value > r for r in others]) + 50 * np.mean([value == r for r in others]))


def against_truth(searches: list[Searched], out: Path) -> None:
    """Each derived network trained with the ground truth's recipe and seeds, and its percentile among
    the ground truth's members (mean test accuracy over seeds, members with every seed)."""
    recipe = gt.load_recipe()
    table = gt.read_table()
    table = table[(table["recipe"] == gt.recipe_id(recipe)) & (table["epochs"] == recipe["recipe"]["epochs"])]
    members = table[table["role"] == "member"].groupby("arch")["test_accuracy"].agg(["mean", "size"])
    members = members[members["size"] >= len(recipe["seeds"])]["mean"].tolist()
    if not members:
        raise SystemExit("--truth fashion: no member of the ground truth has every seed yet "
                         "(python benchmarks/ground_truth.py train)")
    print(f"\nground truth: {len(members)} members with every seed, mean test accuracy median "
          f"{np.median(members):.2f}%, best {max(members):.2f}%")
    ranks = []
    for found in searches:
        accs = [gt.train_one(recipe, "darts", f"darts-s{found.seed}", found.derived, seed,
                             recipe["recipe"]["epochs"], out / "retrain")["test_accuracy"] for seed in recipe["seeds"]]
        ranks.append(percentile(float(np.mean(accs)), members))
        print(f"search seed {found.seed}: derived, ground truth recipe: test {np.mean(accs):.2f}% "
              f"({', '.join(f'{a:.2f}' for a in accs)}), percentile among members {ranks[-1]:.0f} (target >= 75); "
              f"search {found.seconds / 60:.1f} min (target <= 10)", flush=True)
    if len(ranks) > 1:
        print(f"across {len(ranks)} search seeds: percentile {np.mean(ranks):.0f} ± {np.std(ranks, ddof=1):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth", choices=("digits", "fashion"), default="digits",
                        help="judge the derived networks among random members under the proxy on digits, or "
                             "among the Fashion-MNIST ground truth's members under its recipe")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--alpha-lr", type=float, default=0.01)
    parser.add_argument("--random", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=2, help="proxy seeds per network")
    parser.add_argument("--seed", type=int, default=0, help="first search seed; the random members' seed is +1")
    parser.add_argument("--seeds-search", type=int, default=1, help="DARTS searches, seeds --seed, --seed+1, ...")
    parser.add_argument("--select-budget", type=int, default=0,
                        help="> 0: each search is a strategy=darts run of this many evaluations (its selection)")
    parser.add_argument("--out", default="/tmp/nas_darts_digits", help="folder of the runs (--select-budget)")
    args = parser.parse_args()
    if args.select_budget and Path(args.out).exists() and any(Path(args.out).iterdir()):
        parser.error(f"--out {args.out} is not empty")
    if args.truth == "fashion" and args.select_budget:
        parser.error("--select-budget: with --truth fashion each derived network is judged by the ground truth's "
                     "recipe, not a run's selection")
    space = load_space("mbconv")
    data = dataset_from_options(gt.load_recipe()["data"]) if args.truth == "fashion" else load_dataset("digits")
    how = f"runs of budget {args.select_budget}" if args.select_budget else "plain searches"
    searches = []
    for seed in range(args.seed, args.seed + args.seeds_search):
        found = run_search(space, seed, args) if args.select_budget else plain_search(space, data, seed, args)
        searches.append(found)
        print(f"DARTS (gumbel, first order) on mbconv/{args.truth} at 32 px, seed {seed} ({how}): {args.epochs} epochs "
              f"in {found.seconds:.0f} s ({torch.get_num_threads()} threads)"
              f"{'; ' + found.stopped if found.stopped else ''}", flush=True)
        print(f"derived: {found.derived}", flush=True)
    if args.truth == "fashion":
        against_truth(searches, Path(args.out))
        return
    proxies = [ProxyEvaluator(seed=s) for s in range(args.seeds)]
    for proxy in proxies:
        proxy.check_space(space)

    def score(arch: Any) -> float:
        return float(np.mean([p(arch)["accuracy"] for p in proxies]))

    rng = random.Random(args.seed + 1)
    randoms = [score(space.sample(rng)) for _ in range(args.random)]
    print(f"\n{args.random} random members (seed {args.seed + 1}), proxy accuracy (mean of {args.seeds} seeds): "
          f"median {np.median(randoms):.2f}%, best {max(randoms):.2f}%")
    derived, ranks = [], []
    for found in searches:
        accuracy = score(found.derived)
        derived.append(accuracy)
        ranks.append(percentile(accuracy, randoms))
        print(f"search seed {found.seed}: derived {accuracy:.2f}%, percentile among random {ranks[-1]:.0f} "
              f"(target >= 75); search {found.seconds / 60:.1f} min (target <= 10)")
        run = found.run
        if run is None:
            continue
        best, key = run.best, space.key(found.derived)
        archs = run.archs.set_index("arch")
        if best is None:
            print("  run: no successful evaluation")
            continue
        is_derived = best["arch"] == key
        own = archs.loc[key] if key in archs.index else None
        which = "= derived" if is_derived else "a sample"
        line = (f"  run (budget {args.select_budget}, race selection): winner {which}, {best['accuracy']:.2f} "
                f"± {_num(best.get('accuracy_std')):.2f} (n={best['n']}) in the run")
        if own is not None and not is_derived:
            line += f"; derived {own['accuracy']:.2f} (n={int(own['n'])}) in the run"
        winner = accuracy if is_derived else score(run.best_arch)
        print(line + f"; winner with the {args.seeds} benchmark proxy seeds {winner:.2f}%, percentile "
              f"{percentile(winner, randoms):.0f}")
    if len(searches) > 1:
        print(f"\nacross {len(searches)} search seeds: derived {np.mean(derived):.2f} ± "
              f"{np.std(derived, ddof=1):.2f}%, percentile {np.mean(ranks):.0f} ± {np.std(ranks, ddof=1):.0f} "
              "(mean ± std)")


if __name__ == "__main__":
    main()
