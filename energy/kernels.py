"""Numba kernel of the passive crossbar's row-source energy, exact from the firing times.

A passive column i is a node on a grounded capacitor C; every cell of the column connects it to
its row, which sits at 0 V until its input fires and at +/- v_read afterwards. Between input
events (docs/energy.md)

    C dV_i/dt = S_i(t) - g_leak_i V_i,   S_i = sum over fired rows j of d_ij,  g_leak_i = sum_j g_ij,

with d_ij = v_read (g_pos_ij - g_neg_ij) the signed current input j sends into a grounded column and
g_leak_i the column's total conductance (a row at 0 V still conducts). The energy drawn from the
drivers of input j's rows (the + row at +v_read holds g_pos, the - row at -v_read holds g_neg) is

    E_j = sum_i integral_{t_j}^{T} [v_read^2 (g_pos_ij + g_neg_ij) - d_ij V_i(t)] dt
        = v_read^2 gsum_j (T - t_j) - sum_i d_ij (I_i(T) - I_i(t_j)),   I_i(t) = integral_0^t V_i,

and V is an exponential on every segment, so I is exact in closed form. The same kernel serves
the finite-gain integrator (state y, summing node at y/A: `node_scale`). `energy.kernels_ref` is
the plain-numpy twin; tests hold the two equal and both to fine time stepping of the circuit.
"""
import numba as nb
import numpy as np


@nb.njit(cache=True)
def _passive_one(t, d, gsum_row, g_leak, c_f, v_read, t_end, node_scale, v, integ, s):
    n = d.shape[1]
    v[:] = 0.0
    integ[:] = 0.0
    s[:] = 0.0
    order = np.argsort(t, kind="mergesort")
    e = 0.0
    t_prev = 0.0
    for idx in range(order.shape[0] + 1):
        if idx < order.shape[0]:
            k = order[idx]
            tk = t[k]
            if not tk < t_end:
                tk = t_end
                k = -1
        else:
            k = -1
            tk = t_end
        dt = tk - t_prev
        if dt > 0.0:
            for i in range(n):
                g = g_leak[i]
                if g > 0.0:
                    v_inf = s[i] / g
                    em1 = np.expm1(-g * dt / c_f[i])
                    integ[i] += v_inf * dt - (v[i] - v_inf) * (c_f[i] / g) * em1
                    v[i] = v_inf + (v[i] - v_inf) * (em1 + 1.0)
                else:
                    integ[i] += v[i] * dt + 0.5 * s[i] * dt * dt / c_f[i]
                    v[i] += s[i] * dt / c_f[i]
            t_prev = tk
        if k < 0:
            break
        e += v_read * v_read * gsum_row[k] * (t_end - tk)
        for i in range(n):
            e += node_scale * d[k, i] * integ[i]
            s[i] += d[k, i]
    for i in range(n):
        e -= node_scale * s[i] * integ[i]
    return e


@nb.njit(cache=True)
def passive_row_energy(t_rows, d, gsum_row, g_leak, c_f, v_read, t_end, node_scale=1.0):
    """Energy (J) drawn from the row drivers of one passive crossbar, per image, and the column
    voltages at the window end.

    t_rows (N, K) row switching times in s (inf: never); d (K, n) signed drive currents (A);
    gsum_row (K,) total conductance of each input's cells (S); g_leak (n,) total conductance of
    each column (S); c_f (n,) column capacitance (F). Returns (energy (N,), v_end (N, n)).

    node_scale: the column node's voltage per unit of the state V (1 for the passive column; 1/A
    for an integrator of open-loop gain A, whose state is the membrane y and whose summing node sits
    at y/A, with g_leak = G_tot/A and c_f = C (1 + 1/A): docs/hwmodel.md).
    """
    n_img = t_rows.shape[0]
    n = d.shape[1]
    out = np.empty(n_img)
    v_end = np.empty((n_img, n))
    v = np.empty(n)
    integ = np.empty(n)
    s = np.empty(n)
    for b in range(n_img):
        out[b] = _passive_one(t_rows[b], d, gsum_row, g_leak, c_f, v_read, t_end, node_scale, v, integ, s)
        v_end[b] = v
    return out, v_end


@nb.njit(cache=True)
def _quadratic_one(rem, a):
    idx = np.nonzero(rem > 0)[0]
    order = idx[np.argsort(-rem[idx], kind="mergesort")]
    e = 0.0
    for m in range(len(order)):
        p = order[m]
        pair = a[p, p]
        for q in range(m):
            pair += 2.0 * a[order[q], p]      # rows fired earlier: their pair lasts rem[p]
        e += rem[p] * pair
    return e


@nb.njit(cache=True, parallel=False)
def quadratic_row_energy(rem, a):
    """sum_jk a[j, k] min(rem_j, rem_k) per image (N,): the energy (over v_read^2) the row drivers of
    a virtual-ground crossbar deliver when input j is driven for the last rem_j seconds (0: never)
    and the drivers' power is v_read^2 u^T a u for the driven set u (a symmetric; netlists.ports).
    Sorting the fired rows by rem makes it O(fired^2) per image."""
    out = np.empty(rem.shape[0])
    for b in range(rem.shape[0]):
        out[b] = _quadratic_one(rem[b], a)
    return out


@nb.njit(cache=True)
def _segment(v, s, g, c, swing, dt):
    """One column over dt with constant drive s: (v at the end, integral of v, clamp charge). The
    state relaxes to s/g at rate g/c (g = 0: a ramp of slope s/c) and is held at +swing while the
    drive pushes it past: the clamp then takes the net current s - g v (its charge returned). The
    clamp is one-sided: above the threshold only, where a neuron has already fired, so it moves no
    firing time (a lower rail would: docs/energy.md, "The output clamp")."""
    integ = 0.0
    q = 0.0
    for _ in range(4):                     # at most: off the clamp, back onto it, held there
        if dt <= 0.0:
            break
        if swing < np.inf and v >= swing:
            sgn = 1.0
            i_net = s - g * sgn * swing
            if i_net * sgn > 0.0:          # still pushed outward: clamped for the whole rest
                integ += sgn * swing * dt
                q += abs(i_net) * dt
                return sgn * swing, integ, q
            v = sgn * swing                # comes off the clamp
        if g > 0.0:
            v_inf = s / g
            em1 = np.expm1(-g * dt / c)
            v_new = v_inf + (v - v_inf) * (em1 + 1.0)
            if swing < np.inf and v_new > swing:
                sgn = 1.0
                th = (c / g) * np.log((v - v_inf) / (sgn * swing - v_inf))
                th = min(max(th, 0.0), dt)
                integ += v_inf * th - (v - v_inf) * (c / g) * np.expm1(-g * th / c)
                v = sgn * swing
                dt -= th
                continue
            integ += v_inf * dt - (v - v_inf) * (c / g) * em1
            return v_new, integ, q
        v_new = v + s * dt / c
        if swing < np.inf and v_new > swing:
            sgn = 1.0
            th = min(max((sgn * swing - v) * c / s, 0.0), dt)
            integ += v * th + 0.5 * s * th * th / c
            v = sgn * swing
            dt -= th
            continue
        integ += v * dt + 0.5 * s * dt * dt / c
        return v_new, integ, q
    return v, integ, q


@nb.njit(cache=True)
def _column_one(t, d, g_cell, g_leak, c_f, v_read, t_col, node_scale, swing, v, integ, s, out):
    n = d.shape[1]
    v[:] = 0.0
    integ[:] = 0.0
    s[:] = 0.0
    order = np.argsort(t, kind="mergesort")
    t_last = 0.0
    for i in range(n):
        t_last = max(t_last, t_col[i])
    e = 0.0
    q_clamp = 0.0
    cell_time = 0.0
    t_prev = 0.0
    for idx in range(order.shape[0] + 1):
        k = -1
        tk = t_last
        if idx < order.shape[0] and t[order[idx]] < t_last:
            k = order[idx]
            tk = t[k]
        for i in range(n):
            dt = min(tk, t_col[i]) - t_prev
            if dt > 0.0:
                v[i], di, dq = _segment(v[i], s[i], g_leak[i], c_f[i], swing[i], dt)
                integ[i] += di
                if dq > 0.0:
                    q_clamp += swing[i] * dq
        t_prev = tk
        if k < 0:
            break
        for i in range(n):
            if tk < t_col[i]:
                e += v_read * v_read * g_cell[k, i] * (t_col[i] - tk) + node_scale * d[k, i] * integ[i]
                cell_time += t_col[i] - tk
                s[i] += d[k, i]
    for i in range(n):
        e -= node_scale * s[i] * integ[i]
    out[0] = e
    out[1] = q_clamp
    out[2] = cell_time


@nb.njit(cache=True)
def column_energy(t_rows, d, g_cell, g_leak, c_f, v_read, t_col, node_scale, swing):
    """The gated, clamped generalisation of `passive_row_energy`: column i is connected to the
    crossbar until t_col[b, i] (its own end: gating), its state is held at +swing[i] (one-sided) while
    the drive pushes it past (the integrator's output clamp; inf: unclamped).

    t_rows (N, K) row switching times in s; d (K, n) signed drive currents (A); g_cell (K, n) each
    cell's total conductance, both rows / both columns of the pair (S); g_leak (n,) in S; c_f (n,)
    in F; t_col (N, n) in s; node_scale as in `passive_row_energy` (0: a virtual-ground column).
    Returns (row-driver energy (N,) J, state at t_col (N, n), clamp energy (N,) J: swing x |net
    current| over the clamped stretches, cell time (N,): sum over fired rows j and columns i of
    (t_col_i - t_j)+ in s, for the spike-count conduction form)."""
    n_img = t_rows.shape[0]
    n = d.shape[1]
    e = np.empty(n_img)
    clamp = np.empty(n_img)
    cell_time = np.empty(n_img)
    v_end = np.empty((n_img, n))
    v = np.empty(n)
    integ = np.empty(n)
    s = np.empty(n)
    out = np.empty(3)
    for b in range(n_img):
        _column_one(t_rows[b], d, g_cell, g_leak, c_f, v_read, t_col[b], node_scale, swing, v, integ, s, out)
        e[b] = out[0]
        clamp[b] = out[1]
        cell_time[b] = out[2]
        v_end[b] = v
    return e, v_end, clamp, cell_time
