"""NNI's own strategies behind the bridge (``strategy=nni.<Name>``), each with NNI's defaults as options."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nas.strategies.nni_bridge import NniStrategy
from nas.strategies.nni_loader import load_nni
from search_spaces.checks import check_int
from search_spaces.errors import ConfigError


class NniRegularizedEvolution(NniStrategy):
    """NNI's RegularizedEvolution (aging evolution, Real et al. 2019), with NNI's defaults."""

    name = "nni.RegularizedEvolution"
    nni_name = "RegularizedEvolution"

    @classmethod
    def options(cls) -> Sequence[tuple[str, Any, str]]:
        return (
            ("population_size", 100, "members kept alive (the first ones are random)"),
            ("sample_size", 25, "tournament size"),
            ("mutation_prob", 0.05, "chance each dimension of the parent is resampled"),
            ("crossover", False, "child = crossover of two tournament winners, then mutated"),
            *super().options(),
        )

    @classmethod
    def build(cls, opts: Mapping[str, Any], seed: int) -> Any:
        check_int("population_size", opts["population_size"], 1)
        check_int("sample_size", opts["sample_size"], 1)
        if not 0 <= opts["mutation_prob"] <= 1:  # also NaN
            raise ConfigError(f"mutation_prob: must be a probability in [0, 1], got {opts['mutation_prob']!r}")
        return load_nni(cls.name)["strategy"].RegularizedEvolution(
            population_size=opts["population_size"], sample_size=opts["sample_size"],
            mutation_prob=float(opts["mutation_prob"]), crossover=opts["crossover"],
            seed=seed,
        )


class NniTPE(NniStrategy):
    """NNI's TPE tuner (Bergstra et al. 2011) as a NAS strategy, maximising the objective."""

    name = "nni.TPE"
    nni_name = "TPE"

    @classmethod
    def options(cls) -> Sequence[tuple[str, Any, str]]:
        return (
            ("n_startup_jobs", 20, "random proposals before the TPE model is used"),
            ("n_ei_candidates", 24, "candidates scored by expected improvement per proposal"),
            *super().options(),
        )

    @classmethod
    def build(cls, opts: Mapping[str, Any], seed: int) -> Any:
        # NNI's own checks come only once its thread runs, after the run's files are written.
        check_int("n_startup_jobs", opts["n_startup_jobs"], 1)
        check_int("n_ei_candidates", opts["n_ei_candidates"], 1)
        # NNI's TpeTuner minimises unless told: the bridge reports "larger is better".
        tpe_args = {"n_startup_jobs": opts["n_startup_jobs"],
                    "n_ei_candidates": opts["n_ei_candidates"]}
        return load_nni(cls.name)["FastTPE"](optimize_mode="maximize", seed=seed, tpe_args=tpe_args)


class NniRandom(NniStrategy):
    """NNI's Random strategy (uniform, without repeats)."""

    name = "nni.Random"
    nni_name = "Random"
    single_objective = False

    @classmethod
    def build(cls, opts: Mapping[str, Any], seed: int) -> Any:
        return load_nni(cls.name)["strategy"].Random(seed=seed)


class NniGridSearch(NniStrategy):
    """NNI's GridSearch: every combination once, shuffled in blocks of 100 (for small spaces)."""

    name = "nni.GridSearch"
    nni_name = "GridSearch"
    single_objective = False

    @classmethod
    def options(cls) -> Sequence[tuple[str, Any, str]]:
        return (("shuffle", True, "shuffle the grid (blocks of 100) instead of its fixed order"),
                *super().options())

    @classmethod
    def build(cls, opts: Mapping[str, Any], seed: int) -> Any:
        return load_nni(cls.name)["strategy"].GridSearch(shuffle=opts["shuffle"], seed=seed)


class NniPolicyBasedRL(NniStrategy):
    """NNI's PolicyBasedRL (PPO over the choices, via tianshou)."""

    name = "nni.PolicyBasedRL"
    nni_name = "PolicyBasedRL"

    @classmethod
    def options(cls) -> Sequence[tuple[str, Any, str]]:
        return (
            ("samples_per_update", 20, "proposals collected before each policy update"),
            ("reward_for_invalid", None, "reward of a failed proposal (default: it is ignored)"),
            *super().options(),
        )

    @classmethod
    def build(cls, opts: Mapping[str, Any], seed: int) -> Any:
        check_int("samples_per_update", opts["samples_per_update"], 1)
        reward = opts["reward_for_invalid"]
        if reward is not None and (isinstance(reward, bool) or not isinstance(reward, (int, float))):
            raise ValueError(f"reward_for_invalid: expected a number, got {reward!r}")
        try:
            return load_nni(cls.name)["BridgeRL"](
                samples_per_update=opts["samples_per_update"],
                reward_for_invalid=None if reward is None else float(reward),
            )
        except ImportError as exc:
            raise ConfigError(
                f"strategy {cls.name} needs tianshou, which NNI imports for it "
                f"({' '.join(str(exc).split())})"
            ) from None


NNI_STRATEGIES: tuple[type[NniStrategy], ...] = (
    NniRegularizedEvolution, NniTPE, NniPolicyBasedRL, NniRandom, NniGridSearch,
)
