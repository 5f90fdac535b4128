"""Float32 against int8 on random members of a space: accuracy after the proxy recipe, and latency.

Trains ``--n`` seeded-random members of ``--space`` with the proxy recipe on digits (the default
evaluator settings), scores each before and after post-training int8 quantization
(``evaluators.quantize``: PyTorch FX, x86 backend, calibrated on training batches), then measures
every member in float32 and int8 with the latency protocol's defaults (1 thread, batch 1, runs
interleaved). Prints one row per member, the median accuracy drop, the median int8/float32 latency
ratio, and Kendall's tau between the float32 and int8 rankings of accuracy and of latency.

``--flows`` first compares the two quantization flows on the same members' untrained networks:
PyTorch FX (x86) against ONNX Runtime's ``quantize_static`` (QDQ, uint8 activations, per-channel
int8 weights), each against its own float32, median of ``--runs`` timed calls after 3 warm-up calls.
``--full-range`` instead trains each member twice, back to back, and compares int8 accuracy with
PyTorch's default 7-bit activation range against 8-bit (``reduce_range=False``).

    python benchmarks/int8.py [--space mbconv] [--n 20] [--seed 0] [--flows] [--runs 15] [--full-range]
"""
from __future__ import annotations

import argparse
import io
import random
import statistics
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import torch
from scipy.stats import kendalltau

from evaluators.latency import LatencySettings, Measurer
from evaluators.proxy import ProxyEvaluator
from evaluators.quantize import quantize_int8
from search_spaces import load_space
from search_spaces.builder import build_model


def _median_ms(fn, runs: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        fn()
        times.append((time.perf_counter() - begin) * 1e3)
    return statistics.median(times)


def _ort_pair(model: torch.nn.Module, x: torch.Tensor, calibration: list[torch.Tensor], folder: Path):
    """(float32 session, int8 QDQ session) of ONNX Runtime for ``model``."""
    import onnxruntime as ort  # noqa: PLC0415 - only with --flows (the onnx extra)
    from onnxruntime.quantization import (  # noqa: PLC0415 - the same
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{"x": c.numpy()} for c in calibration])

        def get_next(self):
            return next(self.feeds, None)

    buffer = io.BytesIO()
    torch.onnx.export(model, (x,), buffer, input_names=["x"], dynamo=False)
    plain, prepared, quantized = folder / "m.onnx", folder / "p.onnx", folder / "q.onnx"
    plain.write_bytes(buffer.getvalue())
    quant_pre_process(str(plain), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(quantized), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    return (ort.InferenceSession(str(plain), options, providers=["CPUExecutionProvider"]),
            ort.InferenceSession(str(quantized), options, providers=["CPUExecutionProvider"]))


def compare_flows(archs: list, runs: int) -> None:
    print("\nflows (untrained members, 1 thread, batch 1; each int8 against its own float32):")
    print(f"{'#':>3} {'px':>4} {'torch fp32':>11} {'FX int8':>9} {'ratio':>6} "
          f"{'ORT fp32':>9} {'ORT int8':>9} {'ratio':>6}")
    fx, ort_ratios = [], []
    with tempfile.TemporaryDirectory() as folder:
        for i, arch in enumerate(archs):
            r = arch.resolution
            model = build_model(arch, 10).eval()
            x, calibration = torch.randn(1, 3, r, r), [torch.randn(1, 3, r, r) for _ in range(4)]
            quantized = quantize_int8(model, calibration)
            with torch.inference_mode():
                t32, t8 = _median_ms(partial(model, x), runs), _median_ms(partial(quantized, x), runs)
            s32, s8 = _ort_pair(model, x, calibration, Path(folder))
            feed = {"x": x.numpy()}
            o32, o8 = _median_ms(partial(s32.run, None, feed), runs), _median_ms(partial(s8.run, None, feed), runs)
            fx.append(t8 / t32)
            ort_ratios.append(o8 / o32)
            print(f"{i:>3} {r:>4} {t32:>9.2f}ms {t8:>7.2f}ms {t8 / t32:>6.2f} "
                  f"{o32:>7.2f}ms {o8:>7.2f}ms {o8 / o32:>6.2f}", flush=True)
    print(f"median int8/float32: torch FX {statistics.median(fx):.2f}, "
          f"ONNX Runtime QDQ {statistics.median(ort_ratios):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbconv")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flows", action="store_true", help="first compare torch FX and ONNX Runtime int8")
    parser.add_argument("--runs", type=int, default=15, help="timed calls per network in --flows")
    parser.add_argument("--full-range", action="store_true",
                        help="only compare 7-bit and 8-bit activation ranges (reduce_range) on the "
                             "members, each trained the same way twice")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    space, rng = load_space(args.space), random.Random(args.seed)
    archs, seen = [], set()
    while len(archs) < args.n:
        arch = space.sample(rng)
        if str(arch) not in seen:
            seen.add(str(arch))
            archs.append(arch)
    if args.flows:
        compare_flows(archs, args.runs)
    if args.full_range:
        compare_ranges(archs)
        return

    evaluator = ProxyEvaluator(quantize="int8", threads=1)
    evaluator.check_space(space)
    start = time.perf_counter()
    scores = [evaluator(arch) for arch in archs]
    train_s = time.perf_counter() - start
    latency = {}
    for dtype in ("float32", "int8"):
        measured = Measurer(LatencySettings(dtype=dtype)).measure_many(
            [(build_model(arch, 10), (3, arch.resolution, arch.resolution)) for arch in archs])
        latency[dtype] = [m.latency_ms for m in measured]
    print(f"\n{args.n} {args.space} members (seed {args.seed}), digits, proxy recipe, "
          f"{train_s:.0f} s to train and quantize")
    print(f"{'#':>3} {'acc fp32':>9} {'acc int8':>9} {'drop':>6} {'ms fp32':>8} {'ms int8':>8} {'ratio':>6}  arch")
    for i, (arch, s) in enumerate(zip(archs, scores)):
        a32, a8, l32, l8 = s["accuracy"], s["accuracy_int8"], latency["float32"][i], latency["int8"][i]
        print(f"{i:>3} {a32:>9.2f} {a8:>9.2f} {a32 - a8:>6.2f} {l32:>8.2f} {l8:>8.2f} {l8 / l32:>6.2f}  {arch}")
    drops = [s["accuracy"] - s["accuracy_int8"] for s in scores]
    ratios = [b / a for a, b in zip(latency["float32"], latency["int8"])]
    tau_acc = kendalltau([s["accuracy"] for s in scores], [s["accuracy_int8"] for s in scores]).statistic
    tau_lat = kendalltau(latency["float32"], latency["int8"]).statistic
    quantize_s = statistics.median(s["quantize_s"] for s in scores)
    train_one = statistics.median(s["train_s"] for s in scores)
    print(f"median accuracy drop {statistics.median(drops):.2f} points (mean {statistics.mean(drops):.2f} "
          f"± {statistics.stdev(drops):.2f}, {args.n} members, one seed each)")
    print(f"median int8/float32 latency {statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f})")
    print(f"Kendall tau float32 vs int8: accuracy {tau_acc:.3f}, latency {tau_lat:.3f}")
    print(f"per member: training {train_one:.1f} s, quantizing and scoring int8 {quantize_s:.1f} s (medians)")


def compare_ranges(archs: list) -> None:
    """Each member trained and quantized twice, back to back: 7-bit (PyTorch's default) and 8-bit
    activation ranges; the same seeded training gives the same float model both times."""
    seven = ProxyEvaluator(quantize="int8", threads=1)
    eight = ProxyEvaluator(quantize="int8", threads=1, reduce_range=False)
    for evaluator in (seven, eight):  # each member trains at its resolution scaled as in a run
        evaluator.check_space(load_space(archs[0].space))
    rows = [(seven(arch), eight(arch)) for arch in archs]
    print(f"\n{'#':>3} {'fp32':>6} {'7-bit':>6} {'8-bit':>6}  (accuracy; fp32 of the 8-bit run if it differs)")
    for i, (s, f) in enumerate(rows):
        same = "" if f["accuracy"] == s["accuracy"] else f"  fp32 {f['accuracy']:.2f}"
        print(f"{i:>3} {s['accuracy']:>6.2f} {s['accuracy_int8']:>6.2f} {f['accuracy_int8']:>6.2f}{same}")
    for label, k in (("7-bit", 0), ("8-bit", 1)):
        drops = [r[k]["accuracy"] - r[k]["accuracy_int8"] for r in rows]
        tau = kendalltau([r[k]["accuracy"] for r in rows], [r[k]["accuracy_int8"] for r in rows]).statistic
        print(f"{label}: median drop {statistics.median(drops):.2f} points (mean {statistics.mean(drops):.2f} "
              f"± {statistics.stdev(drops):.2f}), Kendall tau float32 vs int8 accuracy {tau:.3f}")
    gain = [f["accuracy_int8"] - s["accuracy_int8"] for s, f in rows]
    print(f"8-bit minus 7-bit int8 accuracy: median {statistics.median(gain):+.2f}, mean {statistics.mean(gain):+.2f} "
          f"± {statistics.stdev(gain):.2f}; better on {sum(g > 0 for g in gain)} of {len(gain)}, "
          f"worse on {sum(g < 0 for g in gain)}")


if __name__ == "__main__":
    main()
