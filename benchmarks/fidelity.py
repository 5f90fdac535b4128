"""The fidelity table: how well each cheap evaluator ranks the Fashion-MNIST ground truth.

Every setting below is an evaluator as `nas run evaluator=... evaluator.<option>=... data=...` builds
it, run on every network of the ground truth (benchmarks/data/fashion_ground_truth.csv). Its scores
are compared with the ground truth's mean test accuracy over seeds: Kendall tau, Spearman, recall
of the top 10 % (of the ground truth's best tenth, the share the setting also puts in its best
tenth), and the cost per candidate in wall and CPU seconds (CPU seconds stay honest when another
job shares the machine; wall seconds do not). The proxy against itself (a second seed) is its own
row. Scores go to benchmarks/data/fashion_fidelity.csv, one row per (setting, network, repeat),
written as each finishes: the job resumes where it stopped.

The supernet row scores members with weights cut from one supernet trained with today's default
recipe on the same subset (`nas supernet train space=mbconv data=fashion_mnist ...`, run by
``prepare``; its checkpoint stays under ``results/``, resumable, never committed). Its training time
is printed by ``report`` beside the per-candidate cost.

    python benchmarks/fidelity.py prepare          # train the supernet row's supernet (or continue it)
    python benchmarks/fidelity.py run [--settings NAME,...] [--max-rows N]
    python benchmarks/fidelity.py report [--members-only] [--features] [--min-seeds 1]
    python benchmarks/fidelity.py list
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from scipy.stats import kendalltau, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ground_truth as gt
from arch_features import feature_table, print_feature_table

from evaluators.registry import make_evaluator
from search_spaces import load_space

TABLE = gt.HERE / "fashion_fidelity.csv"
COLUMNS = ["setting", "setting_id", "arch", "repeat", "score", "wall_s", "cpu_s"]
FASHION = {"name": "fashion_mnist", "limit": 6000, "val_fraction": 0.2, "seed": 0}  # the ground truth's subset
SUPERNETS = Path(__file__).resolve().parents[1] / "results"  # out= of the supernet row's training
SUPERNET_RUN = "fidelity-fashion"
SUPERNET_CKPT = SUPERNETS / "supernets" / SUPERNET_RUN / "supernet.pt"


@dataclass(frozen=True)
class Setting:
    """One evaluator configuration; ``metric`` is the result key that ranks (higher is better)."""

    name: str
    evaluator: str
    options: dict = field(default_factory=dict)
    data: dict = field(default_factory=lambda: dict(FASHION))
    metric: str = "accuracy"
    repeats: tuple[int, ...] = (0,)

    @property
    def id(self) -> str:
        spec = {"evaluator": self.evaluator, "options": self.options, "data": self.data, "metric": self.metric}
        return hashlib.blake2b(json.dumps(spec, sort_keys=True).encode(), digest_size=4).hexdigest()


def proxy(name: str, epochs: int = 3, resolution: int = 24, limit: int = 6000,
          repeats: tuple[int, ...] = (0,)) -> Setting:
    return Setting(name, "proxy", {"epochs": epochs, "resolution": resolution}, {**FASHION, "limit": limit},
                   repeats=repeats)


# Cheapest first, so an interrupted job has the cheap rows of every network.
SETTINGS = [
    *(Setting(f"zero_cost {p}", "zero_cost", {"proxy": p}, metric="zero_cost")
      for p in ("params", "macs", "synflow", "naswot", "grad_norm", "snip")),
    proxy("proxy 1 epoch 24 px 6k", epochs=1),
    proxy("proxy 3 epochs 24 px 1.5k", limit=1500),
    proxy("proxy 3 epochs 16 px 6k", resolution=16),
    proxy("proxy 3 epochs 24 px 6k", repeats=(0, 1)),  # the proxy against itself: repeat 1 is another seed
    proxy("proxy 3 epochs 24 px 3k", limit=3000),
    proxy("proxy 6 epochs 24 px 6k", epochs=6),
    Setting("supernet (default recipe)", "supernet", {"ckpt": str(SUPERNET_CKPT.relative_to(SUPERNETS.parent))}),
]


def prepare() -> None:
    """Train the supernet row's supernet with today's defaults on the ground truth's subset, or
    continue a stopped training; the command and its wall time go to the supernet's folder."""
    data = [f"data.{k}={v}" for k, v in FASHION.items() if k != "name"]
    folder = SUPERNET_CKPT.parent
    resume = ["resume=true"] if (folder / "supernet.pt").exists() else []
    argv = [sys.executable, "-m", "nas.cli.commands", "supernet", "train", "space=mbconv", "data=fashion_mnist",
            *data, f"out={SUPERNETS}", f"run_id={SUPERNET_RUN}", "progress=false", *resume]
    print("$", " ".join(argv[2:]), flush=True)
    start = time.perf_counter()
    subprocess.run(argv, check=True, cwd=SUPERNETS.parent)
    (folder / "fidelity_train.json").write_text(json.dumps(
        {"command": " ".join(["nas", *argv[4:]]), "wall_s": round(time.perf_counter() - start, 1),
         "resumed": bool(resume)}))


def read_table() -> pd.DataFrame:
    if not TABLE.exists():
        return pd.DataFrame(columns=COLUMNS)
    return pd.read_csv(TABLE, dtype={"setting_id": str})  # hex digests: never read as numbers


def truth(min_seeds: int | None = None) -> pd.DataFrame:
    """The ground truth's networks at the recipe's length with every seed (or at least ``min_seeds``,
    for a first look while it is being trained): role, mean test accuracy over their seeds."""
    recipe = gt.load_recipe()
    rows = gt.read_table()
    rows = rows[(rows["recipe"] == gt.recipe_id(recipe)) & (rows["epochs"] == recipe["recipe"]["epochs"])]
    means = rows.groupby("arch").agg(role=("role", "first"), name=("name", "first"),
                                     test=("test_accuracy", "mean"), seeds=("seed", "nunique"))
    return means[means["seeds"] >= (min_seeds or len(recipe["seeds"]))]


def run(settings: list[Setting], max_rows: int | None) -> None:
    torch.set_num_threads(2)
    nets = [arch for _, _, arch in gt.networks(gt.load_recipe())]
    done = read_table()
    have = set(zip(done["setting_id"], done["arch"], done["repeat"].astype(int))) if len(done) else set()
    space = load_space("mbconv")
    written = 0
    for s in settings:
        todo = [(a, r) for a in nets for r in s.repeats if (s.id, str(a), r) not in have]
        if not todo:
            continue
        print(f"{s.name}: {len(todo)} to score", flush=True)
        # a checkpoint is named relative to the repository in the setting (its id stays the same on any clone)
        options = {k: str(SUPERNETS.parent / v) if k == "ckpt" else v for k, v in s.options.items()}
        evaluator = make_evaluator(s.evaluator, data=s.data, **options)
        evaluator.check_space(space)
        for arch, repeat in todo:
            if max_rows is not None and written >= max_rows:
                return
            wall, cpu = time.perf_counter(), time.process_time()
            result = evaluator(arch, repeat=repeat)
            row = {"setting": s.name, "setting_id": s.id, "arch": str(arch), "repeat": repeat,
                   "score": result[s.metric], "wall_s": round(time.perf_counter() - wall, 2),
                   "cpu_s": round(time.process_time() - cpu, 2)}
            pd.DataFrame([row], columns=COLUMNS).to_csv(TABLE, mode="a", header=not TABLE.exists(), index=False)
            written += 1


def top_recall(score: pd.Series, target: pd.Series, share: float = 0.1) -> float:
    k = max(1, round(share * len(target)))
    return len(set(score.nlargest(k).index) & set(target.nlargest(k).index)) / k


def report(members_only: bool, with_features: bool = False, min_seeds: int | None = None) -> None:
    ref = truth(min_seeds)
    if members_only:
        ref = ref[ref["role"] == "member"]
    table = read_table()
    which = "every seed" if min_seeds is None else f"at least {min_seeds} seed(s), means over what is there"
    print(f"ground truth: {len(ref)} networks with {which} ({(ref['role'] == 'member').sum()} members)\n")
    print(f"{'setting':<28}{'n':>4}{'tau':>8}{'spearman':>10}{'top-10%':>9}{'wall s':>8}{'cpu s':>8}")
    by_id = {s.id: s for s in SETTINGS}
    for sid, rows in table.groupby("setting_id", sort=False):
        if sid not in by_id:
            continue  # a setting since changed: its rows no longer describe any setting
        first = rows[rows["repeat"] == 0].set_index("arch")
        shared = first.index.intersection(ref.index)
        if len(shared) < 5:
            continue
        score, target = first.loc[shared, "score"], ref.loc[shared, "test"]
        print(f"{by_id[sid].name:<28}{len(shared):>4}{kendalltau(score, target).statistic:>8.3f}"
              f"{spearmanr(score, target).statistic:>10.3f}{top_recall(score, target):>9.2f}"
              f"{first.loc[shared, 'wall_s'].mean():>8.1f}{first.loc[shared, 'cpu_s'].mean():>8.1f}")
        if with_features:
            print_feature_table(feature_table(list(shared), list(score), list(target)), indent="    ")
        second = rows[rows["repeat"] == 1].set_index("arch")
        both = second.index.intersection(shared)
        if len(both) >= 5:
            a, b = first.loc[both, "score"], second.loc[both, "score"]
            print(f"{'  ... seed 0 vs seed 1':<28}{len(both):>4}{kendalltau(a, b).statistic:>8.3f}"
                  f"{spearmanr(a, b).statistic:>10.3f}{top_recall(a, b):>9.2f}")
    trained = SUPERNET_CKPT.parent / "fidelity_train.json"
    if trained.exists():
        info = json.loads(trained.read_text())
        print(f"\nsupernet row: trained in {info['wall_s']:.0f} s"
              f"{' (last part; resumed)' if info['resumed'] else ''}: {info['command']}")
    seeds = gt.read_table()
    recipe = gt.load_recipe()
    seeds = seeds[(seeds["recipe"] == gt.recipe_id(recipe)) & (seeds["epochs"] == recipe["recipe"]["epochs"])]
    wide = seeds.pivot_table(index="arch", columns="seed", values="test_accuracy").reindex(ref.index).dropna()
    if wide.shape[1] >= 2 and len(wide) >= 5:
        a, b = wide.iloc[:, 0], wide.iloc[:, 1]
        print(f"{'ground truth seed 0 vs 1':<28}{len(wide):>4}{kendalltau(a, b).statistic:>8.3f}"
              f"{spearmanr(a, b).statistic:>10.3f}{top_recall(a, b):>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("prepare", "run", "report", "list"))
    parser.add_argument("--settings", default=None, help="comma-separated setting names (default: all)")
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--members-only", action="store_true", help="rank the searched members only")
    parser.add_argument("--min-seeds", type=int, default=None,
                        help="rank networks with at least this many ground-truth seeds (default: all of the recipe's)")
    parser.add_argument("--features", action="store_true",
                        help="under each setting, which network features its scores follow (arch_features.py)")
    args = parser.parse_args()
    chosen = SETTINGS
    if args.settings:
        names = [n.strip() for n in args.settings.split(",")]
        unknown = [n for n in names if n not in {s.name for s in SETTINGS}]
        if unknown:
            parser.error(f"--settings: unknown {unknown[0]!r}; known: {', '.join(s.name for s in SETTINGS)}")
        chosen = [s for s in SETTINGS if s.name in names]
    if args.action == "list":
        for s in SETTINGS:
            print(f"{s.name:<28}{s.id}  evaluator={s.evaluator} {s.options} data={s.data} repeats={s.repeats}")
    elif args.action == "prepare":
        prepare()
    elif args.action == "run":
        if any(s.evaluator == "supernet" for s in chosen) and not SUPERNET_CKPT.exists():
            chosen = [s for s in chosen if s.evaluator != "supernet"]
            print(f"supernet row left out: no {SUPERNET_CKPT} (python benchmarks/fidelity.py prepare)", flush=True)
        run(chosen, args.max_rows)
    else:
        report(args.members_only, args.features, args.min_seeds)


if __name__ == "__main__":
    main()
