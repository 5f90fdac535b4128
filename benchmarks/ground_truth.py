"""The Fashion-MNIST ground truth: seeded ``mbconv`` members and hand-designed networks, each trained
with one recipe (``benchmarks/data/fashion_ground_truth.recipe.yaml``) and scored on the official
test split, one row per training in ``benchmarks/data/fashion_ground_truth.csv``.

Every row is one ``nas retrain`` command, run as a user would (a subprocess) and written down in the
row's ``command`` column. The work is resumable at every level: a finished row is never trained
again, and a retrain killed mid-way continues from its last epoch (``nas retrain resume=true``).

    python benchmarks/ground_truth.py train [--max-rows N] [--work /tmp/ground_truth] [--jobs 1]
        every member and baseline at every seed of the recipe, in order of seed then network;
        ``--jobs 2`` trains two at a time with one torch thread each (``cpus_per_worker=1``): on this
        2-core VM about 1.9x the trainings per hour of one training with 2 threads (docs/benchmarks.md)
    python benchmarks/ground_truth.py double [--max-rows N]
        the doubling check: ``doubling.count`` members at the recipe's epochs and at twice them (seed 0)
    python benchmarks/ground_truth.py latency
        wall-clock latency of every network (the plain stopwatch of benchmarks/stopwatch.py, 1 thread,
        batch 1, at the network's own resolution) into the ``latency_ms`` column; run it on an idle machine
    python benchmarks/ground_truth.py report
        rows per role, seed-to-seed Kendall tau (target >= 0.6), the recipe against twice its length
        (target >= 0.8), a noise model (seed noise against the networks' spread: the seed-to-seed tau
        to expect, and the best tau any evaluator can reach against the 2-seed means), and the
        networks ranked by mean test accuracy
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import math
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stopwatch import stopwatch

from search_spaces import load_space, zoo
from search_spaces.arch import Architecture
from search_spaces.cost import cost

HERE = Path(__file__).resolve().parent / "data"
RECIPE = HERE / "fashion_ground_truth.recipe.yaml"
TABLE = HERE / "fashion_ground_truth.csv"
COLUMNS = ["role", "name", "arch", "seed", "epochs", "test_accuracy", "val_accuracy", "wall_s", "train_s",
           "train_pixels", "params", "macs", "latency_ms", "recipe", "command"]


def load_recipe(path: Path = RECIPE) -> dict:
    return yaml.safe_load(path.read_text())


def recipe_id(recipe: dict) -> str:
    """A short digest of the recipe's settings: rows trained under another recipe do not count."""
    settings = {k: recipe[k] for k in ("revision", "data", "base_pixels", "recipe")}
    return hashlib.blake2b(json.dumps(settings, sort_keys=True).encode(), digest_size=4).hexdigest()


def members(recipe: dict) -> list[tuple[str, Architecture]]:
    """``count`` distinct seeded members of the space, spread evenly over their MACs."""
    spec = recipe["members"]
    space, rng = load_space(spec["space"]), random.Random(spec["seed"])
    pool: dict[str, Architecture] = {}
    for _ in range(50 * spec["pool"]):
        if len(pool) == spec["pool"]:
            break
        arch = space.sample(rng)
        pool.setdefault(space.key(arch), arch)
    ranked = sorted(pool.values(), key=lambda a: (cost(a, 10).macs, str(a)))
    picks = np.linspace(0, len(ranked) - 1, spec["count"]).round().astype(int)
    return [(f"member{i:02d}", ranked[p]) for i, p in enumerate(picks)]


def networks(recipe: dict) -> list[tuple[str, str, Architecture]]:
    """(role, name, arch) of every network of the ground truth, members first."""
    return ([("member", name, arch) for name, arch in members(recipe)]
            + [("baseline", name, zoo.reference(name)) for name in recipe["baselines"]])


def train_pixels(recipe: dict, arch: Architecture) -> int:
    """The network's resolution scaled so that the space's base resolution trains at ``base_pixels``."""
    base = load_space(recipe["members"]["space"]).base_resolution
    return max(8, round(arch.resolution * recipe["base_pixels"] / base))


def command(recipe: dict, arch: Architecture, seed: int, epochs: int, out: Path, run_id: str,
            threads: int | None = None) -> list[str]:
    data = recipe["data"]
    settings = {**recipe["recipe"], "epochs": epochs, "seed": seed, "resolution": train_pixels(recipe, arch)}
    return (["nas", "retrain", str(arch), f"data={data['name']}"]
            + [f"data.{k}={v}" for k, v in data.items() if k != "name"]
            + [f"{k}={v}" for k, v in settings.items()]
            + ([f"cpus_per_worker={threads}"] if threads else [])
            + [f"out={out}", f"run_id={run_id}", "progress=false"])


def read_table(path: Path | None = None) -> pd.DataFrame:
    """The ground truth's rows (of ``path``, default the committed table)."""
    path = path or TABLE  # read at call time: tests point TABLE elsewhere
    # the recipe digest is hex: one of only digits would come back as a number and match nothing
    return pd.read_csv(path, dtype={"recipe": str}) if path.exists() else pd.DataFrame(columns=COLUMNS)


def append_row(row: dict) -> None:
    """One finished training, appended at once (an interrupted job keeps every row it finished)."""
    pd.DataFrame([row], columns=COLUMNS).to_csv(TABLE, mode="a", header=not TABLE.exists(), index=False)


def train_one(recipe: dict, role: str, name: str, arch: Architecture, seed: int, epochs: int, work: Path,
              threads: int | None = None) -> dict:
    """Retrain one network (continuing a killed run) and return its row."""
    run_id = f"{name}-e{epochs}-s{seed}-{recipe_id(recipe)}"  # a new recipe never reuses an old run
    argv = command(recipe, arch, seed, epochs, work, run_id, threads)
    folder = work / "retrain" / run_id
    nas = str(Path(sys.executable).with_name("nas"))
    if (folder / "result.yaml").exists():
        run = None
    elif folder.exists():  # killed mid-way: continue from its last checkpoint
        run = [nas, "retrain", "resume=true", f"run_id={run_id}", f"out={work}", "progress=false",
               *([f"cpus_per_worker={threads}"] if threads else [])]
    else:
        run = [nas, *argv[1:]]
    start = time.perf_counter()
    if run is not None:
        print("$", " ".join(argv), flush=True)
        done = subprocess.run(run, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{run_id} failed ({done.returncode}): {done.stderr.strip()[-1500:]}")
    result = yaml.safe_load((folder / "result.yaml").read_text())
    c = cost(arch, 10)
    row = {"role": role, "name": name, "arch": str(arch), "seed": seed, "epochs": epochs,
           "test_accuracy": result["test_accuracy"], "val_accuracy": result["val_accuracy"],
           "wall_s": round(result.get("wall_s", time.perf_counter() - start), 1),
           "train_s": round(result.get("train_s", float("nan")), 1), "train_pixels": train_pixels(recipe, arch),
           "params": c.params, "macs": c.macs, "latency_ms": float("nan"), "recipe": recipe_id(recipe),
           "command": " ".join(argv)}
    print(f"  {run_id}: test {row['test_accuracy']:.2f}% val {row['val_accuracy']:.2f}% "
          f"({row['wall_s']:.0f} s)", flush=True)
    return row


def train(recipe: dict, jobs: list[tuple[str, str, Architecture, int, int]], work: Path, max_rows: int | None,
          parallel: int = 1) -> None:
    """Train what ``jobs`` lists and the table lacks, ``parallel`` at a time (one thread each when more
    than one), each row written as its training finishes."""
    table = read_table()
    table = table[table["recipe"] == recipe_id(recipe)]
    have = set(zip(table["arch"], table["seed"].astype(int), table["epochs"].astype(int))) if len(table) else set()
    todo = [j for j in jobs if (str(j[2]), j[3], j[4]) not in have][:max_rows]
    print(f"{len(jobs) - len(todo)} of {len(jobs)} trainings done; {len(todo)} to go", flush=True)
    if parallel == 1:
        for role, name, arch, seed, epochs in todo:
            append_row(train_one(recipe, role, name, arch, seed, epochs, work))
        return
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:  # each thread waits on a nas retrain process
        futures = [pool.submit(train_one, recipe, *job, work, 1) for job in todo]
        for future in concurrent.futures.as_completed(futures):
            append_row(future.result())  # only this thread writes the table


def latency(recipe: dict) -> None:
    """Fill ``latency_ms`` for every network with the plain stopwatch (10 classes, as the data)."""
    table = read_table()
    archs = list(dict.fromkeys(table["arch"]))
    start = time.perf_counter()
    ms = dict(zip(archs, stopwatch(archs, num_classes=10, builds=3)))
    table["latency_ms"] = table["arch"].map(ms).round(3)
    table.to_csv(TABLE, index=False)
    print(f"latency of {len(archs)} networks in {time.perf_counter() - start:.0f} s: "
          f"{min(ms.values()):.1f}-{max(ms.values()):.1f} ms")


@dataclass(frozen=True)
class NoiseModel:
    """Classical test theory over one recipe's trainings: a training's test accuracy is the network's
    own accuracy plus independent seed noise. ``noise`` is the pooled within-network std (networks with
    at least two seeds), ``spread`` the std over networks of single trainings (each seed's column,
    pooled); the networks' own std is what is left of the spread after the noise."""

    noise: float
    spread: float
    pairs: int
    networks: int

    @property
    def true_std(self) -> float:
        return math.sqrt(max(self.spread**2 - self.noise**2, 0.0))

    def reliability(self, seeds: int = 1) -> float:
        """Share of the variance over networks of a mean over ``seeds`` trainings that is the networks'."""
        t = self.true_std**2
        return t / (t + self.noise**2 / seeds) if t > 0 else 0.0

    def expected_tau(self) -> float:
        """Kendall tau between two single trainings per network (bivariate normal: 2/pi asin r)."""
        return 2 / math.pi * math.asin(self.reliability(1))

    def ceiling_tau(self, seeds: int) -> float:
        """Kendall tau of a perfect evaluator against the mean over ``seeds`` trainings: it correlates
        with that mean at sqrt(reliability)."""
        return 2 / math.pi * math.asin(math.sqrt(self.reliability(seeds)))


def noise_model(wide: pd.DataFrame) -> NoiseModel | None:
    """The noise model of a networks x seeds table of test accuracies (NaN: not trained)."""
    repeated = wide[wide.notna().sum(axis=1) >= 2]
    columns = [wide[c].dropna() for c in wide.columns if wide[c].notna().sum() >= 3]
    if len(repeated) < 3 or not columns:
        return None
    noise = math.sqrt(float(repeated.var(axis=1, ddof=1).mean()))
    spread = math.sqrt(float(np.average([c.var(ddof=1) for c in columns], weights=[len(c) - 1 for c in columns])))
    return NoiseModel(noise, spread, len(repeated), int(wide.notna().any(axis=1).sum()))


def print_noise(model: NoiseModel | None, label: str) -> None:
    if model is None:
        return
    print(f"noise model ({label}; {model.pairs} networks with 2+ seeds, {model.networks} in all): seed noise "
          f"{model.noise:.2f} points, spread of single trainings {model.spread:.2f}, networks' own "
          f"{model.true_std:.2f}; reliability {model.reliability(1):.2f} for one training, "
          f"{model.reliability(2):.2f} for the mean of two; expected seed-to-seed tau {model.expected_tau():.2f}; "
          f"a perfect evaluator against the 2-seed mean reaches tau {model.ceiling_tau(2):.2f} at best")


def report(recipe: dict) -> None:
    table = read_table()
    table = table[table["recipe"] == recipe_id(recipe)]
    epochs = recipe["recipe"]["epochs"]
    main_rows = table[table["epochs"] == epochs]
    print(f"{len(table)} rows: " + ", ".join(f"{k} {v}" for k, v in table.groupby(["role", "epochs"]).size().items()))
    wide = main_rows.pivot_table(index="arch", columns="seed", values="test_accuracy")
    both = wide.dropna()
    if both.shape[1] >= 2 and len(both) >= 3:
        tau = kendalltau(both.iloc[:, 0], both.iloc[:, 1]).statistic
        print(f"seed-to-seed Kendall tau over {len(both)} networks: {tau:.3f} (target >= 0.6); "
              f"seed std of test accuracy: median {both.std(axis=1).median():.2f} points")
    print_noise(noise_model(wide), f"{epochs} epochs")
    doubled = table[table["epochs"] == 2 * epochs]
    short_noise = noise_model(wide)
    long_noise = noise_model(doubled.pivot_table(index="arch", columns="seed", values="test_accuracy"))
    for seeds in [[s] for s in recipe["doubling"]["seeds"]] + [recipe["doubling"]["seeds"]]:
        # a network counts where every one of these seeds was trained at both lengths
        long = doubled[doubled["seed"].isin(seeds)].groupby("arch")["test_accuracy"].agg(["mean", "size"])
        short = main_rows[main_rows["seed"].isin(seeds)].groupby("arch")["test_accuracy"].agg(["mean", "size"])
        shared = long.index[long["size"] == len(seeds)].intersection(short.index[short["size"] == len(seeds)])
        if len(shared) >= 3:
            short_m, long_m = short.loc[shared, "mean"], long.loc[shared, "mean"]
            tau = kendalltau(short_m, long_m).statistic
            label = f"seed {seeds[0]}" if len(seeds) == 1 else f"mean of seeds {', '.join(map(str, seeds))}"
            ceiling = ""
            if short_noise is not None and long_noise is not None:
                # if doubling reordered nothing, the two rankings would still differ by their seed noise
                r = math.sqrt(short_noise.reliability(len(seeds)) * long_noise.reliability(len(seeds)))
                ceiling = f"; {2 / math.pi * math.asin(r):.2f} expected from seed noise alone"
            print(f"recipe vs twice its length over {len(shared)} members ({label}): Kendall tau {tau:.3f} "
                  f"(target >= 0.8{ceiling}); mean gain {np.mean(long_m - short_m):+.2f} points")
    both = doubled.pivot_table(index="arch", columns="seed", values="test_accuracy").dropna()
    if both.shape[1] >= 2 and len(both) >= 3:
        tau = kendalltau(both.iloc[:, 0], both.iloc[:, 1]).statistic
        print(f"at twice the length, seed-to-seed Kendall tau over {len(both)} members: {tau:.3f} "
              f"(the ceiling of any agreement between single trainings)")
    print_noise(long_noise, f"{2 * epochs} epochs")
    means = main_rows.groupby(["role", "name"]).agg(test=("test_accuracy", "mean"), std=("test_accuracy", "std"),
                                                    n=("seed", "size"), latency_ms=("latency_ms", "first"))
    print(means.sort_values("test", ascending=False).to_string(float_format=lambda v: f"{v:.2f}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("train", "double", "latency", "report", "list"))
    parser.add_argument("--work", default="/tmp/ground_truth", help="nas retrain's out= (checkpoints, models)")
    parser.add_argument("--max-rows", type=int, default=None, help="stop after this many new trainings")
    parser.add_argument("--jobs", type=int, default=1, choices=(1, 2),
                        help="trainings at a time (2: one torch thread each)")
    args = parser.parse_args()
    recipe = load_recipe()
    nets = networks(recipe)
    epochs = recipe["recipe"]["epochs"]
    work = Path(args.work)
    if args.action == "list":
        for role, name, arch in nets:
            print(f"{role:<9}{name:<20}{cost(arch, 10).macs / 1e6:>8.0f} MMACs  {arch}")
    elif args.action == "train":
        jobs = [(role, name, arch, seed, epochs) for seed in recipe["seeds"] for role, name, arch in nets]
        train(recipe, jobs, work, args.max_rows, args.jobs)
    elif args.action == "double":
        chosen = [m for m in nets if m[0] == "member"]
        picks = np.linspace(0, len(chosen) - 1, recipe["doubling"]["count"]).round().astype(int)
        # each pick's training at the recipe's length (a row of the ground truth), then at twice it,
        # seed by seed (seed 0 for every pick first)
        jobs = [job for seed in recipe["doubling"]["seeds"] for i in picks
                for job in (("member", chosen[i][1], chosen[i][2], seed, epochs),
                            ("doubling", chosen[i][1], chosen[i][2], seed, 2 * epochs))]
        train(recipe, jobs, work, args.max_rows, args.jobs)
    elif args.action == "latency":
        latency(recipe)
    else:
        report(recipe)


if __name__ == "__main__":
    main()
