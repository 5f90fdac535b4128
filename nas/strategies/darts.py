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

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

from evaluators.base import DEFAULT_DATA
from evaluators.devices import check_device, resolve_device
from nas.strategies.base import Strategy
from nas.strategies.darts_config import DartsConfig, DartsResult
from nas.strategies.darts_config import options as config_options
from search_spaces.errors import ConfigError
from search_spaces.macro import MacroSpace

log = logging.getLogger(__name__)


class DartsStrategy(Strategy):
    """Differentiable search as a strategy: the first ask trains the supernet."""

    name = "darts"

    option_help: ClassVar[Mapping[str, str]] = {
        "resolution": "the member resolution searched (default: the space's base)",
        "width": "the member width searched (default: the one nearest 1.0)",
        "device": "auto, cpu or cuda",
    }

    def __init__(self, space, problem=None, seed: int = 0, resolution: int | None = None,
                 width: float | None = None, device: str = "auto", **settings: Any) -> None:
        """``settings``: the search's own options, those of `DartsConfig` (defaults stated there)."""
        super().__init__(space, problem, seed)
        if not isinstance(space, MacroSpace):
            raise ConfigError(f"strategy darts: needs a YAML space with a supernet; {space.name} is not one")
        target = problem.constraints.get("latency_ms") if problem else None
        chosen = {name for name, _, _ in config_options()}
        extra = sorted(set(settings) - chosen)
        if extra:
            raise TypeError(f"unexpected option {extra[0]!r}")
        self.config = DartsConfig(**settings, target_ms=target, seed=seed)
        spec = space.spec
        self.resolution = resolution or min(spec.resolutions, key=lambda r: abs(r - spec.base_resolution))
        self.width = width or min(spec.widths, key=lambda w: abs(w - 1.0))
        if self.resolution not in spec.resolutions or self.width not in spec.widths:
            raise ValueError(f"resolution/width must be the space's: {spec.resolutions} / {spec.widths}")
        check_device(device)
        self.device = device
        self.data_options: Mapping[str, Any] | None = None
        self.latency_source: Any = None
        self.result: DartsResult | None = None
        self.proposals: list[str] = []

    @classmethod
    def options(cls) -> Sequence[tuple[str, Any, str]]:
        """The search's settings (`DartsConfig`'s options), then the member it searches and the device."""
        return (*config_options(), *super().options())

    def bind(self, data: Mapping[str, Any] | None, latency: Any = None, run_dir: Path | None = None) -> None:
        """What the search trains on (a run's data group), where latencies come from, and the run's
        folder (``darts.json`` and ``alphas.png`` go there)."""
        super().bind(data, latency, run_dir)
        self.data_options = data
        self.latency_source = latency
        if self.config.latency_weight > 0 and (latency is None or getattr(latency, "table", None) is None):
            raise ConfigError("latency_weight: DARTS needs a latency table for the expected latency "
                              "(nas latency profile space=..., then latency=table)")

    def supernet(self, num_classes: int) -> Any:
        import torch

        from search_spaces.supernet import Supernet  # noqa: PLC0415 - torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return Supernet(self.space, self.resolution, self.width, num_classes)

    def _search(self) -> None:
        import torch

        from evaluators.data import dataset_from_options  # noqa: PLC0415 - torch
        from nas.strategies.darts_training import candidate_latencies, darts_search  # noqa: PLC0415 - torch

        device = resolve_device(self.device)  # before anything is loaded or built
        data = dataset_from_options(self.data_options or DEFAULT_DATA)
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
    path = Path(run_dir)
    (path / "darts.json").write_text(json.dumps({
        "derived": str(result.derived), "stopped": result.stopped, "seconds": result.seconds,
        "units": [asdict(u) for u in net.units], "history": result.history}, indent=1, default=str))
    try:
        from nas.report.plots import alphas_plot  # noqa: PLC0415 - pandas

        alphas_plot(result.history, [u.name for u in net.units], path / "alphas.png")
    except Exception as exc:  # noqa: BLE001 - a plot is never worth a failed run
        log.warning("could not draw alphas.png: %s", exc)


