"""The features an evaluator's ranking is checked against (benchmarks/arch_features.py): read off the
architecture as written, and a score that is a feature shows up as that feature."""
from __future__ import annotations

import sys

import pytest

from search_spaces import zoo
from search_spaces.cost import cost
from tests.paths import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS))
import arch_features as af


def test_features_of_efficientnet_b0_are_what_its_string_says():
    b0 = zoo.reference("efficientnet_b0")
    f = af.features(b0)
    # B0: 16 MBConv layers, the first of expansion 1, all with SE; 7 of kernel 3 and 9 of kernel 5
    assert (f["resolution"], f["width"], f["layers"], f["e1_layers"], f["se_share"]) == (224, 1.0, 16, 1, 1.0)
    assert f["kernel"] == pytest.approx((3 * 7 + 5 * 9) / 16)
    assert f["expansion"] == pytest.approx((1 + 6 * 15) / 16)
    assert f["macs_m"] == pytest.approx(cost(b0, 10).macs / 1e6)
    assert af.features(str(b0)) == f  # a string is parsed


def test_a_score_that_is_a_feature_follows_it_and_the_rank_error_says_so():
    archs = [str(zoo.reference(n)) for n in ("efficientnet_b0", "mobilenet_v2", "mobilenet_v3_large",
                                              "mobilenet_v3_small", "efficientnet_b1")]
    macs = [af.features(a)["macs_m"] for a in archs]
    truth = [-m for m in macs]  # a truth that prefers small networks
    table = af.feature_table(archs, macs, truth).set_index("feature")
    assert table.loc["macs_m", "rho_score"] == pytest.approx(1.0)
    assert table.loc["macs_m", "rho_truth"] == pytest.approx(-1.0)
    assert table.loc["macs_m", "rho_error"] == pytest.approx(1.0)  # it ranks the large ones too high
