"""DARTS on the macro spaces: train a supernet's weights and architecture weights in turn, then
propose what they learned.

- bilevel: a weight step on a training batch, then an architecture step on a validation batch;
  ``order=1`` uses the validation gradient as is (first-order DARTS), ``order=2`` unrolls one weight
  step and corrects with a finite-difference Hessian-vector product (second-order DARTS);
- ``mode=soft`` runs every candidate weighted by softmax(alpha) (DARTS); ``mode=gumbel`` samples one
  candidate per unit with a straight-through Gumbel-softmax whose temperature anneals from
  ``tau_max`` to ``tau_min`` (GDAS, FBNet): one path per step, so memory and time stay those of a
  single network (the memory-saving variant; the default, as a CPU cannot afford the full supernet);
- latency: the expected latency under the architecture weights, from the device's latency table,
  enters the architecture loss additively (ProxylessNAS: ``+ latency_weight * E[lat] / target``)
  or multiplicatively (``* (E[lat] / target) ** latency_weight``, MnasNet/FBNet-style); the
  target is ``max_latency_ms`` when set;
- collapse guard: when the mean probability that a searchable layer is an identity (skip op, or a
  layer a shallower depth drops) stays above ``collapse_threshold`` for ``collapse_patience``
  epochs, the search stops and keeps the architecture weights from before the streak (the early
  stopping of DARTS+), since a skip-dominated supernet is the known failure of DARTS.

As a strategy, the first ``ask`` runs the search; it proposes the derived architecture (argmax per
unit), then further samples from the learned distribution, each evaluated like any other trial.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from itertools import islice
from typing import Any

from evaluators.devices import check_device, resolve_device
from nas.strategies.base import Strategy
from nas.strategies.darts_config import DartsConfig, DartsResult
from search_spaces.errors import ConfigError

log = logging.getLogger(__name__)


class DartsStrategy(Strategy):
    """Differentiable search as a strategy: the first ask trains the supernet."""

    name = "darts"

    def __init__(self, space, problem=None, seed: int = 0, epochs: int = 30, mode: str = "gumbel", order: int = 1,
                 batch_size: int = 64, lr: float = 0.004, alpha_lr: float = 0.01, warmup_epochs: int = 5,
                 tau_max: float = 5.0, tau_min: float = 0.5, latency_weight: float = 0.0,
                 latency_penalty: str = "additive", train_resolution: int = 32, resolution: int | None = None,
                 width: float | None = None, collapse_threshold: float = 0.6, collapse_patience: int = 3,
                 device: str = "auto", amp: bool = False) -> None:
        super().__init__(space, problem, seed)
        from search_spaces.macro import MacroSpace

        if not isinstance(space, MacroSpace):
            raise ConfigError(f"strategy darts: needs a YAML space with a supernet; {space.name} is not one")
        target = problem.constraints.get("latency_ms") if problem else None
        self.config = DartsConfig(
            epochs=epochs, mode=mode, order=order, batch_size=batch_size, lr=lr, alpha_lr=alpha_lr,
            warmup_epochs=warmup_epochs, tau_max=tau_max, tau_min=tau_min, latency_weight=latency_weight,
            latency_penalty=latency_penalty, target_ms=target, train_resolution=train_resolution,
            collapse_threshold=collapse_threshold, collapse_patience=collapse_patience, amp=amp, seed=seed)
        spec = space.spec
        self.resolution = resolution or min(spec.resolutions, key=lambda r: abs(r - spec.base_resolution))
        self.width = width or min(spec.widths, key=lambda w: abs(w - 1.0))
        if self.resolution not in spec.resolutions or self.width not in spec.widths:
            raise ValueError(f"resolution/width must be the space's: {spec.resolutions} / {spec.widths}")
        check_device(device)
        self.device = device
        self.data_options: Mapping[str, Any] | None = None
        self.latency_source: Any = None
        self.run_dir: Any = None
        self.result: DartsResult | None = None
        self.proposals: list[str] = []

    @classmethod
    def options(cls) -> Sequence[tuple[str, Any, str]]:
        return (
            ("epochs", 30, "supernet training epochs"),
            ("mode", "gumbel", "gumbel (GDAS: one sampled path per step) or soft (DARTS: all candidates)"),
            ("order", 1, "1: first-order; 2: second-order (unrolled, mode=soft)"),
            ("batch_size", 64, "batch size of both steps"),
            ("lr", 0.004, "AdamW learning rate of the supernet weights"),
            ("alpha_lr", 0.01, "Adam learning rate of the architecture weights"),
            ("warmup_epochs", 5, "epochs of weight training before the architecture weights move"),
            ("tau_max", 5.0, "Gumbel-softmax temperature at the start"),
            ("tau_min", 0.5, "... and at the end"),
            ("latency_weight", 0.0, "weight of the expected-latency penalty (needs a latency table)"),
            ("latency_penalty", "additive", "additive (ProxylessNAS) or multiplicative (FBNet/MnasNet)"),
            ("train_resolution", 32, "pixels the supernet trains at"),
            ("resolution", None, "the member resolution searched (default: the space's base)"),
            ("width", None, "the member width searched (default: the one nearest 1.0)"),
            ("collapse_threshold", 0.6, "identity share that counts as skip collapse"),
            ("collapse_patience", 3, "epochs of collapse before the search stops"),
            ("device", "auto", "auto, cpu or cuda"),
            ("amp", False, "bf16 autocast on CUDA"),
        )

    def bind(self, data: Mapping[str, Any] | None, latency: Any = None) -> None:
        """What the search trains on (a run's data group) and where latencies come from."""
        self.data_options = data
        self.latency_source = latency
        if self.config.latency_weight > 0 and (latency is None or getattr(latency, "table", None) is None):
            raise ConfigError("latency_weight: DARTS needs a latency table for the expected latency "
                              "(nas latency profile space=..., then latency=table)")

    def supernet(self, num_classes: int) -> Any:
        import torch

        from search_spaces.supernet import Supernet

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return Supernet(self.space, self.resolution, self.width, num_classes)

    def _search(self) -> None:
        import torch

        from evaluators.data import dataset_from_options
        from nas.strategies.darts_training import candidate_latencies, darts_search

        device = resolve_device(self.device)  # before anything is loaded or built
        data = dataset_from_options(self.data_options or {"name": "digits"})
        net = self.supernet(data.num_classes)
        latency = None
        if self.config.latency_weight > 0:
            latency = candidate_latencies(net, self.latency_source, data.num_classes)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.result = darts_search(net, data, self.config, device, latency)
        self.proposals = [self.space.key(self.result.derived)]
        rng = torch.Generator().manual_seed(self.seed)
        probs = net.probabilities()
        for _ in range(2000):  # then samples of the learned distribution, most probable first
            if len(self.proposals) >= 64:
                break
            picks = [int(torch.multinomial(p, 1, generator=rng)) for p in probs]
            key = self.space.key(net.derive(picks))
            if key not in self.proposals:
                self.proposals.append(key)
        if self.run_dir is not None:
            write_history(self.result, net, self.run_dir)

    def ask(self, n: int = 1) -> list[Any]:
        if not self.proposals:
            self._search()
        unseen = (arch for arch in map(self.space.from_string, self.proposals) if self._claim(arch))
        return list(islice(unseen, n))  # claims stop at the n-th: the rest stay for later asks

    def tell(self, arch: Any, metrics: Mapping[str, Any]) -> None:
        self.seen.add(self.space.key(arch))

    def state_dict(self) -> dict[str, Any]:
        state = self._base_state()
        state["proposals"] = list(self.proposals)
        if self.result is not None:
            state["stopped"] = self.result.stopped
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._load_base_state(state)
        self.proposals = list(state.get("proposals", []))  # a resumed run does not search again


def write_history(result: DartsResult, net: Any, run_dir: Any) -> None:
    """``darts.json`` (the history of the architecture weights) and ``alphas.png``."""
    import json
    from pathlib import Path

    path = Path(run_dir)
    (path / "darts.json").write_text(json.dumps({
        "derived": str(result.derived), "stopped": result.stopped, "seconds": result.seconds,
        "units": [asdict(u) for u in net.units], "history": result.history}, indent=1, default=str))
    try:
        from nas.report.plots import alphas_plot

        alphas_plot(result.history, [u.name for u in net.units], path / "alphas.png")
    except Exception as exc:  # noqa: BLE001 - a plot is never worth a failed run
        log.warning("could not draw alphas.png: %s", exc)


