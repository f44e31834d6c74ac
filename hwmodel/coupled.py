"""Passive columns coupled through their wires: exact firing times of a linear node system.

With exact wires the passive nodes V of one column-tile group (the neurons whose physical columns
lie in one tile column range; every row tile of that range adds its Y_cc block) obey

    C dV/dt = I(t) - Y_g V,     I_i(t) = sum over arrived inputs j of (a_ji + s_ji eps_ji),

Y_g symmetric positive definite (hwmodel.wire_model `LayerWires.y_cols_s`), C = diag(c_eff), the
drive a and the read noise s as for the independent columns (hwmodel.kernels). With D = C^-1/2,
D Y_g D = Q diag(lam) Q^T once per chip and E = D Q, the modes z = E^T C V obey dz/dt = E^T I - lam z,
so between two input events (I constant), with w = E^T I - lam z(0),

    V_i(tau) = V_i(0) + sum_k E_ik w_k psi_k(tau),     psi_k(tau) = -expm1(-lam_k tau) / lam_k,

a sum of monotone terms (psi_k rises from 0; psi_k = tau when lam_k = 0). V_i need not be monotone,
so the first crossing of theta_i is found by bounds: on [lo, hi] each term lies between its end
values, so V_i <= V_i(lo) + sum_k max(0, E_ik w_k (psi_k(hi) - psi_k(lo))), and the slope
sum_k E_ik w_k exp(-lam_k tau) lies between its terms' end values too. An interval whose upper
bound is at most theta holds no crossing; one whose slope is positive throughout and whose end is
above theta holds exactly one, refined by safeguarded Newton to CROSS_TOL of the window; any other
is halved, left half first (down to CROSS_TOL: a touch of theta within rounding is no crossing).

Events, tie groups, the final group and the read noise (one normal per neuron per input group with
the group's variance, keyed by (seed, sample, first input of the group, neuron)) are those of
`hwmodel.kernels.column_forward`, which this reproduces when Y_g is diagonal. `coupled_forward`
(numba) and `coupled_forward_ref` (plain numpy) give the same results.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from hwmodel import kernels, kernels_ref

CROSS_TOL = 1e-13       # crossing resolution, relative to the window t_end
_STACK = 64             # interval stack of the bound search (depth <= log2(window / tol) ~ 43)


@dataclass(frozen=True)
class Modes:
    """The modal form of one layer's coupled passive nodes (module docstring)."""

    e: np.ndarray           # (n, n) E = C^-1/2 Q, block-diagonal by group: V = E z
    lam_per_s: np.ndarray   # (n,) modal rates lam_k (1/s), group by group
    bounds: np.ndarray      # (n_groups + 1,) int64: group g holds neurons and modes bounds[g]:bounds[g+1]


def modes(y_cols_s, c_eff_f, groups) -> Modes:
    """Modes of the node system C dV/dt = -Y V, Y (n, n) in S, c_eff_f (n,) in F, groups
    [(start, stop), ...] contiguous neuron ranges covering range(n) (Y is zero between groups)."""
    y = np.asarray(y_cols_s, dtype=np.float64)
    c = np.asarray(c_eff_f, dtype=np.float64)
    n = len(c)
    e = np.zeros((n, n))
    lam = np.zeros(n)
    bounds = [0]
    for start, stop in groups:
        if start != bounds[-1]:
            raise ValueError(f"coupled.modes: groups must cover range({n}) in order (got {list(groups)})")
        d = 1.0 / np.sqrt(c[start:stop])
        block = d[:, None] * y[start:stop, start:stop] * d[None, :]
        lam_g, q = np.linalg.eigh(0.5 * (block + block.T))
        e[start:stop, start:stop] = d[:, None] * q
        lam[start:stop] = np.maximum(lam_g, 0.0)        # positive definite up to rounding
        bounds.append(stop)
    if bounds[-1] != n:
        raise ValueError(f"coupled.modes: groups must cover range({n}) in order (got {list(groups)})")
    return Modes(e, lam, np.array(bounds, dtype=np.int64))


@nb.njit(cache=True)
def _upper(v_lo, v_hi, rise, fall, d_min, d_max, length):
    """An upper bound of V on [lo, hi] (length hi - lo): the least of the modes' bounds from either end
    (rise, fall: the sums of the terms' increases and decreases over the interval) and the two slope
    lines V(lo) + (tau - lo) d_max, V(hi) - (hi - tau) d_min (d_min, d_max bound V' on it)."""
    out = min(v_lo + rise, v_hi + fall)
    if d_max <= 0.0:
        return min(out, v_lo)
    if d_min >= 0.0:
        return min(out, v_hi)
    s = min(max((v_hi - v_lo - length * d_min) / (d_max - d_min), 0.0), length)
    return min(out, v_lo + s * d_max)


# -- plain numpy reference ----------------------------------------------------------------------------

def _psi_ref(lam, tau):
    """(psi_k(tau), exp(-lam_k tau)) for every mode."""
    em1 = np.expm1(-lam * tau)
    with np.errstate(divide="ignore", invalid="ignore"):
        psi = np.where(lam > 0, -em1 / np.where(lam > 0, lam, 1.0), tau)
    return psi, 1.0 + em1


def _first_crossing_ref(v0, c, lam, theta, h, tol):
    """First tau in [0, h] where v0 + sum_k c_k psi_k(tau) exceeds theta, or None (module docstring)."""
    psi_h, exp_h = _psi_ref(lam, h)
    stack = [(0.0, h, v0, np.zeros_like(lam), np.ones_like(lam), v0 + c @ psi_h, psi_h, exp_h)]
    while stack:
        lo, hi, v_lo, p_lo, x_lo, v_hi, p_hi, x_hi = stack.pop()
        dp = c * (p_hi - p_lo)
        d_min, d_max = np.minimum(c * x_lo, c * x_hi).sum(), np.maximum(c * x_lo, c * x_hi).sum()
        if _upper(v_lo, v_hi, np.maximum(dp, 0.0).sum(), np.maximum(-dp, 0.0).sum(), d_min, d_max, hi - lo) <= theta:
            continue
        if v_hi > theta and d_min > 0:
            return _newton_ref(v0, c, lam, theta, lo, hi, tol)
        if hi - lo <= tol or d_max < 0:
            if v_hi > theta:
                return hi
            continue
        mid = 0.5 * (lo + hi)
        p_mid, x_mid = _psi_ref(lam, mid)
        v_mid = v0 + c @ p_mid
        stack.append((mid, hi, v_mid, p_mid, x_mid, v_hi, p_hi, x_hi))
        stack.append((lo, mid, v_lo, p_lo, x_lo, v_mid, p_mid, x_mid))
    return None


def _newton_ref(v0, c, lam, theta, lo, hi, tol):
    """The one root of the increasing v0 + c . psi(tau) - theta in [lo, hi] (sign change)."""
    tau = hi
    for _ in range(200):
        p, x = _psi_ref(lam, tau)
        f = v0 + c @ p - theta
        if f > 0:
            hi = tau
        else:
            lo = tau
        slope = c @ x
        step = f / slope if slope > 0 else np.inf
        nxt = tau - step
        if not lo < nxt < hi:
            nxt = 0.5 * (lo + hi)
        if abs(nxt - tau) <= tol or hi - lo <= tol:
            return nxt
        tau = nxt
    return tau


def coupled_forward_ref(t_in, a, s, e, lam, bounds, theta, t_end, seed, sample_offset):
    """Firing times (B, n) of one layer of coupled passive nodes; inf = no crossing before t_end.
    The arguments of `hwmodel.kernels.column_forward` with the layer's Modes (e, lam, bounds) in
    place of (g_leak, c_eff); theta > 0."""
    b_size = t_in.shape[0]
    n = a.shape[1]
    t_out = np.full((b_size, n), np.inf)
    a_sum, s2_sum, noisy = kernels_ref.input_sums(a, s)
    tol = CROSS_TOL * t_end
    groups = [(int(bounds[g]), int(bounds[g + 1])) for g in range(len(bounds) - 1)]
    base = kernels_ref._mix(np.uint64(seed))
    for b in range(b_size):
        t = t_in[b]
        with np.errstate(over="ignore"):
            key = kernels_ref._mix(base + np.uint64(sample_offset + b))
        v = np.zeros(n)
        z = np.zeros(n)
        fired = np.zeros(n, bool)
        for tj, tn, cur in kernels_ref.segments(t, a, s, a_sum, s2_sum, noisy, key, t_end):
            h = tn - tj
            for g0, g1 in groups:
                eg, lg = e[g0:g1, g0:g1], lam[g0:g1]
                w = eg.T @ cur[g0:g1] - lg * z[g0:g1]
                psi, _ = _psi_ref(lg, h)
                cw = eg * w[None, :]
                dv = cw @ psi
                upper = v[g0:g1] + np.maximum(cw, 0.0) @ psi
                for i in np.nonzero(~fired[g0:g1] & (upper > theta[g0:g1]))[0]:
                    tau = _first_crossing_ref(v[g0 + i], cw[i], lg, theta[g0 + i], h, tol)
                    if tau is not None:
                        t_out[b, g0 + i] = min(max(tj + tau, tj), tn)
                        fired[g0 + i] = True
                v[g0:g1] += dv
                z[g0:g1] += w * psi
            if fired.all():
                break
    return t_out


# -- numba ----------------------------------------------------------------------------------------------

@nb.njit(cache=True, inline="always")
def _psi(lam, tau):
    em1 = np.expm1(-lam * tau)
    return (-em1 / lam if lam > 0.0 else tau), 1.0 + em1


@nb.njit(cache=True)
def _value(v0, c, lam, g0, g1, tau, p, x):
    """v0 + sum_k c_k psi_k(tau); fills p, x (psi and exp at tau) for modes g0..g1."""
    out = v0
    for k in range(g0, g1):
        p[k - g0], x[k - g0] = _psi(lam[k], tau)
        out += c[k - g0] * p[k - g0]
    return out


@nb.njit(cache=True)
def _newton(v0, c, lam, g0, g1, theta, lo, hi, tol, p, x):
    tau = hi
    for _ in range(200):
        f = _value(v0, c, lam, g0, g1, tau, p, x) - theta
        if f > 0:
            hi = tau
        else:
            lo = tau
        slope = 0.0
        for k in range(g1 - g0):
            slope += c[k] * x[k]
        nxt = tau - f / slope if slope > 0 else np.inf
        if not (lo < nxt < hi):
            nxt = 0.5 * (lo + hi)
        if abs(nxt - tau) <= tol or hi - lo <= tol:
            return nxt
        tau = nxt
    return tau


@nb.njit(cache=True)
def _first_crossing(v0, c, lam, g0, g1, theta, h, psi_h, exp_h, tol, ps, xs, st_t, st_v):
    """First tau in [0, h] with v0 + sum c psi(tau) > theta, or -1.0 (module docstring). ps, xs
    (_STACK + 1, m) and st_t, st_v (_STACK + 1,) are work space: slot 0 holds tau = h."""
    m = g1 - g0
    for k in range(m):
        ps[0, k], xs[0, k] = psi_h[k], exp_h[k]
        ps[1, k], xs[1, k] = 0.0, 1.0
    v_h = v0
    for k in range(m):
        v_h += c[k] * psi_h[k]
    st_t[0], st_v[0] = h, v_h
    st_t[1], st_v[1] = 0.0, v0
    # The stack holds points, leftmost on top: the interval examined is [top, below it].
    top = 1
    while top >= 1:
        lo, hi = st_t[top], st_t[top - 1]
        v_lo, v_hi = st_v[top], st_v[top - 1]
        rise, fall, d_min, d_max = 0.0, 0.0, 0.0, 0.0
        for k in range(m):
            dp = c[k] * (ps[top - 1, k] - ps[top, k])
            if dp > 0:
                rise += dp
            else:
                fall -= dp
            a, b = c[k] * xs[top, k], c[k] * xs[top - 1, k]
            d_min += min(a, b)
            d_max += max(a, b)
        if _upper(v_lo, v_hi, rise, fall, d_min, d_max, hi - lo) <= theta:
            top -= 1                    # no crossing in [lo, hi]: hi becomes the next lo
            continue
        if v_hi > theta and d_min > 0:
            return _newton(v0, c, lam, g0, g1, theta, lo, hi, tol, ps[_STACK], xs[_STACK])
        if hi - lo <= tol or d_max < 0 or top + 1 >= _STACK:
            if v_hi > theta:
                return hi
            top -= 1
            continue
        mid = 0.5 * (lo + hi)
        # push mid above hi: move lo up one slot
        for k in range(m):
            ps[top + 1, k], xs[top + 1, k] = ps[top, k], xs[top, k]
        st_t[top + 1], st_v[top + 1] = lo, v_lo
        st_v[top] = _value(v0, c, lam, g0, g1, mid, ps[top], xs[top])
        st_t[top] = mid
        top += 1
    return -1.0


@nb.njit(cache=True, fastmath={"reassoc", "contract", "nsz", "nnan"})
def _change_and_rise(e_row, wp, g0, g1):
    """(sum_q e_row[q] wp[q], sum_q max(e_row[q] wp[q], 0)) over the group's modes: a node's change
    over the segment and its terms' total rise (vectorised: the sums in any order)."""
    dv, up = 0.0, 0.0
    for q in range(g0, g1):
        d = e_row[q] * wp[q]
        dv += d
        up += max(d, 0.0)
    return dv, up


@nb.njit(cache=True)
def _coupled_one(t, a, s2, a_sum, s2_sum, e, lam, bounds, theta, t_end, noisy, key, t_out, order, table, tol):
    n = a.shape[1]
    nv = kernels.sort_inputs(t, order, t_end)
    v = np.zeros(n)
    z = np.zeros(n)
    cur = np.zeros(n)
    a_seen = np.zeros(n)
    s2_seen = np.zeros(n)
    s2_grp = np.zeros(n)
    fired = np.zeros(n, np.bool_)
    t_out[:] = np.inf
    m_max = 0
    for g in range(len(bounds) - 1):
        m_max = max(m_max, bounds[g + 1] - bounds[g])
    w = np.empty(n)
    wp = np.empty(n)
    psi = np.empty(n)
    ex = np.empty(n)
    cw = np.empty(m_max)
    ps = np.empty((_STACK + 1, m_max))
    xs = np.empty((_STACK + 1, m_max))
    st_t = np.empty(_STACK + 1)
    st_v = np.empty(_STACK + 1)
    n_fired = 0
    k_tail = kernels.final_group_start(t, order, nv)
    k = 0
    while k < nv:
        tj = t[order[k]]
        k_next = kernels.add_group(t, order, k, nv, k_tail, a, s2, a_sum, s2_sum, noisy, key, table,
                                   cur, a_seen, s2_seen, s2_grp)
        tn = t[order[k_next]] if k_next < nv else t_end
        h = tn - tj
        for g in range(len(bounds) - 1):
            # unsigned indices: numba then omits the negative-index fix-up and vectorises the loops
            g0, g1 = np.uint64(bounds[g]), np.uint64(bounds[g + 1])
            for q in range(g0, g1):
                w[q] = -lam[q] * z[q]
                psi[q], ex[q] = _psi(lam[q], h)
            for i in range(g0, g1):
                for q in range(g0, g1):
                    w[q] += e[i, q] * cur[i]
            for q in range(g0, g1):
                wp[q] = w[q] * psi[q]
            for i in range(g0, g1):
                if fired[i]:
                    continue            # a passive node fires once: its potential is no longer needed
                dv, up = _change_and_rise(e[i], wp, g0, g1)
                if v[i] + up > theta[i]:
                    for q in range(g0, g1):
                        cw[q - g0] = e[i, q] * w[q]
                    tau = _first_crossing(v[i], cw, lam, g0, g1, theta[i], h, psi[g0:g1], ex[g0:g1], tol,
                                          ps, xs, st_t, st_v)
                    if tau >= 0.0:
                        t_out[i] = min(max(tj + tau, tj), tn)
                        fired[i] = True
                        n_fired += 1
                v[i] += dv
            for q in range(g0, g1):
                z[q] += wp[q]
        if n_fired == n:
            break
        k = k_next
    return nv


@nb.njit(parallel=True, cache=True)
def coupled_forward(t_in, a, s, e, lam, bounds, theta, t_end, seed, sample_offset):
    """Numba twin of `coupled_forward_ref` (same arguments and results)."""
    b_size, k_in = t_in.shape
    n = a.shape[1]
    t_out = np.empty((b_size, n))
    order = np.empty((b_size, k_in), np.int64)
    a_sum, s2, s2_sum, noisy = kernels.input_sums(a, s)
    base = kernels._mix(np.uint64(seed))
    tol = CROSS_TOL * t_end
    for b in nb.prange(b_size):
        key = kernels._mix(base + np.uint64(sample_offset + b))
        _coupled_one(t_in[b], a, s2, a_sum, s2_sum, e, lam, bounds, theta, t_end, noisy, key, t_out[b], order[b],
                     kernels._TABLE, tol)
    return t_out
