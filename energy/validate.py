"""`ttfs energy-validate`: the energy model against the energy ngspice measures, image by image.

The circuit is the netlists package's (netlists.circuit.circuit_from_design), run by its
netlists.simulate.simulate_layer: each layer is simulated alone, driven at the firing times ngspice
measured for the layer below. We ask it to save every node voltage and every branch current
(`save="all"`, `.save all`), and integrate, for every voltage-defined source (V and E elements, at top
level and inside the neuron subcircuits), the power it delivers, -V(n+, n-) x I(branch), over the
transient (trapezoid rule). That is the energy drawn from the sources the circuit models:

- row drivers (V sources): crossbar conduction (and, for the passive neuron, the charge that ends
  up in the column capacitors);
- op-amp outputs (E sources of the integrator neurons): the charging of the feedback capacitors.

With wire resistance the netlist holds the wires (`wires`: reduced, each tile's exact port
equivalent, or literal, a resistor per segment), so the row drivers' energy includes the heat in
the wires, which the model counts exactly (energy.model): integrators with their share shown
(`wire_heat_j`; with a finite gain, up to a 1/A share), passive columns in total (their share
depends on the column voltages and is not split out).

The netlists do not model wire capacitance, comparators (not in the layer netlists; their
B-source latches draw no real supply current anyway), op-amp bias or driver internals, so the
model's `row_switching`, `comparator` and `static` terms cannot be checked here; the comparison is
of `conduction + capacitor`. The op-amp of the netlists is ideal (gain 1e9, unbounded output), so
the model is evaluated unclamped (`swing_over_threshold: .inf`) for this comparison.
"""
from __future__ import annotations

import dataclasses
import math
import re
import time

import numpy as np

from energy.config import EnergyConfig
from energy.model import COMPONENTS, EnergyCircuit, energy_per_image
from infra.errors import SimulationError

_ELEMENT = re.compile(r"^\s*([VvEe]\S*)\s+(\S+)\s+(\S+)")


def source_elements(netlist: str) -> list[tuple[str, str, str, str]]:
    """Every V and E element of a netlist as (branch vector, node +, node -, kind), with the
    ngspice names of elements inside subcircuit instances (`e.xn0_3.eop#branch`, `xn0_3.out`)."""
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
        if m and low[0] in "ve":
            (subckts[current][1] if current else top).append((m.group(1).lower(), m.group(2).lower(),
                                                              m.group(3).lower()))
        elif low.startswith("x") and current is None:
            parts = s.split()
            body = parts[1:]
            if "params:" in [p.lower() for p in body]:
                body = body[:[p.lower() for p in body].index("params:")]
            instances.append((parts[0].lower(), [p.lower() for p in body[:-1]], body[-1].lower()))
    out = [(f"{name}#branch", np_, nm, "row" if name.startswith("vd") else "other") for name, np_, nm in top]
    for inst, nodes, sub in instances:
        if sub not in subckts:
            continue
        ports, elems = subckts[sub]
        mapping = dict(zip(ports, nodes))

        def node(n):
            return "0" if n == "0" else mapping.get(n, f"{inst}.{n}")

        for name, np_, nm in elems:
            kind = "opamp" if name == "eop" else "other"
            out.append((f"{name[0]}.{inst}.{name}#branch", node(np_), node(nm), kind))
    return out


def source_energy(vectors: dict, elements) -> dict:
    """Energy (J) delivered by each kind of source over the saved transient."""
    t = vectors["time"]
    zero = np.zeros_like(t)
    out: dict[str, float] = {}
    for branch, n_plus, n_minus, kind in elements:
        i = vectors.get(branch)
        if i is None:
            raise SimulationError(f"ngspice saved no current {branch}; the energy cannot be measured")
        v = vectors.get(n_plus, zero) - vectors.get(n_minus, zero)
        p = -v * i
        out[kind] = out.get(kind, 0.0) + float(np.sum(0.5 * (p[1:] + p[:-1]) * np.diff(t)))
    return out


def measure_layer(circuit, l: int, t_rows_s, settings: dict | None = None):
    """(firing times (n_out,) in s incl. comparator delay, {kind: energy J}) of one layer, simulated
    by netlists.simulate.simulate_layer with every vector saved. The columns of a tile are
    independent circuits driven by ideal sources, so the tiles' source energies add up."""
    from netlists.simulate import FAST, simulate_layer
    energy: dict[str, float] = {}

    def add(netlist: str, vectors: dict) -> None:
        for k, e in source_energy(vectors, source_elements(netlist)).items():
            energy[k] = energy.get(k, 0.0) + e

    times = simulate_layer(circuit, l, t_rows_s, FAST if settings is None else settings, save="all", on_tile=add)
    return times, energy


def netlist_circuit(design, wires: str = "reduced"):
    """The netlists package's Circuit of a design (stored chip, thresholds plus comparator offsets;
    wires written as `wires`, netlists.circuit.WIRE_NETLISTS)."""
    from netlists.circuit import circuit_from_design
    return circuit_from_design(design, wires=wires)


def validate(design, images, cfg: EnergyConfig | None = None, max_step_frac: float | None = None,
             progress: bool = True, wires: str = "reduced") -> dict:
    """Per image: measured source energy, the model at the behavioural firing times, and the model
    at the firing times ngspice measured; `mean_abs_rel_error` is of the former model."""
    from hwmodel.behavioural import circuits, input_times_s, layer_times
    from hwmodel.wire_model import chip_wires
    from tqdm import tqdm
    cfg = dataclasses.replace(cfg or EnergyConfig(), v_swing_v=None, swing_over_threshold=math.inf,
                              conduction_form="exact")
    circuit = netlist_circuit(design, wires)
    chip = design.stored_chip()
    solved = chip_wires(design, chip)                # solved once for the energy and the firing times
    circ = EnergyCircuit.from_design(design, chip, solved)
    cmp_idx = [COMPONENTS.index("conduction"), COMPONENTS.index("capacitor")]
    t_in = input_times_s(design, images)
    beh = layer_times(design, t_in, chip, circs=circuits(design, chip, solved))
    model_all = energy_per_image(circ, cfg, t_in, beh)
    settings = {"max_step_frac": max_step_frac, "options": ""}
    per_image = []
    t0 = time.perf_counter()
    for b in tqdm(range(len(t_in)), unit="img", desc="ngspice", disable=not progress, leave=False):
        rows = t_in[b]
        sim_times, measured = [], {}
        for l in range(circuit.n_layers):
            rows, e = measure_layer(circuit, l, rows, settings)
            sim_times.append(rows)
            for k, v in e.items():
                measured[k] = measured.get(k, 0.0) + v
        at_sim = energy_per_image(circ, cfg, t_in[b:b + 1], [t[None, :] for t in sim_times])
        m = float(model_all.energy_j[b][:, cmp_idx].sum())
        m_sim = float(at_sim.energy_j[0][:, cmp_idx].sum())
        meas = float(sum(measured.values()))
        cond = float(model_all.energy_j[b][:, cmp_idx[0]].sum())
        cap = float(model_all.energy_j[b][:, cmp_idx[1]].sum())
        wire = None if model_all.wire_heat_j is None else float(model_all.wire_heat_j[b].sum())
        by_source = {"row": cond, "opamp": cap} if design.neuron == "integrator" else {"row": cond + cap}
        agree = [bool(np.array_equal(np.isfinite(bt[b]), np.isfinite(st))) for bt, st in zip(beh, sim_times)]
        per_image.append({
            "image": b,
            "measured_j": meas,
            "measured_by_source_j": measured,
            "model_j": m,
            "model_at_circuit_times_j": m_sim,
            "model_by_source_j": by_source,
            "model_conduction_j": cond,
            "model_capacitor_j": cap,
            "model_wire_heat_j": wire,       # the wires' share of the conduction (exact wires), else None
            "model_spike_count_conduction_j": float(model_all.conduction_spike_count_j[b].sum()),
            "rel_error": (m - meas) / meas if meas else 0.0,
            "rel_error_at_circuit_times": (m_sim - meas) / meas if meas else 0.0,
            "same_spikes_as_behavioural": all(agree),
        })
    errs = np.array([abs(p["rel_error"]) for p in per_image])
    errs_sim = np.array([abs(p["rel_error_at_circuit_times"]) for p in per_image])
    by_source = {k: float(np.mean([abs(p["model_by_source_j"][k] - p["measured_by_source_j"][k])
                                   / p["measured_by_source_j"][k] for p in per_image
                                   if p["measured_by_source_j"].get(k)]))
                 for k in (per_image[0]["model_by_source_j"] if per_image else {})}
    return {
        "design_layers": list(design.layers),
        "neuron": design.neuron,
        "scheme": design.scheme,
        "wires": {"r_wire_row_ohm": design.r_wire_row_ohm, "r_wire_col_ohm": design.r_wire_col_ohm,
                  "tile_rows": design.hw.tile_rows, "tile_cols": design.hw.tile_cols, "netlist": wires,
                  "energy_model": "exact" if circ.a_s is not None else
                  ("first-order" if circuit.wires else "none")},
        "n_images": len(per_image),
        "compared": "conduction + capacitor (energy from row drivers and op-amp outputs); row switching, "
                    "comparator and static terms are not in the netlist",
        "images": per_image,
        "mean_abs_rel_error": float(errs.mean()) if len(errs) else 0.0,
        "max_abs_rel_error": float(errs.max()) if len(errs) else 0.0,
        "mean_abs_rel_error_at_circuit_times": float(errs_sim.mean()) if len(errs) else 0.0,
        "mean_abs_rel_error_by_source": by_source,
        "seconds": time.perf_counter() - t0,
    }
