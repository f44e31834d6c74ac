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

_COMPARATOR = """\
* Comparator, latch and row driver of one neuron.
*  - Bset charges q to 1 V within ~1 ps once pot exceeds thr; nothing discharges q: the latch.
*  - tc integrates 1/ts per second (tc = time in units of ts) until the latch is set, so
*    tc * ts holds the decision time afterwards.
*  - spk (the neuron's + row in the next layer) rises linearly from 0 to vread over tr, starting
*    `delay` after the decision, and stays there to the end of the window; spkm = -spk is the - row.
.subckt cmp pot spk spkm params: thr=0.5 delay=0 tr=1e-9 vread=0.2 ts=1e-6
Bset 0 q I = (v(pot) > {thr} && v(q) < 1) ? 1 : 0
Cq q 0 1p
Btc 0 tc I = v(q) < 0.5 ? 1 : 0
Ctc tc 0 {ts}
Bspk spk 0 V = {vread} * min(1, max(0, (time - v(tc) * {ts} - {delay}) / {tr}))
Espkm spkm 0 spk 0 -1
.ends cmp
"""


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


def _pwl(t_s: float, level_v: float, t_rise_s: float) -> str:
    t0 = max(float(t_s), 0.0)
    if t0 == 0.0:
        return f"PWL(0 0 {_f(t_rise_s, 't_rise_s')} {_f(level_v, 'v_read_v')})"
    return (f"PWL(0 0 {_f(t0, 'row event time (s)')} 0 {_f(t0 + t_rise_s, 'row event time + t_rise_s')} "
            f"{_f(level_v, 'v_read_v')})")


def _drivers(out, l: int, times, circuit: Circuit) -> None:
    """Shared PWL row drivers d{l}_{k} (+V_read) and d{l}_{k}m (-V_read, dual-rail) of layer l."""
    dual = circuit.scheme == "dual-rail"
    out.write(f"* Row drivers of layer {l}: {len(times)} shared drivers, one per distinct event time; "
              f"edge {_f(circuit.t_rise_s, 't_rise_s')} s from the event time\n")
    for k, t in enumerate(times):
        out.write(f"Vd{l}_{k} d{l}_{k} 0 {_pwl(t, circuit.v_read_v, circuit.t_rise_s)}\n")
        if dual:
            out.write(f"Vd{l}_{k}m d{l}_{k}m 0 {_pwl(t, -circuit.v_read_v, circuit.t_rise_s)}\n")


def _column_nodes(l: int, n_out: int, circuit: Circuit):
    plus = [f"c{l}_{i}" for i in range(n_out)]
    minus = [f"c{l}_{i}n" for i in range(n_out)] if circuit.scheme == "differential" else plus
    return plus, minus


def _crossbar_merged(out, l: int, group, n_groups: int, circuit: Circuit, cols: range | None = None) -> None:
    """Per column, one resistor per (driver, rail): the parallel cells of rows sharing a driver."""
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
                    out.write(f"R{l}_{k}_{i} {col_p[i]} 0 {_f(1.0 / (gp + gn), what)}\n")
                continue
            if gp > 0:
                out.write(f"R{l}_{k}_{i}p {node_p} {col_p[i]} {_f(1.0 / gp, what)}\n")
            if gn > 0:
                out.write(f"R{l}_{k}_{i}m {node_m} {col_m[i]} {_f(1.0 / gn, what)}\n")


def _crossbar_cells(out, l: int, row_p, row_m, circuit: Circuit) -> None:
    """One resistor per cell; with wire resistance, a resistor per wire segment as well.

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
                    w(f"R{l}_{j}_{i}p {rp} {col_p[i]} {_f(1.0 / gp[i], what)}\n")
                if gn[i] > 0:
                    w(f"R{l}_{j}_{i}m {rm} {col_m[i]} {_f(1.0 / gn[i], what)}\n")
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
    from netlists.ports import couplings
    n_in, n_out = circuit.g_pos[l].shape
    cols = range(n_out) if cols is None else cols
    row_nodes, col_nodes = _physical_nodes(l, row_p, row_m, circuit)
    names, node_of_row = np.unique(np.asarray(row_nodes), return_inverse=True)
    _, _, col_neuron, _ = physical_maps(n_in, n_out, circuit.scheme)
    n_pc = len(col_nodes)
    onehot = np.zeros((len(row_nodes), len(names)))
    onehot[np.arange(len(row_nodes)), node_of_row] = 1.0
    g_rc, g_rr, g_cc = np.zeros((len(names), n_pc)), np.zeros((len(names), len(names))), np.zeros((n_pc, n_pc))
    for tile in circuit.ports(l):
        g = couplings(tile.y_s)
        n_r, u = tile.n_rows, onehot[tile.rows]
        g_rc[:, tile.cols] += u.T @ g[:n_r, n_r:]
        g_rr += u.T @ g[:n_r, :n_r] @ u
        g_cc[tile.cols, tile.cols] += g[n_r:, n_r:]
    written = np.isin(col_neuron, np.asarray(cols))
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
            if g_cc[c].sum() > 0:
                w(f"Ry{l}_c{c}_0 {col_nodes[c]} 0 {_f(1.0 / g_cc[c].sum(), what)}\n")
            continue
        for c2 in np.nonzero(g_cc[c])[0]:
            if c2 > c:          # each pair once (passive: every column is written)
                w(f"Ry{l}_c{c}_c{c2} {col_nodes[c]} {col_nodes[c2]} {_f(1.0 / g_cc[c, c2], what)}\n")
    if row_row:
        for k in range(len(names)):
            for k2 in np.nonzero(g_rr[k, k + 1:])[0] + k + 1:
                w(f"Ry{l}_r{k}_r{k2} {names[k]} {names[k2]} {_f(1.0 / g_rr[k, k2], what)}\n")


def _crossbar(out, l: int, row_p, row_m, circuit: Circuit, row_row: bool = True) -> None:
    """Layer l's crossbar, every column: its exact port equivalent if the circuit asks for reduced
    wires, else one resistor per cell (and per wire segment)."""
    if circuit.reduced:
        _crossbar_reduced(out, l, row_p, row_m, circuit, row_row=row_row)
    else:
        _crossbar_cells(out, l, row_p, row_m, circuit)


def _neurons(out, l: int, circuit: Circuit, cols: range | None = None) -> None:
    n_out = circuit.g_pos[l].shape[1]
    cols = range(n_out) if cols is None else cols
    c = _f(circuit.c_mem_f[l], f"layer {l} c_mem_f")
    a = _f(circuit.gain, "opamp_gain")
    col_p, col_m = _column_nodes(l, n_out, circuit)
    out.write(f"* Neurons of layer {l}: {len(cols)} x {circuit.neuron}, c_mem = {c} F\n")
    for i in cols:
        if circuit.neuron == "passive":
            out.write(f"xn{l}_{i} {col_p[i]} p{l}_{i} npas params: c={c}\n")
        elif circuit.scheme == "differential":
            out.write(f"xn{l}_{i} {col_p[i]} {col_m[i]} p{l}_{i} nintd params: c={c} a={a}\n")
        else:
            out.write(f"xn{l}_{i} {col_p[i]} p{l}_{i} nint params: c={c} a={a}\n")


def _subckts(out, circuit: Circuit, comparator: bool) -> None:
    if circuit.neuron == "passive":
        out.write(_SUBCKTS["passive"])
    elif circuit.scheme == "differential":
        out.write(_SUBCKTS["integrator-differential"])
    else:
        out.write(_SUBCKTS["integrator"])
    if comparator:
        out.write(_COMPARATOR)


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
                  options: str = "", cols: range | None = None, save_all: bool = False) -> str:
    """Layer l (or its columns `cols`) driven at known row event times (s; inf = never).

    Saves v(p{l}_{i}) of the written neurons (`save_all`: every node voltage and branch current,
    for energy/validate.py). `options`: `name=value` solver options. Where the columns of a layer
    are independent circuits (`columns_independent`) the runner simulates a layer as tiles of
    columns; elsewhere the whole layer is one circuit and `cols` must be all of it. Reduced wires:
    the couplings between driver nodes (energy only) are written with `save_all`, in the netlist
    holding column 0.
    """
    n_out = circuit.g_pos[l].shape[1]
    cols = range(n_out) if cols is None else cols
    if not columns_independent(circuit) and len(cols) != n_out:
        raise ValueError("with literal wires, or reduced wires and passive neurons, a layer cannot be split "
                         "into column tiles")
    if options and not _OPTIONS.fullmatch(options):
        raise ValueError(f"solver options {options!r}: expected name=value pairs separated by spaces")
    out = io.StringIO()
    times, group = driver_groups(t_rows_s, circuit.t_end_s)
    _header(out, circuit, f"ttfs layer {l}, neurons {cols.start}..{cols.stop - 1} (runner netlist)",
            [f"layer {l} alone, driven at given times"])
    _subckts(out, circuit, comparator=False)
    _drivers(out, l, times, circuit)
    if circuit.wires:
        row_p = [f"d{l}_{k}" if k >= 0 else "0" for k in group]
        row_m = [f"d{l}_{k}m" if k >= 0 else "0" for k in group]
        if circuit.reduced:
            _crossbar_reduced(out, l, row_p, row_m, circuit, cols, row_row=save_all and cols.start == 0)
        else:
            _crossbar_cells(out, l, row_p, row_m, circuit)
    else:
        _crossbar_merged(out, l, group, len(times), circuit, cols)
    _neurons(out, l, circuit, cols)
    out.write(".save all\n" if save_all else ".save time " + " ".join(f"v(p{l}_{i})" for i in cols) + "\n")
    if options:
        out.write(f".options {options}\n")
    out.write(tran_line(circuit, max_step_s))
    out.write(".end\n")
    return out.getvalue()


def network_netlist(circuit: Circuit, t_input_s: np.ndarray, layers: tuple | None = None,
                    title: str = "ttfs network", notes: list | None = None,
                    max_step_s: float | None = None) -> str:
    """Standalone netlist of layers a..b-1 (default: all) driven by `t_input_s` (s) into layer a."""
    a, b = layers if layers is not None else (0, circuit.n_layers)
    if max_step_s is None:
        max_step_s = circuit.t_end_s / 1000
    if not 0 <= a < b <= circuit.n_layers:
        raise ValueError(f"layers {a}:{b} outside 0:{circuit.n_layers}")
    t_input_s = np.asarray(t_input_s, dtype=np.float64).reshape(-1)
    if t_input_s.shape[0] != circuit.g_pos[a].shape[0]:
        raise ValueError(f"{t_input_s.shape[0]} input times for layer {a} with {circuit.g_pos[a].shape[0]} inputs")
    out = io.StringIO()
    notes = list(notes or [])
    notes += [f"layers {a}..{b - 1} (layer l is fed by weight matrix l; 0 = first hidden layer)",
              ".meas prints t_l{layer}_n{neuron}: the firing time in seconds (comparator decision plus "
              "comparator_delay_s); 'failed' = silent"]
    _header(out, circuit, title, notes)
    _subckts(out, circuit, comparator=True)
    times, group = driver_groups(t_input_s, circuit.t_end_s)
    _drivers(out, a, times, circuit)
    row_p = [f"d{a}_{k}" if k >= 0 else "0" for k in group]
    row_m = [f"d{a}_{k}m" if k >= 0 else "0" for k in group]
    dual = circuit.scheme == "dual-rail"
    for l in range(a, b):
        if l > a:
            n_in = circuit.g_pos[l].shape[0]
            row_p = [f"s{l - 1}_{j}" for j in range(n_in)]
            row_m = [f"s{l - 1}_{j}m" for j in range(n_in)] if dual else row_p
        _crossbar(out, l, row_p, row_m, circuit)
        _neurons(out, l, circuit)
        n_out = circuit.g_pos[l].shape[1]
        out.write(f"* Comparators and row drivers of layer {l} (threshold includes the comparator offset)\n")
        common = (f"delay={_f(circuit.comparator_delay_s, 'comparator_delay_s')} "
                  f"tr={_f(circuit.t_rise_s, 't_rise_s')} vread={_f(circuit.v_read_v, 'v_read_v')} "
                  f"ts={_f(circuit.time_scale_s, 'time_scale_s')}")
        for i in range(n_out):
            thr = _f(circuit.v_th_v[l][i], f"layer {l} neuron {i} threshold")
            out.write(f"xc{l}_{i} p{l}_{i} s{l}_{i} s{l}_{i}m cmp params: thr={thr} {common}\n")
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
