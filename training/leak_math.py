"""The leaky neuron's elementary functions, stable for every leak lambda >= 0 (lambda = 0 is the ideal model).

A neuron with leak lambda that receives a unit step current from time 0 has potential
`phi(lam, x) = (1 - exp(-lam x)) / lam` after a time x (-> x as lam -> 0); its integral over
[0, x] is `psi(lam, x) = (x - phi) / lam` (-> x^2 / 2). The firing times, gradients and
regularisers of training.leaky build on these and on their lambda-derivatives. Each is written
as x^n times a function of z = lam x whose closed form cancels badly for small z; below
`_SERIES_Z` the Taylor series is used instead (16 terms, truncation below 1e-17 there).

Two forms of each: numba scalars (`phi`, ...) for the kernels and numpy arrays (`phi_np`, ...)
for the plain-numpy twins; tests hold them together and against the limits.
"""
import math

import numba as nb
import numpy as np

_SERIES_Z = 0.5
_N_TERMS = 16


@nb.njit(cache=True, inline="always")
def _f1(z):
    """(1 - exp(-z)) / z."""
    return 1.0 if z == 0.0 else -math.expm1(-z) / z


@nb.njit(cache=True)
def _f2(z):
    """(1 - exp(-z) - z exp(-z)) / z^2 = sum_{n>=2} (-1)^n (n-1)/n! z^(n-2)."""
    if z >= _SERIES_Z:
        return (-math.expm1(-z) - z * math.exp(-z)) / (z * z)
    s, term = 0.0, 0.5            # term = (-z)^(n-2) / n!
    for n in range(2, 2 + _N_TERMS):
        s += (n - 1) * term
        term *= -z / (n + 1)
    return s


@nb.njit(cache=True)
def _g(z):
    """(z - 1 + exp(-z)) / z^2 = sum_{n>=2} (-z)^(n-2) / n!."""
    if z >= _SERIES_Z:
        return (z + math.expm1(-z)) / (z * z)
    s, term = 0.0, 0.5
    for n in range(2, 2 + _N_TERMS):
        s += term
        term *= -z / (n + 1)
    return s


@nb.njit(cache=True)
def _h(z):
    """(g(z) - f2(z)) / z = sum_{n>=3} (-1)^n (2-n)/n! z^(n-3)  (h(0) = 1/6)."""
    if z >= _SERIES_Z:
        return (_g(z) - _f2(z)) / z
    s, term = 0.0, -1.0 / 6.0     # term = (-z)^(n-3) (-1)^n / n!  starting at n = 3
    for n in range(3, 3 + _N_TERMS):
        s += (2 - n) * term
        term *= -z / (n + 1)
    return s


@nb.njit(cache=True)
def phi(lam, x):
    """(1 - exp(-lam x)) / lam: the potential a unit step current leaves after time x."""
    return x * _f1(lam * x)


@nb.njit(cache=True)
def dphi_dlam(lam, x):
    """d phi / d lam = -x^2 f2(lam x)  (-> -x^2 / 2)."""
    return -x * x * _f2(lam * x)


@nb.njit(cache=True)
def psi(lam, x):
    """integral_0^x phi(lam, s) ds = (x - phi) / lam  (-> x^2 / 2)."""
    return x * x * _g(lam * x)


@nb.njit(cache=True)
def dpsi_dlam(lam, x):
    """d psi / d lam = -x^3 h(lam x)  (-> -x^3 / 6)."""
    return -x * x * x * _h(lam * x)


@nb.njit(cache=True)
def time_to_reach(lam, a):
    """The time x with phi(lam, x) = a (a >= 0): -log1p(-lam a) / lam, inf when lam a >= 1 (the
    leaky potential never gets there)."""
    y = lam * a
    if y >= 1.0:
        return math.inf
    if y == 0.0:
        return a
    return -math.log1p(-y) / lam


PAIR_SERIES_Z = 0.1     # below it 10 terms reach 1e-17; above, the expm1 forms lose at most 4 eps / z
_PAIR_TERMS = 10
_F1_TAYLOR = np.array([1.0 / math.factorial(m + 1) for m in range(_PAIR_TERMS)])  # f1 = sum c_m (-z)^m
_F2_TAYLOR = np.array([(m + 1) / math.factorial(m + 2) for m in range(_PAIR_TERMS)])  # f2 = sum c_m (-z)^m
_A0, _A1, _A2, _A3, _A4, _A5, _A6, _A7, _A8, _A9 = _F1_TAYLOR     # scalars: compile-time constants
_B0, _B1, _B2, _B3, _B4, _B5, _B6, _B7, _B8, _B9 = _F2_TAYLOR


@nb.njit(cache=True)
def phi_and_dphi_dlam_small(lam, x):
    """(phi, dphi_dlam) for lam x < PAIR_SERIES_Z only: the Taylor series of f1 = (1 - exp(-z)) / z
    and f2 by Horner's rule, written out so that a loop over neurons calling it vectorises."""
    y = -lam * x
    f1 = _A0 + y * (_A1 + y * (_A2 + y * (_A3 + y * (_A4 + y * (_A5 + y * (_A6 + y * (_A7 + y * (_A8 + y * _A9))))))))
    f2 = _B0 + y * (_B1 + y * (_B2 + y * (_B3 + y * (_B4 + y * (_B5 + y * (_B6 + y * (_B7 + y * (_B8 + y * _B9))))))))
    return x * f1, -x * x * f2


@nb.njit(cache=True)
def phi_and_dphi_dlam(lam, x):
    """(phi, dphi_dlam) at one point with one expm1 and no division loop: a gradient sweep needs
    both per neuron and input time. f2 = (-expm1(-z) - z exp(-z)) / z^2 with exp(-z) = 1 + expm1(-z)
    (relative error below 4 eps / z) from z = lam x >= PAIR_SERIES_Z, else the series."""
    z = lam * x
    if z >= PAIR_SERIES_Z:
        em1 = math.expm1(-z)
        return -em1 / lam, -x * x * (-em1 - z * (1.0 + em1)) / (z * z)
    return phi_and_dphi_dlam_small(lam, x)


# numpy twins (elementwise, broadcasting)

def _series_np(z, coef):
    """sum_k coef[k] (-z)^k."""
    out = np.zeros_like(z)
    for c in coef[::-1]:
        out = out * (-z) + c
    return out


_F2 = [(n - 1) / math.factorial(n) for n in range(2, 2 + _N_TERMS)]
_G = [1.0 / math.factorial(n) for n in range(2, 2 + _N_TERMS)]
_H = [-(2 - n) / math.factorial(n) for n in range(3, 3 + _N_TERMS)]   # sign: (-1)^n = -(-1)^(n-3)


def _z(lam, x):
    lam, x = np.broadcast_arrays(np.asarray(lam, dtype=np.float64), np.asarray(x, dtype=np.float64))
    return lam, x, lam * x


def phi_np(lam, x):
    lam, x, z = _z(lam, x)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(z == 0.0, 1.0, -np.expm1(-z) / z)
    return x * f1


def _f2_np(z):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        closed = (-np.expm1(-z) - z * np.exp(-z)) / (z * z)
    return np.where(z >= _SERIES_Z, closed, _series_np(z, _F2))


def _g_np(z):
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = (z + np.expm1(-z)) / (z * z)
    return np.where(z >= _SERIES_Z, closed, _series_np(z, _G))


def dphi_dlam_np(lam, x):
    lam, x, z = _z(lam, x)
    return -x * x * _f2_np(z)


def psi_np(lam, x):
    lam, x, z = _z(lam, x)
    return x * x * _g_np(z)


def dpsi_dlam_np(lam, x):
    lam, x, z = _z(lam, x)
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = (_g_np(z) - _f2_np(z)) / z
    return -x * x * x * np.where(z >= _SERIES_Z, closed, _series_np(z, _H))


def time_to_reach_np(lam, a):
    lam, a, y = _z(lam, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(y == 0.0, a, -np.log1p(-np.minimum(y, 1.0)) / lam)
    return np.where(y >= 1.0, np.inf, t)
