"""Numba kernels of one leaky TTFS layer: exact firing times, their gradients and the end potential.

Neuron i integrates step currents and leaks, dv/dt = sum_{j: t_j < t} w_ji - lam_i v, v(0) = 0,
and fires once when v first exceeds v_th_i in [0, t_end] (docs/model.md, The leaky neuron); lam = 0
is the ideal neuron of `training.kernels`, whose conventions these kernels keep (`order`, `n_valid`,
`kf`, `slope`; the twin is `training.leaky_ref`). With the inputs sorted, the potential after the
k-th input is v_k + (S_k - lam v_k) phi(lam, t - t_k): monotone on each segment, so a neuron fires
in a segment iff the segment's end is above threshold, at a closed-form time. The state (v, S) is
updated segment by segment, which is stable for every lam (no exp(+lam t)).

Gradients of a firing time t_f by implicit differentiation of v(t_f) = v_th over the causal set,
with slope = S - lam v_th:
dt_f/dw_ji = -phi(lam, t_f - t_j) / slope, dt_f/dt_j = w_ji exp(-lam (t_f - t_j)) / slope,
dt_f/dlam = -sum_j w_ji dphi_dlam(lam, t_f - t_j) / slope. The cost is about one evaluation of
the elementary functions (`leak_math`) per neuron and distinct input time, each way; docs/model.md
(The leaky neuron, Speed) says how the loops are arranged so that most of them vectorise.
"""
import math

import numba as nb
import numpy as np

from infra.errors import DataError
from infra.shapes import check_shape
from training import leak_math as lm
from training.kernels import _by_kf_descending, _sort_inputs, _tail_start

_CACHE = True


def _f64(x):
    return np.ascontiguousarray(x, dtype=np.float64)


def check_layer(t_in, w, lam, v_th=None, lam_any_sign=False, **per_output):
    """(t_in, w, lam, v_th) as contiguous float64 after checking shapes (and lam >= 0 unless
    `lam_any_sign`, for the regularisers, whose formulas hold for lam < 0 too; v_th > 0):
    t_in (B, K), w (K, n), lam (n,), v_th (n,) (None: not checked), and each array of
    `per_output` (name -> array) of shape (B, n). Raises DataError naming the array that is wrong."""
    check_shape("input spike times", t_in, (None, None))
    b_size, k_in = np.shape(t_in)
    check_shape("weights", w, (k_in, None), f"one row per input ({k_in})")
    n = np.shape(w)[1]
    check_shape("leak lam", lam, (n,), f"one leak per neuron ({n})")
    if v_th is not None:
        check_shape("thresholds v_th", v_th, (n,), f"one threshold per neuron ({n})")
    for name, x in per_output.items():
        check_shape(name, x, (b_size, n), "one entry per sample and neuron")
    t_in, w, lam = _f64(t_in), _f64(w), _f64(lam)
    if not np.all(np.isfinite(lam) & ((lam >= 0.0) | lam_any_sign)):
        raise DataError("leak lam must be finite and >= 0 for every neuron")
    if v_th is not None:
        v_th = _f64(v_th)
        if not np.all(np.isfinite(v_th) & (v_th > 0.0)):
            raise DataError("thresholds v_th must be finite and > 0 for every neuron")
    return t_in, w, lam, v_th


@nb.njit(cache=_CACHE)
def _segment_all(s, v, v_next, lam, v_th, fired, dt, short):
    """v_next = v + (S - lam v) phi(lam, dt) for every neuron, returns how many not yet fired end
    above threshold. Branch-free, so it vectorises when `short` (lam dt < PAIR_SERIES_Z: the series)."""
    n_hit = 0
    if short:
        for i in range(s.shape[0]):
            ph = lm.phi_and_dphi_dlam_small(lam[i], dt)[0]
            x = v[i] + (s[i] - lam[i] * v[i]) * ph
            v_next[i] = x
            n_hit += (x > v_th[i]) & (fired[i] == 0)
    else:
        for i in range(s.shape[0]):
            x = v[i] + (s[i] - lam[i] * v[i]) * lm.phi(lam[i], dt)
            v_next[i] = x
            n_hit += (x > v_th[i]) & (fired[i] == 0)
    return n_hit


@nb.njit(cache=_CACHE)
def _fire(i, tj, dt, s, v, lam, v_th, kf_i, t_out, kf, slope):
    """Neuron i crosses v_th in the segment from tj (length dt) where it starts at v[i]."""
    d = s[i] - lam[i] * v[i]
    t_out[i] = tj + min(lm.time_to_reach(lam[i], (v_th[i] - v[i]) / d), dt)
    kf[i] = kf_i
    slope[i] = s[i] - lam[i] * v_th[i]


@nb.njit(cache=_CACHE)
def _forward_one(t, w, colsum, lam, lam_max, v_th, t_end, t_out, kf, slope, order):
    n = w.shape[1]
    nv = _sort_inputs(t, t_end, order)
    s = np.zeros(n)
    v = np.zeros(n)
    v_next = np.zeros(n)
    fired = np.zeros(n, np.uint8)
    t_out[:] = np.inf
    kf[:] = 0
    # While many have not fired, every segment moves all neurons in a loop that vectorises; once
    # fewer than a quarter remain, only those (`live`, in index order), and fired ones stop.
    live = np.arange(n)
    n_live = n
    sparse = False
    k_tail = _tail_start(t, order, nv)
    for k in range(nv):
        j = order[k]
        tj = t[j]
        tail = k == k_tail and k < nv - 1
        tn = t_end if (tail or k + 1 == nv) else t[order[k + 1]]
        kf_k = nv if tail else k + 1
        dt = tn - tj
        if not sparse:
            if tail:    # the final tie group: its weights are colsum - S
                s[:] = colsum
            else:
                row = w[j]
                for i in range(n):
                    s[i] += row[i]
            if dt > 0.0:    # zero-length segments (tied inputs) move nothing
                if _segment_all(s, v, v_next, lam, v_th, fired, dt, lam_max * dt < lm.PAIR_SERIES_Z):
                    for i in range(n):
                        if fired[i] == 0 and v_next[i] > v_th[i]:
                            _fire(i, tj, dt, s, v, lam, v_th, kf_k, t_out, kf, slope)
                            fired[i] = 1
                            n_live -= 1
                    if n_live == 0:
                        return nv
                v, v_next = v_next, v
                if 4 * n_live < n:
                    sparse = True
                    p = 0
                    for i in range(n):
                        if fired[i] == 0:
                            live[p] = i
                            p += 1
        else:
            if tail:
                for p in range(n_live):
                    s[live[p]] = colsum[live[p]]
            else:
                row = w[j]
                for p in range(n_live):
                    s[live[p]] += row[live[p]]
            if dt > 0.0:
                kept = 0
                for p in range(n_live):
                    i = live[p]
                    vn = v[i] + (s[i] - lam[i] * v[i]) * lm.phi(lam[i], dt)
                    if vn > v_th[i]:
                        _fire(i, tj, dt, s, v, lam, v_th, kf_k, t_out, kf, slope)
                        fired[i] = 1
                    else:
                        v[i] = vn
                        live[kept] = i
                        kept += 1
                n_live = kept
                if n_live == 0:
                    return nv
        if tail:
            break
    for i in range(n):
        if fired[i] == 0:
            slope[i] = s[i] - lam[i] * v[i]
    return nv


@nb.njit(parallel=True, cache=_CACHE)
def _forward(t_in, w, lam, v_th, t_end):
    b_size, k_in = t_in.shape
    n = w.shape[1]
    t_out = np.empty((b_size, n))
    kf = np.empty((b_size, n), np.int64)
    slope = np.empty((b_size, n))
    order = np.empty((b_size, k_in), np.int64)
    n_valid = np.empty(b_size, np.int64)
    colsum = w.sum(axis=0)
    lam_max = lam.max() if n else 0.0
    for b in nb.prange(b_size):
        n_valid[b] = _forward_one(t_in[b], w, colsum, lam, lam_max, v_th, t_end, t_out[b], kf[b], slope[b],
                                  order[b])
    return t_out, order, n_valid, kf, slope


def forward(t_in, w, lam, v_th, t_end):
    """Exact firing times of one leaky layer for a batch: (t_out, order, n_valid, kf, slope), as
    `kernels.forward`; slope = v'(t_f) = S - lam v_th when fired, v'(t_end) from the left when silent."""
    t_in, w, lam, v_th = check_layer(t_in, w, lam, v_th)
    return _forward(t_in, w, lam, v_th, float(t_end))


@nb.njit(cache=_CACHE)
def _group_end(t, o, k, k_cap):
    """End of the run of inputs tied with input k in `order`, at most k_cap."""
    tg = t[o[k]]
    k2 = k + 1
    while k2 < k_cap and t[o[k2]] == tg:
        k2 += 1
    return k2


@nb.njit(cache=_CACHE)
def _add_row(g_row, g_lam, row, c_phi, c_lam, s_row, track):
    """g_row += c_phi, g_lam += c_lam row (and s_row += row if track) over a block of neurons
    (contiguous: vectorises)."""
    if track:
        for q in range(row.shape[0]):
            g_row[q] += c_phi[q]
            g_lam[q] += c_lam[q] * row[q]
            s_row[q] += row[q]
    else:
        for q in range(row.shape[0]):
            g_row[q] += c_phi[q]
            g_lam[q] += c_lam[q] * row[q]


@nb.njit(cache=_CACHE)
def _shared_run(t, o, kf_b):
    """Start of the final run of tied inputs when some neuron's causal set holds every input (MNIST's
    black pixels all spike at t_in and most first-layer neurons fire after them), else K."""
    k_in = o.shape[0]
    if k_in < 2 or kf_b.max() < k_in:
        return k_in
    t_last = t[o[k_in - 1]]
    kg = k_in - 1
    while kg > 0 and t[o[kg - 1]] == t_last:
        kg -= 1
    return kg


@nb.njit(cache=_CACHE)
def _step(lam_i, gap, p_, d_, e_, x_, pg, dg, eg):
    """(phi, dphi_dlam, exp(-lam x), x) at x + gap from their values at x (x = t_f - t, moving to an
    earlier input), given (pg, dg, eg) = (phi, dphi_dlam, exp(-lam gap)): phi(x + y) = phi(x) +
    E(x) phi(y), dphi(x + y) = dphi(x) + E(x) (dphi(y) - x phi(y)), E(x + y) = E(x) E(y). Only
    sums of terms of one sign and products by E <= 1: stable for every lam."""
    return p_ + e_ * pg, d_ + e_ * (dg - x_ * pg), e_ * eg, x_ + gap


@nb.njit(cache=_CACHE)
def _step_short(lam_i, gap, p_, d_, e_, x_):
    """`_step` for lam gap < leak_math.PAIR_SERIES_Z: no exp, no branch (a loop of it vectorises)."""
    pg, dg = lm.phi_and_dphi_dlam_small(lam_i, gap)
    return _step(lam_i, gap, p_, d_, e_, x_, pg, dg, 1.0 - lam_i * pg)


@nb.njit(cache=_CACHE)
def _step_long(lam_i, gap, p_, d_, e_, x_):
    pg, dg = lm.phi_and_dphi_dlam(lam_i, gap)
    return _step(lam_i, gap, p_, d_, e_, x_, pg, dg, math.exp(-lam_i * gap))


@nb.njit(cache=_CACHE)
def _step_all(lam_b, gap, short, p_, d_, e_, x_):
    """`_step` for every neuron of a block (the branch on `short` outside the loops)."""
    if short:
        for q in range(lam_b.shape[0]):
            p_[q], d_[q], e_[q], x_[q] = _step_short(lam_b[q], gap, p_[q], d_[q], e_[q], x_[q])
    else:
        for q in range(lam_b.shape[0]):
            p_[q], d_[q], e_[q], x_[q] = _step_long(lam_b[q], gap, p_[q], d_[q], e_[q], x_[q])


@nb.njit(cache=_CACHE)
def _step_some(lam, gap, short, idx, n_idx, i0, p_, d_, e_, x_):
    """`_step` for the neurons idx[:n_idx] (arrays indexed by i - i0)."""
    for p in range(n_idx):
        q = idx[p] - i0
        if short:
            p_[q], d_[q], e_[q], x_[q] = _step_short(lam[idx[p]], gap, p_[q], d_[q], e_[q], x_[q])
        else:
            p_[q], d_[q], e_[q], x_[q] = _step_long(lam[idx[p]], gap, p_[q], d_[q], e_[q], x_[q])


@nb.njit(cache=_CACHE)
def _grad_block(t_in, w, colsum, lam, lam_max, order, kf, a, t_f, kg, i0, i1, gw, glam):
    """gw[:, i0:i1] += sum_b -a_i phi(lam_i, t_f_i - t_j) and glam[i0:i1] += sum_b -a_i sum_j w_ji
    dphi_dlam(lam_i, t_f_i - t_j) over each neuron's causal set, summed in sample order (any split
    of the neurons gives the same numbers).

    The inputs are swept from the latest causal one back to the first, in runs of tied inputs
    inside every live causal set: a neuron joins at its last causal input, where phi and its
    lam-derivative are evaluated once, and is moved to each earlier run by `_step` (the gaps are
    short, so mostly a branch-free series). A row updates the block's neurons in its causal sets
    through an index list when they are few, else all of them with zero coefficients for the
    others (the same sum either way).

    The neurons F whose causal set is every input share the final run kg..K (`_shared_run`):
    its rows all get r_i = -a_i phi(lam_i, t_f_i - t_last), added to every row once at the end
    (r_all) and taken off the rows before the run, and its lam term uses the run's weight sum
    colsum - (rows before it), so a sample does not touch the run's rows at all.
    """
    b_size, k_in = t_in.shape
    m = i1 - i0
    lam_b = lam[i0:i1]
    p_ = np.zeros(m)        # per neuron of the block, at the current run: phi, dphi_dlam, exp, x
    d_ = np.zeros(m)
    e_ = np.ones(m)
    x_ = np.zeros(m)
    a_live = np.zeros(m)    # a_i once neuron i has joined, else 0
    r_f = np.zeros(m)       # r_i for F, else 0
    not_f = np.ones(m)
    lam_f = np.zeros(m)
    c_phi = np.zeros(m)
    c_lam = np.zeros(m)
    s_acc = np.zeros(m)     # F's weight sums over the rows before the shared run
    r_all = np.zeros(m)
    for b in range(b_size):
        idx = _by_kf_descending(kf[b], i0, i1)
        n_idx = idx.shape[0]
        if n_idx == 0:
            continue
        t = t_in[b]
        o = order[b]
        g0 = kg[b]
        n_f = 0
        if g0 < k_in:
            while n_f < n_idx and kf[b, idx[n_f]] == k_in:
                n_f += 1
        live = 0
        k2 = kf[b, idx[0]]
        t_cur = t[o[k2 - 1]]
        while k2 > 0:
            tg = t[o[k2 - 1]]
            gap = t_cur - tg
            t_cur = tg
            if live and gap > 0.0:
                short = lam_max * gap < lm.PAIR_SERIES_Z
                if 4 * live > m:
                    _step_all(lam_b, gap, short, p_, d_, e_, x_)
                else:
                    _step_some(lam, gap, short, idx, live, i0, p_, d_, e_, x_)
            while live < n_idx and kf[b, idx[live]] >= k2:
                i = idx[live]
                q = i - i0
                x_[q] = t_f[b, i] - tg
                p_[q], d_[q] = lm.phi_and_dphi_dlam(lam[i], x_[q])
                e_[q] = math.exp(-lam[i] * x_[q])
                a_live[q] = a[b, i]
                if live < n_f:
                    r_f[q] = -a[b, i] * p_[q]
                    r_all[q] += r_f[q]
                    lam_f[q] = -a[b, i] * d_[q]
                    not_f[q] = 0.0
                live += 1
            k1 = k2 - 1
            while k1 > 0 and t[o[k1 - 1]] == tg:
                k1 -= 1
            if live < n_idx:
                k1 = max(k1, kf[b, idx[live]])
            in_run = n_f > 0 and k1 >= g0       # F take these rows as their shared one
            track = n_f > 0 and not in_run
            dense = 4 * live > m
            if dense:
                if in_run:
                    for q in range(m):
                        c_phi[q] = -a_live[q] * p_[q] * not_f[q]
                        c_lam[q] = -a_live[q] * d_[q] * not_f[q]
                else:
                    for q in range(m):
                        c_phi[q] = -a_live[q] * p_[q] - r_f[q]
                        c_lam[q] = -a_live[q] * d_[q]
            else:
                for p in range(live):
                    q = idx[p] - i0
                    if in_run:
                        c_phi[q] = -a_live[q] * p_[q] * not_f[q]
                        c_lam[q] = -a_live[q] * d_[q] * not_f[q]
                    else:
                        c_phi[q] = -a_live[q] * p_[q] - r_f[q]
                        c_lam[q] = -a_live[q] * d_[q]
            for kk in range(k1, k2):
                j = o[kk]
                if dense:
                    _add_row(gw[j, i0:i1], glam[i0:i1], w[j, i0:i1], c_phi, c_lam, s_acc, track)
                else:
                    for p in range(live):
                        i = idx[p]
                        q = i - i0
                        gw[j, i] += c_phi[q]
                        glam[i] += c_lam[q] * w[j, i]
                        if track and p < n_f:
                            s_acc[q] += w[j, i]
            k2 = k1
        for p in range(n_f):
            i = idx[p]
            glam[i] += lam_f[i - i0] * (colsum[i] - s_acc[i - i0])
        p_[:] = 0.0
        d_[:] = 0.0
        e_[:] = 1.0
        x_[:] = 0.0
        a_live[:] = 0.0
        r_f[:] = 0.0
        not_f[:] = 1.0
        lam_f[:] = 0.0
        c_phi[:] = 0.0
        c_lam[:] = 0.0
        s_acc[:] = 0.0
    for j in range(k_in):
        for q in range(m):
            gw[j, i0 + q] += r_all[q]


@nb.njit(cache=_CACHE)
def _gt_one(t, w, lam, lam_max, o, kf_b, a_b, tf_b, gt_b):
    """gt_b[j] = sum over the neurons i whose causal set holds j of a_i w_ji exp(-lam_i (t_f_i - t_j)),
    swept backwards as `_grad_block` (exp(-lam x) moved from run to run by `_step`)."""
    n = kf_b.shape[0]
    idx = _by_kf_descending(kf_b, 0, n)
    n_idx = idx.shape[0]
    if n_idx == 0:
        return
    p_ = np.zeros(n)
    d_ = np.zeros(n)
    e_ = np.ones(n)
    x_ = np.zeros(n)
    a_live = np.zeros(n)    # a_i once neuron i has joined, else 0
    c_exp = np.zeros(n)     # a_live exp(-lam x)
    live = 0
    k2 = kf_b[idx[0]]
    t_cur = t[o[k2 - 1]]
    while k2 > 0:
        tg = t[o[k2 - 1]]
        gap = t_cur - tg
        t_cur = tg
        dense = 4 * live > n
        if live and gap > 0.0:
            short = lam_max * gap < lm.PAIR_SERIES_Z
            if dense:
                _step_all(lam, gap, short, p_, d_, e_, x_)
                for i in range(n):
                    c_exp[i] = a_live[i] * e_[i]
            else:
                _step_some(lam, gap, short, idx, live, 0, p_, d_, e_, x_)
                for p in range(live):
                    c_exp[idx[p]] = a_live[idx[p]] * e_[idx[p]]
        while live < n_idx and kf_b[idx[live]] >= k2:
            i = idx[live]
            x_[i] = tf_b[i] - tg
            e_[i] = math.exp(-lam[i] * x_[i])
            a_live[i] = a_b[i]
            c_exp[i] = a_b[i] * e_[i]
            live += 1
        k1 = k2 - 1
        while k1 > 0 and t[o[k1 - 1]] == tg:
            k1 -= 1
        if live < n_idx:
            k1 = max(k1, kf_b[idx[live]])
        dense = 4 * live > n
        for kk in range(k1, k2):
            j = o[kk]
            row = w[j]
            acc = 0.0
            if dense:
                for i in range(n):
                    acc += c_exp[i] * row[i]
            else:
                for p in range(live):
                    acc += c_exp[idx[p]] * row[idx[p]]
            gt_b[j] = acc
        k2 = k1


@nb.njit(parallel=True, cache=_CACHE)
def _backward_sweep(t_in, w, lam, order, kf, a, t_f, need_gt, n_blocks):
    b_size, k_in = t_in.shape
    n = w.shape[1]
    kg = np.empty(b_size, np.int64)
    for b in nb.prange(b_size):
        kg[b] = _shared_run(t_in[b], order[b], kf[b])
    colsum = w.sum(axis=0)
    lam_max = lam.max() if n else 0.0
    gw = np.zeros((k_in, n))
    glam = np.zeros(n)
    n_blocks = max(1, min(n_blocks, n))
    for c in nb.prange(n_blocks):
        _grad_block(t_in, w, colsum, lam, lam_max, order, kf, a, t_f, kg, c * n // n_blocks,
                    (c + 1) * n // n_blocks, gw, glam)
    gt = np.zeros((b_size, k_in))
    if need_gt:
        for b in nb.prange(b_size):
            _gt_one(t_in[b], w, lam, lam_max, order[b], kf[b], a[b], t_f[b], gt[b])
    return gw, gt, glam


def backward(t_in, w, lam, order, kf, slope, t_f, delta, n_chunks, need_gt=True):
    """Chain rule through one leaky layer: (dL/dw (K, n), dL/dt_in (B, K), dL/dlam (n,)) from
    delta = dL/dt_out, for every (b, i) with kf > 0 through the first kf inputs of `order` (the
    caller may pass kf = n_valid, t_f = t_end and its own slope for a silent output neuron, as
    `network.gradients` does). dL/dw and dL/dlam are split over `n_chunks` blocks of neurons, each
    summed in sample order, so the result does not depend on it (nor on the thread count).
    dL/dt_in is zero (not computed) when need_gt is False."""
    t_in, w, lam, _ = check_layer(t_in, w, lam, kf=kf, slope=slope, t_f=t_f, delta=delta)
    check_shape("order", order, t_in.shape)
    fired = kf > 0
    a = np.zeros(delta.shape)
    np.divide(delta, slope, out=a, where=fired)
    t_f = np.where(fired, t_f, 0.0)
    return _backward_sweep(t_in, w, lam, np.ascontiguousarray(order, dtype=np.int64),
                           np.ascontiguousarray(kf, dtype=np.int64), a, t_f, need_gt, int(n_chunks))


@nb.njit(cache=_CACHE)
def _end_one(t, w, colsum, lam, t_end, order, v_out):
    """v_out[i] = sum over tied runs g of arrived inputs of phi(lam_i, t_end - t_g) sum_{j in g} w_ji."""
    n = w.shape[1]
    nv = _sort_inputs(t, t_end, order)
    kt = _tail_start(t, order, nv)
    s = np.zeros(n)         # weights of the runs taken so far
    wg = np.zeros(n)
    v_out[:] = 0.0
    k = 0
    while k < nv:
        tg = t[order[k]]
        if k == kt:         # the final tie group: its weights are colsum - S
            for i in range(n):
                wg[i] = colsum[i] - s[i]
            k2 = nv
        else:
            k2 = _group_end(t, order, k, nv)
            wg[:] = 0.0
            for kk in range(k, k2):
                row = w[order[kk]]
                for i in range(n):
                    wg[i] += row[i]
            for i in range(n):
                s[i] += wg[i]
        x = t_end - tg
        for i in range(n):
            v_out[i] += wg[i] * lm.phi(lam[i], x)
        k = k2
    return nv


@nb.njit(parallel=True, cache=_CACHE)
def _end_potential(t_in, w, lam, t_end):
    b_size, k_in = t_in.shape
    v_end = np.empty((b_size, w.shape[1]))
    order = np.empty((b_size, k_in), np.int64)
    n_valid = np.empty(b_size, np.int64)
    colsum = w.sum(axis=0)
    for b in nb.prange(b_size):
        n_valid[b] = _end_one(t_in[b], w, colsum, lam, t_end, order[b], v_end[b])
    return v_end, order, n_valid


def end_potential(t_in, w, lam, t_end):
    """u_i(t_end) (B, n): the unreset potential at the window's end, from the inputs that arrived."""
    t_in, w, lam, _ = check_layer(t_in, w, lam)
    return _end_potential(t_in, w, lam, float(t_end))[0]


@nb.njit(parallel=True, cache=_CACHE)
def _sort_batch(t_in, t_end):
    """(order, n_valid) of every sample, as `forward` returns them."""
    b_size, k_in = t_in.shape
    order = np.empty((b_size, k_in), np.int64)
    n_valid = np.empty(b_size, np.int64)
    for b in nb.prange(b_size):
        n_valid[b] = _sort_inputs(t_in[b], t_end, order[b])
    return order, n_valid


def end_potential_backward(t_in, w, lam, t_end, g, n_chunks):
    """(dR/dw, dR/dt_in, dR/dlam) of R = sum_b,i g[b, i] u_i(t_end): the firing-time sweep of
    `backward` with every arrived input causal, t_f = t_end and a = -g (d u / d theta = -slope
    d t_f / d theta there)."""
    t_in, w, lam, _ = check_layer(t_in, w, lam, g=g)
    order, n_valid = _sort_batch(t_in, float(t_end))
    kf = np.ascontiguousarray(np.broadcast_to(n_valid[:, None], g.shape))
    t_f = np.full(g.shape, float(t_end))
    return _backward_sweep(t_in, w, lam, order, kf, -_f64(g), t_f, True, int(n_chunks))
