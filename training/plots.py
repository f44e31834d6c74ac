"""The paper's figures from run and sweep folders (PNG, drawn on matplotlib Figures: no pyplot, so
importing this module leaves the caller's matplotlib backend as it is).

- `plot_tradeoff`: test accuracy against spikes per neuron, one panel per hidden layer and one for
  their mean, one line per regulariser (Sakemi et al. 2023, Fig. 3). Given the rows of
  `training.sweep.aggregate` (a sweep over seeds), each point is the mean over its seeds with
  error bars of one sample standard deviation in both directions (its NAME_std columns).
- `plot_raster_traces`: spike raster and membrane potential of every layer for one test image,
  one column per run (e.g. without and with strong M-SSR; Fig. 2).
- `plot_membrane_comparison`: M-SSR against the membrane integral loss for each v_hat on one
  accuracy-vs-firing plot (Fig. 4), with the same error bars.
The membrane traces are exact: v_i(t) = sum_j w_ij max(0, t - t_j) is linear between input spikes,
so it is evaluated at the breakpoints and drawn with straight lines.
"""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from infra import atomic_io  # noqa: E402
from infra.atomic_io import csv_number  # noqa: E402

KIND_LABEL = {"none": "no regulariser", "m-ssr": "M-SSR", "f-ssr": "F-SSR", "membrane": "membrane loss",
              "energy": "energy-aware (reg.energy_strength)"}
# (colour, marker) of each regulariser (training.config.REG_KINDS, and "energy" for runs trained with
# reg.energy_strength > 0, whatever their kind: style_key), in every figure (energy.plots too)
KIND_STYLE = {"none": ("black", "*"), "m-ssr": ("tab:blue", "o"), "f-ssr": ("tab:orange", "s"),
              "membrane": ("tab:green", "^"), "energy": ("tab:red", "D")}


def style_key(kind: str, energy_strength) -> str:
    """The KIND_STYLE / KIND_LABEL entry of a run: "energy" when it was trained energy-aware."""
    return "energy" if float(energy_strength or 0.0) > 0 else kind
DPI = 110


def _series(rows, kind, v_hat=None):
    sel = [r for r in rows if r["kind"] == kind and (v_hat is None or abs(csv_number(r["v_hat"]) - v_hat) < 1e-12)]
    return sorted(sel, key=lambda r: float(r["strength"]))


def _hidden_keys(rows):
    keys = sorted({k for r in rows for k in r if re.fullmatch(r"spikes_per_neuron_l[0-9]+", k) and r[k] is not None},
                  key=lambda k: int(k[19:]))
    return keys


def _std(row, key, scale=1.0):
    """The sample standard deviation of `key` over a point's seeds (NaN: none, so no bar)."""
    return scale * csv_number(row.get(f"{key}_std"))


def _line(ax, ser, key, scale=1.0, **style):
    """A curve through the rows `ser`: x the column `key`, y the accuracy in %; with error bars
    where the rows carry standard deviations (training.sweep.aggregate)."""
    x = [float(r[key]) for r in ser]
    y = [100 * float(r["accuracy"]) for r in ser]
    xerr = [_std(r, key) for r in ser]
    yerr = [_std(r, "accuracy", 100.0) for r in ser]
    if np.isfinite(xerr).any() or np.isfinite(yerr).any():
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, capsize=2, elinewidth=0.8, **style)
    else:
        ax.plot(x, y, **style)
    return x, y


def plot_tradeoff(rows, out_png, title: str = "", kinds=("m-ssr", "f-ssr")) -> Path:
    """Accuracy (%) against spikes per neuron for each hidden layer and their mean (Fig. 3)."""
    return _save(tradeoff_figure(rows, title, kinds), out_png)


def tradeoff_figure(rows, title: str = "", kinds=("m-ssr", "f-ssr")) -> Figure:
    """The Figure plot_tradeoff saves: panels in the order of the hidden layers, then their mean."""
    keys = _hidden_keys(rows)
    panels = (keys if len(keys) > 1 else []) + ["spikes_per_neuron_mean"]
    fig = Figure(figsize=(max(5.0, 4.2 * len(panels)), 3.8))
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)
    base = [r for r in rows if r["kind"] == "none"]
    for ax, key in zip(axes[0], panels):
        for kind in kinds:
            ser = _series(rows, kind)
            if not ser:
                continue
            color, marker = KIND_STYLE[kind]
            x, y = _line(ax, ser, key, marker=marker, color=color, label=KIND_LABEL[kind])
            if base:   # strength 0 ends every curve
                ax.plot([x[0], float(base[0][key])], [y[0], 100 * float(base[0]["accuracy"])], color=color,
                        linestyle=":", linewidth=1)
            for xi, yi, r in zip(x, y, ser):
                ax.annotate(f"{float(r['strength']):.0e}", (xi, yi), textcoords="offset points", xytext=(3, 4),
                            fontsize=6, color=color)
        for r in base:
            _line(ax, [r], key, marker=KIND_STYLE["none"][1], markersize=13, color=KIND_STYLE["none"][0],
                  linestyle="none", label=KIND_LABEL["none"])
        layer = "mean of hidden layers" if key.endswith("mean") else f"hidden layer {key[19:]}"
        ax.set_xlabel(f"spikes per neuron per image\n({layer})")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_membrane_comparison(rows, out_png, title: str = "") -> Path:
    """M-SSR (v_hat = V_th) against the membrane integral loss for every v_hat in `rows` (Fig. 4)."""
    fig = Figure(figsize=(5.6, 4.0))
    ax = fig.subplots()
    v_hats = sorted({csv_number(r["v_hat"]) for r in rows if r["kind"] == "membrane"})
    cmap = matplotlib.colormaps["viridis"]
    base = [r for r in rows if r["kind"] == "none"][:1]   # strength 0 ends every curve

    def curve(ser, **kw):
        _line(ax, ser[::-1] + base, "spikes_per_neuron_mean", **kw)

    for i, v in enumerate(v_hats):
        curve(_series(rows, "membrane", v), marker="^", color=cmap(i / max(1, len(v_hats))),
              label=f"membrane loss, v_hat = {v:g} V_th")
    ser = _series(rows, "m-ssr")
    if ser:
        curve(ser, marker="o", color="tab:red", linewidth=2, label="M-SSR (v_hat = V_th)")
    for r in rows:
        if r["kind"] == "none":
            _line(ax, [r], "spikes_per_neuron_mean", marker=KIND_STYLE["none"][1], markersize=13,
                  color=KIND_STYLE["none"][0], linestyle="none", label=KIND_LABEL["none"])
    ax.set_xlabel("spikes per neuron per image (mean over hidden layers)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_seed_spread(groups: dict, out_png, title: str = "") -> Path:
    """Accuracy against spikes per neuron, one small marker per seed and the mean +- sample std
    of each group; `groups` maps a label to a list of (spikes per neuron, accuracy fraction)."""
    fig = Figure(figsize=(5.6, 4.0))
    ax = fig.subplots()
    colors = matplotlib.colormaps["tab10"]
    for i, (name, pts) in enumerate(groups.items()):
        if not pts:
            continue
        x = np.array([p[0] for p in pts])
        y = 100 * np.array([p[1] for p in pts])
        ax.plot(x, y, marker="o", markersize=4, alpha=0.45, linestyle="none", color=colors(i))
        sx, sy = (x.std(ddof=1), y.std(ddof=1)) if len(pts) > 1 else (0.0, 0.0)
        ax.errorbar([x.mean()], [y.mean()], xerr=[sx], yerr=[sy], marker="s", markersize=7, capsize=3,
                    color=colors(i), label=f"{name} ({len(pts)} seeds)")
    ax.set_xlabel("spikes per neuron per image (mean over hidden layers)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out_png)


def membrane_trace(t_in, w_col, t_fire, t_end):
    """Exact breakpoints (t, v) of v(t) = sum_j w_j max(0, t - t_j) on [0, min(t_fire, t_end)],
    and of the unreset continuation u(t) on [t_fire, t_end] (empty when silent)."""
    valid = np.isfinite(t_in) & (t_in < t_end)
    tj, wj = t_in[valid], w_col[valid]
    stop = min(t_fire, t_end)

    def at(ts):
        return np.maximum(0.0, ts[:, None] - tj[None, :]) @ wj

    pre = np.unique(np.concatenate([[0.0], tj[tj < stop], [stop]]))
    post = np.unique(np.concatenate([[stop], tj[tj > stop], [t_end]])) if np.isfinite(t_fire) else np.empty(0)
    return (pre, at(pre)), (post, at(post))


def _pick_neurons(t_layer, v_peak, n_show, label=None):
    """A handful of neurons: some that fire (spread over firing times) and the silent ones closest to firing."""
    fired = np.nonzero(np.isfinite(t_layer))[0]
    silent = np.nonzero(~np.isfinite(t_layer))[0]
    n_f = min(len(fired), max(1, n_show - 2) if len(silent) else n_show)
    chosen = list(fired[np.argsort(t_layer[fired])][np.linspace(0, len(fired) - 1, n_f).astype(int)]) if n_f else []
    if label is not None and label not in chosen:
        chosen = [label] + chosen[: n_show - 1]
    rest = [i for i in silent[np.argsort(-v_peak[silent])] if i not in chosen]
    chosen += rest[: n_show - len(chosen)]
    return list(dict.fromkeys(int(i) for i in chosen))


def plot_raster_traces(runs, t_input, out_png, v_th: float, t_end: float, label=None, n_show: int = 5,
                       title: str = "") -> Path:
    """Raster and membrane traces of every layer for one input, one column per run.

    runs: list of (name, weights, layer_times) with layer_times[l] (n_l,) the firing times of
    layer l for this input (inf when silent); t_input (784,) the input spike times.
    """
    n_layers = len(runs[0][1])
    n_rows = 1 + 2 * n_layers
    fig = Figure(figsize=(5.2 * len(runs), 1.9 * n_rows))
    axes = fig.subplots(n_rows, len(runs), squeeze=False, sharex=True)
    colors = matplotlib.colormaps["tab10"]
    for c, (name, weights, layer_times) in enumerate(runs):
        ax = axes[0][c]
        ok = np.isfinite(t_input) & (t_input < t_end)
        ax.plot(t_input[ok], np.nonzero(ok)[0], "|", markersize=2, color="gray")
        ax.set_title(f"{name}", fontsize=9)
        ax.set_ylabel("input\nneuron")
        prev = t_input
        for l, (w, t_l) in enumerate(zip(weights, layer_times)):
            where = "output" if l == n_layers - 1 else f"hidden {l + 1}"
            rax, vax = axes[1 + 2 * l][c], axes[2 + 2 * l][c]
            ok = np.isfinite(t_l)
            rax.plot(t_l[ok], np.nonzero(ok)[0], "|", markersize=3 if l < n_layers - 1 else 8, color="black")
            rax.set_ylim(-0.5, len(t_l) - 0.5)
            rax.set_ylabel(f"{where}\nneuron")
            rax.text(0.99, 0.95, f"{ok.mean():.2f} spikes/neuron", transform=rax.transAxes, ha="right",
                     va="top", fontsize=7, bbox=dict(facecolor="white", alpha=0.7, linewidth=0))
            v_end = np.maximum(0.0, t_end - np.where(np.isfinite(prev) & (prev < t_end), prev, t_end))[None, :] @ w
            chosen = _pick_neurons(t_l, v_end[0], n_show if l < n_layers - 1 else min(n_show, len(t_l)),
                                   label if l == n_layers - 1 else None)
            for k, i in enumerate(chosen):
                (tp, vp), (tu, vu) = membrane_trace(prev, w[:, i], t_l[i], t_end)
                col = colors(k % 10)
                tag = f"#{i}" + (" (label)" if (l == n_layers - 1 and label == i) else "")
                vax.plot(tp, vp, color=col, linewidth=1.1, label=tag)
                if len(tu):
                    vax.plot(tu, vu, color=col, linewidth=0.8, linestyle=":", alpha=0.7)
                    vax.plot([t_l[i]], [v_th], "o", color=col, markersize=3)
            vax.axhline(v_th, color="red", linewidth=0.8, linestyle="--", label="V_th")
            vax.set_ylabel(f"{where}\nv(t) (V_th units)", fontsize=8)
            lo = min([-0.5] + [float(np.min(np.asarray(x.get_ydata()))) for x in vax.get_lines()])
            vax.set_ylim(max(lo, -3 * v_th), 2.5 * v_th)
            vax.legend(fontsize=6, ncol=3, loc="upper left")
            prev = t_l
        axes[-1][c].set_xlabel("time (model units, tau)")
        axes[-1][c].set_xlim(0, t_end)
    if title:
        fig.suptitle(title + "\nsolid: v(t) up to firing (dot); dotted: unreset u(t) penalised by the regularisers",
                     fontsize=9)
    fig.tight_layout()
    return _save(fig, out_png)


def _save(fig, out_png) -> Path:
    return atomic_io.save_png(fig, out_png, dpi=DPI)


# ---------------------------------------------------------------- from folders

def run_spikes(run_dir, image_index: int = 0, data_dir=None):
    """(weights, t_input (784,), layer times, label, TrainedModel) of one test image for a run folder."""
    from training.checkpoint import load_model
    from training.data import check_fits, load_split, select
    from training.evaluate import spike_times

    run = load_model(run_dir)
    check_fits(str(Path(run_dir) / "model.npz"), run.weights, run.dataset)
    data = select(load_split(run.dataset, "test", data_dir), start=image_index, limit=1, start_flag="--image")
    t_input, layers = spike_times(run.weights, run.model, data.images)
    return run.weights, t_input[0], [t[0] for t in layers], int(data.labels[0]), run


def figure2(run_dirs, out_png, names=None, image_index: int = 0, data_dir=None) -> Path:
    runs, label, model = [], None, None
    for k, d in enumerate(run_dirs):
        weights, t_input, layers, label, run = run_spikes(d, image_index, data_dir)
        reg = run.meta.get("reg", {})
        desc = names[k] if names else (Path(d).name if reg.get("kind", "none") == "none" else
                                       f"{Path(d).name} ({reg.get('kind')} strength {reg.get('strength')})")
        runs.append((desc, weights, layers))
        model = run.model
    return plot_raster_traces(runs, t_input, out_png, model.v_th, model.t_end, label=label,
                              title=f"{run.dataset} test image {image_index} (label {label})")


def sweep_figures(sweep, out_dir, data_dir=None, image_index: int = 0) -> list[Path]:
    """Every figure a sweep folder supports: Fig. 3 (M-SSR/F-SSR), Fig. 4 (membrane), Fig. 2.

    The PNGs are named from the table's data set and layers (`mnist-784-400-10-tradeoff.png`);
    that text comes from a file, so the names go through infra.paths.inside: characters outside
    [A-Za-z0-9_.-] become `_` (a data set `../../escape` gives `___.._escape-...png` inside
    out_dir), and a name that still resolves outside out_dir (a planted symlink) is refused. The
    run folders the table names are read only from inside sweep (infra.paths.within).
    """
    from infra.paths import inside, within
    from training.sweep import CSV_NAME, aggregate, collect, read_tradeoff, write_tradeoff

    sweep, out_dir = Path(sweep), Path(out_dir)
    csv = sweep / CSV_NAME
    if not csv.is_file():
        write_tradeoff(sweep, collect(sweep))
    rows = read_tradeoff(csv)
    if not rows:
        return []
    points = aggregate(rows)            # one per point: the mean over its seeds, with their std
    tag = f"{rows[0]['dataset']}-{rows[0]['layers']}"
    n_ep = int(rows[0]["epochs"])
    what = f"{rows[0]['dataset']} {rows[0]['layers']}, {n_ep} epoch{'s' if n_ep > 1 else ''}"
    n_seeds = max(p["n_seeds"] for p in points)
    if n_seeds > 1:
        what += f", mean +- std over {n_seeds} seeds"
    made = []
    if any(r["kind"] in ("m-ssr", "f-ssr") for r in rows):
        made.append(plot_tradeoff(points, inside(out_dir, f"{tag}-tradeoff.png", str(csv)),
                                  f"accuracy vs firing, {what}"))
    if any(r["kind"] == "membrane" for r in rows):
        made.append(plot_membrane_comparison(points, inside(out_dir, f"{tag}-membrane-vs-mssr.png", str(csv)),
                                             f"M-SSR vs membrane loss, {what}"))
    base = [r for r in rows if r["kind"] == "none"]
    strong = _series(rows, "m-ssr") or _series(rows, "f-ssr")
    if base:    # the raster compares runs of one seed
        strong = [r for r in strong if r.get("seed") == base[0].get("seed")] or strong
    if base and strong:
        # the strongest run that still keeps some firing (about the paper's strong example)
        target = [r for r in strong if float(r["spikes_per_neuron_mean"]) >= 0.1] or strong[:1]
        runs = [within(sweep, r["run"], f"{csv}: column 'run'") for r in (base[0], target[-1])]
        made.append(figure2(runs,
                            inside(out_dir, f"{tag}-raster.png", str(csv)),
                            image_index=image_index, data_dir=data_dir))
    return made
