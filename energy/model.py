"""The spike-count energy model of a TTFS crossbar chip, per image, per layer, per component.

Groups (who causes the energy): `input` (the pixel spikes: every input row switches once per
image and conducts through crossbar 0), then `layer0 ... layer{L-1}` (a neuron's comparator
decision, the rows its spike switches in the next crossbar and their conduction, its own membrane
capacitor and its static power). Components, in joules per inference:

- `comparator`: e_comparator_j per fired neuron.
- `row_switching`: per switched row, its wire C_row v_read^2 (C_row = cells on the row x
  c_wire_per_cell_f) plus e_row_driver_j. dual-rail: 2 rows of n_out cells per input;
  differential: 1 row of 2 n_out cells.
- `conduction`: energy the rows a group's spikes drive draw through the crossbar cells, to the
  window end T (all of it heat in the cells, except, with a finite-gain op-amp, the tiny share that
  reaches the capacitors through the summing node at y/A). Integrator (column at virtual ground): exactly
  v_read^2 sum_j (g_pos + g_neg summed over row j's cells) (T - t_j) over fired inputs j -- both
  rows of a dual-rail input, both columns' cells of a differential one. Spike-count form:
  n_spikes x mean row conductance x v_read^2 x mean remaining time (T - t_j) of the fired rows,
  equal to the exact form when all rows have the same conductance or all rows fire together.
  Passive (cell current g (V_row - V_col)): exact from the column waveform (energy.kernels), minus
  the energy left in the capacitors (reported as `capacitor`).
- `capacitor`: the energy left in the membrane capacitors at the end, 1/2 C V_i(T)^2 (the
  integrator keeps integrating after it fires). Integrator: V_i follows v_read/C sum_j (g_pos -
  g_neg) (t - t_j), held at the op-amp swing Vs (by default 1.5 x the layer's threshold) by an
  ideal clamp across the capacitor while the net current pushes it past; delivered by the op-amp
  output. Passive: by the rows (the passive column never exceeds v_read, no clamp).
- `clamp` (integrator): the energy the op-amp output delivers into the clamp, Vs x |net column
  current| over the clamped stretches (exact, energy.kernels.column_energy); 0 when unclamped.
- `static`: (p_comparator_static_w + p_opamp_static_w [integrator only]) x neurons x T.

Gating (hw.gating, docs/hwmodel.md "Gating"): T above is per image t_stop = min(window end,
first output spike + hw.decision_guard_s); neurons (and input rows) that would fire after t_stop do
not (`hwmodel.behavioural.gate_times`), so they cost no comparator or row energy, and capacitors and
clamps stop at t_stop. Column gating: the cells of neuron i's column(s) conduct from t_j to
min(t_i, t_stop), and its capacitor and clamp stop at min(t_i, t_stop) (energy.kernels.column_energy,
per cell; the spike-count form uses the mean over the cells of that time).

A finite op-amp gain A (summing node at y/A, leak G_tot/A) is exact too, with the passive kernel.

Wires (hw.r_wire_row_ohm / r_wire_col_ohm, hw.wire_model: exact, integrator): the layer is the
exact network of its tiles (netlists.ports.transfer_and_row_form, the netlists' geometry). With the
columns at virtual ground the row drivers deliver v_read^2 u^T A u while the driven set is u, so
`conduction` = v_read^2 sum_jk A_jk min(T - t_j, T - t_k) (energy.kernels.quadratic_row_energy),
all of it heat in the cells and wires; `wire_heat_j` is the wires' share (their own quadratic form
from the solved node voltages), the capacitor term uses the exact transfer W. With a finite gain
the rows' power is v_read^2 u^T A u minus sum_i I_i y_i / A (I_i the exact drive of neuron i, y_i/A
its summing node): the passive kernel with the exact drive and leak (the behavioural model's:
hwmodel.wire_model.chip_wires) plus A's couplings between rows; neglected, as there, the currents
one column's y/A pushes into another, and the wires' heat is the virtual-ground one (a 1/A share).
Passive columns with exact wires are coupled nodes, C dV/dt = I - Y_g V (hwmodel.coupled): the rows
deliver v_read^2 u^T A u - I^T V, and in the behavioural model's modes z = E^T C V (V = E z,
dz/dt = E^T I - lam z, 1/2 V^T C V = 1/2 |z|^2) the integral of I^T V is the passive kernel's with
drive E^T I, unit capacitance and leak lam; the wires' share of the heat is not split out there
(`wire_heat_j` None: it depends on the column voltages too). With `hw.wire_model: first-order`
circuits use the chip's effective conductances (first order). Not modelled: read noise (zero
mean), column wire capacitance, the input encoder (pixel-to-time) circuit, reset.
docs/energy.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from energy import kernels, kernels_ref
from energy.config import EnergyConfig
from hwmodel.config import GATINGS, check_circuit, rows_per_input
from infra.errors import CheckpointError, ConfigError
from infra.shapes import check_chain, check_shape

COMPONENTS = ("comparator", "row_switching", "conduction", "capacitor", "clamp", "static")
SPIKE_COMPONENTS = ("comparator", "row_switching", "conduction")  # scale with spikes
_PASSIVE = {"numba": kernels.passive_row_energy, "numpy": kernels_ref.passive_row_energy}
_QUADRATIC = {"numba": kernels.quadratic_row_energy, "numpy": kernels_ref.quadratic_row_energy}
_COLUMN = {"numba": kernels.column_energy, "numpy": kernels_ref.column_energy}


@dataclass(frozen=True)
class EnergyCircuit:
    """What the energy model needs of a chip: effective conductances per layer (n_in, n_out) in S."""

    neuron: str              # integrator | passive
    scheme: str              # dual-rail | differential
    v_read_v: float
    t_end_s: float
    c_mem_f: tuple           # per layer
    g_pos: list = field(repr=False)
    g_neg: list = field(repr=False)
    v_th_v: tuple = ()       # per layer comparator threshold (sizes the derived op-amp swing)
    opamp_gain: float | None = None   # integrator open-loop gain; None: ideal
    # exact wires (integrator), per layer (netlists.ports.transfer_and_row_form): the signed transfer
    # w_s (n_in, n_out), the row drivers' power form a_s and its wires' share a_wire_s (n_in, n_in);
    # g_self_s (n_out,): each summing node's exact self-admittance (the finite-gain leak x A);
    # modes: passive nodes coupled by exact wires, per layer (hwmodel.coupled.Modes)
    w_s: list | None = field(default=None, repr=False)
    a_s: list | None = field(default=None, repr=False)
    a_wire_s: list | None = field(default=None, repr=False)
    g_self_s: list | None = field(default=None, repr=False)
    modes: list | None = field(default=None, repr=False)
    gating: str = "none"            # hw.gating (GATINGS), hw.decision_guard_s: when each term stops
    decision_guard_s: float = 0.0

    def __post_init__(self):
        check_circuit(self.neuron, self.scheme)
        if self.gating not in GATINGS:
            raise ConfigError(f"hw.gating: must be one of {', '.join(GATINGS)} (got {self.gating!r})")
        if self.gating == "column" and self.a_s is not None:
            raise ConfigError("hw.gating: column gating is not modelled with exact wires; use hw.wire_model: "
                              "first-order, no wire resistance, or hw.gating: decision")
        if self.a_s is not None and self.neuron == "passive" and self.modes is None:
            raise ConfigError("exact wire energy of passive columns needs their coupled modes (modes)")
        if self.a_s is not None and self.opamp_gain is not None and self.g_self_s is None:
            raise ConfigError("exact wire energy with a finite op-amp gain needs the summing nodes' "
                              "self-admittances (g_self_s)")

    @property
    def n_layers(self) -> int:
        return len(self.g_pos)

    @property
    def groups(self) -> tuple:
        return ("input",) + tuple(f"layer{l}" for l in range(self.n_layers))

    @classmethod
    def from_design(cls, design, chip=None, wires: list | None = None) -> "EnergyCircuit":
        """The chip's circuit (default: the stored one); `wires`: its `chip_wires` if the caller has them."""
        from hwmodel.neurons import effective_conductances
        chip = chip or design.stored_chip()
        hw = design.hw
        exact = {}
        if exact_wires(hw):
            from hwmodel.wire_model import chip_cached, chip_wires
            wires = wires if wires is not None else chip_wires(design, chip)   # the behavioural model's
            gp, gn = [w.g_pos_s for w in wires], [w.g_neg_s for w in wires]
            n_in = [np.shape(g)[0] for g in chip.g_pos]
            forms = chip_cached(design, chip, "energy-chip", lambda: _row_power_forms(chip, hw),
                                {f"{k}{l}": (n, n) for l, n in enumerate(n_in) for k in ("a", "a_wire")})
            exact = {"w_s": [p - n for p, n in zip(gp, gn)], "a_s": [forms[f"a{l}"] for l in range(len(n_in))],
                     "a_wire_s": [forms[f"a_wire{l}"] for l in range(len(n_in))],
                     "g_self_s": [w.g_self_s for w in wires]}
            if hw.neuron == "passive":
                from hwmodel.behavioural import circuits
                exact["modes"] = [c.modes for c in circuits(design, chip, wires)]
                exact["a_wire_s"] = None
        else:
            gp, gn = zip(*(effective_conductances(chip.g_pos[l], chip.g_neg[l], hw)
                           for l in range(design.n_layers)))
        return cls(neuron=design.neuron, scheme=design.scheme, v_read_v=design.v_read_v,
                   t_end_s=design.t_end_s, c_mem_f=tuple(design.c_mem_f), g_pos=list(gp), g_neg=list(gn),
                   v_th_v=tuple(float(v) + hw.comparator_offset_v for v in design.v_th_v),
                   opamp_gain=hw.opamp_gain, gating=hw.gating, decision_guard_s=hw.decision_guard_s, **exact)


def _row_power_forms(chip, hw) -> dict:
    """Every layer's row-power form a{l} and its wires' share a_wire{l} (n_in, n_in), in S
    (netlists.ports.transfer_and_row_form; cached per chip by `EnergyCircuit.from_design`)."""
    from netlists.ports import transfer_and_row_form
    out = {}
    for l in range(len(chip.g_pos)):
        _, out[f"a{l}"], out[f"a_wire{l}"] = transfer_and_row_form(
            chip.g_pos[l], chip.g_neg[l], hw.scheme, hw.r_wire_row_ohm, hw.r_wire_col_ohm, hw.tile_rows, hw.tile_cols)
    return out


def exact_wires(hw) -> bool:
    """The energy model solves the wire network exactly for this hardware (module docstring)."""
    return (hw.r_wire_row_ohm > 0 or hw.r_wire_col_ohm > 0) and hw.wire_model == "exact"


@dataclass(frozen=True)
class EnergyResult:
    """Per-image energies. energy_j[b, g, c]: image b, group g (`groups`), component c (`COMPONENTS`),
    with conduction in cfg.conduction_form; both conduction forms are kept for every group."""

    groups: tuple
    energy_j: np.ndarray                 # (N, G, C)
    conduction_exact_j: np.ndarray       # (N, G)
    conduction_spike_count_j: np.ndarray  # (N, G)
    spikes: np.ndarray                   # (N, G): input rows switched / neurons fired
    delay_s: np.ndarray                  # (N,): first output spike, or the window end if none
    output_fired: np.ndarray             # (N,) bool
    wire_heat_j: np.ndarray | None = None  # (N, G): the wires' share of conduction (exact wires), else None
    t_stop_s: np.ndarray | None = None     # (N,): when the inference ended (the window end, or gated)

    @property
    def total_j(self) -> np.ndarray:
        return self.energy_j.sum(axis=(1, 2))

    @property
    def spike_energy_j(self) -> np.ndarray:
        """Per image, the components that scale with spikes (comparator, rows, conduction)."""
        idx = [COMPONENTS.index(c) for c in SPIKE_COMPONENTS]
        return self.energy_j[:, :, idx].sum(axis=(1, 2))

    @staticmethod
    def concat(parts: list["EnergyResult"]) -> "EnergyResult":
        def cat(f):
            return None if getattr(parts[0], f) is None else np.concatenate([getattr(p, f) for p in parts])
        return EnergyResult(parts[0].groups, *(cat(f) for f in ("energy_j", "conduction_exact_j",
                                                                 "conduction_spike_count_j", "spikes",
                                                                 "delay_s", "output_fired")),
                            wire_heat_j=cat("wire_heat_j"), t_stop_s=cat("t_stop_s"))


def remaining_time(t_rows_s: np.ndarray, t_end_s) -> np.ndarray:
    """T - t for rows that switch before T, 0 for the others (inf or >= T); T the window end, or
    per image (N, 1) the gated t_stop."""
    t = np.asarray(t_rows_s, dtype=np.float64)
    return np.where(t < t_end_s, t_end_s - np.minimum(t, t_end_s), 0.0)


def conduction_exact(t_rows_s, g_row_s, v_read_v: float, t_end_s) -> np.ndarray:
    """Virtual-ground columns: sum over fired rows j of g_row_j v_read^2 (T - t_j), per image (N,).
    g_row_s (K,): total conductance of input j's cells (g_pos + g_neg summed over the row)."""
    return v_read_v ** 2 * (remaining_time(t_rows_s, t_end_s) @ np.asarray(g_row_s, dtype=np.float64))


def conduction_spike_count(t_rows_s, g_row_s, v_read_v: float, t_end_s) -> np.ndarray:
    """n_spikes x mean row conductance (over all K inputs) x v_read^2 x mean remaining time of the
    fired rows, per image (N,)."""
    rem = remaining_time(t_rows_s, t_end_s)
    n_fired = (rem > 0).sum(axis=1)
    mean_rem = np.where(n_fired > 0, rem.sum(axis=1) / np.maximum(n_fired, 1), 0.0)
    return n_fired * float(np.mean(g_row_s)) * v_read_v ** 2 * mean_rem


def energy_per_image(circ: EnergyCircuit, cfg: EnergyConfig, t_input_s, layer_times_s,
                     backend: str = "numba") -> EnergyResult:
    """Energy of every image from its input spike times (N, n_in) and every layer's firing times
    [(N, n_l)] in seconds (inf = silent; a layer's times are when its spikes switch the next rows,
    as `hwmodel.behavioural.layer_times` returns them). With circ.gating, the times are gated here
    too (`hwmodel.behavioural.gate_times`; idempotent) and every term ends at the image's t_stop."""
    from hwmodel.behavioural import gate_times
    t_input_s = np.asarray(t_input_s, dtype=np.float64)
    n_img, L, T, v = len(t_input_s), circ.n_layers, circ.t_end_s, circ.v_read_v
    groups = circ.groups
    e = np.zeros((n_img, L + 1, len(COMPONENTS)))
    cond_exact = np.zeros((n_img, L + 1))
    cond_sc = np.zeros((n_img, L + 1))
    spikes = np.zeros((n_img, L + 1))
    wire_heat = np.zeros((n_img, L + 1)) if circ.a_wire_s is not None else None
    c_cmp, c_rows, c_cond, c_cap, c_clamp, c_stat = (COMPONENTS.index(c) for c in (
        "comparator", "row_switching", "conduction", "capacitor", "clamp", "static"))
    times = [np.asarray(t, dtype=np.float64) for t in layer_times_s]
    if len(times) != L:
        raise ConfigError(f"layer_times_s: got {len(times)} layers of times for {L} layers of weights")
    check_shape("input spike times", t_input_s, (None, None))
    check_chain("energy circuit", [g.shape for g in circ.g_pos], t_input_s.shape[1],
                f"the input spike times have {t_input_s.shape[1]} columns", name="g_pos")
    for l in range(L):
        check_shape(f"energy circuit g_neg{l}", circ.g_neg[l], circ.g_pos[l].shape, error=CheckpointError)
        check_shape(f"layer_times_s[{l}]", times[l], (n_img, circ.g_pos[l].shape[1]), error=CheckpointError)
    gated = circ.gating != "none"
    times, t_stop = gate_times(times, T, circ.gating, circ.decision_guard_s)
    if gated:     # the row drivers are idle after t_stop: late input rows never switch
        t_input_s = np.where(t_input_s > t_stop[:, None], np.inf, t_input_s)
    t_run = t_stop[:, None] if gated else T           # when the rows stop conducting, per image
    drivers = [t_input_s] + times
    p_static = cfg.static_power_w(circ.neuron)
    column = _COLUMN[backend]
    for g in range(L + 1):
        t_rows = drivers[g]
        fired = t_rows < T
        spikes[:, g] = fired.sum(axis=1)
        if g > 0:   # the neurons of layer g-1: decisions, capacitors, bias
            l = g - 1
            e[:, g, c_cmp] = cfg.e_comparator_j * spikes[:, g]
            e[:, g, c_stat] = p_static * circ.g_pos[l].shape[1] * t_stop
        if g == L:
            continue
        gp, gn = circ.g_pos[g], circ.g_neg[g]
        n_out = gp.shape[1]
        rows, cells = rows_per_input(circ.scheme, n_out)
        e_row = cells * cfg.c_wire_per_cell_f * v * v + cfg.e_row_driver_j
        e[:, g, c_rows] = spikes[:, g] * rows * e_row
        g_row = np.diag(circ.a_s[g]).copy() if circ.a_s is not None else (gp + gn).sum(axis=1)
        cond_sc[:, g] = conduction_spike_count(t_rows, g_row, v, t_run)
        # each column's own end (gating): t_stop, or with column gating min(t_i, t_stop)
        t_col = (np.minimum(drivers[g + 1], t_stop[:, None]) if circ.gating == "column"
                 else np.repeat(t_stop[:, None], n_out, axis=1))
        if circ.a_s is None:
            g_cell = np.ascontiguousarray(gp + gn)
        else:   # one end for every column (HardwareConfig refuses column gating with exact wires)
            g_cell = np.zeros((len(g_row), n_out))
            g_cell[:, 0] = g_row
        if circ.a_s is not None:      # exact wires: the drivers' power form (columns at 0 V), the wires' share
            rem = np.ascontiguousarray(remaining_time(t_rows, t_run))
            row_row = v * v * _QUADRATIC[backend](rem, np.ascontiguousarray(circ.a_s[g]))
            row_coupling = row_row - v * v * (rem @ g_row)     # A's off-diagonal: what the kernels' rows miss
            if wire_heat is not None:
                wire_heat[:, g] = v * v * _QUADRATIC[backend](rem, np.ascontiguousarray(circ.a_wire_s[g]))
        clamp = np.zeros(n_img)
        cell_time = None
        if circ.neuron == "integrator":
            if cfg.v_swing_v is None and not np.isinf(cfg.swing_over_threshold) and len(circ.v_th_v) <= g:
                raise ConfigError("energy.v_swing_v: null derives the swing from each layer's threshold, but the "
                                  "circuit has no thresholds; set energy.v_swing_v or give EnergyCircuit v_th_v")
            swing = cfg.swing_v(circ.v_th_v[g]) if len(circ.v_th_v) > g else cfg.v_swing_v
            swing_n = np.full(n_out, np.inf if swing is None else float(swing))
            plain = swing is None and circ.gating != "column"    # no clamp, every column to t_run
            c = circ.c_mem_f[g]
            if circ.opamp_gain is None:
                w = circ.w_s[g] if circ.a_s is not None else gp - gn
                if circ.a_s is not None:
                    cond_exact[:, g] = row_row
                elif circ.gating != "column":
                    cond_exact[:, g] = conduction_exact(t_rows, g_row, v, t_run)
                if plain:
                    v_end = remaining_time(t_rows, t_run) @ w * (v / c)
                else:   # the clamped ramp of every column to its own end (energy.kernels.column_energy)
                    row_e, v_end, clamp, cell_time = column(
                        np.ascontiguousarray(t_rows), np.ascontiguousarray(v * w), g_cell, np.zeros(n_out),
                        np.full(n_out, c), v, t_col, 0.0, swing_n)
                    if circ.gating == "column":
                        cond_exact[:, g] = row_e
                cap = 0.5 * c * (v_end ** 2).sum(axis=1)
            else:
                # finite gain A: the summing node sits at y/A, the column leaks G_tot/A (docs/hwmodel.md).
                # The capacitor ends at y (1 + 1/A): 1/2 C (1 + 1/A)^2 y^2, of which the rows deliver
                # C (1 + 1/A) y^2 / (2A) through the summing node (counted in their conduction) and the
                # op-amp output the rest, 1/2 C (1 + 1/A) y^2 (the capacitor term). The clamp holds y.
                # Exact wires: the kernel's rows see diag(A) and the exact drive; A's couplings between
                # rows (off its diagonal) add their own quadratic form.
                a = float(circ.opamp_gain)
                g_self = circ.g_self_s[g] if circ.g_self_s is not None else (gp + gn).sum(axis=0)
                args = (np.ascontiguousarray(t_rows), np.ascontiguousarray(v * (gp - gn)))
                if plain and not gated:
                    row_e, y_end = _PASSIVE[backend](*args, np.ascontiguousarray(g_row),
                                                     np.ascontiguousarray(g_self / a),
                                                     np.full(n_out, c * (1 + 1 / a)), v, T, 1.0 / a)
                else:
                    row_e, y_end, clamp, cell_time = column(*args, g_cell, np.ascontiguousarray(g_self / a),
                                                            np.full(n_out, c * (1 + 1 / a)), v, t_col, 1.0 / a,
                                                            swing_n)
                cond_exact[:, g] = row_e if circ.a_s is None else row_e + row_coupling
                cap = 0.5 * c * (1 + 1 / a) * (y_end ** 2).sum(axis=1)
        elif circ.a_s is not None:
            # coupled passive nodes, in their modes (module docstring): drive E^T I, unit C, leak lam
            m = circ.modes[g]
            args = (np.ascontiguousarray(t_rows), np.ascontiguousarray((v * (gp - gn)) @ m.e))
            if not gated:
                row_e, z_end = _PASSIVE[backend](*args, np.ascontiguousarray(g_row),
                                                 np.ascontiguousarray(m.lam_per_s), np.ones(n_out), v, T)
            else:
                row_e, z_end, _, _ = column(*args, g_cell, np.ascontiguousarray(m.lam_per_s), np.ones(n_out), v,
                                            t_col, 1.0, np.full(n_out, np.inf))
            cap = 0.5 * (z_end ** 2).sum(axis=1)
            cond_exact[:, g] = row_e + row_coupling - cap
        else:
            d = np.ascontiguousarray(v * (gp - gn))
            c_f = np.full(n_out, circ.c_mem_f[g])
            g_leak = np.ascontiguousarray((gp + gn).sum(axis=0))
            if not gated:
                row_e, v_end = _PASSIVE[backend](np.ascontiguousarray(t_rows), d, np.ascontiguousarray(g_row),
                                                 g_leak, c_f, v, T)
            else:
                row_e, v_end, _, cell_time = column(np.ascontiguousarray(t_rows), d, g_cell, g_leak, c_f, v, t_col,
                                                    1.0, np.full(n_out, np.inf))
            cap = 0.5 * circ.c_mem_f[g] * (v_end ** 2).sum(axis=1)
            cond_exact[:, g] = row_e - cap      # heat in the cells; the rest sits in the capacitors
        if circ.gating == "column":   # the spike-count form over the cells' own ends
            cond_sc[:, g] = float(np.mean(g_row)) * v * v * cell_time / n_out
        e[:, g, c_cond] = cond_exact[:, g] if cfg.conduction_form == "exact" else cond_sc[:, g]
        e[:, g + 1, c_cap] = cap
        e[:, g + 1, c_clamp] = clamp
    out = drivers[-1]
    first = out.min(axis=1) if out.shape[1] else np.full(n_img, np.inf)
    output_fired = first < T
    delay = np.where(output_fired, first, T)
    return EnergyResult(groups, e, cond_exact, cond_sc, spikes, delay, output_fired, wire_heat, t_stop)


def check_design(design, cfg: EnergyConfig) -> None:
    """An integrator whose output range does not reach its threshold could never fire."""
    if design.neuron != "integrator" or cfg.v_swing_v is None:
        return   # a derived swing is above the threshold by construction
    for l, th in enumerate(design.v_th_v):
        if th + design.hw.comparator_offset_v >= cfg.v_swing_v:
            raise ConfigError(
                f"energy.v_swing_v: layer {l}'s threshold {th:.4g} V is not below the op-amp output swing "
                f"{cfg.v_swing_v} V, so the integrator could not reach it; set energy.v_swing_v above "
                f"{th:.3g} (e.g. --set energy.v_swing_v={1.5 * th:.2g}), or null to derive it from each threshold")


def design_energy(design, cfg: EnergyConfig, images, batch_size: int = 1000, progress: bool = True,
                  desc: str = "energy", backend: str = "numba"):
    """(EnergyResult, predicted classes (N,)) of a design over byte images, in batches.

    Firing times come from the exact behavioural model of the stored chip."""
    from hwmodel.behavioural import circuits, input_times_s, layer_times
    from hwmodel.wire_model import chip_wires
    from training.network import predict
    check_design(design, cfg)
    chip = design.stored_chip()
    wires = chip_wires(design, chip)                # solved once for the energy and the firing times
    circ = EnergyCircuit.from_design(design, chip, wires)
    circs = circuits(design, chip, wires)
    parts, preds = [], []
    n = len(images)
    with tqdm(total=n, unit="img", desc=desc, disable=not progress, leave=False) as bar:
        for start in range(0, n, batch_size):
            t_in = input_times_s(design, images[start:start + batch_size])
            times = layer_times(design, t_in, chip, sample_offset=start, circs=circs)
            parts.append(energy_per_image(circ, cfg, t_in, times, backend))
            preds.append(predict(times[-1]))
            bar.update(len(t_in))
    return EnergyResult.concat(parts), np.concatenate(preds)
