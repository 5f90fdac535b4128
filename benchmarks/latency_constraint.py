"""Does a latency-constrained search keep its promise? The share of accepted candidates that break it.

Runs ``nas run space=mbconv evaluator=cost max_latency_ms=BOUND budget=BUDGET`` (``--seeds`` runs,
seeds 0..N-1) with the profile for this machine's settings under ``--out`` (profiled first, with
``--calibrate`` networks, when there is none), so each proposal's latency is predicted (latency=auto)
and proposals over the bound are never evaluated. Then every accepted candidate is measured whole,
with the profile's own protocol and reference, and the benchmark prints how many measure above
``BOUND x (1 + --tolerance)``.

    python benchmarks/latency_constraint.py [--bound 20] [--budget 50] [--seeds 3] [--out results]

Target (issue 22): at most 5% of accepted candidates above 20 ms x 1.1.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from nas import search
from nas.profile import latency
from search_spaces.arch import Architecture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--bound", type=float, default=20.0)
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--strategy", default="evolution")
    parser.add_argument("--out", default="results", help="profiles are found (or made) under OUT/latency/")
    parser.add_argument("--calibrate", type=int, default=40)
    args = parser.parse_args()
    session = latency.open_session({**latency.LATENCY_DEFAULTS, "space": args.space, "out": args.out})
    if not session.store.parts():
        start = time.perf_counter()
        report = latency.profile(session, args.calibrate)
        print(f"profiled: {report.parts} parts, {report.calibration.describe()}, "
              f"{time.perf_counter() - start:.0f} s")
    print(f"{session.store.fingerprint.describe()}\nprofile: {session.store.path}")
    limit = args.bound * (1 + args.tolerance)
    predicted_all, measured_all = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            result = search(space=args.space, strategy=args.strategy, evaluator="cost", budget=args.budget,
                            seed=seed, out=tmp, max_latency_ms=args.bound, select="none", baselines="none",
                            latency={"name": "auto", "profile": str(session.store.path)})
            ok = result.trials[result.trials["status"] == "ok"].drop_duplicates("arch")
            archs = [Architecture.parse(a) for a in ok["arch"]]
            measured = []
            for start in range(0, len(archs), latency.NETWORK_CHUNK):
                chunk = archs[start:start + latency.NETWORK_CHUNK]
                measured += [m.latency_ms for m in session.measurer.networks(chunk, session.num_classes)]
            predicted = ok["latency_ms"].astype(float).to_numpy()
            measured = np.asarray(measured)
            over = int(np.sum(measured > limit))
            source = ",".join(sorted(set(ok["latency_source"])))
            print(f"seed {seed}: {len(archs)} accepted ({source}), predicted {predicted.min():.1f}-"
                  f"{predicted.max():.1f} ms, measured {measured.min():.1f}-{measured.max():.1f} ms, "
                  f"{over} above {limit:.1f} ms ({100 * over / len(archs):.1f}%)")
            predicted_all.append(predicted)
            measured_all.append(measured)
    predicted, measured = np.concatenate(predicted_all), np.concatenate(measured_all)
    rel = np.abs(predicted - measured) / measured
    over = measured > limit
    print(f"all seeds: {over.sum()} of {len(measured)} accepted candidates measure above {limit:.1f} ms: "
          f"{100 * over.mean():.1f}% (target <= 5); above {args.bound:.1f} ms: "
          f"{100 * np.mean(measured > args.bound):.1f}%; prediction MAPE on them {100 * rel.mean():.1f}%, "
          f"{100 * np.mean(rel <= 0.10):.0f}% within 10%")


if __name__ == "__main__":
    main()
