"""Plain-numpy twin of `training.leaky`: the same maths, vectorised over neurons, no shortcuts.

Same signatures and return values; `n_chunks` is accepted and ignored. Kept as the reference the
numba kernels are tested against and as a fallback backend.
"""
import numpy as np

from training import leak_math as lm
from training.kernels_ref import _sorted
from training.leaky import check_layer


def forward(t_in, w, lam, v_th, t_end):
    t_in, w, lam, v_th = check_layer(t_in, w, lam, v_th)
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
        s_all = np.cumsum(w[o[:nv]], axis=0)
        v = np.zeros(n)
        fired = np.zeros(n, bool)
        for k in np.flatnonzero(t_next > ts):      # segments of positive length
            s, dt = s_all[k], t_next[k] - ts[k]
            d = s - lam * v
            v_next = v + d * lm.phi_np(lam, dt)
            new = ~fired & (v_next > v_th)         # v is monotone on the segment
            with np.errstate(divide="ignore", invalid="ignore"):
                x = lm.time_to_reach_np(lam, (v_th - v) / d)
            t_out[b, new] = ts[k] + np.minimum(x, dt)[new]
            kf[b, new] = k + 1
            slope[b, new] = (s - lam * v_th)[new]
            fired |= new
            v = v_next
        s_end = s_all[-1] if nv else np.zeros(n)
        slope[b, ~fired] = (s_end - lam * v)[~fired]
    return t_out, order, n_valid, kf, slope


def backward(t_in, w, lam, order, kf, slope, t_f, delta, n_chunks=1, need_gt=True):
    t_in, w, lam, _ = check_layer(t_in, w, lam, kf=kf, slope=slope, t_f=t_f, delta=delta)
    b_size, k_in = t_in.shape
    gw = np.zeros_like(w)
    gt = np.zeros((b_size, k_in))
    glam = np.zeros_like(lam)
    for b in range(b_size):
        kmax = int(kf[b].max())
        if kmax == 0:
            continue
        o = order[b, :kmax]
        causal = np.arange(kmax)[:, None] < kf[b][None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(kf[b] > 0, delta[b] / slope[b], 0.0)
        x = np.where(causal, np.where(kf[b] > 0, t_f[b], 0.0)[None, :] - t_in[b, o][:, None], 0.0)
        ca = causal * a[None, :]
        gw[o] -= ca * lm.phi_np(lam[None, :], x)
        glam -= (ca * w[o] * lm.dphi_dlam_np(lam[None, :], x)).sum(axis=0)
        if need_gt:
            gt[b, o] += (ca * w[o] * np.exp(-lam[None, :] * x)).sum(axis=1)
    return gw, gt, glam


def _ramps(t_in, t_end):
    """(t_end - t_j) for the arrived inputs, 0 for the others (B, K), and the arrival mask."""
    arrived = t_in < t_end
    return np.where(arrived, t_end - np.where(arrived, t_in, 0.0), 0.0), arrived


def end_potential(t_in, w, lam, t_end):
    t_in, w, lam, _ = check_layer(t_in, w, lam)
    x, _ = _ramps(t_in, t_end)
    return np.stack([(w * lm.phi_np(lam[None, :], x[b][:, None])).sum(axis=0) for b in range(len(x))]).reshape(
        len(x), w.shape[1])


def end_potential_backward(t_in, w, lam, t_end, g, n_chunks=1):
    t_in, w, lam, _ = check_layer(t_in, w, lam, g=g)
    x, arrived = _ramps(t_in, t_end)
    gw = np.zeros_like(w)
    gt = np.zeros(t_in.shape)
    glam = np.zeros_like(lam)
    for b in range(len(x)):
        xb = x[b][:, None]
        gw += lm.phi_np(lam[None, :], xb) * g[b][None, :]
        glam += (w * lm.dphi_dlam_np(lam[None, :], xb) * g[b][None, :]).sum(axis=0)
        gt[b] = -np.where(arrived[b], (w * np.exp(-lam[None, :] * xb) * g[b][None, :]).sum(axis=1), 0.0)
    return gw, gt, glam
