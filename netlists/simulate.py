"""Circuit-level inference of one input: the network simulated in ngspice, layer by layer.

Layer l is simulated alone, driven at the event times of layer l-1 (its measured firing times,
already including the comparator delay); this is the circuit of the whole network exactly, because
a layer only sees the layer below through its row drivers, which are ideal sources switched at
those times. Firing times are read from the saved potentials by linear interpolation of the
first upward crossing of each neuron's threshold.
"""
from __future__ import annotations

import time

import numpy as np

from netlists.circuit import Circuit
from netlists.ngspice import session
from netlists.writer import columns_independent, driver_groups, layer_netlist
from infra.errors import SimulationError

TILE_DEVICES = 3000     # resistors per ngspice run (see tile_size)
# Solver settings of the first attempt and of the retry after a convergence failure or timeout.
FAST = {"max_step_frac": None, "options": ""}
SAFE = {"max_step_frac": 1e-3, "options": "method=gear reltol=1e-4 itl4=100"}


def crossings(time_s: np.ndarray, v: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """First upward crossing of thr (n,) by each column of v (T, n) sampled at time_s, linearly
    interpolated between the samples around it; inf where a column never exceeds its threshold."""
    above = v > thr[None, :]
    fired = above.any(axis=0)
    k = np.argmax(above, axis=0)
    out = np.full(v.shape[1], np.inf)
    cols = np.nonzero(fired)[0]
    kk = k[cols]
    at0 = kk == 0
    out[cols[at0]] = time_s[0]
    cols, kk = cols[~at0], kk[~at0]
    t0, t1 = time_s[kk - 1], time_s[kk]
    v0, v1 = v[kk - 1, cols], v[kk, cols]
    out[cols] = t0 + (thr[cols] - v0) * (t1 - t0) / (v1 - v0)
    return out


def tile_size(circuit: Circuit, l: int, n_rows_live: int) -> int:
    """Columns per ngspice run: about TILE_DEVICES resistors (ngspice's cost per device grows with
    circuit size, cache-bound, so several small runs beat one big one)."""
    n_out = circuit.g_pos[l].shape[1]
    if not columns_independent(circuit):
        return n_out
    per_col = 2 * (n_rows_live + 1)
    return int(min(n_out, max(1, TILE_DEVICES // per_col)))


SAVES = ("potentials", "all")


def simulate_layer(circuit: Circuit, l: int, t_rows_s: np.ndarray, settings: dict = FAST,
                   deadline: float | None = None, save: str = "potentials", on_tile=None,
                   t_stop_s: float | None = None, t_fire_s=None) -> np.ndarray:
    """Firing times (s, inf = silent, comparator delay included) of layer l's neurons for row event
    times t_rows_s, the layer run in ngspice as tiles of columns (`tile_size`).

    save: "potentials" keeps only the neurons' potentials v(p{l}_i); "all" has ngspice keep every
    node voltage and branch current (`.save all`, e.g. to integrate the power of the sources).
    on_tile(netlist, vectors), if given, is called with each tile's netlist text and saved vectors.
    deadline: time.perf_counter() value after which ngspice is halted (SimulationError).
    t_stop_s, t_fire_s: the image's known gating time and this layer's own (gated) firing times
    (`image_events`), written into the netlists (writer.layer_netlist); a neuron firing after
    t_stop_s is silent."""
    if save not in SAVES:
        raise ValueError(f"simulate_layer: save must be one of {', '.join(SAVES)} (got {save!r})")
    frac = settings.get("max_step_frac")
    max_step = None if frac is None else frac * circuit.t_end_s
    n_out = circuit.g_pos[l].shape[1]
    times, _ = driver_groups(t_rows_s, circuit.t_end_s)
    tile = tile_size(circuit, l, len(times))
    t_cross = np.empty(n_out)
    for start in range(0, n_out, tile):
        cols = range(start, min(n_out, start + tile))
        netlist = layer_netlist(circuit, l, t_rows_s, max_step_s=max_step,
                                options=settings.get("options", ""), cols=cols, save_all=save == "all",
                                t_stop_s=t_stop_s, t_fire_s=t_fire_s)
        timeout_s = None if deadline is None else max(deadline - time.perf_counter(), 1e-3)
        result = session().run(netlist, timeout_s=timeout_s)
        t = result.vectors.get("time")
        if t is None or len(t) < 2 or t[-1] < circuit.t_end_s * (1 - 1e-9):
            reached = "nothing" if t is None or not len(t) else f"{t[-1]:.4g} s"
            raise SimulationError(f"layer {l}: the transient stopped early (reached {reached} of "
                                  f"{circuit.t_end_s:.4g} s); ngspice said:\n" + result.log[-2000:])
        v = np.empty((len(t), len(cols)))
        for n, i in enumerate(cols):
            name = f"p{l}_{i}"
            vec = result.vectors.get(name, result.vectors.get(f"v({name})"))
            if vec is None:
                raise SimulationError(f"layer {l}: ngspice returned no vector for {name}")
            v[:, n] = vec
        t_cross[start:cols.stop] = crossings(t, v, circuit.v_th_v[l][start:cols.stop])
        if on_tile is not None:
            on_tile(netlist, result.vectors)
    # A decision later than t_end - delay switches its rows only after the window: silent.
    t_cross[t_cross > circuit.t_end_s - circuit.comparator_delay_s] = np.inf
    t_fire = t_cross + circuit.comparator_delay_s
    if t_stop_s is not None:
        t_fire[t_fire > t_stop_s] = np.inf
    return t_fire


def simulate_network(circuit: Circuit, t_input_s: np.ndarray, settings: dict = FAST,
                     timeout_s: float | None = None) -> list:
    """Per layer, firing times (s) of one input (n_in,) simulated layer by layer (gated: those
    after the image's t_stop are inf, `image_events`)."""
    deadline = None if timeout_s is None else time.perf_counter() + timeout_s
    times, rows = [], np.asarray(t_input_s, dtype=np.float64)
    for l in range(circuit.n_layers):
        rows = simulate_layer(circuit, l, rows, settings, deadline)
        times.append(rows)
    return image_events(circuit, times)[0]


def image_events(circuit: Circuit, times_s: list) -> tuple[list, float]:
    """(every layer's gated firing times, t_stop) of one image from its ungated ones [(n_l,)]
    (hwmodel.behavioural.gate_times: firing times up to t_stop are the ungated ones, so a
    simulation without gating gives them). t_stop is the window end with gating none."""
    from hwmodel.behavioural import gate_times
    gated, t_stop = gate_times([np.asarray(t, dtype=np.float64)[None, :] for t in times_s], circuit.t_end_s,
                               circuit.gating, circuit.decision_guard_s)
    return [t[0] for t in gated], float(t_stop[0])
