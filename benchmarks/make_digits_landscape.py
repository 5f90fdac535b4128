"""Train every member of a small space on digits with two seeds: a tabular landscape for defaults_check.

Each member of ``benchmarks/data/digits_small.yaml`` is trained by the proxy evaluator for repeat 0
and repeat 1 (two training seeds) and stored in NAS-Bench-Macro's format, keyed by the space's
canonical key, with a ``_meta`` entry (command, date, settings) that loaders skip. The file is
rewritten atomically after every member, so an interrupted job resumes where it stopped.

    nohup nice -n 10 python benchmarks/make_digits_landscape.py > digits_landscape.log 2>&1 &
"""
from __future__ import annotations

import argparse
import itertools
import json
import shlex
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evaluators.proxy import ProxyEvaluator
from nas.run.files import atomic_write_text
from search_spaces import load_space

HERE = Path(__file__).resolve().parent
DEFAULT_SPACE = HERE / "data" / "digits_small.yaml"
DEFAULT_OUT = HERE / "data" / "digits_landscape.json"


def members(space: Any) -> dict[str, Any]:
    """Every member of ``space`` by canonical key (twins collapse into one)."""
    dims = space.choices()
    out: dict[str, Any] = {}
    for values in itertools.product(*dims.values()):
        arch = space.canonical(space.from_choices(dict(zip(dims, values))))
        out.setdefault(space.key(arch), arch)
    return out


def load_partial(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Rows already trained with the same settings (empty when the file is absent)."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    old = data.get("_meta", {}).get("settings")
    if old != settings:
        sys.exit(f"{path} was made with other settings ({old}); move it away or pass the same flags")
    return {k: v for k, v in data.items() if k != "_meta"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=str(DEFAULT_SPACE))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2, help="training seeds per member")
    args = parser.parse_args()

    space = load_space(args.space)
    settings = {"space": Path(args.space).name, "epochs": args.epochs, "resolution": args.resolution,
                "data": "digits", "threads": 1, "seed": 0}
    evaluator = ProxyEvaluator(data={"name": "digits"}, epochs=args.epochs, resolution=args.resolution,
                               threads=1, seed=0)
    evaluator.check_space(space)
    todo = members(space)
    out = Path(args.out)
    rows = load_partial(out, settings)
    meta = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "members": len(todo),
        "repeats": args.repeats,
    }
    print(f"{space.name}: {len(todo)} members x {args.repeats} seeds, {len(rows)} already done", flush=True)
    start = time.perf_counter()
    for i, (key, arch) in enumerate(todo.items(), 1):
        runs = list(rows.get(key, {}).get("test_acc", []))
        if len(runs) >= args.repeats:
            continue
        for repeat in range(len(runs), args.repeats):  # extends a row when --repeats grows
            runs.append(float(evaluator(arch, repeat=repeat)["accuracy"]))
        rows[key] = {"test_acc": runs, "mean_acc": statistics.fmean(runs)}
        meta["complete"] = all(len(rows.get(k, {}).get("test_acc", [])) >= args.repeats for k in todo)
        meta["written"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        atomic_write_text(out, json.dumps({"_meta": meta, **rows}, indent=1) + "\n")
        elapsed = time.perf_counter() - start
        print(f"{i:4d}/{len(todo)} {elapsed:7.0f} s  {runs}  {key}", flush=True)
    print(f"done: {len(rows)} members in {out} ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
