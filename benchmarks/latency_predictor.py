"""Latency prediction accuracy on this machine: profile a space, fit, then score held-out networks.

Profiles ``--space`` (cpu, ``--threads`` threads, batch 1) at all its resolutions and widths, or
reuses the profile already under ``--out``; measures ``--calibrate`` + ``--fit`` networks to
calibrate the table and train the learned predictor; then measures ``--n`` fresh seeded-random
networks ``--passes`` times (whole passes, alternating order, each network's runs interleaved with
seven others) and scores every predictor against the mean of the passes. The last row scores pass 2
against pass 1: the machine's own run-to-run noise, the floor under any predictor's error.

    python benchmarks/latency_predictor.py [--space mbconv] [--threads 1] [--batch 1] [--runtime torch]
        [--placement per-round] [--dtype float32|int8] [--n 100] [--out results]
        [--also threads=2 batch=8 runtime=onnxruntime]

Targets (issue 22): pass 2 against pass 1 >= 95% within 10%; best predictor >= 90% within 10%,
Kendall tau >= 0.95, >= 10,000 predictions/s; profile and calibration within 6 minutes.
"""
from __future__ import annotations

import argparse
import time

from nas.profile import latency


def measure_setting(args: argparse.Namespace, overrides: dict[str, object]) -> dict[str, object]:
    """Profile, fit and evaluate one setting; print its table; return its summary row."""
    cfg = {**latency.LATENCY_DEFAULTS, "space": args.space, "threads": args.threads, "batch": args.batch,
           "runtime": args.runtime, "placement": args.placement, "out": args.out, "dtype": args.dtype,
           **overrides}
    session = latency.open_session(cfg)
    print(f"\n{session.store.fingerprint.describe()}\nprofile: {session.store.path}")
    start = time.perf_counter()
    report = latency.profile(session, args.calibrate)
    profile_s = time.perf_counter() - start
    print(f"profile: {report.parts} parts ({report.measured_now} measured now), calibration "
          f"{report.calibration.describe()}, {profile_s:.0f} s (target <= 360)")
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
    label = " ".join(f"{k}={v}" for k, v in overrides.items()) or "as given"
    return {"setting": label, "best": best, "noise": result.noise, "profile_s": profile_s,
            "range": (result.measured.min(), result.measured.max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=("float32", "int8"))
    parser.add_argument("--runtime", default="torch", choices=("torch", "onnxruntime"))
    parser.add_argument("--placement", default="per-round", choices=("per-round", "fixed"))
    parser.add_argument("--out", default="results", help="profiles are cached under OUT/latency/")
    parser.add_argument("--calibrate", type=int, default=40)
    parser.add_argument("--fit", type=int, default=200)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--also", nargs="*", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="more settings measured the same way after the first, e.g. threads=2 batch=8 "
                             "runtime=onnxruntime; a summary row each at the end")
    args = parser.parse_args()
    rows = [measure_setting(args, {})]
    for spec in args.also:
        overrides: dict[str, object] = {}
        for item in spec.split(","):
            key, _, value = item.partition("=")
            overrides[key] = int(value) if value.isdigit() else value
        rows.append(measure_setting(args, overrides))
    if len(rows) > 1:
        print(f"\n{'setting':<22}{'ms':>12}{'profile s':>11}{'best':>10}{'<=10%':>7}{'tau':>7}{'pred/s':>10}"
              f"{'passes <=10%':>14}")
        for row in rows:
            best, noise = row["best"], row["noise"]
            low, high = row["range"]
            print(f"{row['setting']:<22}{f'{low:.1f}-{high:.1f}':>12}{row['profile_s']:>11.0f}{best.predictor:>10}"
                  f"{best.within_10:>7.0f}{best.kendall_tau:>7.3f}{best.predictions_per_s:>10,.0f}"
                  f"{(f'{noise.within_10:.0f}' if noise else '-'):>14}")


if __name__ == "__main__":
    main()
