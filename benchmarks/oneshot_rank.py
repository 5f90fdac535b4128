"""One-shot ranking: does the supernet rank members as stand-alone proxy training does, and how
much faster is it per candidate?

Trains an `ElasticSupernet` of ``mbconv`` on digits at 32 px (the sandwich rule with in-place
distillation and 2 random members per step, 11 epochs, as ``nas supernet train`` does by default;
``--sampling fair --random-subnets 4 --epochs 9`` for kind-balanced sampling, ``uniform`` for SPOS),
then scores the same seeded-random members twice: with the supernet evaluator
(inherited weights, BatchNorm recalibrated) and with the proxy evaluator (each member trained from
scratch, the default recipe at the same 32 px). Prints Kendall's tau between the two rankings and
the seconds per candidate of each (targets: tau >= 0.5, scoring >= 50x cheaper per candidate than
the default proxy, the supernet's training <= 30 minutes on a 2-core CPU).

The 3-epoch proxy ranks members by how fast they learn as much as by how good they are;
``--proxy-epochs 10`` trains them longer as a second reference (``--proxy-jobs 2`` runs two
members at a time, one thread each).

``--truth fashion`` ranks against the Fashion-MNIST ground truth instead (the members of
benchmarks/data/fashion_ground_truth.csv with every seed, or ``--min-seeds 1`` for a first look, by
mean test accuracy): the supernet trains on the ground truth's subset, the speed ratio is against the
default proxy on the same data, and a table says which member features the supernet's scores follow
more than the truth does (benchmarks/arch_features.py).

    python benchmarks/oneshot_rank.py [--truth proxy|fashion] [--min-seeds N] [--epochs 11]
        [--sampling sandwich|fair|uniform] [--random-subnets 2]
        [--archs 30] [--proxy-cache FILE] [--proxy-seeds 1] [--proxy-epochs 3] [--proxy-jobs 1] [--ckpt SUPERNET.pt]
        [--supernet-seeds 1] [--threads 2] [--out DIR] [--set KEY=VALUE ...] [--score KEY=VALUE ...] [--time-members 3]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import inspect
import json
import math
import multiprocessing
import random
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch
from arch_features import feature_table, print_feature_table
from fidelity import FASHION, top_recall, truth
from omegaconf import OmegaConf
from scipy.stats import kendalltau, spearmanr

from evaluators.proxy import ProxyEvaluator
from evaluators.supernet import SupernetEvaluator
from evaluators.supernet_config import SupernetConfig
from nas.config import parse_overrides
from nas.oneshot.supernet import train_supernet
from search_spaces import load_space

DIGITS = {"name": "digits"}
SCORING = {name: p.default for name, p in inspect.signature(SupernetEvaluator).parameters.items()
           if name in ("calib_batches", "finetune_steps", "finetune_lr")}  # --score's keys and defaults


def _proxy(data: dict, **options) -> ProxyEvaluator:
    """The proxy on digits at the supernet's 32 px (the first reference), or the default proxy on
    the ground truth's Fashion-MNIST subset."""
    if data["name"] == "fashion_mnist":
        return ProxyEvaluator(data=data, **options)
    return ProxyEvaluator(resolution=32, **options)


def _proxy_one(arch: str, seed: int, epochs: int, threads: int) -> tuple[float, float]:
    torch.set_num_threads(threads)
    proxy = _proxy(DIGITS, threads=threads, seed=seed, epochs=epochs)
    t = time.perf_counter()
    return proxy(arch)["accuracy"], time.perf_counter() - t


def proxy_scores(archs, seed: int, epochs: int, threads: int, jobs: int, cache: dict, cache_path: str | None,
                 space) -> list[tuple[float, float]]:
    """(accuracy, seconds) of stand-alone proxy training per arch with ``seed``, through the cache."""
    ProxyEvaluator(resolution=32, seed=seed, epochs=epochs).check_space(space)
    # seed 0 at 3 epochs keeps the first format's keys
    prefix = ("" if seed == 0 else f"seed{seed}:") if epochs == 3 else f"e{epochs}:seed{seed}:"
    keys = [f"{prefix}{arch}" for arch in archs]
    missing = [(k, str(a)) for k, a in zip(keys, archs) if k not in cache]
    # spawned, not forked: a fork after this process has run torch (the supernet's training)
    # hangs the child in OpenMP
    with concurrent.futures.ProcessPoolExecutor(max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_proxy_one, arch, seed, epochs, 1 if jobs > 1 else threads): key
                   for key, arch in missing}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            key = futures[future]
            cache[key] = list(future.result())
            if cache_path:
                Path(cache_path).write_text(json.dumps(cache, indent=1))
            print(f"  proxy seed {seed}, {epochs} epochs: {done}/{len(missing)} {cache[key][0]:5.1f}% "
                  f"({cache[key][1]:.1f} s)", flush=True)
    return [tuple(cache[k]) for k in keys]


def side_by_side(archs, oneshot: SupernetEvaluator, seed: int, epochs: int,
                 threads: int, data: dict) -> list[tuple[float, float]]:
    """(supernet seconds, proxy seconds) per arch, each pair measured back to back, so that both
    sides of the speed ratio see the same machine load (cached proxy times may not have)."""
    proxy = _proxy(data, threads=threads, seed=seed, epochs=epochs)
    pairs = []
    for arch in archs:
        t = time.perf_counter()
        oneshot(arch)
        one = time.perf_counter() - t
        t = time.perf_counter()
        proxy(arch)
        pairs.append((one, time.perf_counter() - t))
        print(f"  timing {len(pairs)}/{len(archs)}: supernet {one:.2f} s, proxy {pairs[-1][1]:.1f} s", flush=True)
    return pairs


def train_one(settings: dict, seed: int, args) -> tuple[str, float]:
    """Train the supernet with ``seed``; its checkpoint and the seconds it took."""
    out = args.out or tempfile.mkdtemp(prefix="oneshot-")
    start = time.perf_counter()
    data = FASHION if args.truth == "fashion" else DIGITS
    ckpt = train_supernet(
        "mbconv", data, out, f"bench-{data['name']}-seed{seed}", resume=False, threads=args.threads,
        **{**settings, "seed": seed},
        on_epoch=lambda s: print(f"  epoch {s.epoch}: loss {s.loss:.3f}, largest {s.largest:.1f}%, "
                                 f"smallest {s.smallest:.1f}% ({s.seconds:.0f} s)", flush=True))
    train_s = time.perf_counter() - start
    print(f"supernet ({args.sampling}, seed {seed}): {args.epochs} epochs in {train_s / 60:.1f} min "
          f"(target <= 30)", flush=True)
    return str(ckpt), train_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth", choices=("proxy", "fashion"), default="proxy",
                        help="rank against stand-alone proxy training on digits, or the Fashion-MNIST ground truth")
    parser.add_argument("--min-seeds", type=int, default=None,
                        help="--truth fashion: members with at least this many seeds count (a first look while "
                             "the ground truth is trained; default: every seed)")
    parser.add_argument("--epochs", type=int, default=11)
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--random-subnets", type=int, default=2)
    parser.add_argument("--sampling", default="sandwich", choices=("sandwich", "fair", "uniform"))
    parser.add_argument("--proxy-cache", default=None,
                        help="JSON file of proxy results by arch (read if present, then written): the proxy "
                             "scores of a seeded arch do not change, so a second run can skip them")
    parser.add_argument("--proxy-seeds", type=int, default=1,
                        help="train every member with proxy seeds 0..N-1; with N >= 2 the proxy's own "
                             "repeatability (tau between seed 0 and the others) is printed as the ceiling")
    parser.add_argument("--proxy-epochs", type=int, default=3, help="epochs of stand-alone training per member")
    parser.add_argument("--proxy-jobs", type=int, default=1,
                        help="members trained at a time (one thread each when > 1)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="another supernet training setting, as nas supernet train takes it (distill=false)")
    parser.add_argument("--score", action="append", default=[], metavar="KEY=VALUE",
                        help="a supernet evaluator setting: calib_batches=, finetune_steps=, finetune_lr=")
    parser.add_argument("--time-members", type=int, default=3,
                        help="the speed ratio comes from this many members trained with the proxy again, "
                             "uncached, each right beside its supernet scoring in this run")
    parser.add_argument("--ckpt", default=None, help="score with this trained supernet instead of training one")
    parser.add_argument("--supernet-seeds", type=int, default=1,
                        help="train N supernets with seeds SEED..SEED+N-1 (same members, same proxy scores) "
                             "and print each one's tau and their mean +- std")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="keep the supernets here (default: a temporary folder)")
    args = parser.parse_args()
    if args.ckpt and args.supernet_seeds != 1:
        parser.error("--ckpt scores one trained supernet; leave --supernet-seeds at 1")
    if args.truth == "fashion" and args.proxy_seeds != 1:
        parser.error("--proxy-seeds: with --truth fashion the reference is the ground truth (fidelity.py has the "
                     "proxy's own rows)")
    torch.set_num_threads(args.threads)
    # --set comes last, so it may change any of these (resolution=28: the ground truth's pixels)
    base = {**asdict(SupernetConfig()), "epochs": args.epochs, "random_subnets": args.random_subnets,
            "sampling": args.sampling, "resolution": 32}
    settings = OmegaConf.to_container(parse_overrides(args.set, base))

    space = load_space("mbconv")
    scoring = OmegaConf.to_container(parse_overrides(args.score, SCORING))
    data = FASHION if args.truth == "fashion" else DIGITS
    if args.truth == "fashion":
        ref = truth(args.min_seeds)
        ref = ref[ref["role"] == "member"]
        if len(ref) < 8:
            parser.error(f"--truth fashion: only {len(ref)} members of the ground truth have "
                         f"{'every seed' if args.min_seeds is None else f'{args.min_seeds} seed(s)'} (need 8)")
        archs, full = list(ref.index), list(ref["test"])
        proxies = [[(acc, math.nan) for acc in full]]
        reference = "the ground truth's mean test accuracy"
    else:
        rng = random.Random(args.seed)
        archs = []
        while len(archs) < args.archs:
            arch = space.canonical(space.sample(rng))
            if arch not in archs:
                archs.append(arch)
        cache = {}
        if args.proxy_cache and Path(args.proxy_cache).is_file():
            cache = json.loads(Path(args.proxy_cache).read_text())
        proxies = [proxy_scores(archs, s, args.proxy_epochs, args.threads, args.proxy_jobs, cache, args.proxy_cache,
                                space) for s in range(args.proxy_seeds)]
        full = [acc for acc, _ in proxies[0]]
        reference = f"proxy: {args.proxy_epochs} epochs"
    taus, train_times = [], []
    for seed in range(args.seed, args.seed + args.supernet_seeds):
        ckpt, train_s = (args.ckpt, None) if args.ckpt else train_one(settings, seed, args)
        oneshot = SupernetEvaluator(ckpt, data=data, threads=args.threads, **scoring)
        one, seconds = [], []
        for i, arch in enumerate(archs):
            t = time.perf_counter()
            one.append(oneshot(arch)["accuracy"])
            seconds.append(time.perf_counter() - t)
            b, t2 = proxies[0][i]
            print(f"  {i + 1:>2}/{len(archs)} supernet {one[-1]:5.1f}% ({seconds[-1]:4.2f} s)  "
                  f"reference {b:5.2f}% ({t2:5.1f} s)", flush=True)
        tau = kendalltau(one, full).statistic
        rho = spearmanr(one, full).statistic
        taus.append(tau)
        recall = top_recall(pd.Series(one), pd.Series(full))
        print(f"supernet seed {seed}: Kendall tau {tau:.3f} (target >= 0.5), Spearman rho {rho:.3f}, top-10% "
              f"recall {recall:.2f}, over {len(archs)} architectures ({reference}); scores "
              f"{min(one):.1f}-{max(one):.1f}%")
        print("  which member features the scores follow (Spearman rho):")
        print_feature_table(feature_table(archs, one, full), indent="    ")
        for s in range(1, args.proxy_seeds):
            other = [acc for acc, _ in proxies[s]]
            print(f"  ceiling: proxy seed {s} against seed 0: tau {kendalltau(other, full).statistic:.3f}, "
                  f"Spearman {spearmanr(other, full).statistic:.3f}; supernet against seed {s}: "
                  f"tau {kendalltau(one, other).statistic:.3f}")
        if args.proxy_seeds > 1:
            mean = [statistics.mean(p[i][0] for p in proxies) for i in range(len(archs))]
            print(f"  supernet against the mean of {args.proxy_seeds} proxy seeds: "
                  f"tau {kendalltau(one, mean).statistic:.3f}")
        s1, s2 = statistics.mean(seconds), statistics.mean(t for _, t in proxies[0])
        proxy_note = f", proxy {s2:.1f} ({args.proxy_epochs} epochs, as trained above or cached)"
        print(f"seconds per candidate: supernet {s1:.2f} (mean of {len(archs)}){'' if math.isnan(s2) else proxy_note}")
        if args.time_members > 0 and seed == args.seed:
            pairs = side_by_side(archs[:args.time_members], oneshot, args.seed, args.proxy_epochs, args.threads, data)
            one_s, proxy_s = statistics.mean(a for a, _ in pairs), statistics.mean(b for _, b in pairs)
            s2 = s2 if not math.isnan(s2) else proxy_s
            print(f"side by side on {len(pairs)} members, {args.threads} threads: supernet {one_s:.2f} s, "
                  f"proxy {proxy_s:.1f} s: {proxy_s / one_s:.1f}x faster (target >= 50x)")
        if train_s is not None:
            train_times.append(train_s)
            worth = "" if math.isnan(s2) else f", worth {train_s / s2:.0f} proxy evaluations"
            print(f"supernet training: {train_s:.0f} s{worth}")
    if len(taus) > 1:
        print(f"over {len(taus)} supernet seeds: Kendall tau {statistics.mean(taus):.3f} +- "
              f"{statistics.stdev(taus):.3f} (each: {', '.join(f'{t:.3f}' for t in taus)}); training "
              f"{statistics.mean(train_times) / 60:.1f} +- {statistics.stdev(train_times) / 60:.1f} min")


if __name__ == "__main__":
    main()
