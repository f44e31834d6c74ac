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

from infra.threads import use_default_layer
from training.dispatch import next_index, threaded

use_default_layer()     # before any parallel launch: docs/results.md, Throughput

_CACHE = True
_VEC = {"reassoc", "nsz", "arcp", "contract"}   # lets LLVM vectorise the per-neuron loops (no nnan/ninf)


@nb.njit(cache=_CACHE)
def _sort_inputs(t, t_end, order):
    """order[:] = np.argsort(t, kind="mergesort") (the same stable order), returns how many arrive
    before t_end. Most inputs share one of two times (MNIST's black pixels all spike at the largest
    finite time, a hidden layer's silent neurons at inf), so the inputs below the largest finite
    time are sorted alone (`_stable_sort_low`) and the rest are put after them in index order: a
    stable sort orders by (time, index), and that is their order."""
    k_in = t.shape[0]
    m = -np.inf
    for j in range(k_in):
        if t[j] > m and t[j] < np.inf:
            m = t[j]
    n_low = 0
    n_top = 0
    for j in range(k_in):
        if t[j] < m:
            n_low += 1
        elif t[j] == m:
            n_top += 1
    low = np.empty(n_low, np.int64)
    a = b = 0
    c = n_low
    d = n_low + n_top
    plain_rest = True
    for j in range(k_in):
        tj = t[j]
        if tj < m:
            low[a] = j
            a += 1
        elif tj == m:
            order[c] = j
            c += 1
        else:
            order[d] = j
            d += 1
            plain_rest &= tj == np.inf
    if n_low:
        _stable_sort_low(t, low, order)
    rest = n_low + n_top
    if not plain_rest:      # -inf or nan among the rest: sort them as argsort would
        _argsort_into(t, order[rest:].copy(), order[rest:])
    nv = 0
    while nv < k_in and t[order[nv]] < t_end:
        nv += 1
    return nv


_BUCKET_MIN = 32     # below: insertion sort alone


@nb.njit(cache=_CACHE)
def _insertion_sort(t, order, i0, i1):
    """Stable insertion sort of order[i0:i1] by t (a later equal time stays after)."""
    for k in range(i0 + 1, i1):
        j = order[k]
        tj = t[j]
        q = k
        while q > i0 and t[order[q - 1]] > tj:
            order[q] = order[q - 1]
            q -= 1
        order[q] = j


@nb.njit(cache=_CACHE)
def _stable_sort_low(t, low, order):
    """order[:len(low)] = low[np.argsort(t[low], kind="mergesort")] for `low` in increasing index
    order and t[low] finite or -inf: a bucket sort (one bucket per input, on the line from the
    smallest to the largest time; t -> bucket is non-decreasing, and the counting pass keeps index
    order within a bucket), then a stable insertion sort within each bucket. O(len(low)) for
    spread times; the merge sort it replaces took a third of a first layer's forward on MNIST."""
    n = low.shape[0]
    lo = np.inf
    hi = -np.inf
    for j in low:
        lo = min(lo, t[j])
        hi = max(hi, t[j])
    if n < _BUCKET_MIN or not hi > lo:      # few, or all tied (then already in order)
        order[:n] = low
        _insertion_sort(t, order, 0, n)
        return
    if not np.isfinite(lo):                 # -inf among them: no line to bucket them on
        _argsort_into(t, low, order[:n])
        return
    scale = n / (hi - lo)
    start = np.zeros(n + 1, np.int64)
    bucket = np.empty(n, np.int64)
    for a in range(n):
        c = min(int((t[low[a]] - lo) * scale), n - 1)
        bucket[a] = c
        start[c + 1] += 1
    for c in range(n):
        start[c + 1] += start[c]
    fill = start[:n].copy()
    for a in range(n):
        c = bucket[a]
        order[fill[c]] = low[a]
        fill[c] += 1
    for c in range(n):
        if start[c + 1] - start[c] > 1:
            _insertion_sort(t, order, start[c], start[c + 1])


@nb.njit(cache=_CACHE)
def _argsort_into(t, idx, out):
    """out[:] = idx[np.argsort(t[idx], kind="mergesort")] (`out` must not share memory with idx)."""
    perm = np.argsort(t[idx], kind="mergesort")
    for k in range(idx.shape[0]):
        out[k] = idx[perm[k]]


@nb.njit(cache=_CACHE)
def _is_stable_order(t, cand):
    """Whether `cand` is np.argsort(t, kind="mergesort"): the (time, index) pairs strictly increase
    along it (so it holds every index once) and its indices are in range. O(K)."""
    k_in = t.shape[0]
    if cand.shape[0] != k_in:
        return False
    prev = -1
    for k in range(k_in):
        j = cand[k]
        if j < 0 or j >= k_in:
            return False
        if k and not (t[prev] < t[j] or (t[prev] == t[j] and prev < j)):
            return False
        prev = j
    return True


@nb.njit(cache=_CACHE)
def _sort_inputs_hinted(t, t_end, order, hint):
    """`_sort_inputs`, taking `hint` (the previous layer's firing order) when it is that order."""
    if not _is_stable_order(t, hint):
        return _sort_inputs(t, t_end, order)
    k_in = t.shape[0]
    order[:] = hint
    nv = 0
    while nv < k_in and t[order[nv]] < t_end:
        nv += 1
    return nv


_GROUP_MAX = 64


@nb.njit(cache=_CACHE)
def _sort_group(seq, g0, g1, t_out):
    """Sort seq[g0:g1] (the neurons that fired in one segment, in index order) by (t_out, index):
    insertion sort when they are few, else a stable sort by time (stable: index order within a time)."""
    if g1 - g0 > 16:
        _argsort_into(t_out, seq[g0:g1].copy(), seq[g0:g1])
    else:
        _insertion_sort(t_out, seq, g0, g1)


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
def _forward_one(t, w, colsum, v_th, t_end, t_out, kf, slope, order, hint, seq):
    """One sample's sweep; returns n_valid. `hint`: a candidate input order (empty: none; see
    `forward_ordered`); `seq` (n,) receives the neurons by firing time, then the silent ones."""
    n = w.shape[1]
    nv = _sort_inputs_hinted(t, t_end, order, hint) if hint.shape[0] else _sort_inputs(t, t_end, order)
    n_seq = _sweep(t, w, colsum, v_th, t_end, t_out, kf, slope, order, nv, seq)
    # the silent neurons (kf == 0, time inf) after the fired ones, in index order
    for i in range(n):
        if n_seq == n:
            break
        if kf[i] == 0:
            seq[n_seq] = i
            n_seq += 1
    return nv


@nb.njit(cache=_CACHE)
def _sweep(t, w, colsum, v_th, t_end, t_out, kf, slope, order, nv, seq):
    """The sweep over the sorted inputs; writes the fired neurons to seq in (time, index) order
    (a segment's neurons are sorted among themselves; segments come in time order, up to
    rounding, which the next layer's `_is_stable_order` check catches) and returns their count.
    The segments are sorted at the end, and not at all (seq[0] = -1) when more than _GROUP_MAX
    neurons fire in one (a first layer's after MNIST's black pixels): sorting those here cost
    more than the next layer's own sort (measured)."""
    n = w.shape[1]
    s = np.zeros(n)
    wt = np.zeros(n)
    t_out[:] = np.inf
    kf[:] = 0
    # A fired neuron's slope is saved when it fires and its potential is not needed after: its wt
    # becomes +inf, so it is never above threshold again. While many have not fired, every input
    # updates all neurons in a branch-free loop that vectorises; once fewer than a quarter remain,
    # it updates only those (`live`, in index order).
    live = np.arange(n)
    n_live = n
    n_seq = 0
    ordered = True
    bounds = np.empty((n, 2), np.int64)   # where each segment's neurons (two or more) are in seq
    n_groups = 0
    sparse = False
    k_tail = _tail_start(t, order, nv)
    for k in range(nv):
        j = order[k]
        tj = t[j]
        tail = k == k_tail and k < nv - 1
        tn = t_end if (tail or k + 1 == nv) else t[order[k + 1]]
        # u(tn) > v_th is "fires before the next input": u is non-increasing on the segment when s <= 0.
        hit = False
        if tail:
            for p in range(n_live):
                i = live[p]
                wt[i] += tj * (colsum[i] - s[i])
                s[i] = colsum[i]
                hit |= s[i] * tn - wt[i] > v_th
        elif not sparse:
            row = w[j]
            for i in range(n):
                si = s[i] + row[i]
                wti = wt[i] + row[i] * tj
                s[i] = si
                wt[i] = wti
                hit |= si * tn - wti > v_th
        else:
            for p in range(n_live):
                i = live[p]
                wji = w[j, i]
                s[i] += wji
                wt[i] += wji * tj
                hit |= s[i] * tn - wt[i] > v_th
        if hit:
            kept = 0
            g0 = n_seq
            for p in range(n_live):
                i = live[p]
                if s[i] * tn - wt[i] > v_th:
                    t_out[i] = (v_th + wt[i]) / s[i]
                    kf[i] = nv if tail else k + 1
                    slope[i] = s[i]
                    wt[i] = np.inf
                    seq[n_seq] = i
                    n_seq += 1
                else:
                    live[kept] = i
                    kept += 1
            if n_seq - g0 > _GROUP_MAX:
                ordered = False
            if ordered and n_seq - g0 > 1:
                bounds[n_groups, 0] = g0
                bounds[n_groups, 1] = n_seq
                n_groups += 1
            n_live = kept
            if n_live == 0:
                break
            sparse = 4 * n_live < n
        if tail:
            break
    for p in range(n_live):
        slope[live[p]] = s[live[p]]
    if not ordered:
        seq[0] = -1     # no order: the next layer sorts its inputs itself
        return n_seq
    for g in range(n_groups):     # sorted at the end: not at all when a large segment comes last
        _sort_group(seq, bounds[g, 0], bounds[g, 1], t_out)
    return n_seq


@nb.njit(parallel=True, cache=_CACHE)
def _forward_batch(t_in, w, v_th, t_end, hint, n_workers, taken):
    b_size, k_in = t_in.shape
    n = w.shape[1]
    t_out = np.empty((b_size, n))
    kf = np.empty((b_size, n), np.int64)
    slope = np.empty((b_size, n))
    order = np.empty((b_size, k_in), np.int64)
    n_valid = np.empty(b_size, np.int64)
    fire_order = np.empty((b_size, n), np.int64)
    colsum = w.sum(axis=0)
    hinted = hint.shape[0] == b_size
    for _ in nb.prange(n_workers):      # each worker takes the next sample (taken: a zeroed counter)
        b = next_index(taken)
        while b < b_size:
            h = hint[b] if hinted else hint[0, :0]
            n_valid[b] = _forward_one(t_in[b], w, colsum, v_th, t_end, t_out[b], kf[b], slope[b], order[b], h,
                                      fire_order[b])
            b = next_index(taken)
    return t_out, order, n_valid, kf, slope, fire_order


_forward_batch = threaded(_forward_batch, _CACHE)


_NO_HINT = np.empty((1, 0), np.int64)


def forward_ordered(t_in, w, v_th, t_end, hint=None):
    """`forward`, plus the layer's firing order (B, n): np.argsort(t_out, kind="mergesort") when
    the sweep's rounding keeps segments in time order (the usual case; else a permutation close to
    it), or a row starting with -1 for a sample where more than _GROUP_MAX neurons fire in one
    segment (`_sweep`). `hint` (B, K): the previous layer's firing order, used as this layer's
    input order wherever it is the stable order of t_in (checked in O(K), else sorted): chaining
    layers this way skips most of the sort of hidden layers' times (docs/model.md)."""
    return _forward_batch(t_in, w, v_th, t_end, _NO_HINT if hint is None else hint, nb.get_num_threads(),
                          np.zeros(1, np.int64))


def forward(t_in, w, v_th, t_end):
    """Exact firing times of one layer for a batch: (t_out, order, n_valid, kf, slope)."""
    return _forward_batch(t_in, w, v_th, t_end, _NO_HINT, nb.get_num_threads(), np.zeros(1, np.int64))[:5]


@nb.njit(cache=_CACHE)
def _by_kf_descending(kf_b, i0, i1):
    """Neurons i0 <= i < i1 with kf > 0, the largest causal set first (ties in index order): a
    counting sort, kf being at most the number of inputs."""
    top = 0
    for i in range(i0, i1):
        top = max(top, kf_b[i])
    start = np.zeros(top + 2, np.int64)
    for i in range(i0, i1):
        if kf_b[i] > 0:
            start[top - kf_b[i] + 1] += 1
    for v in range(1, top + 2):
        start[v] += start[v - 1]
    idx = np.empty(start[top + 1], np.int64)
    for i in range(i0, i1):
        if kf_b[i] > 0:
            v = top - kf_b[i]
            idx[start[v]] = i
            start[v] += 1
    return idx


@nb.njit(cache=_CACHE)
def _shared_group(t_b, order_b, kf_b, k_in):
    """(kmax, kg): the largest causal set and the start of its final group of tied inputs. The
    neurons with kf == kmax take those inputs as one shared row (see `_gw_block`) when the group is
    larger than the inputs outside every causal set (kmax..K); kg = kmax when it is not."""
    kmax = 0
    for i in range(kf_b.shape[0]):
        kmax = max(kmax, kf_b[i])
    if kmax < 2:
        return kmax, kmax
    t_last = t_b[order_b[kmax - 1]]
    kg = kmax - 1
    while kg > 0 and t_b[order_b[kg - 1]] == t_last:
        kg -= 1
    if kmax - kg <= k_in - kmax:
        return kmax, kmax
    return kmax, kg


@nb.njit(cache=_CACHE)
def _gw_block(t_in, order, kf, a, t_f, kmax, kg, i0, i1, gw):
    """dL/dw[:, i0:i1] summed over the batch in sample order (so any split of the neurons over
    threads gives the same numbers): gw[j, i] += a_i (t_j - t_f_i) over each neuron's causal set.

    For the neurons F with kf == kmax whose final group (kg..kmax) is shared, the group's rows all
    get r_i = a_i (t_last - t_f_i): r is added to every row once at the end, and the other rows
    correct it, a_i (t_j - t_last) for the causal inputs before the group and -r_i outside it.
    A row updates the block's neurons still in a causal set, through an index list when they are
    few, else all of them with zero coefficients for the others (the same sum either way).
    """
    b_size, k_in = t_in.shape
    m = i1 - i0
    r_all = np.zeros(m)
    coef = np.zeros(m)      # a_i while input k is in neuron i's causal set, else 0
    ref = np.zeros(m)       # t_f_i (t_last for F)
    for b in range(b_size):
        t = t_in[b]
        o = order[b]
        km = kmax[b]
        g0 = kg[b]
        idx = _by_kf_descending(kf[b], i0, i1)
        n_f = 0
        if g0 < km:
            while n_f < idx.shape[0] and kf[b, idx[n_f]] == km:
                n_f += 1
        full = idx[:n_f]
        part = idx[n_f:]
        n_p = part.shape[0]
        t_last = t[o[km - 1]] if km > 0 else 0.0
        r_f = np.empty(n_f)
        for p in range(n_f):
            i = full[p]
            r_f[p] = a[b, i] * (t_last - t_f[b, i])
            r_all[i - i0] += r_f[p]
            coef[i - i0] = a[b, i]
            ref[i - i0] = t_last
        for p in range(n_p):
            i = part[p]
            coef[i - i0] = a[b, i]
            ref[i - i0] = t_f[b, i]
        live = n_p
        n_fl = n_f
        k_end = max(g0 if n_f else 0, kf[b, part[0]] if n_p else 0)
        for k in range(k_end):
            while live > 0 and kf[b, part[live - 1]] <= k:
                live -= 1
                coef[part[live] - i0] = 0.0
            if k == g0 and n_fl:
                n_fl = 0
                for p in range(n_f):
                    coef[full[p] - i0] = 0.0
            j = o[k]
            tj = t[j]
            row = gw[j]
            if 4 * (live + n_fl) > m:
                seg = row[i0:i1]
                for q in range(m):
                    seg[q] += coef[q] * (tj - ref[q])
            else:
                for p in range(n_fl):
                    i = full[p]
                    row[i] += coef[i - i0] * (tj - ref[i - i0])
                for p in range(live):
                    i = part[p]
                    row[i] += coef[i - i0] * (tj - ref[i - i0])
        coef[:] = 0.0
        if n_f:
            for k in range(km, k_in):
                row = gw[o[k]]
                for p in range(n_f):
                    row[full[p]] -= r_f[p]
    for j in range(k_in):
        for i in range(i0, i1):
            gw[j, i] += r_all[i - i0]


@nb.njit(cache=_CACHE, fastmath=_VEC)
def _gt_one(t, w, order_b, kf_b, a_b, gt_b):
    """dL/dt_j = sum over the neurons i whose causal set holds j of a_i w[j, i] (through an index
    list when few neurons are left, else over all with zero coefficients: fixed per sample)."""
    n = kf_b.shape[0]
    idx = _by_kf_descending(kf_b, 0, n)
    m = idx.shape[0]
    if m == 0:
        return
    coef = np.zeros(n)
    for p in range(m):
        coef[idx[p]] = a_b[idx[p]]
    live = m
    for k in range(kf_b[idx[0]]):
        while live > 0 and kf_b[idx[live - 1]] <= k:
            live -= 1
            coef[idx[live]] = 0.0
        j = order_b[k]
        row = w[j]
        acc = 0.0
        if 4 * live > n:
            for i in range(n):
                acc += coef[i] * row[i]
        else:
            for p in range(live):
                acc += coef[idx[p]] * row[idx[p]]
        gt_b[j] = acc


@nb.njit(cache=_CACHE)
def _coefficients(delta_b, slope_b, kf_b, i0, i1, a_b):
    """a_i = dL/dt_i / S_i for the fired neurons i0 <= i < i1 of one sample, 0 for the silent."""
    for i in range(i0, i1):
        a_b[i] = delta_b[i] / slope_b[i] if kf_b[i] > 0 else 0.0


@nb.njit(parallel=True, cache=_CACHE)
def _backward_sweep(t_in, w, order, kf, delta, slope, t_f, need_gt, n_blocks):
    """One parallel region of 2 n_blocks tasks: task 2c sums dL/dw of the c-th block of neurons
    over the batch, task 2c + 1 gives dL/dt_in of the c-th block of samples, so with n_blocks
    threads each gets one of each (numba splits a prange into equal contiguous parts)."""
    b_size, k_in = t_in.shape
    n = w.shape[1]
    n_blocks = max(1, min(n_blocks, n))
    gw = np.empty((k_in, n))
    gt = np.empty((b_size, k_in))
    a = np.empty((b_size, n))
    for task in nb.prange(2 * n_blocks):
        c = task // 2
        if task % 2 == 0:
            i0, i1 = c * n // n_blocks, (c + 1) * n // n_blocks
            gw[:, i0:i1] = 0.0
            kmax = np.empty(b_size, np.int64)
            kg = np.empty(b_size, np.int64)
            for b in range(b_size):
                _coefficients(delta[b], slope[b], kf[b], i0, i1, a[b])
                kmax[b], kg[b] = _shared_group(t_in[b], order[b], kf[b], k_in)
            _gw_block(t_in, order, kf, a, t_f, kmax, kg, i0, i1, gw)
        else:
            b0, b1 = c * b_size // n_blocks, (c + 1) * b_size // n_blocks
            gt[b0:b1] = 0.0
            if need_gt:
                a_b = np.empty(n)
                for b in range(b0, b1):
                    _coefficients(delta[b], slope[b], kf[b], 0, n, a_b)
                    _gt_one(t_in[b], w, order[b], kf[b], a_b, gt[b])
    return gw, gt


_backward_sweep = threaded(_backward_sweep, _CACHE)


def backward(t_in, w, order, kf, slope, t_f, delta, n_chunks, need_gt=True):
    """Chain rule through one layer: dL/dw (K, n) and dL/dt_in (B, K) from delta = dL/dt_out.

    Uses dt_i/dw_ij = -(t_f_i - t_j)/S_i and dt_i/dt_j = w_ij/S_i over the causal set; `t_f` is the
    firing time (or, for the output layer's silent neurons, t_end: see `training.network`).
    Each input's row sums only the neurons whose causal set holds it, largest causal sets first;
    the final tie group most of the first layer's neurons share (MNIST's black pixels at t_in) is
    one row for all its inputs (`_gw_block`). dL/dw is split over `n_chunks` blocks of neurons,
    each summed in sample order, so the result does not depend on the number of threads.
    dL/dt_in is zero (not computed) when need_gt is False. One parallel launch per layer.
    """
    return _backward_sweep(t_in, w, order, kf, np.ascontiguousarray(delta, dtype=np.float64), slope, t_f,
                           need_gt, n_chunks)


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


REG_CHUNKS = 4     # parts of a batch the regulariser sums separately (then in order)


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
    The samples are summed in REG_CHUNKS interleaved parts whatever `n_chunks` (the thread count)
    is, so the result does not depend on the number of threads.
    """
    values, gw, gt, tail_a, tail_b, in_tail = _regularizer_sweep(t_in, w, order, n_valid, kind, theta,
                                                                 t_end, coef, REG_CHUNKS)
    if coef != 0.0 and in_tail.any():
        gw += in_tail.T @ tail_a
        gt -= in_tail * (tail_b @ w.T)
    return values, gw, gt


@nb.njit(parallel=True, cache=_CACHE)
def _column_conduction_sweep(t_in, a, rates, n_chunks):
    b_size, k_in = t_in.shape
    n = a.shape[1]
    values = np.zeros(b_size)
    g_tin = np.zeros((b_size, k_in))
    g_a = np.zeros((b_size, n))
    parts = np.zeros((n_chunks, k_in, n))
    for c in nb.prange(n_chunks):
        for b in range(c, b_size, n_chunks):
            e = 0.0
            for j in range(k_in):
                tj = t_in[b, j]
                if not tj < np.inf:
                    continue
                s = 0.0
                for i in range(n):
                    d = a[b, i] - tj
                    if d > 0.0:
                        r = rates[j, i]
                        e += r * d
                        s += r
                        parts[c, j, i] += d
                        g_a[b, i] += r
                g_tin[b, j] = -s
            values[b] = e
    g_rates = parts[0].copy()
    for c in range(1, n_chunks):
        g_rates += parts[c]
    return values, g_rates, g_tin, g_a


def column_conduction(t_in, a, rates):
    """Conduction of cells that stop at their own column's time: per sample sum_ji rates_ji
    (a_i - t_j)^+ for input times t_in (B, K), stop times a (B, n) and rates (K, n). Returns
    (values (B,), d/drates summed over the batch (K, n), d/dt_in (B, K), d/da (B, n)).
    The samples are summed in REG_CHUNKS interleaved parts whatever the thread count."""
    return _column_conduction_sweep(t_in, a, rates, REG_CHUNKS)
