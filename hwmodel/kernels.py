"""Numba kernel of one leaky, noisy capacitor column: exact firing times, event by event.

A column (one neuron) obeys, between input events,

    c_eff dy/dt = I(t) - g_leak y,     I(t) = sum over arrived inputs j of (a_ij + s_ij * eps_ij)

with `a_ij = v_read (g_pos - g_neg)` the signed current of input j's cells once its row is driven,
`s_ij` the std of their read-noise current and eps_ij ~ N(0, 1) drawn anew for every inference.
Between two input events I is constant, so y is an exponential towards I / g_leak (a line when
g_leak = 0) and its threshold crossing has a closed form:

    dt* = -(c_eff / g_leak) * log1p(-g_leak (theta - y0) / (I - g_leak y0))    (g_leak > 0)
    dt* = c_eff (theta - y0) / I                                               (g_leak = 0)

y is monotone on every segment, so the neuron fires in the first segment whose end value
exceeds theta. This covers the passive neuron (g_leak = the column's total conductance) and the
finite-gain integrator (c_eff = C (1 + 1/A), g_leak = G_tot / A); see docs/hwmodel.md. The ideal,
noiseless integrator is the training model itself and runs on `training.kernels.forward`.

Inputs that spike at the same time form a group, handled as one event: one exponential update
per group and neuron. Their read noise sum_j s_ij eps_ij is one normal draw per group and neuron
with the group's total variance (exact in distribution), from a counter-based hash of (seed,
sample, first input of the group, neuron) mapped through a 65,536-quantile inverse-CDF table
(`_normal`): results do not depend on batching or threads, and
`hwmodel.kernels_ref` (the plain-numpy twin) draws the same numbers. The final group, when every
input arrives (MNIST's black pixels all spike at t_in), is summed in O(n) from the column sums.

A column may start from an initial potential y(0) = v0 (the membrane's sampled kT/C reset noise,
`reset_normals` times its rms; docs/hwmodel.md): a neuron with v0 > theta fires at t = 0, and
before the first input (I = 0) y decays as v0 exp(-g_leak t / c_eff) (constant without leak),
monotone towards 0 < theta, so no crossing can happen there; from the first input on the segments
above are unchanged. v0 omitted: every column starts at 0 (bit for bit the model without it).
"""
import numba as nb
import numpy as np
from scipy.special import ndtri

from infra.threads import use_default_layer

use_default_layer()     # before any parallel launch: docs/results.md, Throughput

_CACHE = True
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO_PI = 2.0 * np.pi
_INV_2_53 = 1.0 / 9007199254740992.0
_G_TINY = 1e-300   # a leak-free column in a leaky layer: the leaky formula's g -> 0 limit
_SERIES_MAX = 1e-3  # |g dt / c| below which expm1 is evaluated by its (vectorisable) series


@nb.njit(cache=_CACHE, inline="always")
def _mix(z):
    """splitmix64 finaliser of z + golden ratio (uint64 in, uint64 out)."""
    z = z + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def normal_table(bits: int = 16) -> np.ndarray:
    """Inverse CDF of N(0, 1) at k / 2**bits, k = 0..2**bits (the ends at 1/4 of a bin)."""
    m = 2 ** bits
    p = np.arange(m + 1) / m
    p[0], p[-1] = 0.25 / m, 1.0 - 0.25 / m
    return ndtri(p)


_TABLE = normal_table()
_S48 = np.uint64(48)
_FRAC_MASK = np.uint64((1 << 37) - 1)
_INV_2_37 = 1.0 / float(1 << 37)


@nb.njit(cache=_CACHE, inline="always")
def _normal(key, table):
    """A standard normal from a uint64 key: the top 16 hash bits pick a quantile bin of
    `table`, the next 37 interpolate linearly inside it (CDF error < 1e-5, tails cut at 4.4 sigma)."""
    h = _mix(key)
    idx = np.int64(h >> _S48)
    frac = np.float64((h >> _S11) & _FRAC_MASK) * _INV_2_37
    return table[idx] + frac * (table[idx + 1] - table[idx])


@nb.njit(cache=_CACHE, inline="always")
def input_sums(a, s):
    """(a summed over inputs, s^2, s^2 summed over inputs, whether any read noise): what `add_group`
    needs of a layer's drive a and read-noise std s (K, n)."""
    s2 = s * s
    return a.sum(axis=0), s2, s2.sum(axis=0), bool(np.any(s > 0.0))


@nb.njit(cache=_CACHE, inline="always")
def sort_inputs(t, order, t_end):
    """Fill `order` with the inputs in time order (stable); return how many arrive before t_end."""
    order[:] = np.argsort(t, kind="mergesort")
    nv = 0
    while nv < t.shape[0] and t[order[nv]] < t_end:
        nv += 1
    return nv


@nb.njit(cache=_CACHE, inline="always")
def final_group_start(t, order, nv):
    """Where (in `order`) the final tie group starts when every input arrives within the window
    (nv == len(t) > 1), else nv. Its current is added as the total less what has arrived."""
    k_tail = nv
    if nv == t.shape[0] and nv > 1:
        t_last = t[order[nv - 1]]
        k_tail = nv - 1
        while k_tail > 0 and t[order[k_tail - 1]] == t_last:
            k_tail -= 1
    return k_tail


@nb.njit(cache=_CACHE, inline="always")
def add_group(t, order, k, nv, k_tail, a, s2, a_sum, s2_sum, noisy, key, table, cur, a_seen, s2_seen, s2_grp):
    """Add the input group starting at order[k] (its tie group; from k_tail on, all the rest) to the
    present current `cur` (n,), with the group's read noise: one normal per neuron with the group's
    total variance, keyed by the group's first input. Returns the index after the group. The one
    event loop of the column kernels (`_column_one`, hwmodel.coupled)."""
    n = a.shape[1]
    j0 = order[k]
    tj = t[j0]
    if k == k_tail and k < nv - 1:
        for i in range(n):
            cur[i] += a_sum[i] - a_seen[i]
            s2_grp[i] = max(s2_sum[i] - s2_seen[i], 0.0)
        k_next = nv
    else:
        k_next = k
        if noisy:
            s2_grp[:] = 0.0
        while k_next < nv and t[order[k_next]] == tj:
            j = order[k_next]
            for i in range(n):
                cur[i] += a[j, i]
                a_seen[i] += a[j, i]
            if noisy:
                for i in range(n):
                    s2_grp[i] += s2[j, i]
                    s2_seen[i] += s2[j, i]
            k_next += 1
    if noisy:
        kg = _mix(key + np.uint64(j0))
        for i in range(n):
            cur[i] += np.sqrt(s2_grp[i]) * _normal(kg + np.uint64(i), table)
    return k_next


@nb.njit(cache=_CACHE)
def _column_one(t, a, s2, a_sum, s2_sum, g_leak, c_eff, theta, t_end, leaky, noisy, key, t_out, order, table,
                y0, has_y0):
    n = a.shape[1]
    lam = g_leak / c_eff
    lam_max = lam.max()
    nv = sort_inputs(t, order, t_end)
    y = np.zeros(n)
    y_new = np.zeros(n)
    cur = np.zeros(n)       # present current, noise included
    a_seen = np.zeros(n)    # sum of a over arrived inputs
    s2_seen = np.zeros(n)   # sum of s^2 over arrived inputs
    s2_grp = np.zeros(n)    # sum of s^2 over the present group
    fired = np.zeros(n, np.bool_)
    t_out[:] = np.inf
    n_fired = 0
    if has_y0:
        t_first = t[order[0]] if nv > 0 else t_end
        for i in range(n):
            if y0[i] > theta[i]:
                t_out[i] = 0.0
                fired[i] = True
                n_fired += 1
            y[i] = y0[i] * np.exp(-lam[i] * t_first) if leaky else y0[i]
        if n_fired == n:
            return nv
    k_tail = final_group_start(t, order, nv)
    k = 0
    while k < nv:
        tj = t[order[k]]
        k_next = add_group(t, order, k, nv, k_tail, a, s2, a_sum, s2_sum, noisy, key, table,
                           cur, a_seen, s2_seen, s2_grp)
        tn = t[order[k_next]] if k_next < nv else t_end
        dt = tn - tj
        hit = False
        if leaky and dt * lam_max < _SERIES_MAX:
            # expm1(x) by its series, x = -lam dt small: exact to ~|x|^5 / 720 relative.
            for i in range(n):
                x = -lam[i] * dt
                em1 = x * (1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + x * 0.25 * (1.0 + x * 0.2))))
                y_new[i] = y[i] - (cur[i] / g_leak[i] - y[i]) * em1
                hit |= (y_new[i] > theta[i]) & (not fired[i])
        elif leaky:
            for i in range(n):
                y_new[i] = y[i] - (cur[i] / g_leak[i] - y[i]) * np.expm1(-lam[i] * dt)
                hit |= (y_new[i] > theta[i]) & (not fired[i])
        else:
            for i in range(n):
                y_new[i] = y[i] + cur[i] * dt / c_eff[i]
                hit |= (y_new[i] > theta[i]) & (not fired[i])
        if hit:
            for i in range(n):
                if not fired[i] and y_new[i] > theta[i]:
                    if leaky:
                        r = g_leak[i] * (theta[i] - y[i]) / (cur[i] - g_leak[i] * y[i])
                        d = -(c_eff[i] / g_leak[i]) * np.log1p(-r)
                    else:
                        d = c_eff[i] * (theta[i] - y[i]) / cur[i]
                    t_out[i] = min(max(tj + d, tj), tn)
                    fired[i] = True
                    n_fired += 1
            if n_fired == n:
                break
        y, y_new = y_new, y
        k = k_next
    return nv


@nb.njit(parallel=True, cache=_CACHE)
def column_forward(t_in, a, s, g_leak, c_eff, theta, t_end, seed, sample_offset, v0=None):
    """Firing times (B, n) of one layer of leaky, noisy columns; inf = no crossing before t_end.

    t_in (B, K) input times (inf: never), a (K, n) signed drive currents, s (K, n) their read-noise
    std (all zero: noiseless), g_leak, c_eff, theta (n,) per neuron (theta > 0); seed (uint64) and
    sample_offset (the global index of row 0 of t_in) key the noise; v0 (B, n) the potentials at
    t = 0 (omitted: 0).
    """
    b_size, k_in = t_in.shape
    n = a.shape[1]
    t_out = np.empty((b_size, n))
    order = np.empty((b_size, k_in), np.int64)
    a_sum, s2, s2_sum, noisy = input_sums(a, s)
    leaky = bool(np.any(g_leak > 0.0))
    g = np.maximum(g_leak, _G_TINY) if leaky else g_leak
    base = _mix(np.uint64(seed))
    has_y0 = v0 is not None
    y0 = np.zeros((1, n)) if v0 is None else v0     # one row of zeros serves every sample
    for b in nb.prange(b_size):
        key = _mix(base + np.uint64(sample_offset + b))
        _column_one(t_in[b], a, s2, a_sum, s2_sum, g, c_eff, theta, t_end, leaky, noisy, key, t_out[b], order[b],
                    _TABLE, y0[b % y0.shape[0]], has_y0)
    return t_out


@nb.njit(cache=_CACHE)
def reset_normals(seed, sample_offset, b_size, n):
    """Standard normals (b_size, n), one per (sample, neuron), from the counter hash keyed by
    (seed, global sample index, neuron): the membranes' kT/C reset draws, independent of batching
    (seed: `hwmodel.chip.ktc_seed`, its own stream; read noise has another)."""
    out = np.empty((b_size, n))
    base = _mix(np.uint64(seed))
    for b in range(b_size):
        key = _mix(base + np.uint64(sample_offset + b))
        for i in range(n):
            out[b, i] = _normal(key + np.uint64(i), _TABLE)
    return out
