"""Plain-numpy twin of `hwmodel.kernels`: the same maths vectorised over neurons, no numba.

Same signature and result as `column_forward` (the same hashed read-noise draws, the same initial
potentials v0) and `reset_normals`; kept as the reference the numba kernel is tested against. Slow:
one Python loop over each sample's input groups.
"""
import numpy as np
from scipy.special import ndtri

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_G_TINY = 1e-300


def _mix(z):
    with np.errstate(over="ignore"):
        z = np.asarray(z, dtype=np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _normals(key, n, table):
    """n standard normals from keys key + 0 .. key + n - 1 (see hwmodel.kernels._normal)."""
    with np.errstate(over="ignore"):
        h = _mix(key + np.arange(n, dtype=np.uint64))
    idx = (h >> np.uint64(48)).astype(np.int64)
    frac = ((h >> np.uint64(11)) & np.uint64((1 << 37) - 1)).astype(np.float64) * (1.0 / float(1 << 37))
    return table[idx] + frac * (table[idx + 1] - table[idx])


def _table(bits=16):
    m = 2 ** bits
    p = np.arange(m + 1) / m
    p[0], p[-1] = 0.25 / m, 1.0 - 0.25 / m
    return ndtri(p)


_TABLE = _table()


def column_forward(t_in, a, s, g_leak, c_eff, theta, t_end, seed, sample_offset, v0=None):
    b_size = t_in.shape[0]
    n = a.shape[1]
    t_out = np.full((b_size, n), np.inf)
    a_sum, s2_sum, noisy = input_sums(a, s)
    leaky = bool(np.any(g_leak > 0.0))
    g = np.maximum(g_leak, _G_TINY) if leaky else g_leak
    base = _mix(np.uint64(seed))
    for b in range(b_size):
        t = t_in[b]
        with np.errstate(over="ignore"):
            key = _mix(base + np.uint64(sample_offset + b))
        y = np.zeros(n)
        fired = np.zeros(n, bool)
        if v0 is not None:
            # fired at t = 0 if above theta; else decays (I = 0) to the first input, never crossing
            fired = v0[b] > theta
            t_out[b, fired] = 0.0
            nv = int(np.sum(t < t_end))
            t_first = t.min() if nv > 0 else t_end
            y = v0[b] * np.exp(-(g / c_eff) * t_first) if leaky else v0[b].copy()
            if fired.all():
                continue
        for tj, tn, cur in segments(t, a, s, a_sum, s2_sum, noisy, key, t_end):
            dt = tn - tj
            lam = g / c_eff
            if leaky and dt * lam.max() < 1e-3:
                x = -lam * dt
                em1 = x * (1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + x * 0.25 * (1.0 + x * 0.2))))
                y_new = y - (cur / g - y) * em1
            elif leaky:
                y_new = y - (cur / g - y) * np.expm1(-lam * dt)
            else:
                y_new = y + cur * dt / c_eff
            new = ~fired & (y_new > theta)
            if new.any():
                with np.errstate(divide="ignore", invalid="ignore"):
                    if leaky:
                        r = g * (theta - y) / (cur - g * y)
                        d = -(c_eff / g) * np.log1p(-r)
                    else:
                        d = c_eff * (theta - y) / cur
                t_out[b, new] = np.minimum(np.maximum(tj + d[new], tj), tn)
                fired |= new
                if fired.all():
                    break
            y = y_new
    return t_out


def reset_normals(seed, sample_offset, b_size, n):
    """Standard normals (b_size, n) keyed by (seed, global sample index, neuron), as `kernels.reset_normals`."""
    base = _mix(np.uint64(seed))
    out = np.empty((b_size, n))
    for b in range(b_size):
        with np.errstate(over="ignore"):
            key = _mix(base + np.uint64(sample_offset + b))
        out[b] = _normals(key, n, _TABLE)
    return out


def input_sums(a, s):
    """(a summed over inputs, s^2 summed over inputs, whether any read noise): what `segments` needs."""
    return a.sum(axis=0), (s * s).sum(axis=0), bool(np.any(s > 0.0))


def segments(t, a, s, a_sum, s2_sum, noisy, key, t_end):
    """(t_j, t_next, present current (n,)) for every input group of one sample, in time order: its tie
    group, or from the final tie group on (every input arrives) the total less what has arrived,
    with the group's read noise (one normal per neuron with the group's variance, keyed by its first
    input); t_next is the next group's time or t_end. The one event loop of the numpy column
    references (`column_forward`, hwmodel.coupled) and the numba kernels' `add_group`."""
    n = a.shape[1]
    order = np.argsort(t, kind="mergesort")
    nv = int(np.sum(t < t_end))
    k_tail = nv
    if nv == len(t) and nv > 1:
        k_tail = int(np.searchsorted(t[order], t[order[-1]], side="left"))
    cur, a_seen, s2_seen = np.zeros(n), np.zeros(n), np.zeros(n)
    k = 0
    while k < nv:
        j0 = order[k]
        tj = t[j0]
        if k == k_tail and k < nv - 1:
            cur = cur + (a_sum - a_seen)
            s2_grp = np.maximum(s2_sum - s2_seen, 0.0)
            k_next = nv
        else:
            k_next = k
            s2_grp = np.zeros(n)
            while k_next < nv and t[order[k_next]] == tj:
                j = order[k_next]
                cur = cur + a[j]
                a_seen = a_seen + a[j]
                v = s[j] * s[j]
                s2_grp = s2_grp + v
                s2_seen = s2_seen + v
                k_next += 1
        if noisy:
            with np.errstate(over="ignore"):
                kg = _mix(key + np.uint64(j0))
            cur = cur + np.sqrt(s2_grp) * _normals(kg, n, _TABLE)
        yield tj, (t[order[k_next]] if k_next < nv else t_end), cur
        k = k_next
