"""Every registered latency runtime times modules the same way (the contract), and a runtime added
with one `register` call is measurable, fingerprinted and listed in errors."""
from __future__ import annotations

import pytest
import torch

from evaluators.latency import LatencySettings, Measurer, runtimes
from evaluators.latency.runtimes import RUNTIMES, Runtime
from evaluators.latency.runtimes.eager import make_runner as eager_runner
from search_spaces.errors import ConfigError, NasError

FAST = {"warmup": 1, "repeats": 4, "rounds": 2}


def _usable(name: str) -> Runtime:
    record = RUNTIMES[name]
    problem = record.problem("cpu", "float32")
    if problem:
        pytest.skip(problem)
    return record


@pytest.mark.parametrize("name", RUNTIMES.names())
def test_every_runtime_times_a_module_and_names_itself_in_the_fingerprint(name):
    record = _usable(name)
    moves = []
    real = record.make_runner

    def counting(module, x, target):
        run, move = real(module, x, target)
        return run, lambda: moves.append(1) or move()

    counted = Runtime(name, counting, record.version, record.devices, record.dtypes, record.moves_weights,
                      record.requires, record.install)
    settings = LatencySettings(runtime=name, **FAST)
    conv = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU())
    with runtimes.RUNTIMES.scratch({name: counted}):
        small, large = Measurer(settings).measure_many([(conv, (8, 8, 8)), (conv, (8, 32, 32))])
    assert 0 < small.latency_ms < large.latency_ms and small.repeats == 4
    fingerprint = settings.fingerprint()
    assert fingerprint.runtime == name and fingerprint.runtime_version == record.version()
    assert fingerprint.placement == ("per-round" if record.moves_weights else "fixed")
    assert len(moves) == 2  # each module's weights move once, before the second round (a no-op if kept)


@pytest.mark.parametrize("name", RUNTIMES.names())
def test_every_runtime_refuses_what_it_cannot_measure_in_one_line(name):
    record = RUNTIMES[name]
    for dtype in ("float32", "float16", "bfloat16"):
        if dtype not in record.dtypes:
            with pytest.raises(ConfigError, match=f"dtype: {name} profiles are"):
                LatencySettings(runtime=name, dtype=dtype)
    if "cuda" not in record.devices and torch.cuda.is_available():
        with pytest.raises(ConfigError, match=f"runtime: {name} is measured on cpu"):
            LatencySettings(runtime=name, device="cuda")


def test_a_runtime_registered_with_one_call_is_measured_and_fingerprinted():
    with runtimes.RUNTIMES.scratch():
        # Eager torch with the weights kept in place: a real runtime, under its own name and version.
        mine = runtimes.register(Runtime("eager-fixed", eager_runner, version=lambda: "1.0", moves_weights=False))
        assert "eager-fixed" in RUNTIMES.names() and RUNTIMES["eager-fixed"] is mine
        settings = LatencySettings(runtime="eager-fixed", **FAST)
        assert Measurer(settings).measure(torch.nn.Conv2d(4, 4, 3), (4, 8, 8)).latency_ms > 0
        fingerprint = settings.fingerprint()
        assert (fingerprint.runtime, fingerprint.runtime_version, fingerprint.placement) == ("eager-fixed", "1.0",
                                                                                             "fixed")
        assert "eager-fixed" in fingerprint.slug and fingerprint.slug != LatencySettings(**FAST).fingerprint().slug
        with pytest.raises(ValueError, match="registered already"):
            runtimes.register(mine)
    assert "eager-fixed" not in RUNTIMES.names()


def test_an_unknown_runtime_is_a_one_line_error_naming_the_registered_ones():
    with pytest.raises(NasError) as err:
        LatencySettings(runtime="tensorrt")
    assert "\n" not in str(err.value) and all(name in str(err.value) for name in RUNTIMES.names())


def test_a_runtime_whose_package_is_missing_says_how_to_install_it():
    record = Runtime("needs-pkg", eager_runner, version=lambda: "0", requires=("no_such_package_nas",),
                     install="pip install no-such-package")
    assert record.problem("cpu", "float32") == ("runtime: needs-pkg needs no_such_package_nas installed "
                                                "(pip install no-such-package)")
