"""Numba kernels of one TTFS layer: the sorted-input sweep, its exact gradient and the regularisers.

Every kernel is a pure function over arrays, parallel over the samples of a batch, with a
plain-numpy twin in `training.kernels_ref` that tests hold equal to it. Conventions:

- `t_in` (B, K): input spike times in model time, `inf` for an input that never spikes.
- `w` (K, n): weights, `w[j, i]` from input j to neuron i.
- `order` (B, K): input indices sorted by time (stable); `n_valid` (B,): how many of them arrive
  before `t_end` (the rest can never contribute).
- `kf` (B, n): size of each neuron's causal set, counted in `order` (0 for a silent neuron);
  `slope` (B, n): the slope S_i at firing (for a silent neuron, the slope at `t_end`).
"""
import numba as nb
import numpy as np

_CACHE = True


@nb.njit(cache=_CACHE, fastmath=False)
def _sort_inputs(t, t_end, order):
    order[:] = np.argsort(t, kind="mergesort")
    nv = 0
    while nv < t.shape[0] and t[order[nv]] < t_end:
        nv += 1
    return nv


@nb.njit(cache=_CACHE)
def _tail_start(t, order, nv):
    """Position in `order` of the final group of tied inputs when every input arrives (MNIST's
    black pixels all spike at t_in); nv when some input never arrives. That group's weights sum
    to colsum - (sum of the rest), so the sweeps can take it in O(n) instead of O(group x n)."""
    if nv < t.shape[0] or nv < 2:
        return nv
    t_last = t[order[nv - 1]]
    k = nv - 1
    while k > 0 and t[order[k - 1]] == t_last:
        k -= 1
    return k


@nb.njit(cache=_CACHE)
def _forward_one(t, w, colsum, v_th, t_end, t_out, kf, slope, order):
    n = w.shape[1]
    nv = _sort_inputs(t, t_end, order)
    s = np.zeros(n)
    wt = np.zeros(n)
    fired = np.zeros(n, np.bool_)
    t_out[:] = np.inf
    kf[:] = 0
    n_fired = 0
    k_tail = _tail_start(t, order, nv)
    for k in range(nv):
        j = order[k]
        tj = t[j]
        tail = k == k_tail and k < nv - 1
        tn = t_end if (tail or k + 1 == nv) else t[order[k + 1]]
        # Branch-free update of every neuron (fired ones too: their slope was saved when they fired).
        # u(tn) > v_th is "fires before the next input": u is non-increasing on the segment when s <= 0.
        hit = False
        for i in range(n):
            if tail:
                wt[i] += tj * (colsum[i] - s[i])
                s[i] = colsum[i]
            else:
                wji = w[j, i]
                s[i] += wji
                wt[i] += wji * tj
            hit |= (s[i] * tn - wt[i] > v_th) & (not fired[i])
        if hit:
            for i in range(n):
                if not fired[i] and s[i] * tn - wt[i] > v_th:
                    fired[i] = True
                    t_out[i] = (v_th + wt[i]) / s[i]
                    kf[i] = nv if tail else k + 1
                    slope[i] = s[i]
                    n_fired += 1
            if n_fired == n:
                return nv
        if tail:
            break
    for i in range(n):
        if not fired[i]:
            slope[i] = s[i]
    return nv


@nb.njit(parallel=True, cache=_CACHE)
def forward(t_in, w, v_th, t_end):
    """Exact firing times of one layer for a batch: (t_out, order, n_valid, kf, slope)."""
    b_size, k_in = t_in.shape
    n = w.shape[1]
    t_out = np.empty((b_size, n))
    kf = np.empty((b_size, n), np.int64)
    slope = np.empty((b_size, n))
    order = np.empty((b_size, k_in), np.int64)
    n_valid = np.empty(b_size, np.int64)
    colsum = w.sum(axis=0)
    for b in nb.prange(b_size):
        n_valid[b] = _forward_one(t_in[b], w, colsum, v_th, t_end, t_out[b], kf[b], slope[b], order[b])
    return t_out, order, n_valid, kf, slope


@nb.njit(cache=_CACHE)
def _backward_one(t, w, order, kf, a, t_f, need_gt, gw, gt):
    """Causal-set sums for the neurons whose causal set is not all K inputs (the rest go by GEMM)."""
    n = w.shape[1]
    k_in = t.shape[0]
    live = np.zeros(n)      # a_i while input k is still in neuron i's causal set, else 0
    c = np.zeros(n)         # live_i * t_f_i
    by_kf = np.argsort(kf)
    ptr = 0
    kmax = 0
    for i in range(n):
        if 0 < kf[i] < k_in:
            live[i] = a[i]
            c[i] = a[i] * t_f[i]
            kmax = max(kmax, kf[i])
    for k in range(kmax):
        while ptr < n and kf[by_kf[ptr]] <= k:
            live[by_kf[ptr]] = 0.0
            c[by_kf[ptr]] = 0.0
            ptr += 1
        j = order[k]
        tj = t[j]
        for i in range(n):
            gw[j, i] += live[i] * tj - c[i]
        if need_gt:
            acc = 0.0
            for i in range(n):
                acc += live[i] * w[j, i]
            gt[j] += acc


@nb.njit(parallel=True, cache=_CACHE)
def _backward_partial(t_in, w, order, kf, a, t_f, need_gt, n_chunks):
    b_size, k_in = t_in.shape
    n = w.shape[1]
    parts = np.zeros((n_chunks, k_in, n))
    gt = np.zeros((b_size, k_in))
    for c in nb.prange(n_chunks):
        for b in range(c, b_size, n_chunks):
            _backward_one(t_in[b], w, order[b], kf[b], a[b], t_f[b], need_gt, parts[c], gt[b])
    gw = parts[0].copy()
    for c in range(1, n_chunks):
        gw += parts[c]
    return gw, gt


def backward(t_in, w, order, kf, slope, t_f, delta, n_chunks, need_gt=True):
    """Chain rule through one layer: dL/dw (K, n) and dL/dt_in (B, K) from delta = dL/dt_out.

    Uses dt_i/dw_ij = -(t_f_i - t_j)/S_i and dt_i/dt_j = w_ij/S_i over the causal set; `t_f` is the
    firing time (or, for the output layer's silent neurons, t_end: see `training.network`).
    Neurons whose causal set holds all K inputs (most of the first layer, which fires after the
    black pixels at t_in) contribute by two matrix products; the rest by the causal-set sweep.
    dL/dt_in is zero (not computed) when need_gt is False.
    """
    k_in = t_in.shape[1]
    fired = kf > 0
    a = np.zeros_like(delta)
    np.divide(delta, slope, out=a, where=fired)
    gw, gt = _backward_partial(t_in, w, order, kf, a, t_f, need_gt, n_chunks)
    a_full = np.where(kf == k_in, a, 0.0)
    if a_full.any():
        t0 = np.where(np.isfinite(t_in), t_in, 0.0)
        gw += t0.T @ a_full - (a_full * np.where(kf == k_in, t_f, 0.0)).sum(axis=0)[None, :]
        if need_gt:
            gt += a_full @ w.T
    return gw, gt


_VEC = {"reassoc", "nsz", "arcp", "contract"}   # lets LLVM vectorise the per-neuron loops (no nnan/ninf)


@nb.njit(cache=_CACHE, fastmath=_VEC, inline="always")
def _above(s, wt, theta, lo, hi):
    """Sub-interval [p, q] of [lo, hi] where u(t) = s t - wt exceeds theta (p == q if none).

    Branch-free, so the loops over neurons vectorise: u is linear, the part above theta is the
    fraction max(u_lo, u_hi) - theta over |u_hi - u_lo| of the segment (clipped to [0, 1]), at its
    upper end when u rises and at its lower end when it falls.
    """
    a = s * lo - wt - theta
    b = s * hi - wt - theta
    frac = min(max(max(a, b) / max(abs(b - a), 1e-300), 0.0), 1.0)
    length = frac * (hi - lo)
    rising = s >= 0.0
    p = hi - length if rising else lo
    q = hi if rising else lo + length
    return p, q


@nb.njit(cache=_CACHE, fastmath=_VEC)
def _area_one(t, w, colsum, order, nv, theta, t_end, coef, gw, gt, tail_a, tail_b):
    """sum_i integral_0^t_end relu(u_i - theta) dt for one sample, adding coef * its gradient.

    The final tie group (`_tail_start`) is one segment [t_last, t_end]; its inputs all get the
    same weight-gradient row coef * (A - t_last B) and time gradient -coef * w_j . B, where A, B
    are that segment's sums: they are returned in tail_a (= coef (A - t_last B)) and tail_b
    (= coef B) for the caller to add by matrix products.
    """
    n = w.shape[1]
    kt = _tail_start(t, order, nv)
    s = np.zeros(n)
    wt = np.zeros(n)
    area = np.zeros(n)
    sum_a = np.zeros(n)   # sum over segments of (q^2 - p^2)/2
    sum_b = np.zeros(n)   # sum over segments of (q - p): time spent above theta
    for k in range(kt):
        j = order[k]
        tj = t[j]
        tn = t[order[k + 1]] if k + 1 < nv else t_end
        for i in range(n):
            s[i] += w[j, i]
            wt[i] += w[j, i] * tj
            p, q = _above(s[i], wt[i], theta, tj, tn)
            sa = 0.5 * (q * q - p * p)
            area[i] += s[i] * sa - (wt[i] + theta) * (q - p)
            sum_a[i] += sa
            sum_b[i] += q - p
    if kt < nv:
        tj = t[order[kt]]
        for i in range(n):
            wt[i] += tj * (colsum[i] - s[i])
            s[i] = colsum[i]
            p, q = _above(s[i], wt[i], theta, tj, t_end)
            sa = 0.5 * (q * q - p * p)
            area[i] += s[i] * sa - (wt[i] + theta) * (q - p)
            sum_a[i] += sa
            sum_b[i] += q - p
            tail_a[i] = coef * (sa - tj * (q - p))
            tail_b[i] = coef * (q - p)
    total = area.sum()
    if coef == 0.0:
        return total
    # Second sweep: the suffix sums from input k on give d/dw_jk and d/dt_jk.
    s[:] = 0.0
    wt[:] = 0.0
    for k in range(kt):
        j = order[k]
        tj = t[j]
        tn = t[order[k + 1]] if k + 1 < nv else t_end
        acc = 0.0
        for i in range(n):
            gw[j, i] += coef * (sum_a[i] - tj * sum_b[i])
            acc -= w[j, i] * sum_b[i]
            s[i] += w[j, i]
            wt[i] += w[j, i] * tj
            p, q = _above(s[i], wt[i], theta, tj, tn)
            sum_a[i] -= 0.5 * (q * q - p * p)
            sum_b[i] -= q - p
        gt[j] += coef * acc
    return total


@nb.njit(cache=_CACHE, fastmath=_VEC)
def _peak_one(t, w, colsum, order, nv, theta, t_end, coef, gw, gt, tail_a, tail_b):
    """sum_i relu(max_t u_i(t) - theta) for one sample, adding coef * its gradient.

    u is evaluated at the end of every segment of positive length (the end of a zero-length one
    repeats the previous value), so the maximiser is the first segment end with the largest
    value. The final tie group is one segment, as in `_area_one` (same tail_a, tail_b contract).
    The per-neuron loops are branch-free (selects) so that they vectorise.
    """
    n = w.shape[1]
    kt = _tail_start(t, order, nv)
    s = np.zeros(n)
    wt = np.zeros(n)
    best = np.zeros(n)          # u(0) = 0 before any input
    kbest = np.zeros(n, np.int64)
    tbest = np.zeros(n)
    sbest = np.zeros(n)         # slope just before the maximiser
    for k in range(kt):
        j = order[k]
        tj = t[j]
        tn = t_end if k + 1 == nv else t[order[k + 1]]
        if tn > tj:
            for i in range(n):
                s[i] += w[j, i]
                wt[i] += w[j, i] * tj
                u = s[i] * tn - wt[i]
                better = u > best[i]
                best[i] = u if better else best[i]
                kbest[i] = k + 1 if better else kbest[i]
                tbest[i] = tn if better else tbest[i]
                sbest[i] = s[i] if better else sbest[i]
        else:
            for i in range(n):
                s[i] += w[j, i]
                wt[i] += w[j, i] * tj
    if kt < nv:
        tj = t[order[kt]]
        for i in range(n):
            wt[i] += tj * (colsum[i] - s[i])
            s[i] = colsum[i]
            u = s[i] * t_end - wt[i]
            better = u > best[i]
            best[i] = u if better else best[i]
            kbest[i] = nv if better else kbest[i]
            tbest[i] = t_end if better else tbest[i]
            sbest[i] = s[i] if better else sbest[i]
    total = 0.0
    kmax = 0
    for i in range(n):
        if best[i] > theta:
            total += best[i] - theta
            if kbest[i] > kmax:
                kmax = kbest[i]
        else:
            kbest[i] = 0
    if coef == 0.0:
        return total
    for k in range(min(kmax, kt)):
        j = order[k]
        tj = t[j]
        acc = 0.0
        for i in range(n):
            live = 1.0 if k < kbest[i] else 0.0
            gw[j, i] += live * coef * (tbest[i] - tj)
            acc -= live * w[j, i]
        gt[j] += coef * acc
    if kt < nv:
        t_last = t[order[kt]]
        for i in range(n):
            if kbest[i] == nv:
                tail_a[i] = coef * (t_end - t_last)
                tail_b[i] = coef
    # A maximiser at an input's arrival (where the slope turns negative) moves with that input:
    # d max u / d t_j = slope before it (the envelope term alone would miss this).
    for i in range(n):
        if 0 < kbest[i] < nv:
            gt[order[kbest[i]]] += coef * sbest[i]
    return total


@nb.njit(parallel=True, cache=_CACHE)
def _regularizer_sweep(t_in, w, order, n_valid, kind, theta, t_end, coef, n_chunks):
    b_size, k_in = t_in.shape
    n = w.shape[1]
    colsum = w.sum(axis=0)
    values = np.zeros(b_size)
    parts = np.zeros((n_chunks, k_in, n))
    gt = np.zeros((b_size, k_in))
    tail_a = np.zeros((b_size, n))
    tail_b = np.zeros((b_size, n))
    in_tail = np.zeros((b_size, k_in))
    for c in nb.prange(n_chunks):
        for b in range(c, b_size, n_chunks):
            if kind == 0:
                values[b] = _area_one(t_in[b], w, colsum, order[b], n_valid[b], theta, t_end, coef,
                                      parts[c], gt[b], tail_a[b], tail_b[b])
            else:
                values[b] = _peak_one(t_in[b], w, colsum, order[b], n_valid[b], theta, t_end, coef,
                                      parts[c], gt[b], tail_a[b], tail_b[b])
            for k in range(_tail_start(t_in[b], order[b], n_valid[b]), n_valid[b]):
                in_tail[b, order[b, k]] = 1.0
    gw = parts[0].copy()
    for c in range(1, n_chunks):
        gw += parts[c]
    return values, gw, gt, tail_a, tail_b, in_tail


def regularizer(t_in, w, order, n_valid, kind, theta, t_end, coef, n_chunks):
    """A sparse-firing regulariser of one layer, per sample, with coef-weighted gradients.

    kind 0: sum_i integral relu(u_i - theta) dt (M-SSR for theta = V_th, the membrane loss for
    theta = v_hat); kind 1: sum_i relu(max u_i - theta) (F-SSR). Returns (values (B,), dR/dw
    (K, n) and dR/dt_in (B, K), both multiplied by coef). The sweep covers the inputs before each
    sample's final tie group; that group's gradients are added here by matrix products.
    """
    values, gw, gt, tail_a, tail_b, in_tail = _regularizer_sweep(t_in, w, order, n_valid, kind, theta,
                                                                 t_end, coef, n_chunks)
    if coef != 0.0 and in_tail.any():
        gw += in_tail.T @ tail_a
        gt -= in_tail * (tail_b @ w.T)
    return values, gw, gt
