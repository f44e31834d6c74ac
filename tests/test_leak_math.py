"""The leaky neuron's elementary functions: numba against numpy, both against their definitions
(quadrature, finite differences in lambda, the lambda -> 0 limits) on both sides of the series
switch."""
import math

import numpy as np
import pytest
from scipy.integrate import quad

from training import leak_math as lm

LAMS = [0.0, 1e-12, 1e-6, 0.01, 0.3, 0.499, 0.501, 1.0, 3.0, 40.0]
XS = [0.0, 1e-3, 0.2, 1.0, 1.7, 4.0]


def pairs():
    return [(lam, x) for lam in LAMS for x in XS]


@pytest.mark.parametrize("name", ["phi", "dphi_dlam", "psi", "dpsi_dlam"])
def test_numba_and_numpy_forms_agree(name):
    lam, x = np.array(pairs()).T
    ref = getattr(lm, name + "_np")(lam, x)
    got = np.array([getattr(lm, name)(a, b) for a, b in zip(lam, x)])
    np.testing.assert_allclose(got, ref, rtol=1e-14, atol=1e-300)


def test_phi_and_psi_against_their_definitions():
    for lam, x in pairs():
        exact = x if lam == 0 else -math.expm1(-lam * x) / lam
        assert lm.phi(lam, x) == pytest.approx(exact, rel=1e-14, abs=1e-300)
        area, _ = quad(lambda s: lm.phi(lam, s), 0.0, x, epsabs=0, epsrel=1e-13)
        assert lm.psi(lam, x) == pytest.approx(area, rel=1e-11, abs=1e-300)


@pytest.mark.parametrize("name", ["phi", "psi"])
def test_lambda_derivatives_against_finite_differences(name):
    f, df = getattr(lm, name), getattr(lm, "d" + name + "_dlam")
    for lam, x in pairs():
        h = 1e-5 * max(lam, 1e-3)
        lo = max(lam - h, 0.0)
        fd = (f(lam + h, x) - f(lo, x)) / (lam + h - lo)
        assert df(lam, x) == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_small_lambda_limits():
    x = 1.3
    assert lm.phi(0.0, x) == x
    assert lm.dphi_dlam(0.0, x) == pytest.approx(-x * x / 2, rel=1e-15)
    assert lm.psi(0.0, x) == pytest.approx(x * x / 2, rel=1e-15)
    assert lm.dpsi_dlam(0.0, x) == pytest.approx(-x ** 3 / 6, rel=1e-15)


def test_series_and_closed_forms_meet_at_the_switch():
    for name in ("dphi_dlam", "psi", "dpsi_dlam"):
        f = getattr(lm, name)
        below, above = f(lm._SERIES_Z * (1 - 1e-12), 1.0), f(lm._SERIES_Z * (1 + 1e-12), 1.0)
        assert below == pytest.approx(above, rel=1e-13)


def test_time_to_reach_inverts_phi():
    for lam in LAMS:
        for a in (0.0, 0.01, 0.3 / max(lam, 1.0), 0.9 / max(lam, 1e-3)):
            x = lm.time_to_reach(lam, a)
            assert lm.phi(lam, x) == pytest.approx(a, rel=1e-12, abs=1e-300)
            assert lm.time_to_reach_np(lam, a) == pytest.approx(x, rel=1e-14, abs=1e-300)
    assert lm.time_to_reach(2.0, 0.5) == math.inf       # the potential tends to 1/lam = 0.5: never reached
    assert lm.time_to_reach_np(2.0, 0.7) == math.inf


def test_phi_and_dphi_dlam_is_phi_and_dphi_dlam():
    """The combined form (one expm1, or Horner series) against the two functions, on both sides of
    its own switch (z = 0.1) and of theirs (z = 0.5)."""
    lams = LAMS + [0.0999, 0.1001, 0.05]
    for lam in lams:
        for x in XS + [1.0 / 0.0999 * 0.1, 2.0]:
            p, d = lm.phi_and_dphi_dlam(lam, x)
            assert p == pytest.approx(lm.phi(lam, x), rel=1e-15, abs=1e-300)
            assert d == pytest.approx(lm.dphi_dlam(lam, x), rel=1e-14, abs=1e-300)
