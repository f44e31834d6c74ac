"""`ttfs energy-validate`: the energy model's total against the energy ngspice measures, image by image.

The circuit is the netlists package's (netlists.circuit.circuit_from_design) with what the energy
config adds (`netlist_circuit`): the integrator's output clamp at the report's swing
(EnergyConfig.swing_v), the design's gating (hw.gating, hw.decision_guard_s) and the energy model's
supply terms (netlists.circuit.Supply). It is run by netlists.simulate.simulate_layer, each layer
alone, driven at the firing times ngspice measured for the layer below, twice per image: first for
the firing times (hence the image's t_stop, netlists.simulate.image_events), then with those known
times written into the netlists (rows idle and supplies gated at t_stop, comparator decisions,
column switches) and every vector saved. We integrate, for every voltage-defined source (V, E and
V-type B elements, at top level and inside subcircuits), the power it delivers, -V(n+, n-) x
I(branch), over the transient (trapezoid rule), by kind (`source_elements`):

- `row`: row drivers: crossbar conduction, the half of the row wires' charge their capacitance
  stores, (passive neuron) the charge that ends up in the column capacitors. A row driver returns
  nothing to its supply (a CMOS driver discharges its row to ground), so its power is counted where
  it delivers (> 0): at t_stop the charged row wires discharge into it;
- `row_switching`: per row switch a supply draw of e_row_driver_j plus the driver's loss charging
  the wire (an ideal source has none), 1/2 C_row v_read^2;
- `opamp`: the integrators' op-amp outputs: the feedback capacitors' charge and the clamp's heat;
- `comparator`: per decision e_comparator_j, drawn from a supply-level source;
- `static`: the neurons' bias from a supply source, power-gated at t_stop;
- `bookkeeping`: read-only signals (the potentials' buffers, enables, waveforms): ~0.

With gating the energy is integrated up to t_stop + 2 t_rise_s, when the rows are idle, the
static supply is off and every edge is done: the chip is power-gated then, so nothing it does afterwards is supply
energy. (The netlists' op-amps are ideal sources that stay on; with a finite gain a clamped or
charged capacitor would leak back through the cells into its op-amp output after t_stop, a
negative "delivery" the power-gated op-amp does not make. With an ideal op-amp, or passive
columns, nothing is delivered after t_stop anyway.)

Checked against the model (energy.model, evaluated as configured: clamped, gated, conduction in its
exact form): the TOTAL of all its components per image (`rel_error`), and by source
(`mean_abs_rel_error_by_source`): rows = conduction + row_switching (+ capacitor, passive),
opamp = capacitor + clamp, comparator, static. The netlists model no column wire capacitance, no
op-amp or driver internals beyond these terms. With wire resistance the netlist holds the wires
(`wires`: reduced, each tile's exact port equivalent, or literal, a resistor per segment), so the
row drivers' energy includes the heat in the wires, which the model counts exactly (energy.model):
integrators with their share shown (`wire_heat_j`; with a finite gain, up to a 1/A share), passive
columns in total.
"""
from __future__ import annotations

import dataclasses
import re
import time

import numpy as np

from energy.config import EnergyConfig
from energy.model import COMPONENTS, EnergyCircuit, energy_per_image
from infra.errors import SimulationError

_ELEMENT = re.compile(r"^\s*([VvEeBb]\S*)\s+(\S+)\s+(\S+)")
# source kind by element name (lower case, without its instance path)
_KINDS = (("vpr", "row_switching"), ("bpr", "row_switching"), ("vpc", "comparator"), ("bpc", "comparator"),
          ("vdd", "static"), ("bdd", "static"), ("vd", "row"), ("bd", "row"), ("bspk", "row"),
          ("espkm", "row"), ("eop", "opamp"))
_PULSES = ("row_switching", "comparator")
SOURCE_KINDS = ("row", "row_switching", "opamp", "comparator", "static", "bookkeeping")


def _kind(name: str) -> str:
    for prefix, kind in _KINDS:
        if name.startswith(prefix):
            return kind
    return "bookkeeping"


def source_elements(netlist: str) -> list[tuple[str, str, str, str]]:
    """Every voltage-defined source of a netlist (V, E, and B elements with `V =`) as (branch
    vector, node +, node -, kind: SOURCE_KINDS), with the ngspice names of elements inside
    subcircuit instances (`e.xn0_3.eop#branch`, `xn0_3.out`)."""
    subckts: dict[str, tuple[list, list]] = {}
    top, instances = [], []
    current = None
    for line in netlist.splitlines():
        s = line.strip()
        if not s or s.startswith("*"):
            continue
        low = s.lower()
        if low.startswith(".subckt"):
            parts = s.split()
            ports = [p for p in parts[2:] if not p.lower().startswith("params:") and "=" not in p]
            if "params:" in [p.lower() for p in parts]:
                ports = parts[2:[p.lower() for p in parts].index("params:")]
            current = parts[1].lower()
            subckts[current] = ([p.lower() for p in ports], [])
            continue
        if low.startswith(".ends"):
            current = None
            continue
        if low.startswith("."):
            continue
        m = _ELEMENT.match(s)
        if m and (low[0] in "ve" or re.match(r"^b\S*\s+\S+\s+\S+\s+v\s*=", low)):
            (subckts[current][1] if current else top).append((m.group(1).lower(), m.group(2).lower(),
                                                              m.group(3).lower()))
        elif low.startswith("x") and current is None:
            parts = s.split()
            body = parts[1:]
            if "params:" in [p.lower() for p in body]:
                body = body[:[p.lower() for p in body].index("params:")]
            instances.append((parts[0].lower(), [p.lower() for p in body[:-1]], body[-1].lower()))
    out = [(f"{name}#branch", np_, nm, _kind(name)) for name, np_, nm in top]
    for inst, nodes, sub in instances:
        if sub not in subckts:
            continue
        ports, elems = subckts[sub]
        mapping = dict(zip(ports, nodes))

        def node(n):
            return "0" if n == "0" else mapping.get(n, f"{inst}.{n}")

        for name, np_, nm in elems:
            out.append((f"{name[0]}.{inst}.{name}#branch", node(np_), node(nm), _kind(name)))
    return out


def source_energy(vectors: dict, elements, t_until_s: float | None = None) -> dict:
    """Energy (J) delivered by each kind of source over the saved transient (row drivers: where
    they deliver, module docstring): the trapezoid rule, or for the supply draws that charge a
    capacitor along a ramp (`_PULSES`) each step's mean voltage x the charge it moved. `t_until_s`:
    only the steps that end by then (a gated chip's supplies are off after t_stop + t_rise_s)."""
    t = vectors["time"]
    keep = slice(None) if t_until_s is None else np.nonzero(t[1:] <= t_until_s * (1 + 1e-12))[0]
    zero = np.zeros_like(t)
    out: dict[str, float] = {}
    for branch, n_plus, n_minus, kind in elements:
        i = vectors.get(branch)
        if i is None:
            raise SimulationError(f"ngspice saved no current {branch}; the energy cannot be measured")
        v = vectors.get(n_plus, zero) - vectors.get(n_minus, zero)
        if kind in _PULSES:
            # a ramp into a capacitor: the current is constant over every step (steps end at the
            # ramp's corners) and a sample holds the current of the step it ends
            p = -0.5 * (v[1:] + v[:-1]) * i[1:]
        else:
            p = -v * i
            p = 0.5 * (p[1:] + p[:-1])
        if kind == "row":
            p = np.maximum(p, 0.0)
        out[kind] = out.get(kind, 0.0) + float(np.sum((p * np.diff(t))[keep]))
    return out


def measure_layer(circuit, l: int, t_rows_s, settings: dict | None = None, t_stop_s: float | None = None,
                  t_fire_s=None):
    """(firing times (n_out,) in s incl. comparator delay, {kind: energy J}) of one layer, simulated
    by netlists.simulate.simulate_layer with every vector saved (t_stop_s, t_fire_s: the image's known
    times, netlists.simulate.image_events). The columns of a tile are independent circuits driven by
    ideal sources, so the tiles' source energies add up. Gated (t_stop_s < t_end): the energy up to
    t_stop_s + 2 t_rise_s, when every supply is off and every edge done (module docstring)."""
    from netlists.simulate import FAST, simulate_layer
    energy: dict[str, float] = {}
    until = None if t_stop_s is None or t_stop_s >= circuit.t_end_s else t_stop_s + 2 * circuit.t_rise_s

    def add(netlist: str, vectors: dict) -> None:
        for k, e in source_energy(vectors, source_elements(netlist), until).items():
            energy[k] = energy.get(k, 0.0) + e

    times = simulate_layer(circuit, l, t_rows_s, FAST if settings is None else settings, save="all", on_tile=add,
                           t_stop_s=t_stop_s, t_fire_s=t_fire_s)
    return times, energy


def supply(cfg: EnergyConfig, neuron: str):
    """The energy model's supply terms as the netlists write them (netlists.circuit.Supply)."""
    from netlists.circuit import Supply
    return Supply(p_static_w=cfg.static_power_w(neuron),
                  e_comparator_j=cfg.e_comparator_j, c_wire_per_cell_f=cfg.c_wire_per_cell_f,
                  e_row_driver_j=cfg.e_row_driver_j)


def with_energy(circuit, circ: EnergyCircuit, cfg: EnergyConfig):
    """`circuit` with the energy config's output clamp (per layer EnergyConfig.swing_v of the energy
    circuit's thresholds) and supply terms."""
    swing = tuple(cfg.swing_v(v) for v in circ.v_th_v)
    return circuit.with_terms(v_swing_v=swing if any(s is not None for s in swing) else None,
                              supply=supply(cfg, circuit.neuron))


def netlist_circuit(design, wires: str = "reduced", cfg: EnergyConfig | None = None, circ: EnergyCircuit | None = None):
    """The netlists package's Circuit of a design (stored chip, thresholds plus comparator offsets;
    wires written as `wires`, netlists.circuit.WIRE_NETLISTS), with `cfg`'s clamp and supply terms
    if given (`with_energy`; circ: the design's EnergyCircuit if the caller has it)."""
    from netlists.circuit import circuit_from_design
    from netlists.ports import with_design_ports
    circuit = circuit_from_design(design, wires=wires)
    if cfg is not None:
        circuit = with_energy(circuit, circ or EnergyCircuit.from_design(design), cfg)
    return with_design_ports(design, circuit)


def by_source(comp: dict, neuron: str) -> dict:
    """The model's components grouped as the netlists' sources measure them (module docstring)."""
    out = {"rows": comp["conduction"] + comp["row_switching"] + (comp["capacitor"] if neuron == "passive" else 0.0),
           "comparator": comp["comparator"], "static": comp["static"]}
    if neuron == "integrator":
        out["opamp"] = comp["capacitor"] + comp["clamp"]
    return out


def _measured_by_source(measured: dict) -> dict:
    out = {"rows": measured.get("row", 0.0) + measured.get("row_switching", 0.0)}
    for k in ("comparator", "static", "opamp"):
        if k in measured:
            out[k] = measured[k]
    return out


def measure_image(circuit, t_in_s, settings: dict) -> tuple[list, dict]:
    """(gated firing times per layer, {source kind: J}) of one image: ngspice for the firing times,
    then again, each layer driven at the first run's times, with the image's known times in the
    netlists (module docstring); the second run's energy, the first run's times."""
    from netlists.simulate import image_events, simulate_network
    first = simulate_network(circuit, t_in_s, settings)
    fire, t_stop = image_events(circuit, first)
    rows, measured = np.asarray(t_in_s, dtype=np.float64), {}
    for l in range(circuit.n_layers):
        for k, v in measure_layer(circuit, l, rows, settings, t_stop_s=t_stop, t_fire_s=fire[l])[1].items():
            measured[k] = measured.get(k, 0.0) + v
        rows = fire[l]
    return fire, measured


def validate(design, images, cfg: EnergyConfig | None = None, max_step_frac: float | None = None,
             progress: bool = True, wires: str = "reduced") -> dict:
    """Per image: measured source energy, the model's total at the behavioural firing times, and at
    the firing times ngspice measured; `mean_abs_rel_error` is of the former model."""
    from hwmodel.behavioural import circuits, input_times_s, layer_times
    from hwmodel.wire_model import chip_wires
    from tqdm import tqdm
    cfg = dataclasses.replace(cfg or EnergyConfig(), conduction_form="exact")
    chip = design.stored_chip()
    solved = chip_wires(design, chip)                # solved once for the energy and the firing times
    circ = EnergyCircuit.from_design(design, chip, solved)
    circuit = netlist_circuit(design, wires, cfg, circ)
    t_in = input_times_s(design, images)
    beh = layer_times(design, t_in, chip, circs=circuits(design, chip, solved))
    model_all = energy_per_image(circ, cfg, t_in, beh)
    settings = {"max_step_frac": max_step_frac, "options": ""}
    per_image = []
    t0 = time.perf_counter()
    for b in tqdm(range(len(t_in)), unit="img", desc="ngspice", disable=not progress, leave=False):
        sim_times, measured = measure_image(circuit, t_in[b], settings)
        at_sim = energy_per_image(circ, cfg, t_in[b:b + 1], [t[None, :] for t in sim_times])
        comp = dict(zip(COMPONENTS, (float(x) for x in model_all.energy_j[b].sum(axis=0))))
        m = float(sum(comp.values()))
        m_sim = float(at_sim.energy_j[0].sum())
        meas = float(sum(measured.values()))
        wire = None if model_all.wire_heat_j is None else float(model_all.wire_heat_j[b].sum())
        agree = [bool(np.array_equal(np.isfinite(bt[b]), np.isfinite(st))) for bt, st in zip(beh, sim_times)]
        per_image.append({
            "image": b,
            "measured_j": meas,
            "measured_by_source_j": _measured_by_source(measured),
            "measured_bookkeeping_j": measured.get("bookkeeping", 0.0),
            "model_j": m,
            "model_at_circuit_times_j": m_sim,
            "model_by_source_j": by_source(comp, design.neuron),
            "model_components_j": comp,
            "model_conduction_j": comp["conduction"],
            "model_capacitor_j": comp["capacitor"],
            "model_wire_heat_j": wire,       # the wires' share of the conduction (exact wires), else None
            "model_spike_count_conduction_j": float(model_all.conduction_spike_count_j[b].sum()),
            "t_stop_s": float(model_all.t_stop_s[b]) if model_all.t_stop_s is not None else design.t_end_s,
            "rel_error": (m - meas) / meas if meas else 0.0,
            "rel_error_at_circuit_times": (m_sim - meas) / meas if meas else 0.0,
            "same_spikes_as_behavioural": all(agree),
        })
    errs = np.array([abs(p["rel_error"]) for p in per_image])
    errs_sim = np.array([abs(p["rel_error_at_circuit_times"]) for p in per_image])
    kinds = per_image[0]["model_by_source_j"] if per_image else {}
    by_src = {}
    for k in kinds:
        rel = [abs(p["model_by_source_j"][k] - p["measured_by_source_j"].get(k, 0.0)) / p["measured_by_source_j"][k]
               for p in per_image if p["measured_by_source_j"].get(k)]
        if rel:
            by_src[k] = float(np.mean(rel))
    return {
        "design_layers": list(design.layers),
        "neuron": design.neuron,
        "scheme": design.scheme,
        "gating": design.hw.gating,
        "decision_guard_s": design.hw.decision_guard_s,
        "swing_v": None if circuit.v_swing_v is None else list(circuit.v_swing_v),
        "wires": {"r_wire_row_ohm": design.r_wire_row_ohm, "r_wire_col_ohm": design.r_wire_col_ohm,
                  "tile_rows": design.hw.tile_rows, "tile_cols": design.hw.tile_cols, "netlist": wires,
                  "energy_model": "exact" if circ.a_s is not None else
                  ("first-order" if circuit.wires else "none")},
        "n_images": len(per_image),
        "compared": "the model's total (" + " + ".join(COMPONENTS) + ", clamped and gated as configured) "
                    "with the energy every source of the netlists delivers; by source: rows (conduction + "
                    "row_switching" + (" + capacitor" if design.neuron == "passive" else "") + "), "
                    + ("opamp (capacitor + clamp), " if design.neuron == "integrator" else "")
                    + "comparator, static",
        "images": per_image,
        "mean_abs_rel_error": float(errs.mean()) if len(errs) else 0.0,
        "max_abs_rel_error": float(errs.max()) if len(errs) else 0.0,
        "mean_abs_rel_error_at_circuit_times": float(errs_sim.mean()) if len(errs) else 0.0,
        "mean_abs_rel_error_by_source": by_src,
        "max_bookkeeping_share": float(max((abs(p["measured_bookkeeping_j"]) / p["measured_j"] for p in per_image
                                            if p["measured_j"]), default=0.0)),
        "seconds": time.perf_counter() - t0,
    }
