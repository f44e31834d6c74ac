"""Plain-numpy twin of `training.kernels`: the same maths, vectorised over neurons, no numba.

Same signatures and return values; `n_chunks` is accepted and ignored. Slower (no early exit),
kept as the reference the numba kernels are tested against and as a fallback backend.
"""
import numpy as np


def _sorted(t, t_end):
    order = np.argsort(t, kind="mergesort")
    nv = int(np.searchsorted(t[order], t_end, side="left"))
    ts = t[order[:nv]]
    t_next = np.append(ts[1:], t_end)
    return order, nv, ts, t_next


def forward(t_in, w, v_th, t_end):
    b_size, k_in = t_in.shape
    n = w.shape[1]
    t_out = np.full((b_size, n), np.inf)
    kf = np.zeros((b_size, n), np.int64)
    slope = np.zeros((b_size, n))
    order = np.empty((b_size, k_in), np.int64)
    n_valid = np.empty(b_size, np.int64)
    for b in range(b_size):
        o, nv, ts, t_next = _sorted(t_in[b], t_end)
        order[b], n_valid[b] = o, nv
        if nv == 0:
            continue
        ws = w[o[:nv]]
        s = np.cumsum(ws, axis=0)
        wt = np.cumsum(ws * ts[:, None], axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            tstar = (v_th + wt) / s
        # u(t_next) > v_th: fires before the next input (never when s <= 0: u does not rise)
        ok = s * t_next[:, None] - wt > v_th
        fired = ok.any(axis=0)
        k = np.argmax(ok, axis=0)
        cols = np.arange(n)
        t_out[b, fired] = tstar[k[fired], cols[fired]]
        kf[b, fired] = k[fired] + 1
        slope[b] = s[-1]
        slope[b, fired] = s[k[fired], cols[fired]]
    return t_out, order, n_valid, kf, slope


def forward_ordered(t_in, w, v_th, t_end, hint=None):
    """`forward` and the firing order np.argsort(t_out, kind="mergesort") (the hint is not needed:
    this twin always sorts)."""
    out = forward(t_in, w, v_th, t_end)
    return (*out, np.argsort(out[0], axis=1, kind="mergesort"))


def backward(t_in, w, order, kf, slope, t_f, delta, n_chunks=1, need_gt=True):
    b_size, k_in = t_in.shape
    gw = np.zeros_like(w)
    gt = np.zeros((b_size, k_in))
    for b in range(b_size):
        kmax = int(kf[b].max())
        if kmax == 0:
            continue
        o = order[b, :kmax]
        tj = t_in[b, o]
        causal = np.arange(kmax)[:, None] < kf[b][None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(kf[b] > 0, delta[b] / slope[b], 0.0)
        tf = np.where(kf[b] > 0, t_f[b], 0.0)   # silent neurons (t_f = inf) pass nothing, not 0 * inf = nan
        gw[o] -= causal * a[None, :] * (tf[None, :] - tj[:, None])
        if need_gt:
            gt[b, o] += (causal * a[None, :] * w[o]).sum(axis=1)
    return gw, gt


def _segments(t_in_b, w, order_b, nv, t_end):
    o = order_b[:nv]
    ts = t_in_b[o]
    t_next = np.append(ts[1:], t_end)
    ws = w[o]
    return o, ts, t_next, ws, np.cumsum(ws, axis=0), np.cumsum(ws * ts[:, None], axis=0)


def regularizer(t_in, w, order, n_valid, kind, theta, t_end, coef, n_chunks=1):
    b_size, k_in = t_in.shape
    values = np.zeros(b_size)
    gw = np.zeros_like(w)
    gt = np.zeros((b_size, k_in))
    for b in range(b_size):
        nv = int(n_valid[b])
        if nv == 0:
            continue
        o, ts, t_next, ws, s, wt = _segments(t_in[b], w, order[b], nv, t_end)
        lo, hi = ts[:, None], t_next[:, None]
        if kind == 0:
            with np.errstate(divide="ignore", invalid="ignore"):
                tc = (theta + wt) / s
            p = np.where(s > 0, np.maximum(lo, tc), np.where(s < 0, lo, np.where(-wt > theta, lo, hi)))
            q = np.where(s < 0, np.minimum(hi, tc), hi)
            q = np.maximum(p, q)
            seg_a = 0.5 * (q * q - p * p)
            seg_b = q - p
            values[b] = (s * seg_a - (wt + theta) * seg_b).sum()
            # suffix sums over segments k.. for each neuron
            suf_a = np.cumsum(seg_a[::-1], axis=0)[::-1]
            suf_b = np.cumsum(seg_b[::-1], axis=0)[::-1]
            gw[o] += coef * (suf_a - ts[:, None] * suf_b)
            gt[b, o] -= coef * (ws * suf_b).sum(axis=1)
        else:
            # u at the end of a zero-length segment (tied inputs) repeats the previous value:
            # skipped, so the maximiser is the first segment end with the largest value
            u_end = np.where((t_next > ts)[:, None], s * t_next[:, None] - wt, -np.inf)
            k = np.argmax(u_end, axis=0)
            best = u_end[k, np.arange(w.shape[1])]
            hit = best > max(theta, 0.0)
            values[b] = (best[hit] - theta).sum()
            causal = (np.arange(nv)[:, None] <= k[None, :]) & hit[None, :]
            tbest = t_next[k]
            gw[o] += coef * causal * (tbest[None, :] - ts[:, None])
            gt[b, o] -= coef * (causal * ws).sum(axis=1)
            # maximiser at the arrival of input k+1: it moves with that input (slope before it)
            at_input = hit & (k + 1 < nv)
            cols = np.nonzero(at_input)[0]
            np.add.at(gt[b], o[k[cols] + 1], coef * s[k[cols], cols])
    return values, gw, gt


def column_conduction(t_in, a, rates):
    b_size, k_in = t_in.shape
    values = np.zeros(b_size)
    g_rates = np.zeros_like(rates)
    g_tin = np.zeros((b_size, k_in))
    g_a = np.zeros_like(a)
    for b in range(b_size):
        with np.errstate(invalid="ignore"):
            d = a[b][None, :] - t_in[b][:, None]            # (K, n); -inf for a silent input
        on = d > 0.0
        dp = np.where(on, d, 0.0)
        values[b] = (rates * dp).sum()
        g_rates += dp
        g_tin[b] = -(rates * on).sum(axis=1)
        g_a[b] = (rates * on).sum(axis=0)
    return values, g_rates, g_tin, g_a
