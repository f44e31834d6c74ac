"""ngspice netlist text for a mapped TTFS network, written directly as text (fast for 10^5+ lines).

Two netlists come out of the same blocks (docs/netlists.md draws them):

- `network_netlist`: the standalone circuit of layers a..b-1 for one input (`ttfs export-netlist`).
  Layer a's rows are driven by PWL sources at the given spike times; every neuron has a
  comparator that latches its firing and drives its rows in the next layer from then to the end
  of the window. `.meas` prints each neuron's firing time `t_l{layer}_n{neuron}` in seconds.
  One resistor per crossbar cell (with wires: below).
- `layer_netlist`: one layer driven by PWL sources at known spike times (the runner simulates a
  network layer by layer, feeding each layer the measured firing times of the one before). Rows
  that switch at the same time share a driver; without wire resistance, the cells of rows that
  share a driver connect the same two nodes and are written as one resistor of their summed
  conductance (exactly the same circuit equations, far fewer devices). Only the neurons'
  potentials are saved.

With wire resistance a crossbar is written per tile (hwmodel/tiles.py) either `literal` (a resistor
per wire segment and per cell, `_crossbar_cells`) or `reduced` (each tile's exact port equivalent,
`_crossbar_reduced`, netlists/ports.py): the same circuit as its drivers and neurons see it
(`Circuit.wire_netlist`).

Conventions: a driver's edge starts at its event time (input spike, or comparator decision plus
`comparator_delay_s`) and rises linearly over `t_rise_s`. Row drivers idle at 0 V; a row that never
fires within the window stays at 0 V (still connected: it loads a passive column).
"""
from __future__ import annotations

import io
import re

import numpy as np

from infra.errors import SimulationError
from infra.inert_text import comment_line, number_text
from hwmodel.config import rows_per_input
from hwmodel.tiles import layer_tiles
from netlists.circuit import Circuit

_SUBCKTS = {
    "integrator": """\
* Integrator neuron: the op-amp (open-loop gain a, output out = -a * v(in)) holds the column at
* virtual ground; the column current charges the feedback capacitor c. The membrane potential is
* the inverted output, pot = -v(out) = (1/c) * integral of the column current.
.subckt nint in pot params: c=1e-10 a=1e9
Eop out 0 0 in {a}
Cf in out {c}
Einv pot 0 0 out 1
.ends nint
""",
    "integrator-differential": """\
* Differential integrator neuron: the + column feeds the integrator's summing node; the - column is
* held at virtual ground (0 V sense source Vvg) and its current is mirrored out of the summing
* node (F-source), so the capacitor integrates I(+ column) - I(- column).
.subckt nintd in inn pot params: c=1e-10 a=1e9
Eop out 0 0 in {a}
Cf in out {c}
Vvg inn 0 0
Fmir in 0 Vvg 1
Einv pot 0 0 out 1
.ends nintd
""",
    "passive": """\
* Passive neuron: the column node charges a grounded capacitor c through the crossbar cells;
* pot is a unity buffer of the column voltage (the comparator input).
.subckt npas in pot params: c=1e-10
Cm in 0 {c}
Ebuf pot 0 in 0 1
.ends npas
""",
}
# The integrator's output clamp pot <= vs: a conductance gcl across the feedback capacitor that
# conducts only while pot > vs (the summing node stays at virtual ground; the column current the
# capacitor cannot take flows through the clamp, delivered by the op-amp output at ~vs). One-sided,
# as the energy model's: above the threshold a neuron has fired, so it moves no firing time.
_CLAMP = "Bcl in out I = {gcl} * max(v(pot) - {vs}, 0)\n"


def _neuron_subckt(circuit: Circuit, clamped: bool) -> str:
    """The neuron subcircuit text; `clamped` (integrator): with the output clamp, named nintc / nintdc."""
    kind = "passive" if circuit.neuron == "passive" else (
        "integrator-differential" if circuit.scheme == "differential" else "integrator")
    text = _SUBCKTS[kind]
    if not clamped:
        return text
    name = "nintd" if kind == "integrator-differential" else "nint"
    text = text.replace(f".subckt {name} ", f".subckt {name}c ").replace(f".ends {name}\n", f".ends {name}c\n")
    text = text.replace(" a=1e9\n", " a=1e9 vs=1 gcl=1\n", 1)
    head, tail = text.rsplit("Einv", 1)
    return ("* ... with its output clamp: Bcl across the feedback capacitor conducts (gcl) only while "
            "pot > vs.\n" + head + _CLAMP + "Einv" + tail)


def _comparator(circuit: Circuit, drives_rows: bool) -> str:
    """The comparator, latch and row driver subcircuit (`cmp`; `cmpo` for the output layer, whose
    spikes drive no rows). Its bookkeeping (latch q, decision-time keeper tc) charges 1e-18 F and
    1e-15 x ts F nodes with nA-fA currents: < 1e-17 J per neuron, no real supply draw. With supply
    terms (Circuit.supply): the decision charges a capacitor from a supply-level source (energy
    e_comparator_j), and a driving comparator's row switch another one (e_row_driver_j plus the
    driver's loss charging the rows' wire capacitance, cw on each row node)."""
    sup = circuit.supply
    name = "cmp" if drives_rows else "cmpo"
    gated = circuit.gating != "none"
    run = " * v(run)" if gated else ""
    lines = [
        f"* Comparator, latch and row driver of one neuron ({name}).",
        "*  - Bset charges q (1e-18 F) to 1 V within ~1 ps once pot exceeds thr" +
        (" (while run is high: nothing switches after the decision)" if gated else "") +
        "; nothing discharges q: the latch.",
        "*  - tc integrates 1/ts per second (1e-15 A into 1e-15 x ts F: tc = time in units of ts) until",
        "*    the latch is set, so tc * ts holds the decision time afterwards (bookkeeping, < 1e-20 J).",
        "*  - spk (the neuron's + row in the next layer) rises linearly from 0 to vread over tr, starting",
        "*    `delay` after the decision, and stays there" + (" until run falls (t_stop)" if gated else
                                                               " to the end of the window") +
        "; spkm = -spk is the - row.",
    ]
    if circuit.gating == "column":
        lines.append("*  - en (the column enable of its cells) falls from 1 to 0 over tr at the firing time "
                     "(decision + delay), and with run")
    ports = "pot spk spkm q tc" + (" run" if gated else "") + (" en" if circuit.gating == "column" else "")
    lines.append(f".subckt {name} {ports} params: thr=0.5 delay=0 tr=1e-9 vread=0.2 ts=1e-6 vsup=1 "
                 "ccmp=0 cpr=0 cw=0")
    cond = f"v(pot) > {{thr}} && v(q) < 1" + (" && v(run) > 0.5" if gated else "")
    lines += [f"Bset 0 q I = ({cond}) ? 1e-6 : 0", "Cq q 0 1e-18",
              "Btc 0 tc I = v(q) < 0.5 ? 1e-15 : 0", "Ctc tc 0 {1e-15 * ts}",
              "Bspk spk 0 V = {vread} * min(1, max(0, (time - v(tc) * {ts} - {delay}) / {tr}))" + run,
              "Espkm spkm 0 spk 0 -1"]
    if circuit.gating == "column":
        lines.append("Ben en 0 V = (v(q) > 0.5 ? min(1, max(0, 1 - (time - v(tc) * {ts} - {delay}) / {tr})) : 1)"
                     + run)
    if sup.e_comparator_j > 0:
        lines += ["Bpc pc 0 V = {vsup} * min(1, max(0, (time - v(tc) * {ts}) / {tr}))", "Cpc pc 0 {ccmp}"]
    if drives_rows and sup.e_row_driver_j + sup.c_wire_per_cell_f > 0:
        lines += ["Bpr pr 0 V = {vsup} * min(1, max(0, (time - v(tc) * {ts} - {delay}) / {tr}))",
                  "Cpr pr 0 {cpr}"]
    if drives_rows and sup.c_wire_per_cell_f > 0:
        lines += ["Cw spk 0 {cw}"] + (["Cwm spkm 0 {cw}"] if circuit.scheme == "dual-rail" else [])
    lines.append(f".ends {name}")
    return "\n".join(lines) + "\n"


_f = number_text       # every number of a netlist: finite, or SimulationError naming the quantity
_OPTIONS = re.compile(r"[A-Za-z0-9_]+=[A-Za-z0-9_.+-]+(?: [A-Za-z0-9_]+=[A-Za-z0-9_.+-]+)*")

# The writer's whole vocabulary: every line it writes is a `* ` comment (comment_line), an element
# of one of these kinds (resistor, V source, E/F controlled source, capacitor, B source, subcircuit
# instance) or one of these dot-commands. check_inert enforces it on any text given to ngspice.
DEVICE_LETTERS = "RVEFCBX"
DOT_COMMANDS = (".subckt", ".ends", ".save", ".options", ".tran", ".meas", ".end")
_LINE = re.compile("|".join([
    r"\*(?: [ -~]*)?",                                    # comment; never `*#` (ngspice runs those)
    rf"[{DEVICE_LETTERS}{DEVICE_LETTERS.lower()}][ -~]*",  # element line
    r"(?:" + "|".join(re.escape(c) for c in DOT_COMMANDS) + r")(?: [ -~]*)?",
]))


def driver_groups(t_rows_s: np.ndarray, t_end_s: float):
    """Distinct event times within the window and, per row, its driver index (-1: never driven)."""
    t = np.asarray(t_rows_s, dtype=np.float64)
    live = np.isfinite(t) & (t < t_end_s)
    times, inverse = np.unique(t[live], return_inverse=True)
    group = np.full(t.shape, -1, dtype=np.int64)
    group[live] = inverse
    return times, group


def _pwl(t_s: float, level_v: float, t_rise_s: float, t_off_s: float | None = None) -> str:
    """0 V, then a linear edge to level_v over t_rise_s from t_s; `t_off_s` (gating): back to 0 V
    over t_rise_s from then (or from the end of the rising edge, if later)."""
    t0 = max(float(t_s), 0.0)
    lv = _f(level_v, "v_read_v")
    pts = ["0 0"] if t0 == 0.0 else ["0 0", f"{_f(t0, 'row event time (s)')} 0"]
    pts.append(f"{_f(t0 + t_rise_s, 'row event time + t_rise_s')} {lv}")
    if t_off_s is not None:
        t1 = max(float(t_off_s), t0 + t_rise_s)
        if t1 > t0 + t_rise_s:
            pts.append(f"{_f(t1, 't_stop (s)')} {lv}")
        pts.append(f"{_f(t1 + t_rise_s, 't_stop + t_rise_s')} 0")
    return "PWL(" + " ".join(pts) + ")"


def cells_per_row(circuit: Circuit, l: int) -> int:
    """Cells on one physical row of layer l's crossbar (hwmodel.config.rows_per_input)."""
    return rows_per_input(circuit.scheme, circuit.g_pos[l].shape[1])[1]


def _row_pulse_j(circuit: Circuit, l: int) -> float:
    """Supply energy of one input spike's row switch in layer l beyond charging the rows' wires:
    per physical row e_row_driver_j plus the driver's loss charging the wire, 1/2 C_row v_read^2
    (an ideal source delivers only the 1/2 C_row v_read^2 the wire stores)."""
    sup = circuit.supply
    rails, cells = rows_per_input(circuit.scheme, circuit.g_pos[l].shape[1])
    c_row = cells * sup.c_wire_per_cell_f
    return rails * (sup.e_row_driver_j + 0.5 * c_row * circuit.v_read_v ** 2)


def _charge(out, name: str, t_s: float, energy_j: float, circuit: Circuit, what: str) -> None:
    """A supply draw of `energy_j` at t_s: a supply-level source V{name} ramping to v_supply_v over
    t_rise_s charges C{name} (1/2 C v^2 = energy_j); nothing discharges it."""
    vs = circuit.supply.v_supply_v
    node = name.lower()
    out.write(f"V{name} {node} 0 {_pwl(t_s, vs, circuit.t_rise_s)}\n")
    out.write(f"C{name} {node} 0 {_f(2.0 * energy_j / vs ** 2, what)}\n")


def _drivers(out, l: int, times, circuit: Circuit, t_stop_s: float | None = None, group=None,
             supplies: bool = False, run: bool = False) -> None:
    """Shared PWL row drivers d{l}_{k} (+V_read) and d{l}_{k}m (-V_read, dual-rail) of layer l,
    back to idle at t_stop_s (gating; None: never). `run` (the standalone netlist's gating): B
    sources +/-V_read x v(u{l}_{k}) x v(run) on unit PWL waveforms (read only) instead. `supplies`:
    with the rows' wire capacitance on each driver node and each driver's row-switching pulse
    (Circuit.supply; `group` counts its rows)."""
    dual = circuit.scheme == "dual-rail"
    t_off = None if t_stop_s is None or t_stop_s >= circuit.t_end_s else t_stop_s
    out.write(f"* Row drivers of layer {l}: {len(times)} shared drivers, one per distinct event time; "
              f"edge {_f(circuit.t_rise_s, 't_rise_s')} s from the event time"
              + ("" if t_off is None else f", idle from t_stop = {_f(t_off, 't_stop (s)')} s")
              + (", idle when run falls (t_stop)" if run else "") + "\n")
    vr = _f(circuit.v_read_v, "v_read_v")
    for k, t in enumerate(times):
        if run:
            out.write(f"Vu{l}_{k} u{l}_{k} 0 {_pwl(t, 1.0, circuit.t_rise_s)}\n")
            out.write(f"Bd{l}_{k} d{l}_{k} 0 V = {vr} * v(u{l}_{k}) * v(run)\n")
            if dual:
                out.write(f"Bd{l}_{k}m d{l}_{k}m 0 V = -{vr} * v(u{l}_{k}) * v(run)\n")
            continue
        out.write(f"Vd{l}_{k} d{l}_{k} 0 {_pwl(t, circuit.v_read_v, circuit.t_rise_s, t_off)}\n")
        if dual:
            out.write(f"Vd{l}_{k}m d{l}_{k}m 0 {_pwl(t, -circuit.v_read_v, circuit.t_rise_s, t_off)}\n")
    sup = circuit.supply
    if not supplies or not sup.any or not len(times):
        return
    n_rows = np.bincount(group[group >= 0], minlength=len(times))
    c_row = cells_per_row(circuit, l) * sup.c_wire_per_cell_f
    out.write(f"* Row switching of layer {l}: the rows' wire capacitance on each driver node (C_row = "
              f"{_f(c_row, 'C_row')} F per row) and per driver a supply draw of its rows' switching "
              "(e_row_driver_j + the driver's loss charging the wire)\n")
    for k, t in enumerate(times):
        if c_row > 0:
            out.write(f"Cw{l}_{k} d{l}_{k} 0 {_f(n_rows[k] * c_row, 'row wire capacitance')}\n")
            if dual:
                out.write(f"Cw{l}_{k}m d{l}_{k}m 0 {_f(n_rows[k] * c_row, 'row wire capacitance')}\n")
        e = n_rows[k] * _row_pulse_j(circuit, l)
        if e > 0:
            _charge(out, f"pr{l}_{k}", t, e, circuit, "row-switching pulse capacitance")


def _layer_supplies(out, l: int, circuit: Circuit, cols: range, t_stop_s: float, t_fire_s) -> None:
    """Static bias of the neurons `cols` of layer l (a supply source Vdd{l}, one resistor per neuron,
    off from t_stop_s) and each firing neuron's comparator decision (a charge at its decision)."""
    sup = circuit.supply
    vs = sup.v_supply_v
    if sup.p_static_w > 0:
        t_off = None if t_stop_s >= circuit.t_end_s else t_stop_s
        out.write(f"* Static bias of layer {l}'s neurons: {_f(sup.p_static_w, 'p_static_w')} W each from "
                  f"the supply Vdd{l}" + ("" if t_off is None else ", power-gated at t_stop") + "\n")
        if t_off is None:
            out.write(f"Vdd{l} vdd{l} 0 {_f(vs, 'v_supply_v')}\n")
        else:
            out.write(f"Vdd{l} vdd{l} 0 PWL(0 {_f(vs, 'v_supply_v')} {_f(t_off, 't_stop (s)')} "
                      f"{_f(vs, 'v_supply_v')} {_f(t_off + circuit.t_rise_s, 't_stop + t_rise_s')} 0)\n")
        for i in cols:
            out.write(f"Rst{l}_{i} vdd{l} 0 {_f(vs ** 2 / sup.p_static_w, 'static bias resistance')}\n")
    if sup.e_comparator_j > 0 and t_fire_s is not None:
        out.write(f"* Comparator decisions of layer {l}: {_f(sup.e_comparator_j, 'e_comparator_j')} J each\n")
        for i in cols:
            t = float(t_fire_s[i])
            if t < circuit.t_end_s:
                _charge(out, f"pc{l}_{i}", max(t - circuit.comparator_delay_s, 0.0), sup.e_comparator_j,
                        circuit, "comparator pulse capacitance")


def _column_enables(out, l: int, circuit: Circuit, cols: range, t_stop_s: float, t_fire_s) -> dict:
    """Column gating: per neuron of `cols` that fires, or is still connected at t_stop < t_end, an
    enable node en{l}_{i} (1 V, falling to 0 over t_rise_s from min(t_i, t_stop), after the
    neuron's crossing) that scales the conductance of its cells. {neuron: node}."""
    if circuit.gating != "column":
        return {}
    en = {}
    tr = circuit.t_rise_s
    out.write(f"* Column gating of layer {l}: each column's cells conduct x v(en{l}_i), off at the neuron's "
              "firing time (or t_stop)\n")
    for i in cols:
        t = min(float(t_fire_s[i]) if t_fire_s is not None else np.inf, t_stop_s)
        if t >= circuit.t_end_s:
            continue
        a, b = t, t + tr
        pts = "0 1" if a == 0.0 else f"0 1 {_f(a, 'column gating time (s)')} 1"
        out.write(f"Ven{l}_{i} en{l}_{i} 0 PWL({pts} {_f(b, 'column gating time (s)')} 0)\n")
        en[i] = f"en{l}_{i}"
    return en


def _cell(out, name: str, a: str, b: str, g: float, enable: str | None, what: str) -> None:
    """A cell (or merged cells) of conductance g between a and b; with an enable node, a switched
    conductance (column gating: the column's select line)."""
    if enable is None:
        out.write(f"R{name} {a} {b} {_f(1.0 / g, what)}\n")
    else:
        out.write(f"BR{name} {a} {b} I = {_f(g, 'cell conductance')} * v({a}, {b}) * v({enable})\n")


def _column_nodes(l: int, n_out: int, circuit: Circuit):
    plus = [f"c{l}_{i}" for i in range(n_out)]
    minus = [f"c{l}_{i}n" for i in range(n_out)] if circuit.scheme == "differential" else plus
    return plus, minus


def _crossbar_merged(out, l: int, group, n_groups: int, circuit: Circuit, cols: range | None = None,
                     enable: dict | None = None) -> None:
    """Per column, one resistor per (driver, rail): the parallel cells of rows sharing a driver
    (switched conductances for the columns in `enable`, {neuron: enable node}: column gating)."""
    enable = enable or {}
    g_pos, g_neg = circuit.g_pos[l], circuit.g_neg[l]
    n_in, n_out = g_pos.shape
    cols = range(n_out) if cols is None else cols
    dual = circuit.scheme == "dual-rail"
    col_p, col_m = _column_nodes(l, n_out, circuit)
    onehot = np.zeros((n_groups + 1, n_in))
    onehot[np.where(group >= 0, group, n_groups), np.arange(n_in)] = 1.0
    s_pos, s_neg = onehot @ g_pos, onehot @ g_neg          # (n_groups + 1, n_out), last: never driven
    what = f"layer {l} cell resistance (1 / conductance)"
    out.write(f"* Crossbar of layer {l} ({n_in} x {n_out}, {circuit.scheme}), columns {cols.start}..{cols.stop - 1}:"
              " cells of rows sharing a driver merged into one resistor of their summed conductance\n")
    for k in range(n_groups + 1):
        node_p = f"d{l}_{k}" if k < n_groups else "0"
        node_m = (f"d{l}_{k}m" if dual else node_p) if k < n_groups else "0"
        for i in cols:
            gp, gn = s_pos[k, i], s_neg[k, i]
            if k == n_groups and dual:         # both rails idle at 0 V: one resistor to ground
                if gp + gn > 0:
                    _cell(out, f"{l}_{k}_{i}", col_p[i], "0", gp + gn, enable.get(i), what)
                continue
            if gp > 0:
                _cell(out, f"{l}_{k}_{i}p", node_p, col_p[i], gp, enable.get(i), what)
            if gn > 0:
                _cell(out, f"{l}_{k}_{i}m", node_m, col_m[i], gn, enable.get(i), what)


def _crossbar_cells(out, l: int, row_p, row_m, circuit: Circuit, enable: dict | None = None) -> None:
    """One resistor per cell; with wire resistance, a resistor per wire segment as well. `enable`
    ({neuron: enable node}, no wires only): those columns' cells as switched conductances.

    Geometry (wires): physical rows in input order, dual-rail puts input j's + row then its - row;
    each row's driver sits at the left end, one pitch before the first column; differential puts
    neuron i's + column then its - column; each column's neuron sits at the bottom end, one pitch
    after the last row.
    """
    g_pos, g_neg = circuit.g_pos[l], circuit.g_neg[l]
    n_in, n_out = g_pos.shape
    dual = circuit.scheme == "dual-rail"
    col_p, col_m = _column_nodes(l, n_out, circuit)
    out.write(f"* Crossbar of layer {l} ({n_in} x {n_out}, {circuit.scheme}), one resistor per cell\n")
    what = f"layer {l} cell resistance (1 / conductance)"
    if not circuit.wires:
        w = out.write
        for j in range(n_in):
            rp, rm = row_p[j], row_m[j]
            gp, gn = g_pos[j], g_neg[j]
            for i in range(n_out):
                if gp[i] > 0:
                    _cell(out, f"{l}_{j}_{i}p", rp, col_p[i], gp[i], (enable or {}).get(i), what)
                if gn[i] > 0:
                    _cell(out, f"{l}_{j}_{i}m", rm, col_m[i], gn[i], (enable or {}).get(i), what)
        return
    # physical rows: (input, rail, driver node, conductance row); physical columns: (node, cells)
    rows = []
    for j in range(n_in):
        rows.append((j, "p", row_p[j], g_pos[j]))
        if dual:
            rows.append((j, "m", row_m[j], g_neg[j]))
    cols = []
    for i in range(n_out):
        cols.append((i, "p", col_p[i]))
        if not dual:
            cols.append((i, "n", col_m[i]))
    r_row = max(circuit.r_wire_row_ohm, 0.0)
    r_col = max(circuit.r_wire_col_ohm, 0.0)
    r_row_t, r_col_t = _f(r_row, "r_wire_row_ohm"), _f(r_col, "r_wire_col_ohm")
    n_rows, n_cols = len(rows), len(cols)

    def row_node(r, c):
        j, rail = rows[r][0], rows[r][1]
        return f"w{l}_{j}{rail}_{c}" if r_row > 0 else rows[r][2]

    def col_node(r, c):
        i, rail = cols[c][0], cols[c][1]
        return f"k{l}_{i}{rail}_{r}" if r_col > 0 else cols[c][2]

    w = out.write
    out.write(f"* wires: {r_row_t} ohm per pitch along rows, {r_col_t} ohm per pitch along columns\n")
    tiles = layer_tiles(n_rows, n_cols, circuit.tile_rows, circuit.tile_cols)
    for rs, cs in tiles:
        if len(tiles) > 1:
            w(f"* tile: physical rows {rs.start}..{rs.stop - 1}, columns {cs.start}..{cs.stop - 1} (own drivers "
              "at its left edge, column ends at the neurons)\n")
        if r_row > 0:        # the driver's segment to the tile's first column, then one per pitch
            for r in range(rs.start, rs.stop):
                w(f"Rw{l}_r{r}_{cs.start} {rows[r][2]} {row_node(r, cs.start)} {r_row_t}\n")
                for c in range(cs.start + 1, cs.stop):
                    w(f"Rw{l}_r{r}_{c} {row_node(r, c - 1)} {row_node(r, c)} {r_row_t}\n")
        if r_col > 0:        # one per pitch, then the segment from the tile's last row to the neuron
            end = "end" if rs.stop == n_rows else f"end{rs.stop - 1}"
            for c in range(cs.start, cs.stop):
                for r in range(rs.start + 1, rs.stop):
                    w(f"Rw{l}_c{c}_{r} {col_node(r - 1, c)} {col_node(r, c)} {r_col_t}\n")
                w(f"Rw{l}_c{c}_{end} {col_node(rs.stop - 1, c)} {cols[c][2]} {r_col_t}\n")
        for r in range(rs.start, rs.stop):
            j, rail, _, _ = rows[r]
            for c in range(cs.start, cs.stop):
                i, crail, _ = cols[c]
                if dual:
                    g = g_pos[j, i] if rail == "p" else g_neg[j, i]
                else:
                    g = g_pos[j, i] if crail == "p" else g_neg[j, i]
                if g > 0:
                    w(f"R{l}_{j}{rail}_{c} {row_node(r, c)} {col_node(r, c)} {_f(1.0 / g, what)}\n")


def _physical_nodes(l: int, row_p, row_m, circuit: Circuit):
    """Node names of the physical rows and columns of layer l (hwmodel.wire_network.physical_maps)."""
    n_in, n_out = circuit.g_pos[l].shape
    col_p, col_m = _column_nodes(l, n_out, circuit)
    if circuit.scheme == "dual-rail":
        return [n for j in range(n_in) for n in (row_p[j], row_m[j])], list(col_p)
    return list(row_p[:n_in]), [n for i in range(n_out) for n in (col_p[i], col_m[i])]


def _crossbar_reduced(out, l: int, row_p, row_m, circuit: Circuit, cols: range | None = None,
                      row_row: bool = True) -> None:
    """Layer l's tiles as their exact port equivalents (netlists/ports.py): a conductance -Y_pq between
    every pair of ports, the tiles' conductances between the same two nodes (rows sharing a driver,
    a column in several row tiles) summed. `cols` (neurons): only their columns. `row_row`: write the
    couplings between driver nodes (they carry the drivers' currents only: energy, no firing time).

    Integrator columns sit at virtual ground, so a coupling between two of them carries almost no
    current: each column's couplings to the other columns are written as one conductance to ground,
    their sum. That keeps every column's self-admittance (its leak y/A) exact and drops only the
    current v_c2 g_cc2 that another column's own small voltage (y/A) pushes in, a 1/A effect the
    behavioural model neglects too; it makes every column a circuit of its own (no column-column
    fill-in in ngspice). Passive columns keep every pairwise coupling."""
    from hwmodel.wire_network import physical_maps
    n_in, n_out = circuit.g_pos[l].shape
    cols = range(n_out) if cols is None else cols
    row_nodes, col_nodes = _physical_nodes(l, row_p, row_m, circuit)
    names, node_of_row = np.unique(np.asarray(row_nodes), return_inverse=True)
    _, _, col_neuron, _ = physical_maps(n_in, n_out, circuit.scheme)
    written = np.isin(col_neuron, np.asarray(cols))
    layer = circuit.couplings(l)
    g_rc = np.zeros((len(names), len(col_nodes)))      # the written columns' only
    if row_row:
        onehot = np.zeros((len(row_nodes), len(names)))
        onehot[np.arange(len(row_nodes)), node_of_row] = 1.0
        g_rr = np.zeros((len(names), len(names)))
    for rows, tile_cols, t_rc, t_rr in layer.tiles:     # only the drivers' merging depends on the input
        sub = np.nonzero(written[tile_cols])[0]
        if len(sub):        # the tile's rows summed per driver node, in row order
            merged = np.zeros((len(names), len(sub)))
            np.add.at(merged, node_of_row[rows], t_rc[:, sub])
            g_rc[:, tile_cols.start + sub] += merged
        if row_row:
            u = onehot[rows]
            g_rr += u.T @ t_rr @ u
    g_cc = layer.g_cc
    what = f"layer {l} port coupling (1 / conductance)"
    w = out.write
    w(f"* Crossbar of layer {l} ({n_in} x {n_out}, {circuit.scheme}) with its wires "
      f"({_f(circuit.r_wire_row_ohm, 'r_wire_row_ohm')} ohm per pitch along rows, "
      f"{_f(circuit.r_wire_col_ohm, 'r_wire_col_ohm')} along columns) as the exact port equivalent of its "
      f"{len(circuit.ports(l))} tile(s): one resistor per coupled pair of driver and column nodes\n")
    virtual_ground = circuit.neuron == "integrator"
    for c in np.nonzero(written)[0]:
        for k in np.nonzero(g_rc[:, c])[0]:
            w(f"Ry{l}_r{k}_c{c} {names[k]} {col_nodes[c]} {_f(1.0 / g_rc[k, c], what)}\n")
        if virtual_ground:
            if layer.g_cc_sum[c] > 0:
                w(f"Ry{l}_c{c}_0 {col_nodes[c]} 0 {_f(1.0 / layer.g_cc_sum[c], what)}\n")
            continue
        for c2 in np.nonzero(g_cc[c])[0]:
            if c2 > c:          # each pair once (passive: every column is written)
                w(f"Ry{l}_c{c}_c{c2} {col_nodes[c]} {col_nodes[c2]} {_f(1.0 / g_cc[c, c2], what)}\n")
    if row_row:
        for k in range(len(names)):
            for k2 in np.nonzero(g_rr[k, k + 1:])[0] + k + 1:
                w(f"Ry{l}_r{k}_r{k2} {names[k]} {names[k2]} {_f(1.0 / g_rr[k, k2], what)}\n")


def _crossbar(out, l: int, row_p, row_m, circuit: Circuit, row_row: bool = True, enable: dict | None = None) -> None:
    """Layer l's crossbar, every column: its exact port equivalent if the circuit asks for reduced
    wires, else one resistor per cell (and per wire segment)."""
    if circuit.reduced:
        _crossbar_reduced(out, l, row_p, row_m, circuit, row_row=row_row)
    else:
        _crossbar_cells(out, l, row_p, row_m, circuit, enable)


def _neurons(out, l: int, circuit: Circuit, cols: range | None = None) -> None:
    n_out = circuit.g_pos[l].shape[1]
    cols = range(n_out) if cols is None else cols
    c = _f(circuit.c_mem_f[l], f"layer {l} c_mem_f")
    a = _f(circuit.gain, "opamp_gain")
    col_p, col_m = _column_nodes(l, n_out, circuit)
    vs = circuit.swing(l)
    clamp = "" if vs is None else (f"c vs={_f(vs, f'layer {l} output swing')} "
                                   f"gcl={_f(circuit.clamp_g_s(l), 'clamp conductance')}")
    out.write(f"* Neurons of layer {l}: {len(cols)} x {circuit.neuron}, c_mem = {c} F"
              + ("" if vs is None else f", output clamped to +/- {_f(vs, 'output swing')} V") + "\n")
    for i in cols:
        if circuit.neuron == "passive":
            out.write(f"xn{l}_{i} {col_p[i]} p{l}_{i} npas params: c={c}\n")
        elif circuit.scheme == "differential":
            out.write(f"xn{l}_{i} {col_p[i]} {col_m[i]} p{l}_{i} nintd{clamp[:1]} params: c={c} a={a}{clamp[1:]}\n")
        else:
            out.write(f"xn{l}_{i} {col_p[i]} p{l}_{i} nint{clamp[:1]} params: c={c} a={a}{clamp[1:]}\n")


def _subckts(out, circuit: Circuit, comparator: bool, layers: range | None = None) -> None:
    """The neuron subcircuits layers `layers` use (clamped, unclamped or both) and the comparators."""
    layers = range(circuit.n_layers) if layers is None else layers
    clamped = {circuit.swing(l) is not None for l in layers}
    for c in sorted(clamped):
        out.write(_neuron_subckt(circuit, c))
    if comparator:
        if layers.start < layers.stop - 1:
            out.write(_comparator(circuit, True))
        out.write(_comparator(circuit, False))


def _header(out, circuit: Circuit, title: str, lines: list) -> None:
    """Title and comment lines; every string from data (title, info, notes) through comment_line."""
    out.write(comment_line(title))
    info = circuit.info or {}
    out.write("* Generated by ttfs-codesign (netlists/writer.py). Units: SI (s, V, ohm, F).\n")
    for key in ("source_run", "dataset", "layers"):
        if info.get(key) not in (None, "", []):
            out.write(comment_line(f"{key}: {info[key]}"))
    out.write(comment_line(f"neuron: {circuit.neuron}, scheme: {circuit.scheme}, layer sizes: {circuit.sizes}"))
    gain = "ideal (written as 1e9)" if circuit.opamp_gain is None else _f(circuit.opamp_gain, "opamp_gain")
    out.write(f"* v_read_v = {_f(circuit.v_read_v, 'v_read_v')} V, "
              f"time_scale_s = {_f(circuit.time_scale_s, 'time_scale_s')} s, "
              f"t_end_s = {_f(circuit.t_end_s, 't_end_s')} s, t_rise_s = {_f(circuit.t_rise_s, 't_rise_s')} s\n")
    out.write(f"* c_mem_f per layer = {[float(_f(c, 'c_mem_f')) for c in circuit.c_mem_f]} F\n")
    out.write(f"* comparator thresholds (v_th + offset) per layer, mean = "
              f"{[float(_f(np.mean(v), 'comparator threshold')) for v in circuit.v_th_v]} V\n")
    out.write(f"* comparator_delay_s = {_f(circuit.comparator_delay_s, 'comparator_delay_s')} s, "
              f"opamp_gain = {gain}, r_wire_row_ohm = {_f(circuit.r_wire_row_ohm, 'r_wire_row_ohm')}, "
              f"r_wire_col_ohm = {_f(circuit.r_wire_col_ohm, 'r_wire_col_ohm')}\n")
    for line in lines:
        out.write(comment_line(line))


def tran_line(circuit: Circuit, max_step_s: float | None = None) -> str:
    """.tran to the window end from zero initial state (all drivers idle, all capacitors empty).

    Default maximum step: t_end / 500 for the passive neuron (its exponential potential is read by
    linear interpolation between time points); t_end / 200 for the integrator, t_end / 50 with wires:
    its potential is piecewise linear between the drivers' breakpoints, which ngspice always steps
    on, so a longer step moves no firing time (< 1e-11 of the window) and saves ~30% of the CPU time
    of a literal wire netlist (docs/netlists.md, "Maximum step")."""
    t_end = circuit.t_end_s
    if max_step_s is None:
        max_step_s = t_end / (500 if circuit.neuron == "passive" else 50 if circuit.wires else 200)
    step = _f(max_step_s, "maximum time step (max_step_s)")
    return f".tran {step} {_f(t_end, 't_end_s')} 0 {step} uic\n"


def columns_independent(circuit: Circuit) -> bool:
    """Whether each neuron's column is a circuit of its own (its rows are ideal sources): without
    wires, and with reduced wires into virtual-ground (integrator) columns, whose couplings to other
    columns are written to ground (`_crossbar_reduced`)."""
    return not circuit.wires or (circuit.reduced and circuit.neuron == "integrator")


def layer_netlist(circuit: Circuit, l: int, t_rows_s: np.ndarray, max_step_s: float | None = None,
                  options: str = "", cols: range | None = None, save_all: bool = False,
                  t_stop_s: float | None = None, t_fire_s=None) -> str:
    """Layer l (or its columns `cols`) driven at known row event times (s; inf = never).

    Saves v(p{l}_{i}) of the written neurons (`save_all`: every node voltage and branch current,
    for energy/validate.py). `options`: `name=value` solver options. Where the columns of a layer
    are independent circuits (`columns_independent`) the runner simulates a layer as tiles of
    columns; elsewhere the whole layer is one circuit and `cols` must be all of it. Reduced wires:
    the couplings between driver nodes (energy only) are written with `save_all`, in the netlist
    holding column 0.

    The image's known times (netlists.simulate.image_events): `t_stop_s` (gating: the rows go idle,
    the neurons' static supply is gated, no row switches from then; None: the window end) and the
    layer's own firing times `t_fire_s` (n_out,) (s, inf = silent: the comparator decisions' supply
    draws; column gating: when each column's cells are switched off). Row wire capacitance and the
    rows' switching draws are written in the netlist holding column 0 (once per layer).
    """
    n_out = circuit.g_pos[l].shape[1]
    cols = range(n_out) if cols is None else cols
    if not columns_independent(circuit) and len(cols) != n_out:
        raise ValueError("with literal wires, or reduced wires and passive neurons, a layer cannot be split "
                         "into column tiles")
    if options and not _OPTIONS.fullmatch(options):
        raise ValueError(f"solver options {options!r}: expected name=value pairs separated by spaces")
    if t_fire_s is not None and np.shape(t_fire_s) != (n_out,):
        raise ValueError(f"t_fire_s: expected ({n_out},) firing times of layer {l}, got {np.shape(t_fire_s)}")
    t_stop = circuit.t_end_s if t_stop_s is None else min(float(t_stop_s), circuit.t_end_s)
    out = io.StringIO()
    times, group = driver_groups(t_rows_s, t_stop)
    _header(out, circuit, f"ttfs layer {l}, neurons {cols.start}..{cols.stop - 1} (runner netlist)",
            [f"layer {l} alone, driven at given times"]
            + ([] if t_stop >= circuit.t_end_s else [f"gating {circuit.gating}: t_stop = {t_stop:.9g} s"]))
    _subckts(out, circuit, comparator=False, layers=range(l, l + 1))
    _drivers(out, l, times, circuit, t_stop, group, supplies=cols.start == 0)
    enable = _column_enables(out, l, circuit, cols, t_stop, t_fire_s)
    if circuit.wires:
        row_p = [f"d{l}_{k}" if k >= 0 else "0" for k in group]
        row_m = [f"d{l}_{k}m" if k >= 0 else "0" for k in group]
        if circuit.reduced:
            _crossbar_reduced(out, l, row_p, row_m, circuit, cols, row_row=save_all and cols.start == 0)
        else:
            _crossbar_cells(out, l, row_p, row_m, circuit)
    else:
        _crossbar_merged(out, l, group, len(times), circuit, cols, enable)
    _neurons(out, l, circuit, cols)
    _layer_supplies(out, l, circuit, cols, t_stop, t_fire_s)
    out.write(".save all\n" if save_all else ".save time " + " ".join(f"v(p{l}_{i})" for i in cols) + "\n")
    if options:
        out.write(f".options {options}\n")
    out.write(tran_line(circuit, max_step_s))
    out.write(".end\n")
    return out.getvalue()


def _gate_signal(out, circuit: Circuit, l_out: int) -> None:
    """Gating in the standalone netlist: run (1 V, falling to 0 over t_rise_s at t_stop = the first
    output decision + comparator_delay_s + decision_guard_s, or the window end), from the output
    layer's latches q and decision-time keepers tc. A V-type B source read only by B expressions:
    it carries no current and delivers no energy."""
    n_out = circuit.g_pos[l_out].shape[1]
    after = circuit.comparator_delay_s + circuit.decision_guard_s
    never = _f(2 * circuit.t_end_s, "2 x t_end_s")
    terms = [f"(v(q{l_out}_{i}) > 0.5 ? v(tc{l_out}_{i}) * {_f(circuit.time_scale_s, 'time_scale_s')} + "
             f"{_f(after, 'comparator_delay_s + decision_guard_s')} : {never})" for i in range(n_out)]
    expr = terms[0]
    for t in terms[1:]:
        expr = f"min({expr}, {t})"
    t_stop = f"min({_f(circuit.t_end_s, 't_end_s')}, {expr})"
    out.write(f"* Gating ({circuit.gating}): run falls at t_stop = first output firing time + decision_guard_s "
              f"({_f(circuit.decision_guard_s, 'decision_guard_s')} s)\n")
    out.write(f"Brun run 0 V = min(1, max(0, 1 - (time - {t_stop}) / {_f(circuit.t_rise_s, 't_rise_s')}))\n")


def network_netlist(circuit: Circuit, t_input_s: np.ndarray, layers: tuple | None = None,
                    title: str = "ttfs network", notes: list | None = None,
                    max_step_s: float | None = None) -> str:
    """Standalone netlist of layers a..b-1 (default: all) driven by `t_input_s` (s) into layer a.

    With gating, t_stop comes from layer b-1's comparators (the gate signal `run`): the input rows,
    every comparator's rows and the static supply follow it. An input row whose event falls after
    t_stop still draws its switching pulse here (the runner's layer netlists leave it out)."""
    a, b = layers if layers is not None else (0, circuit.n_layers)
    if max_step_s is None:
        max_step_s = circuit.t_end_s / 1000
    if not 0 <= a < b <= circuit.n_layers:
        raise ValueError(f"layers {a}:{b} outside 0:{circuit.n_layers}")
    t_input_s = np.asarray(t_input_s, dtype=np.float64).reshape(-1)
    if t_input_s.shape[0] != circuit.g_pos[a].shape[0]:
        raise ValueError(f"{t_input_s.shape[0]} input times for layer {a} with {circuit.g_pos[a].shape[0]} inputs")
    gated = circuit.gating != "none"
    out = io.StringIO()
    notes = list(notes or [])
    notes += [f"layers {a}..{b - 1} (layer l is fed by weight matrix l; 0 = first hidden layer)",
              ".meas prints t_l{layer}_n{neuron}: the firing time in seconds (comparator decision plus "
              "comparator_delay_s); 'failed' = silent"]
    _header(out, circuit, title, notes)
    _subckts(out, circuit, comparator=True, layers=range(a, b))
    times, group = driver_groups(t_input_s, circuit.t_end_s)
    if gated:
        _gate_signal(out, circuit, b - 1)
    _drivers(out, a, times, circuit, None, group, supplies=True, run=gated)
    row_p = [f"d{a}_{k}" if k >= 0 else "0" for k in group]
    row_m = [f"d{a}_{k}m" if k >= 0 else "0" for k in group]
    dual = circuit.scheme == "dual-rail"
    sup = circuit.supply
    vs = sup.v_supply_v
    if sup.p_static_w > 0:
        out.write(f"* Static bias: {_f(sup.p_static_w, 'p_static_w')} W per neuron from the supply vdd"
                  + (", power-gated with run\n" if gated else "\n"))
        out.write(f"Bdd vdd 0 V = {_f(vs, 'v_supply_v')} * v(run)\n" if gated else f"Vdd vdd 0 {_f(vs, 'v_supply_v')}\n")
    for l in range(a, b):
        if l > a:
            n_in = circuit.g_pos[l].shape[0]
            row_p = [f"s{l - 1}_{j}" for j in range(n_in)]
            row_m = [f"s{l - 1}_{j}m" for j in range(n_in)] if dual else row_p
        n_out = circuit.g_pos[l].shape[1]
        enable = {i: f"en{l}_{i}" for i in range(n_out)} if circuit.gating == "column" else None
        _crossbar(out, l, row_p, row_m, circuit, enable=enable)
        _neurons(out, l, circuit)
        drives = l < b - 1
        out.write(f"* Comparators and row drivers of layer {l} (threshold includes the comparator offset)\n")
        common = (f"delay={_f(circuit.comparator_delay_s, 'comparator_delay_s')} "
                  f"tr={_f(circuit.t_rise_s, 't_rise_s')} vread={_f(circuit.v_read_v, 'v_read_v')} "
                  f"ts={_f(circuit.time_scale_s, 'time_scale_s')} vsup={_f(vs, 'v_supply_v')} "
                  f"ccmp={_f(2 * sup.e_comparator_j / vs ** 2, 'comparator pulse capacitance')}")
        if drives:
            common += (f" cpr={_f(2 * _row_pulse_j(circuit, l + 1) / vs ** 2, 'row pulse capacitance')} "
                       f"cw={_f(cells_per_row(circuit, l + 1) * sup.c_wire_per_cell_f, 'row wire capacitance')}")
        for i in range(n_out):
            thr = _f(circuit.v_th_v[l][i], f"layer {l} neuron {i} threshold")
            ports = f"p{l}_{i} s{l}_{i} s{l}_{i}m q{l}_{i} tc{l}_{i}" + (" run" if gated else "") + (
                f" en{l}_{i}" if enable else "")
            out.write(f"xc{l}_{i} {ports} {'cmp' if drives else 'cmpo'} params: thr={thr} {common}\n")
        if sup.p_static_w > 0:
            for i in range(n_out):
                out.write(f"Rst{l}_{i} vdd 0 {_f(vs ** 2 / sup.p_static_w, 'static bias resistance')}\n")
    out.write("* Firing times (s): first upward threshold crossing of each neuron's potential"
              + (" plus the comparator delay\n" if circuit.comparator_delay_s > 0 else "\n"))
    delay = _f(circuit.comparator_delay_s, "comparator_delay_s")
    for l in range(a, b):
        for i in range(circuit.g_pos[l].shape[1]):
            thr = _f(circuit.v_th_v[l][i], f"layer {l} neuron {i} threshold")
            if circuit.comparator_delay_s > 0:
                out.write(f".meas tran c_l{l}_n{i} WHEN v(p{l}_{i})={thr} RISE=1\n")
                out.write(f".meas tran t_l{l}_n{i} param='c_l{l}_n{i} + {delay}'\n")
            else:
                out.write(f".meas tran t_l{l}_n{i} WHEN v(p{l}_{i})={thr} RISE=1\n")
    out.write(tran_line(circuit, max_step_s))
    out.write(".end\n")
    return out.getvalue()


def check_inert(netlist: str, where: str = "netlist") -> None:
    """SimulationError unless every line of `netlist` is one the writer writes (see DEVICE_LETTERS,
    DOT_COMMANDS): printable ASCII, no `.control`, `.include`, `*#` or other command lines."""
    for n, line in enumerate(netlist.split("\n"), 1):
        if line and not _LINE.fullmatch(line):
            raise SimulationError(f"{where}: line {n} is not one the netlist writer writes ({line[:60]!r}); "
                                  "refusing to pass it to ngspice")
