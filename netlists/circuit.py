"""What the netlist writer builds from: the circuit of a mapped network as plain SI arrays.

`Circuit` holds no hwmodel object, so the writer, the runner and the tests can build one from
random arrays; `circuit_from_design` fills it from a `hwmodel.design.Design`. Its neuron and scheme
are checked against the one circuit vocabulary, hwmodel.config.NEURON_SCHEMES.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from hwmodel.config import GATINGS, check_circuit
from infra.errors import ConfigError

IDEAL_OPAMP_GAIN = 1e9     # an ideal op-amp (opamp_gain: null) is written with this open-loop gain
# How a crossbar with wire resistance is written: `literal`, a resistor per wire segment and per cell
# (the reference); `reduced`, per tile the exact port equivalent (netlists/ports.py), wire nodes eliminated.
WIRE_NETLISTS = ("literal", "reduced")
# The integrator's output clamp (SPEC: an ideal clamp across the feedback capacitor) is written as a
# conductance of CLAMP_GAIN x the layer's largest column conductance beyond the swing: a clamped
# output overshoots the swing by at most v_read / CLAMP_GAIN (a 1e-5 share of its energy).
CLAMP_GAIN = 1e5


@dataclass(frozen=True)
class Supply:
    """The energy model's per-event energies and static power (energy.config.EnergyConfig), drawn in
    the netlist from supply sources (docs/netlists.md, "Supply terms"); all zero: none written."""

    p_static_w: float = 0.0          # per neuron: comparator bias (+ op-amp bias for an integrator), W
    e_comparator_j: float = 0.0      # per comparator decision, J
    c_wire_per_cell_f: float = 0.0   # row wire capacitance per cell pitch, F (a physical element)
    e_row_driver_j: float = 0.0      # per row switch, besides charging the wire, J
    v_supply_v: float = 1.0          # the supply sources' voltage (the energies do not depend on it)

    def __post_init__(self):
        for key in ("p_static_w", "e_comparator_j", "c_wire_per_cell_f", "e_row_driver_j"):
            value = getattr(self, key)
            if not (np.isfinite(value) and value >= 0):
                raise ConfigError(f"supply {key}: must be finite and >= 0 (got {value})")
        if not (np.isfinite(self.v_supply_v) and self.v_supply_v > 0):
            raise ConfigError(f"supply v_supply_v: must be finite and > 0 (got {self.v_supply_v})")

    @property
    def any(self) -> bool:
        return any(getattr(self, k) > 0 for k in ("p_static_w", "e_comparator_j", "c_wire_per_cell_f",
                                                   "e_row_driver_j"))


# what the tiles' ports and couplings depend on (Circuit.ports, Circuit.couplings)
CROSSBAR_FIELDS = frozenset({"g_pos", "g_neg", "scheme", "r_wire_row_ohm", "r_wire_col_ohm", "tile_rows", "tile_cols"})


@dataclass(frozen=True)
class Circuit:
    """A mapped network. Layer l is fed by g_pos[l], g_neg[l] of shape (n_in, n_out) in siemens."""

    g_pos: tuple
    g_neg: tuple
    c_mem_f: tuple                  # per layer, farad
    v_th_v: tuple                   # per layer, (n_out,) comparator threshold incl. offsets, volts
    neuron: str = "integrator"
    scheme: str = "dual-rail"
    v_read_v: float = 0.2
    time_scale_s: float = 1e-6
    t_end_s: float = 4e-6
    t_rise_s: float = 1e-9          # row-driver edge, centred on the spike time
    comparator_delay_s: float = 0.0
    opamp_gain: float | None = None
    r_wire_row_ohm: float = 0.0
    r_wire_col_ohm: float = 0.0
    tile_rows: int | None = None    # physical rows per tile (hwmodel/tiles.py); None: one tile
    tile_cols: int | None = None    # physical columns per tile; None: one tile
    wire_netlist: str = "literal"   # WIRE_NETLISTS: how wires are written (no effect without wires)
    v_swing_v: tuple | None = None  # per layer, the integrator's output clamp |y| <= swing (V); None
                                    # (or a None entry): unclamped. From energy.config.EnergyConfig.swing_v
    gating: str = "none"            # hwmodel.config.GATINGS (docs/hwmodel.md, "Gating")
    decision_guard_s: float = 0.0   # t_stop = first output spike + this (gating decision | column)
    supply: Supply = Supply()       # the energy model's supply terms written as supply draws
    info: dict = field(default_factory=dict)    # header lines: source_run, dataset, ... (free text:
                                                # the writer makes it inert, infra.inert_text)
    _ports: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # layer -> tiles
    _couplings: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # layer -> LayerCouplings

    def __post_init__(self):
        check_circuit(self.neuron, self.scheme)
        n = len(self.g_pos)
        if not (n == len(self.g_neg) == len(self.c_mem_f) == len(self.v_th_v)) or n == 0:
            raise ConfigError("g_pos, g_neg, c_mem_f and v_th_v need one entry per layer")
        for l in range(n):
            if self.g_pos[l].shape != self.g_neg[l].shape:
                raise ConfigError(f"layer {l}: g_pos {self.g_pos[l].shape} and g_neg {self.g_neg[l].shape} differ")
            if l and self.g_pos[l].shape[0] != self.g_pos[l - 1].shape[1]:
                raise ConfigError(f"layer {l}: {self.g_pos[l].shape[0]} inputs, but layer {l - 1} has "
                                  f"{self.g_pos[l - 1].shape[1]} neurons")
            if np.any(self.g_pos[l] < 0) or np.any(self.g_neg[l] < 0):
                raise ConfigError(f"layer {l}: conductances must be >= 0")
        if self.wire_netlist not in WIRE_NETLISTS:
            raise ConfigError(f"--wires {self.wire_netlist!r}: expected one of {', '.join(WIRE_NETLISTS)}")
        for key in ("tile_rows", "tile_cols"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"hw.{key}: must be >= 1 or null for one tile (got {value})")
        if self.t_rise_s <= 0 or self.t_rise_s >= self.t_end_s:
            raise ConfigError(f"t_rise_s: must be in (0, t_end_s) (got {self.t_rise_s})")
        if self.v_swing_v is not None:
            if len(self.v_swing_v) != n:
                raise ConfigError(f"v_swing_v: one entry per layer ({n}), got {len(self.v_swing_v)}")
            for l, vs in enumerate(self.v_swing_v):
                if vs is not None and not (np.isfinite(vs) and vs > np.max(self.v_th_v[l])):
                    raise ConfigError(f"layer {l}: output swing {vs} V must be finite and above the "
                                      f"threshold {np.max(self.v_th_v[l]):.4g} V (or None: unclamped)")
        if self.gating not in GATINGS:
            raise ConfigError(f"hw.gating: must be one of {', '.join(GATINGS)} (got {self.gating!r})")
        if not (np.isfinite(self.decision_guard_s) and self.decision_guard_s >= 0):
            raise ConfigError(f"hw.decision_guard_s: must be >= 0 (got {self.decision_guard_s})")
        if self.gating == "column" and self.wires:
            raise ConfigError("hw.gating: column gating is not written into netlists with wire resistance "
                              "(disconnecting a column changes the currents in the others); use "
                              "hw.gating: decision, or no wire resistance")

    @property
    def n_layers(self) -> int:
        return len(self.g_pos)

    @property
    def sizes(self) -> list:
        return [self.g_pos[0].shape[0]] + [g.shape[1] for g in self.g_pos]

    @property
    def gain(self) -> float:
        return IDEAL_OPAMP_GAIN if self.opamp_gain is None else float(self.opamp_gain)

    def swing(self, l: int) -> float | None:
        """Layer l's integrator output swing (V), None: unclamped (and always for the passive neuron)."""
        if self.neuron != "integrator" or self.v_swing_v is None:
            return None
        return self.v_swing_v[l]

    def clamp_g_s(self, l: int) -> float:
        """The clamp's conductance beyond the swing (S): CLAMP_GAIN x layer l's largest column conductance."""
        g = self.g_pos[l] + self.g_neg[l]
        return CLAMP_GAIN * max(float(g.sum(axis=0).max()) if g.size else 0.0, 1e-9)

    @property
    def wires(self) -> bool:
        return self.r_wire_row_ohm > 0 or self.r_wire_col_ohm > 0

    @property
    def reduced(self) -> bool:
        """The crossbars are written as their tiles' exact port equivalents."""
        return self.wires and self.wire_netlist == "reduced"

    def ports(self, l: int) -> list:
        """Layer l's tiles with their exact port admittances (netlists.ports.layer_ports), computed
        once per circuit."""
        if l not in self._ports:
            from netlists.ports import layer_ports
            self._ports[l] = layer_ports(self.g_pos[l], self.g_neg[l], self.scheme, self.r_wire_row_ohm,
                                         self.r_wire_col_ohm, self.tile_rows, self.tile_cols)
        return self._ports[l]

    def couplings(self, l: int):
        """Layer l's reduced-netlist conductances (netlists.ports.layer_couplings of `ports`), computed
        once per circuit: the writer's per-image work is only what the input's drivers change."""
        if l not in self._couplings:
            from netlists.ports import layer_couplings
            n_out = self.g_pos[l].shape[1]
            n_cols = n_out if self.scheme == "dual-rail" else 2 * n_out
            self._couplings[l] = layer_couplings(self.ports(l), n_cols)
        return self._couplings[l]

    def with_terms(self, **changes) -> "Circuit":
        """dataclasses.replace of fields outside the crossbars (clamp, supply, gating, ...): the copy
        keeps the tiles' solved ports and couplings, which only the crossbars' fields determine."""
        touched = sorted(set(changes) & CROSSBAR_FIELDS)
        if touched:
            raise ValueError(f"Circuit.with_terms: {', '.join(touched)} change the crossbars; use dataclasses.replace")
        new = dataclasses.replace(self, **changes)
        new._ports.update(self._ports)
        new._couplings.update(self._couplings)
        return new

    def set_ports(self, ports: dict) -> None:
        """{layer: tiles} solved elsewhere for this circuit's conductances and wires (netlists.ports.
        design_ports, cached per design) instead of `ports` solving them."""
        self._ports.update(ports)
        for l in ports:
            self._couplings.pop(l, None)


def make_circuit(g_pos, g_neg, c_mem_f, v_th_v, **kwargs) -> Circuit:
    """Circuit from lists of arrays; scalar thresholds are broadcast over each layer's neurons."""
    g_pos = tuple(np.asarray(g, dtype=np.float64) for g in g_pos)
    g_neg = tuple(np.asarray(g, dtype=np.float64) for g in g_neg)
    c_mem_f = tuple(float(c) for c in np.broadcast_to(np.asarray(c_mem_f, dtype=float), (len(g_pos),)))
    v_th = []
    for l, g in enumerate(g_pos):
        v = v_th_v[l] if isinstance(v_th_v, (list, tuple, np.ndarray)) else v_th_v
        v_th.append(np.broadcast_to(np.asarray(v, dtype=np.float64), (g.shape[1],)).copy())
    return Circuit(g_pos=g_pos, g_neg=g_neg, c_mem_f=c_mem_f, v_th_v=tuple(v_th), **kwargs)


def within_window(value_s: float | None, t_end_s: float, flag: str) -> float | None:
    """`value_s` (a time step or edge the user gave, None: not given) unless it is not shorter than
    the design's window `t_end_s`: then a ConfigError naming `flag` and the bound."""
    if value_s is not None and not value_s < t_end_s:
        raise ConfigError(f"{flag}: must be < the design's window t_end_s = {t_end_s:.4g} s (got {value_s:.4g})")
    return value_s


def circuit_from_design(design, t_rise_s: float | None = None, wires: str = "reduced") -> Circuit:
    """The circuit a hwmodel Design describes (thresholds include the comparator offsets, tiles
    from hw.tile_rows / tile_cols); `t_rise_s` is the --t-rise-s flag (None: 1e-3 * time_scale_s),
    `wires` the --wires flag (WIRE_NETLISTS)."""
    within_window(t_rise_s, float(design.t_end_s), "--t-rise-s")
    n = len(design.g_pos)
    offsets = getattr(design, "comparator_offsets_v", None)
    v_th = []
    for l in range(n):
        n_out = design.g_pos[l].shape[1]
        off = np.full(n_out, float(design.comparator_offset_v or 0.0))
        if offsets is not None:
            off = np.asarray(offsets[l], dtype=np.float64).reshape(n_out)
        v_th.append(float(design.v_th_v[l]) + off)
    if t_rise_s is None:
        t_rise_s = 1e-3 * float(design.time_scale_s)
    hw = getattr(design, "hw", None)
    info = {"source_run": str(getattr(design, "source_run", "")), "dataset": getattr(design, "dataset", ""),
            "layers": list(getattr(design, "layers", [])),
            "t_in_s": float(getattr(design, "t_in_s", 0.0))}
    return make_circuit(
        design.g_pos, design.g_neg, design.c_mem_f, v_th,
        neuron=design.neuron, scheme=design.scheme, v_read_v=float(design.v_read_v),
        time_scale_s=float(design.time_scale_s), t_end_s=float(design.t_end_s), t_rise_s=t_rise_s,
        comparator_delay_s=float(design.comparator_delay_s or 0.0),
        opamp_gain=None if design.opamp_gain is None else float(design.opamp_gain),
        r_wire_row_ohm=float(design.r_wire_row_ohm or 0.0), r_wire_col_ohm=float(design.r_wire_col_ohm or 0.0),
        tile_rows=getattr(hw, "tile_rows", None), tile_cols=getattr(hw, "tile_cols", None),
        wire_netlist=wires, gating=getattr(hw, "gating", "none"),
        decision_guard_s=float(getattr(hw, "decision_guard_s", 0.0)), info=info)
