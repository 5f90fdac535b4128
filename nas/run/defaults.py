"""Defaults of a search run: the one place both ``nas run`` and ``nas.search`` start from."""
from __future__ import annotations

import copy
from typing import Any

from evaluators.base import DEFAULT_DATA
from nas.select.selection import SELECT_DEFAULTS

# Group keys: ``strategy=evolution`` names the group's member, ``strategy.population=50`` sets one
# of its options (checked against that member's own options; typed by their defaults).
GROUPS = ("strategy", "evaluator", "data", "latency", "select")

RUN_DEFAULTS: dict[str, Any] = {
    "space": "mbconv",  # shipped name or YAML path
    "strategy": {"name": "evolution"},
    "evaluator": {"name": "proxy"},
    "data": dict(DEFAULT_DATA),  # passed to evaluators that train; free-form options
    "budget": 20,  # unique evaluations (failed ones count); null = only budget_hours
    "budget_hours": None,
    "seed": 0,
    "objectives": ["accuracy"],  # metric[:max|min]; first = what "best" means
    "constraints": {},  # metric -> maximum, e.g. constraints.latency_ms=20
    "max_params": None,
    "max_macs": None,
    # A number of ms, none, or baseline: the latency of the first baseline (efficientnet_b0 for
    # mbconv) timed under the run's latency settings when it starts, so the winner is compared with
    # the baseline at the baseline's speed (nas/run/latencybound.py). As the default it binds only an
    # evaluator that trains (timing then adds little) with a baseline, networks to time and no
    # latency objective; else the run is unbounded. With quantize=int8 it bounds latency_int8_ms.
    "max_latency_ms": "baseline",
    # int8: every candidate is also quantized after training (post-training static, x86 int8
    # kernels; evaluators/quantize.py) and scored and timed again: accuracy_int8, latency_int8_ms.
    "quantize": "none",
    # Latency of each candidate (latency_ms, latency_source): auto = the learned predictor or table
    # of this machine's profile when there is one, else measured when an objective or constraint
    # needs it or the evaluator trains (timing then adds little), else none. Keys: the measurement
    # settings of ``nas latency`` (fewer timed runs than a profile's: a run times every candidate).
    "latency": {
        "name": "auto", "device": "cpu", "threads": 1, "batch": 1, "dtype": "float32", "channels_last": True,
        "runtime": "torch", "warmup": 3, "repeats": 10, "rounds": 10, "placement": "per-round", "reference": "none", "statistic": "median", "profile": None, "num_classes": None,
        "target_ms": None, "w": -0.07,
    },
    # How the winner is confirmed against the evaluator's noise (nas/select/selection.py): race keeps the
    # top candidates at `repeats` evaluations during the search; halving is a final stage over the
    # top k; none: the single best evaluation wins.
    "select": dict(SELECT_DEFAULTS),
    # Hand-designed references evaluated like the finalists, outside the budget: auto (the space's
    # own, e.g. efficientnet_b0 for mbconv), none, or a list of reference names / arch strings.
    "baselines": "auto",
    "pruner": "none",
    "prescreen": None,  # a zero-cost proxy: evaluate only the best-scoring share of proposals
    "prescreen_keep": 0.25,  # none | median | asha: stop evaluations that report poor epochs early
    "backend": "local",
    # backend=ray: where and how wide (see nas/backends/ray_tune.py).
    "ray": {"address": None, "workers": None, "cpus_per_trial": 1, "gpus_per_trial": 0, "max_failures": 2},
    # The largest network the run agrees to build (search_spaces/limits.py): checked on the space's
    # largest member and on the baselines before anything is written.
    "limits": {"max_params": 1e9, "max_activation_mb": 8192.0},
    "out": "results",
    "run_id": None,  # default: <time>-<space>-<strategy>
    "resume": False,
    "progress": True,
}

# Keys that may change when a run is resumed (extend the budget, move the display...).
RESUMABLE = frozenset({"budget", "budget_hours", "resume", "run_id", "out", "progress", "backend", "ray"})
# Groups whose options are free-form (validated by whoever consumes them).
OPEN_GROUPS = ("data", "constraints")

HELP = """\
Search a space with a strategy, scoring each architecture with an evaluator.

Every setting is key=value (YAML typed: 5 is an int, true a bool, [a,b] a list):
  space=mbconv               shipped space name (nas spaces) or a YAML file
  strategy=evolution         random | evolution | optuna | darts | nni.<Name> (NNI's RegularizedEvolution,
                             TPE, PolicyBasedRL, Random, GridSearch); nas strategies lists the options
  <option>=V                 an option of the chosen strategy: population=50, sampler=tpe
                             (also written strategy.<option>=V)
  evaluator=proxy            proxy | supernet | zero_cost | nasbench_macro | cost; evaluator.<option>=V
                             (or <evaluator>.<option>=V) sets one of its options, e.g.
                             evaluator.path=nas-bench-macro_cifar10.json, supernet.ckpt=PATH
  data=digits                data set of training evaluators; data.<option>=V (data.root=DIR)
  budget=20                  evaluations (failed ones and the selection stage's repeats count);
                             budget=null: time only
  select=race                how the winner is confirmed (repeats count against budget; an
  select.top=3               evaluator that gives the same result every time is never repeated):
  select.repeats=3           race: once select.start of the budget has gone to new candidates,
  select.start=0.3           whenever one of the select.top candidates by mean has fewer than
                             select.repeats evaluations it is evaluated again, and the strategy
                             learns its running mean; halving: a final
  select.k=8 select.eta=2    stage, successive halving over the top select.k by mean up to
                             select.repeats evaluations (each rung keeps the best 1/eta; its cost
                             is reserved from budget); none: the single best evaluation wins.
                             Either way the winner is the best mean among the candidates with
                             select.repeats evaluations
  baselines=auto             hand-designed references evaluated like the finalists, outside the
                             budget, shown beside the winner: auto (the space's own, e.g.
                             efficientnet_b0 for mbconv), none, or [resnet18,ARCH_STRING,...]
  budget_hours=H             wall-time budget, summed across resumes
  seed=0                     same seed + same settings = same trials (repeats included)
  pruner=none                median | asha: stop trainings whose epochs trail the others
                             (Optuna's MedianPruner / successive halving), status=pruned
  prescreen=naswot           score 1/prescreen_keep proposals per evaluation with a zero-cost
  prescreen_keep=0.25        proxy (synflow, naswot, grad_norm, snip) and evaluate the best
  objectives=[accuracy]      metric[:max|min], several for a Pareto search:
                             objectives=[accuracy,latency_ms:min]
  max_params=N max_macs=N    constraints (or constraints.<metric>=X); a bound of 0 or less, or
                             below the space's cheapest member, is refused at the start (exit 2).
                             A run that ends with no feasible candidate evaluated names no
                             winner and exits with code 3
  max_latency_ms=baseline    no candidate slower than the first baseline (efficientnet_b0 for
                             mbconv), timed on this machine with the latency settings when the
                             run starts (kept on resume): the summary says whether the winner
                             beats it at its own speed. The default where it costs nothing
                             extra: a training evaluator, a baseline, no latency objective.
                             max_latency_ms=X: X ms; max_latency_ms=none: no bound
  latency=auto               measured | table | learned | none: where latency_ms comes from
                             (table/learned: the profile of nas latency profile for these
                             settings: latency.device=cpu latency.threads=1 latency.batch=1,
                             or latency.profile=DIR); objectives=mnas latency.target_ms=T
                             latency.w=-0.07: MnasNet's reward accuracy * (latency/T)^w
  quantize=int8              also quantize each trained candidate (post-training, x86 int8
                             kernels) and record accuracy_int8 and latency_int8_ms (its own
                             profile: nas latency profile dtype=int8); max_latency_ms then
                             bounds latency_int8_ms (baseline: the baseline's int8 latency);
                             objectives=[accuracy_int8,latency_int8_ms:min]
  limits.max_params=1e9      refuse a space whose largest member, or a baseline, is larger
  limits.max_activation_mb=8192  (activation: float32 feature maps of one image's forward pass)
  backend=local              ray: each evaluation is a Ray Tune trial, in parallel
  ray.workers=null           concurrent trials (null: as many as the cluster's CPUs allow)
  ray.cpus_per_trial=1       CPUs (torch threads) per trial; ray.gpus_per_trial=0
  ray.address=null           auto: join the cluster on this node (ray start --head);
                             unset: RAY_ADDRESS, else a private local cluster
  ray.max_failures=2         retries of a trial whose Ray worker died
  out=results run_id=NAME    results go to <out>/runs/<run_id>/ and <out>/leaderboard.csv
  resume=true [run_id=NAME]  continue a crashed or stopped run (default: the latest one);
                             budget / budget_hours may be raised, other keys must match
  progress=true              show a progress bar
  config=FILE                start from a saved run's config.yaml (a new run with its
                             settings; later keys override them)

Examples:
  nas run space=nasbench_macro evaluator=nasbench_macro evaluator.path=FILE budget=100
  nas run strategy=optuna sampler=tpe space=resnet evaluator=proxy data=digits budget=30
"""


def run_defaults() -> dict[str, Any]:
    """A fresh copy (callers add the chosen strategy's and evaluator's options)."""
    return copy.deepcopy(RUN_DEFAULTS)
