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


def _segment(v, s, g, c, swing, dt):
    """One column over dt with constant drive s, held at +swing (one-sided) while pushed past it:
    (v at the end, integral of v, clamp charge); twin of energy.kernels._segment."""
    integ, q = 0.0, 0.0
    for _ in range(4):
        if dt <= 0:
            break
        if np.isfinite(swing) and v >= swing:
            sgn = 1.0
            i_net = s - g * sgn * swing
            if i_net * sgn > 0:
                return sgn * swing, integ + sgn * swing * dt, q + abs(i_net) * dt
            v = sgn * swing
        if g > 0:
            v_inf = s / g
            decay = np.exp(-g * dt / c)
            v_new = v_inf + (v - v_inf) * decay
        else:
            v_new = v + s * dt / c
        if np.isfinite(swing) and v_new > swing:
            sgn = 1.0
            th = (c / g) * np.log((v - v_inf) / (sgn * swing - v_inf)) if g > 0 else (sgn * swing - v) * c / s
            th = min(max(th, 0.0), dt)
        else:
            th = dt
        if g > 0:
            integ += v_inf * th + (v - v_inf) * (c / g) * (1.0 - np.exp(-g * th / c))
            v_th = v_inf + (v - v_inf) * np.exp(-g * th / c)
        else:
            integ += v * th + 0.5 * s * th * th / c
            v_th = v + s * th / c
        if th >= dt:
            return v_th, integ, q
        v, dt = sgn * swing, dt - th
    return v, integ, q


def column_energy(t_rows, d, g_cell, g_leak, c_f, v_read, t_col, node_scale, swing):
    """Twin of energy.kernels.column_energy, one column at a time over its own events."""
    t_rows = np.asarray(t_rows, dtype=np.float64)
    n_img, n = len(t_rows), d.shape[1]
    e, clamp, cell_time = np.zeros(n_img), np.zeros(n_img), np.zeros(n_img)
    v_end = np.empty((n_img, n))
    for b in range(n_img):
        t = t_rows[b]
        for i in range(n):
            end = t_col[b, i]
            rows = np.argsort(t, kind="mergesort")
            rows = rows[t[rows] < end]
            v, integ, s, t_prev = 0.0, 0.0, 0.0, 0.0
            for k in list(rows) + [None]:
                tk = end if k is None else t[k]
                v, di, dq = _segment(v, s, g_leak[i], c_f[i], swing[i], tk - t_prev)
                integ += di
                clamp[b] += swing[i] * dq if dq else 0.0
                t_prev = tk
                if k is None:
                    break
                e[b] += v_read ** 2 * g_cell[k, i] * (end - tk) + node_scale * d[k, i] * integ
                cell_time[b] += end - tk
                s += d[k, i]
            e[b] -= node_scale * s * integ
            v_end[b, i] = v
    return e, v_end, clamp, cell_time
