"""Latency prediction accuracy on this machine: profile a space, fit, then score held-out networks.

Profiles ``--space`` (cpu, ``--threads`` threads, batch 1) at all its resolutions and widths, or
reuses the profile already under ``--out``; measures ``--calibrate`` + ``--fit`` networks to
calibrate the table and train the learned predictor; then measures ``--n`` fresh seeded-random
networks ``--passes`` times (whole passes, alternating order, each network's runs interleaved with
seven others) and scores every predictor against the mean of the passes. The last row scores pass 2
against pass 1: the machine's own run-to-run noise, the floor under any predictor's error.

    python benchmarks/latency_predictor.py [--space mbconv] [--threads 1] [--batch 1] [--runtime torch]
        [--placement per-round] [--n 100] [--out results]

Targets (issue 22): pass 2 against pass 1 >= 95% within 10%; best predictor >= 90% within 10%,
Kendall tau >= 0.95, >= 10,000 predictions/s; profile and calibration within 6 minutes.
"""
from __future__ import annotations

import argparse
import time

from nas import latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runtime", default="torch", choices=("torch", "onnxruntime"))
    parser.add_argument("--placement", default="per-round", choices=("per-round", "fixed"))
    parser.add_argument("--out", default="results", help="profiles are cached under OUT/latency/")
    parser.add_argument("--calibrate", type=int, default=40)
    parser.add_argument("--fit", type=int, default=200)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    cfg = {**latency.LATENCY_DEFAULTS, "space": args.space, "threads": args.threads, "batch": args.batch,
           "runtime": args.runtime, "placement": args.placement, "out": args.out}
    session = latency.open_session(cfg)
    print(f"{session.store.fingerprint.describe()}\nprofile: {session.store.path}")
    start = time.perf_counter()
    report = latency.profile(session, args.calibrate)
    print(f"profile: {report.parts} parts ({report.measured_now} measured now), calibration "
          f"{report.calibration.describe()}, {time.perf_counter() - start:.0f} s (target <= 360)")
    start = time.perf_counter()
    predictor = latency.fit(session, args.fit)
    print(f"fit: learned predictor on {predictor.trained_on} networks, {time.perf_counter() - start:.0f} s")
    start = time.perf_counter()
    result = latency.evaluate(session, args.n, args.passes)
    print(f"eval: {result.n} held-out networks x {args.passes} passes, {time.perf_counter() - start:.0f} s, "
          f"measured {result.measured.min():.1f}-{result.measured.max():.1f} ms")
    print(f"{'predictor':<18}{'RMSE ms':>9}{'MAPE %':>8}{'<=5%':>7}{'<=10%':>7}{'tau':>7}{'pred/s':>10}")
    for a in result.accuracy + ([result.noise] if result.noise else []):
        rate = f"{a.predictions_per_s:,.0f}" if a.predictions_per_s else "-"
        print(f"{a.predictor:<18}{a.rmse_ms:>9.3f}{a.mape:>8.2f}{a.within_5:>7.0f}{a.within_10:>7.0f}"
              f"{a.kendall_tau:>7.3f}{rate:>10}")
    best = max(result.accuracy, key=lambda a: (a.within_10, a.kendall_tau))
    if result.noise:
        print(f"repeatability: pass 2 within 10% of pass 1 for {result.noise.within_10:.0f}% (target >= 95)")
    print(f"best: {best.predictor}: {best.within_10:.0f}% within 10% (target >= 90), tau {best.kendall_tau:.3f} "
          f"(target >= 0.95), {best.predictions_per_s:,.0f} predictions/s (target >= 10,000)")


if __name__ == "__main__":
    main()
