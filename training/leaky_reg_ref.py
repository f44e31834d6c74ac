"""Plain-numpy twin of `training.leaky_reg`: the same regularisers and gradients, vectorised over neurons.

Same signature and return values; `n_chunks` is accepted and ignored. It reaches the gradients by
a different (equally stable) route than the kernel, so the tests holding the two equal check both:
the pieces of {u > theta} are kept per segment and swept backwards (the suffix integrals of
phi(t - t_m) and exp(-lam (t - t_m)) obey F_m = local_m + phi(L_m) B_m+1 + exp(-lam L_m) F_m+1),
and the lam-derivative of u is carried forward as a state, D' = -u - lam D.
"""
import numpy as np

from training import leak_math as lm
from training.leaky_reg import check_inputs


def _groups(t_b, order_b, nv, t_end):
    """The segments of positive length: the first position of each group of tied inputs, the end
    position, and each segment's start time, end time and length."""
    o = order_b[:nv]
    ts = t_b[o]
    starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
    ends = np.r_[starts[1:], nv]
    t0 = ts[starts]
    t1 = np.r_[t0[1:], t_end]
    return o, ts, starts, ends, t0, t1, t1 - t0


def _pieces(lam, v, c, u_hi, theta, length):
    """Vectorised `leaky_reg._piece`: (xp, xq) of the part of each neuron's segment above theta."""
    with np.errstate(divide="ignore", invalid="ignore"):
        x_up = np.minimum(lm.time_to_reach_np(lam, np.where(c > 0, (theta - v) / c, 0.0)), length)
        x_dn = np.minimum(lm.time_to_reach_np(lam, np.where(c < 0, (v - theta) / -c, 0.0)), length)
    up = np.where(v >= theta, 0.0, np.where(u_hi > theta, x_up, length))
    dn_q = np.where(v <= theta, 0.0, np.where(u_hi >= theta, length, x_dn))
    flat_q = np.where(v > theta, length, 0.0)
    xp = np.where(c > 0, up, 0.0)
    xq = np.where(c > 0, length, np.where(c < 0, dn_q, flat_q))
    return xp, xq


def regularizer(t_in, w, lam, order, n_valid, kind, theta, t_end, coef, n_chunks=1):
    check_inputs(t_in, w, lam, order, n_valid, theta, kind)
    t_in, w, lam, theta = (np.asarray(x, dtype=np.float64) for x in (t_in, w, lam, theta))
    b_size, k_in = t_in.shape
    n = w.shape[1]
    values = np.zeros(b_size)
    gw = np.zeros_like(w)
    gt = np.zeros((b_size, k_in))
    glam = np.zeros(n)
    for b in range(b_size):
        nv = int(n_valid[b])
        if nv == 0:
            continue
        o, ts, starts, ends, t0, t1, length = _groups(t_in[b], order[b], nv, t_end)
        n_seg = len(starts)
        s_seg = np.cumsum(np.add.reduceat(w[o], starts, axis=0), axis=0)     # (n_seg, n)
        v = np.zeros(n)
        dv = np.zeros(n)                     # D = du/dlam
        u_end = np.empty((n_seg, n))
        d_end = np.empty((n_seg, n))
        loc_f = np.zeros((n_seg, n))         # integral over the piece of phi(t - t0)
        loc_e = np.zeros((n_seg, n))         # ... of exp(-lam (t - t0))
        loc_b = np.zeros((n_seg, n))         # its length
        area_lam = np.zeros(n)
        area = 0.0
        for g in range(n_seg):
            L = length[g]
            c = s_seg[g] - lam * v
            ph = lm.phi_np(lam, L)
            u_hi = v + c * ph
            if kind == 0:
                xp, xq = _pieces(lam, v, c, u_hi, theta, L)
                xq = np.maximum(xp, xq)
                d_psi = lm.psi_np(lam, xq) - lm.psi_np(lam, xp)
                d_phi = lm.phi_np(lam, xq) - lm.phi_np(lam, xp)
                area += ((v - theta) * (xq - xp) + c * d_psi).sum()
                area_lam += dv * d_phi - v * d_psi + c * (lm.dpsi_dlam_np(lam, xq) - lm.dpsi_dlam_np(lam, xp))
                loc_f[g], loc_e[g], loc_b[g] = d_psi, d_phi, xq - xp
            dv = np.exp(-lam * L) * dv - v * ph + c * lm.dphi_dlam_np(lam, L)
            v = u_hi
            u_end[g], d_end[g] = v, dv
        if kind == 0:
            values[b] = area
            if coef == 0.0:
                continue
            glam += coef * area_lam
            f_next = np.zeros(n)
            e_next = np.zeros(n)
            b_next = np.zeros(n)
            for g in range(n_seg - 1, -1, -1):
                L = length[g]
                f_next = loc_f[g] + lm.phi_np(lam, L) * b_next + np.exp(-lam * L) * f_next
                e_next = loc_e[g] + np.exp(-lam * L) * e_next
                b_next = loc_b[g] + b_next
                pos = o[starts[g]:ends[g]]
                gw[pos] += coef * f_next
                gt[b, pos] -= coef * (w[pos] * e_next).sum(axis=1)
        else:
            cand = np.vstack([np.zeros((1, n)), u_end])   # u(0) = 0, then every segment end
            g_best = np.argmax(cand, axis=0)               # first largest
            best = cand[g_best, np.arange(n)]
            hit = best > theta
            values[b] = (best[hit] - theta[hit]).sum()
            if coef == 0.0:
                continue
            for i in np.flatnonzero(hit & (g_best > 0)):
                g = g_best[i] - 1
                k_best = ends[g]
                t_star = t1[g]
                x = t_star - ts[:k_best]
                pos = o[:k_best]
                gw[pos, i] += coef * lm.phi_np(lam[i], x)
                gt[b, pos] -= coef * w[pos, i] * np.exp(-lam[i] * x)
                glam[i] += coef * d_end[g, i]
                if k_best < nv:      # the maximiser is input o[k_best]'s arrival
                    gt[b, o[k_best]] += coef * (s_seg[g, i] - lam[i] * best[i])
    return values, gw, gt, glam
