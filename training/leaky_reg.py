"""Numba kernel of the sparse-firing regularisers on the leaky unreset potential (docs/regularizers.md).

The potential of neuron i, never reset, is u_i(t) = sum_{j: t_j < t} w_ij phi(lam_i, t - t_j) on
[0, t_end] (training.leak_math); lam = 0 is training.kernels.regularizer. One forward sweep over the
sorted inputs carries (u, S) per neuron from segment end to segment end (stable for every lam: on
the segment after input k, u = u_k + (S_k - lam u_k) phi(lam, t - t_k), monotone), and gives the
values and, for M-SSR and the membrane loss, each neuron's set {u > theta} as a few merged intervals.
The gradients then follow from closed forms at every distinct input time t_m, with no recursion
backwards in time (which would need exp(+lam t) or a per-segment store):

- area: dR/dw_ji = sum over intervals [a, b] after t_j of psi(b - t_j) - psi(max(a, t_j) - t_j),
  dR/dt_j = -w_j . (phi(b - t_j) - phi(a' - t_j)), dR/dlam_i = sum_j w_ji (dpsi_dlam(b - t_j) - ...);
- peak (maximiser t*): dR/dw_ji = phi(t* - t_j), dR/dt_j = -w_ji exp(-lam (t* - t_j)),
  dR/dlam_i = sum_j w_ji dphi_dlam(t* - t_j), plus dR/dt_j* = u'(t*-) when t* is input j*'s arrival.

Conventions (ties, zero-length segments, the final tie group as one segment with matrix-product
gradients, REG_CHUNKS interleaved parts of the batch) are those of training.kernels.regularizer.
"""
import math

import numba as nb
import numpy as np

from infra.shapes import check_shape
from training import leak_math as lm
from training.kernels import REG_CHUNKS, _tail_start
from training.leaky import _group_end, check_layer

_CACHE = True


@nb.njit(cache=_CACHE)
def _piece(lam, v, c, u_hi, theta, length):
    """(xp, xq): the part of [0, length] where v + c phi(lam, x) > theta (xp == xq if none), u_hi
    being its value at x = length; the potential is monotone there, so it is one interval at the
    start or at the end."""
    if c > 0.0:
        if v >= theta:
            return 0.0, length
        if u_hi > theta:
            return min(lm.time_to_reach(lam, (theta - v) / c), length), length
        return length, length
    if c < 0.0:
        if v <= theta:
            return 0.0, 0.0
        if u_hi >= theta:
            return 0.0, length
        return 0.0, min(lm.time_to_reach(lam, (v - theta) / -c), length)
    return (0.0, length) if v > theta else (0.0, 0.0)


@nb.njit(cache=_CACHE, inline="always")
def _close_interval(i, open_a, open_b, iv_neuron, iv_a, iv_b, n_iv, cap):
    """Store neuron i's open interval (if it has one) as entry n_iv; the new count, or -1 when
    the buffer is full (the caller retries with more room)."""
    if math.isnan(open_b[i]):
        return n_iv
    if n_iv == cap:
        return -1
    iv_neuron[n_iv] = i
    iv_a[n_iv] = open_a[i]
    iv_b[n_iv] = open_b[i]
    return n_iv + 1


@nb.njit(cache=_CACHE)
def _sweep_one(t, w, colsum, lam, order, nv, kind, theta, t_end, s, u_best, k_best, t_best, s_best,
               iv_neuron, iv_a, iv_b):
    """The forward sweep of one sample: returns (value, n_iv).

    kind 0: the intervals of {u_i > theta_i} in iv_* (the first n_iv entries, each neuron's in time
    order), adjacent pieces merged; n_iv = -1 if they do not fit (the caller retries with more room:
    the buffers are not regrown in the loop, which would cost a reference count per neuron).
    kind 1: u_best, k_best (inputs arrived at the maximiser, the first segment end with the largest
    u, u(0) = 0 otherwise), t_best and s_best = u'(t*-).
    `s` ends as the sum of every arrived input's weights.
    """
    n = w.shape[1]
    kt = _tail_start(t, order, nv)
    v = np.zeros(n)
    s[:] = 0.0
    total = 0.0
    cap = iv_a.shape[0]
    n_iv = 0
    open_a = np.full(n, np.nan)     # start of the interval still open at the current time
    open_b = np.full(n, np.nan)
    if kind == 1:
        u_best[:] = 0.0
        k_best[:] = 0
        t_best[:] = 0.0
        s_best[:] = 0.0
    k = 0
    while k < nv:
        tk = t[order[k]]
        if k == kt:
            g = nv
            s[:] = colsum
        else:
            g = _group_end(t, order, k, nv)
            for m in range(k, g):
                row = w[order[m]]
                for i in range(n):
                    s[i] += row[i]
        tn = t[order[g]] if g < nv else t_end
        length = tn - tk
        for i in range(n):
            li = lam[i]
            c = s[i] - li * v[i]
            u_hi = v[i] + c * lm.phi(li, length)
            if kind == 0:
                xp, xq = _piece(li, v[i], c, u_hi, theta[i], length)
                if xq > xp:
                    ps = lm.psi(li, xq) if xp == 0.0 else lm.psi(li, xq) - lm.psi(li, xp)
                    total += (v[i] - theta[i]) * (xq - xp) + c * ps
                    p = tk if xp == 0.0 else tk + xp
                    q = tn if xq == length else tk + xq
                    if open_b[i] == p:
                        open_b[i] = q
                    else:
                        n_iv = _close_interval(i, open_a, open_b, iv_neuron, iv_a, iv_b, n_iv, cap)
                        if n_iv < 0:
                            return total, -1
                        open_a[i] = p
                        open_b[i] = q
            elif u_hi > u_best[i]:
                u_best[i] = u_hi
                k_best[i] = g
                t_best[i] = tn
                s_best[i] = s[i] - li * u_hi
            v[i] = u_hi
        k = g
    if kind == 0:
        for i in range(n):
            n_iv = _close_interval(i, open_a, open_b, iv_neuron, iv_a, iv_b, n_iv, cap)
            if n_iv < 0:
                return total, -1
    else:
        for i in range(n):
            if u_best[i] > theta[i]:
                total += u_best[i] - theta[i]
            else:
                k_best[i] = 0
    return total, n_iv


@nb.njit(cache=_CACHE)
def _by_neuron(n, n_iv, iv_neuron, iv_a, iv_b):
    """The intervals regrouped per neuron (CSR: neuron i's are start[i]..start[i+1], in time order)."""
    start = np.zeros(n + 1, np.int64)
    for r in range(n_iv):
        start[iv_neuron[r] + 1] += 1
    for i in range(n):
        start[i + 1] += start[i]
    fill = start[:n].copy()
    a = np.empty(n_iv)
    b = np.empty(n_iv)
    for r in range(n_iv):
        i = iv_neuron[r]
        a[fill[i]] = iv_a[r]
        b[fill[i]] = iv_b[r]
        fill[i] += 1
    return start, a, b


@nb.njit(cache=_CACHE)
def _interval_sums(lam, start, a, b):
    """psi, phi and dpsi_dlam of each interval's length (the rows of the inputs before it use them)."""
    n_iv = a.shape[0]
    out = np.empty((3, n_iv))
    for i in range(lam.shape[0]):
        for r in range(start[i], start[i + 1]):
            x = b[r] - a[r]
            out[0, r] = lm.psi(lam[i], x)
            out[1, r] = lm.phi(lam[i], x)
            out[2, r] = lm.dpsi_dlam(lam[i], x)
    return out


@nb.njit(cache=_CACHE)
def _area_rows(lam, tk, start, ptr, a, b, iv_sums, coef, f, e, d):
    """At time tk, per neuron: f = coef dR/dw (one row), e = coef * the time gradient's factor,
    d = coef * the lam gradient's factor, from the intervals of {u > theta} that end after tk.

    An interval [a, b] that starts later, at y = a - tk, needs no function of b - tk: with
    phi(y + x) = phi(y) + exp(-lam y) phi(x) its integrals are (b - a) phi(y) + exp(-lam y) psi(b - a)
    and exp(-lam y) phi(b - a) (and their lam-derivative), from the interval's own sums.
    """
    for i in range(lam.shape[0]):
        li = lam[i]
        while ptr[i] < start[i + 1] and b[ptr[i]] <= tk:
            ptr[i] += 1
        fi = 0.0
        ei = 0.0
        di = 0.0
        for r in range(ptr[i], start[i + 1]):
            if a[r] > tk:
                y = a[r] - tk
                width = b[r] - a[r]
                ph = lm.phi(li, y)
                ex = math.exp(-li * y)
                fi += width * ph + ex * iv_sums[0, r]
                ei += ex * iv_sums[1, r]
                di += width * lm.dphi_dlam(li, y) + ex * (iv_sums[2, r] - y * iv_sums[0, r])
            else:
                xb = b[r] - tk
                fi += lm.psi(li, xb)
                ei += lm.phi(li, xb)
                di += lm.dpsi_dlam(li, xb)
        f[i] = coef * fi
        e[i] = coef * ei
        d[i] = coef * di


@nb.njit(cache=_CACHE)
def _peak_rows(lam, tk, k, k_best, t_best, coef, f, e, d):
    """The same rows for F-SSR: the inputs from position k on count for neurons with k < k_best."""
    for i in range(lam.shape[0]):
        if k < k_best[i]:
            x = t_best[i] - tk
            f[i] = coef * lm.phi(lam[i], x)
            e[i] = coef * math.exp(-lam[i] * x)
            d[i] = coef * lm.dphi_dlam(lam[i], x)
        else:
            f[i] = 0.0
            e[i] = 0.0
            d[i] = 0.0


@nb.njit(cache=_CACHE)
def _reg_one(t, w, colsum, lam, order, nv, kind, theta, t_end, coef, gw, gt, glam, tail_a, tail_b):
    """Value of one sample, adding coef * its gradients to gw, gt, glam; the final tie group's
    rows go to tail_a (its weight-gradient row) and tail_b (gt of its inputs is -w_j . tail_b)."""
    n = w.shape[1]
    s = np.empty(n)
    u_best = np.empty(n)
    k_best = np.empty(n, np.int64)
    t_best = np.empty(n)
    s_best = np.empty(n)
    cap = 2 * n + 16
    while True:
        iv_neuron = np.empty(cap, np.int64)
        iv_a = np.empty(cap)
        iv_b = np.empty(cap)
        total, n_iv = _sweep_one(t, w, colsum, lam, order, nv, kind, theta, t_end, s, u_best, k_best,
                                 t_best, s_best, iv_neuron, iv_a, iv_b)
        if n_iv >= 0:
            break
        cap *= 4
    if coef == 0.0:
        return total
    kt = _tail_start(t, order, nv)
    if kind == 0:
        start, a, b = _by_neuron(n, n_iv, iv_neuron, iv_a, iv_b)
        iv_sums = _interval_sums(lam, start, a, b)
        ptr = start[:n].copy()
        k_end = kt
    else:
        start = ptr = np.zeros(1, np.int64)
        a = b = np.zeros(1)
        iv_sums = np.zeros((3, 1))
        k_end = 0
        for i in range(n):
            k_end = max(k_end, k_best[i])
        k_end = min(k_end, kt)
    f = np.empty(n)
    e = np.empty(n)
    d = np.empty(n)
    k = 0
    while k < k_end:
        tk = t[order[k]]
        g = _group_end(t, order, k, kt)
        if kind == 0:
            _area_rows(lam, tk, start, ptr, a, b, iv_sums, coef, f, e, d)
        else:
            _peak_rows(lam, tk, k, k_best, t_best, coef, f, e, d)
        for m in range(k, g):
            j = order[m]
            row = w[j]
            grow = gw[j]
            acc = 0.0
            for i in range(n):
                grow[i] += f[i]
                acc -= row[i] * e[i]
                glam[i] += row[i] * d[i]
                s[i] -= row[i]          # s: the weights of the inputs from position g on
            gt[j] += acc
        k = g
    if kt < nv:
        if k_end < kt:                  # F-SSR: the remaining prefix sums were not subtracted
            for m in range(k_end, kt):
                row = w[order[m]]
                for i in range(n):
                    s[i] -= row[i]
        tk = t[order[kt]]
        if kind == 0:
            _area_rows(lam, tk, start, ptr, a, b, iv_sums, coef, f, e, d)
        else:
            _peak_rows(lam, tk, kt, k_best, t_best, coef, f, e, d)
        for i in range(n):
            tail_a[i] = f[i]
            tail_b[i] = e[i]
            glam[i] += s[i] * d[i]      # s = the tail group's weight sum
    if kind == 1:
        # A maximiser at an input's arrival moves with that input: d max u / d t_j* = u'(t*-).
        for i in range(n):
            if 0 < k_best[i] < nv:
                gt[order[k_best[i]]] += coef * s_best[i]
    return total


@nb.njit(parallel=True, cache=_CACHE)
def _regularizer_sweep(t_in, w, lam, order, n_valid, kind, theta, t_end, coef, n_chunks):
    b_size, k_in = t_in.shape
    n = w.shape[1]
    colsum = w.sum(axis=0)
    values = np.zeros(b_size)
    parts = np.zeros((n_chunks, k_in, n))
    parts_lam = np.zeros((n_chunks, n))
    gt = np.zeros((b_size, k_in))
    tail_a = np.zeros((b_size, n))
    tail_b = np.zeros((b_size, n))
    in_tail = np.zeros((b_size, k_in))
    for c in nb.prange(n_chunks):
        for b in range(c, b_size, n_chunks):
            values[b] = _reg_one(t_in[b], w, colsum, lam, order[b], n_valid[b], kind, theta, t_end, coef,
                                 parts[c], gt[b], parts_lam[c], tail_a[b], tail_b[b])
            for k in range(_tail_start(t_in[b], order[b], n_valid[b]), n_valid[b]):
                in_tail[b, order[b, k]] = 1.0
    gw = parts[0].copy()
    glam = parts_lam[0].copy()
    for c in range(1, n_chunks):
        gw += parts[c]
        glam += parts_lam[c]
    return values, gw, gt, glam, tail_a, tail_b, in_tail


def check_inputs(t_in, w, lam, order, n_valid, theta, kind=0):
    """Shapes before the kernel runs (it does not check bounds): the layer's as `leaky.check_layer`
    checks them (lam finite, of any sign: the formulas hold, and differences at lam = 0 need it),
    then theta, order and n_valid; a one-line DataError naming the array."""
    if kind not in (0, 1):
        raise ValueError(f"leaky regularizer kind {kind!r}: must be 0 (area: M-SSR, membrane) or 1 (peak: F-SSR)")
    t_in, w, lam, _ = check_layer(t_in, w, lam, lam_any_sign=True)
    b_size, k_in = np.shape(t_in)
    n = np.shape(w)[1]
    check_shape("theta", theta, (n,), f"one threshold per neuron ({n})")
    check_shape("order", order, (b_size, k_in), "the input order from forward")
    check_shape("n_valid", n_valid, (b_size,), "the arrived-input counts from forward")
    return t_in, w, lam, np.ascontiguousarray(theta, dtype=np.float64)


def regularizer(t_in, w, lam, order, n_valid, kind, theta, t_end, coef, n_chunks):
    """A sparse-firing regulariser of one leaky layer, per sample, with coef-weighted gradients.

    kind 0: sum_i integral_0^t_end relu(u_i - theta_i) dt (M-SSR for theta = v_th, the membrane
    loss for theta = v_hat); kind 1: sum_i relu(max u_i - theta_i) (F-SSR). theta and lam are (n,).
    Returns (values (B,), coef dR/dw (K, n), coef dR/dt_in (B, K), coef dR/dlam (n,)). The final tie
    group's gradients are added here by matrix products; samples are summed in REG_CHUNKS parts
    whatever `n_chunks` is, so the result does not depend on the number of threads.
    """
    t_in, w, lam, theta = check_inputs(t_in, w, lam, order, n_valid, theta, kind)
    order = np.ascontiguousarray(order, dtype=np.int64)
    n_valid = np.ascontiguousarray(n_valid, dtype=np.int64)
    values, gw, gt, glam, tail_a, tail_b, in_tail = _regularizer_sweep(
        t_in, w, lam, order, n_valid, int(kind), theta, float(t_end), float(coef), REG_CHUNKS)
    if coef != 0.0 and in_tail.any():
        gw += in_tail.T @ tail_a
        gt -= in_tail * (tail_b @ w.T)
    return values, gw, gt, glam
