"""Netlists with wires on a random array: literal against reduced, and the maximum time step.

usage: python benchmarks/netlist_wires.py forms [--scheme dual-rail] [--neuron integrator] [--tile N]
       python benchmarks/netlist_wires.py step --rows 32 --cols 16 [--wires literal] [--neuron integrator]

`forms`: a 64 x 32 array (20 ohm per pitch, 30% of the inputs silent) simulated as a literal
netlist (a resistor per wire segment and cell) and a reduced one (each tile's exact port
equivalent), then without wires; prints wall seconds, netlist lines, the largest firing-time
difference literal - reduced and the largest shift the wires cause, as fractions of the window.
`step`: the same kind of array against ngspice's maximum step (fractions of t_end), each against
the smallest: ngspice CPU seconds and the largest firing-time difference. docs/results.md,
"Netlists with wires", quotes both.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from netlists import ngspice
from netlists.circuit import make_circuit
from netlists.simulate import simulate_network
from netlists.writer import layer_netlist

T_END_S = 4e-6


def _circuit(rng, n_in, n_out, neuron, scheme="dual-rail", tile=None, wires="reduced"):
    g_pos, g_neg = rng.uniform(1e-6, 3e-5, (n_in, n_out)), rng.uniform(1e-6, 2e-5, (n_in, n_out))
    integ = neuron == "integrator"
    circuit = make_circuit([g_pos], [g_neg], [1e-10 if integ else 1e-11], [0.3 if integ else 0.02], scheme=scheme,
                           neuron=neuron, r_wire_row_ohm=20.0, r_wire_col_ohm=20.0, tile_rows=tile, tile_cols=tile,
                           t_end_s=T_END_S, wire_netlist=wires)
    t_in = rng.uniform(0, 1e-6, n_in)
    t_in[rng.random(n_in) < 0.3] = np.inf
    return circuit, t_in


def forms(args) -> None:
    circuit, t_in = _circuit(np.random.default_rng(0), 64, 32, args.neuron, args.scheme, args.tile)
    times = {}
    for form in ("literal", "reduced"):
        c = dataclasses.replace(circuit, wire_netlist=form)
        start = time.time()
        times[form] = simulate_network(c, t_in)[0]
        print(f"{form}: {time.time() - start:.1f} s wall, {len(layer_netlist(c, 0, t_in).splitlines())} lines")
    none = simulate_network(dataclasses.replace(circuit, r_wire_row_ohm=0.0, r_wire_col_ohm=0.0), t_in)[0]
    lit, red = times["literal"], times["reduced"]
    f = np.isfinite(lit)
    print(f"fired {f.sum()}, same neurons fire: {np.array_equal(f, np.isfinite(red))}, "
          f"max |literal - reduced| {np.max(np.abs(lit[f] - red[f])) / T_END_S:.2e} of the window, "
          f"wires shift up to {np.max(np.abs(lit[f] - none[f])) / T_END_S:.2e}")


def step(args) -> None:
    circuit, t_in = _circuit(np.random.default_rng(1), args.rows, args.cols, args.neuron, wires=args.wires)
    fracs = [1e-3, 5e-3, 1e-2, 2e-2, 5e-2] if args.neuron == "integrator" else [2e-4, 2e-3, 5e-3, 1e-2]
    ref = None
    for frac in fracs:
        session = ngspice.session()
        cpu0 = session.cpu_seconds()
        t = simulate_network(circuit, t_in, {"max_step_frac": frac, "options": ""})[0]
        cpu = session.cpu_seconds() - cpu0
        ref = t if ref is None else ref
        f = np.isfinite(ref)
        print(f"max step t_end x {frac:g}: {cpu:.2f} s CPU, max |dt| {np.max(np.abs(t[f] - ref[f])) / T_END_S:.2e} "
              f"of the window, same neurons fire: {np.array_equal(f, np.isfinite(t))}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("forms")
    a.add_argument("--scheme", default="dual-rail", choices=("dual-rail", "differential"))
    a.add_argument("--neuron", default="integrator", choices=("integrator", "passive"))
    a.add_argument("--tile", type=int, default=None)
    a.set_defaults(func=forms)
    b = sub.add_parser("step")
    b.add_argument("--rows", type=int, default=32)
    b.add_argument("--cols", type=int, default=16)
    b.add_argument("--wires", default="literal", choices=("literal", "reduced"))
    b.add_argument("--neuron", default="integrator", choices=("integrator", "passive"))
    b.set_defaults(func=step)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
