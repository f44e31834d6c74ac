"""Plain-numpy twin of `energy.kernels` (same maths, no numba): the reference the tests hold it to."""
import numpy as np


def passive_row_energy(t_rows, d, gsum_row, g_leak, c_f, v_read, t_end, node_scale=1.0):
    t_rows = np.asarray(t_rows, dtype=np.float64)
    n_img, n = len(t_rows), d.shape[1]
    out = np.empty(n_img)
    v_end = np.empty((n_img, n))
    for b in range(n_img):
        t = t_rows[b]
        order = np.argsort(t, kind="mergesort")
        order = order[t[order] < t_end]
        events = list(order) + [None]
        v, integ, s = np.zeros(n), np.zeros(n), np.zeros(n)
        e, t_prev = 0.0, 0.0
        for k in events:
            tk = t_end if k is None else t[k]
            dt = tk - t_prev
            if dt > 0:
                pos = g_leak > 0
                g = np.where(pos, g_leak, 1.0)
                v_inf = np.where(pos, s / g, 0.0)
                decay = np.exp(-g * dt / c_f)
                i_exp = v_inf * dt + (v - v_inf) * (c_f / g) * (1.0 - decay)
                i_lin = v * dt + 0.5 * s * dt * dt / c_f
                integ = integ + np.where(pos, i_exp, i_lin)
                v = np.where(pos, v_inf + (v - v_inf) * decay, v + s * dt / c_f)
                t_prev = tk
            if k is None:
                break
            e += v_read ** 2 * gsum_row[k] * (t_end - tk) + node_scale * (d[k] @ integ)
            s = s + d[k]
        out[b] = e - node_scale * (s @ integ)
        v_end[b] = v
    return out, v_end


def quadratic_row_energy(rem, a):
    """sum_jk a[j, k] min(rem_j, rem_k) per image, directly (twin of energy.kernels)."""
    rem = np.asarray(rem, dtype=np.float64)
    return np.array([float(np.sum(a * np.minimum(r[:, None], r[None, :]))) for r in rem])
