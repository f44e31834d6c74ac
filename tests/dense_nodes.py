"""The wire tests' independent reference: nodal analysis of a list of resistors by a dense
numpy.linalg.solve (nothing of the project's sparse solvers), and the netlist writer's resistors."""
import numpy as np


def netlist_resistors(text: str) -> list[tuple]:
    """[(name, node a, node b, conductance S)] of the `Rname a b ohms` lines of netlist text."""
    return [(name, a, b, 1.0 / float(ohm)) for name, a, b, ohm in
            (line.split() for line in text.splitlines() if line.startswith("R"))]


def dense_laplacian(resistors, names) -> np.ndarray:
    """The conductance Laplacian (S) of `resistors` [(a, b, conductance)] over the nodes `names`
    (every node of the resistors), in that order."""
    index = {n: k for k, n in enumerate(names)}
    lap = np.zeros((len(names), len(names)))
    for a, b, g in resistors:
        ia, ib = index[a], index[b]
        lap[ia, ia] += g
        lap[ib, ib] += g
        lap[ia, ib] -= g
        lap[ib, ia] -= g
    return lap


def node_voltages(resistors, volts: dict):
    """v(node) for every node of `resistors` [(a, b, conductance)]: the nodes in `volts` held at
    those voltages, every other node solved by Kirchhoff's current law."""
    free = sorted({n for a, b, _ in resistors for n in (a, b)} - set(volts), key=str)
    index = {n: k for k, n in enumerate(free)}
    lap, rhs = np.zeros((len(free), len(free))), np.zeros(len(free))
    for a, b, g in resistors:
        for p, q in ((a, b), (b, a)):
            if p in index:
                lap[index[p], index[p]] += g
                if q in index:
                    lap[index[p], index[q]] -= g
                else:
                    rhs[index[p]] += g * volts[q]
    x = np.linalg.solve(lap, rhs) if free else np.zeros(0)
    return lambda n: x[index[n]] if n in index else volts[n]


def currents_out(resistors, v, nodes) -> dict:
    """{node: current (A) flowing out of the node into its resistors} for each of `nodes`, at node
    voltages v (node_voltages)."""
    out = {n: 0.0 for n in nodes}
    for a, b, g in resistors:
        for p, q in ((a, b), (b, a)):
            if p in out:
                out[p] += g * (v(p) - v(q))
    return out
