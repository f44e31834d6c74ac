"""Typed, frozen description of the analog hardware a trained network is mapped onto.

One flat dataclass, `HardwareConfig`, read from YAML by `infra.config.load_config(path,
HardwareConfig, section="hw")` (see configs/hw/). Physical quantities are SI floats with the unit
in the name; the defaults here are an ideal integrator crossbar (every non-ideality off) with
plausible RRAM-like magnitudes. Range errors name the key: `hw.g_max_s: must be > hw.g_min_s ...`.
The circuit models and the mapping are documented in docs/hwmodel.md.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from infra.config import build, require

# The circuit vocabulary, the one list every package checks against (netlists, energy import it).
# Each neuron circuit with the signed-weight schemes it is modelled for. A new neuron circuit is an
# entry here plus its kernels (docs/architecture.md lists the files).
NEURON_SCHEMES = {
    "integrator": ("dual-rail", "differential"),   # op-amp with a feedback capacitor, column at virtual ground
    "passive": ("dual-rail",),                      # the column node on a grounded capacitor
}
NEURONS = tuple(NEURON_SCHEMES)
SCHEMES = ("dual-rail", "differential")   # +/- V_read row pairs | one row, +/- column pairs
SCALE_BY = ("threshold", "capacitance")
WIRE_MODELS = ("exact", "first-order")
# Power gating (docs/hwmodel.md, "Gating"): none; decision: the first output spike plus
# decision_guard_s ends the inference (row drivers back to idle, amplifiers and comparators
# power-gated); column: decision gating, and each neuron's column disconnected once it has fired.
GATINGS = ("none", "decision", "column")
KTC_TEMPERATURE_MAX_K = 600.0   # well above any chip's operating range: a larger value is a mistake


def rows_per_input(scheme: str, n_out: int) -> tuple[int, int]:
    """(physical rows one input drives, cells on each row) of a crossbar with n_out neurons:
    dual-rail a + and a - row of n_out cells; differential one row across both columns of every
    neuron (the energy model's row switching and the netlists' row wires both count these)."""
    return (2, n_out) if scheme == "dual-rail" else (1, 2 * n_out)


def check_circuit(neuron: str, scheme: str, prefix: str = "") -> None:
    """`neuron` and `scheme` name a circuit the toolkit models, else a ConfigError naming the key
    (`{prefix}neuron`, `{prefix}scheme`) and the choices."""
    require(neuron in NEURON_SCHEMES, f"{prefix}neuron",
            f"must be one of {', '.join(NEURON_SCHEMES)} (got {neuron!r})")
    require(scheme in SCHEMES, f"{prefix}scheme", f"must be one of {', '.join(SCHEMES)} (got {scheme!r})")
    supported = NEURON_SCHEMES[neuron]
    others = [n for n, schemes in NEURON_SCHEMES.items() if scheme in schemes]
    require(scheme in supported, f"{prefix}scheme",
            f"the {neuron} neuron is modelled for {' and '.join(supported)} only (got {scheme!r}); use "
            f"scheme: {supported[0]}, or neuron: {' or '.join(others)}")


@dataclass(frozen=True)
class HardwareConfig:
    """A resistive crossbar with capacitor neurons; every non-ideality defaults to off."""

    # Circuit family
    neuron: str = "integrator"          # integrator (op-amp, feedback C) | passive (grounded C)
    scheme: str = "dual-rail"           # dual-rail (+/- V_read rows) | differential (column pairs)
    # Scales
    time_scale_s: float = 1e-6          # seconds per model time unit (tau_s)
    v_read_v: float = 0.2               # voltage a fired row is driven to
    c_mem_f: float = 1e-10              # membrane (feedback) capacitance
    v_th_v: float = 0.5                 # comparator threshold
    scale_by: str = "threshold"         # which of v_th_v / c_mem_f is chosen per layer by the mapping
    # Synapses
    g_min_s: float = 1e-6               # lowest programmable conductance (a zero weight: both cells here)
    g_max_s: float = 1e-4               # highest programmable conductance
    full_scale_percentile: float = 100.0  # |w| percentile per layer mapped to g_max_s - g_min_s
    # Model weight mapped to g_max_s - g_min_s, fixed instead of taken from the weights: one value
    # for every layer or a list with one per layer. Networks mapped with the same value share one
    # chip design (same thresholds, same siemens per unit weight), so their energies compare fairly.
    full_scale_weight: float | tuple[float, ...] | None = None
    clip_weights: bool = False          # allow clipping weights beyond full scale (else an error)
    bits: int | None = None             # conductance levels 2**bits between g_min_s and g_max_s; None: analog
    prog_sigma: float = 0.0             # programming variation: g = g_nominal * exp(prog_sigma * N(0, 1))
    read_noise_rel: float = 0.0         # relative std of a cell's read current, drawn anew every inference
    stuck_on_fraction: float = 0.0      # cells stuck at g_max_s
    stuck_off_fraction: float = 0.0     # cells stuck at g_min_s
    # Neuron circuit
    comparator_offset_v: float = 0.0        # systematic comparator offset (adds to the threshold)
    comparator_offset_sigma_v: float = 0.0  # random per-comparator offset, std
    comparator_delay_s: float = 0.0         # comparator decision + row driver delay
    opamp_gain: float | None = None         # open-loop DC gain of the integrator op-amp; None: infinite
    # Temperature of the membrane's reset (kT/C) noise: every inference starts each membrane at a
    # sampled N(0, k_B T / c_eff) volts; None: no kT/C noise (docs/hwmodel.md, "kT/C noise").
    ktc_noise_temperature_k: float | None = None
    # Power gating (GATINGS above): who stops drawing energy once it no longer matters
    gating: str = "none"
    decision_guard_s: float = 0.0       # after the first output spike, before the chip is gated
    # Wires
    r_wire_row_ohm: float = 0.0         # row wire resistance per cell pitch
    r_wire_col_ohm: float = 0.0         # column wire resistance per cell pitch
    wire_model: str = "exact"           # exact (solved network) | first-order (each cell alone in series)
    tile_rows: int | None = None        # physical rows per tile (hwmodel/tiles.py); None: one tile
    tile_cols: int | None = None        # physical columns per tile; None: one tile
    seed: int = 0                       # seeds every random draw (chip instance, read noise)

    def __post_init__(self):
        check_circuit(self.neuron, self.scheme, "hw.")
        require(self.scale_by in SCALE_BY, "hw.scale_by",
                f"must be one of {', '.join(SCALE_BY)} (got {self.scale_by!r})")
        for key in ("time_scale_s", "v_read_v", "c_mem_f", "v_th_v"):
            value = getattr(self, key)
            require(value > 0, f"hw.{key}", f"must be > 0 (got {value})")
        require(self.g_min_s >= 0, "hw.g_min_s", f"must be >= 0 (got {self.g_min_s})")
        require(self.g_max_s > self.g_min_s, "hw.g_max_s",
                f"must be > hw.g_min_s (got {self.g_max_s} <= {self.g_min_s})")
        require(0 < self.full_scale_percentile <= 100, "hw.full_scale_percentile",
                f"must be in (0, 100] (got {self.full_scale_percentile})")
        fs = self.full_scale_weight
        if fs is not None:
            values = fs if isinstance(fs, tuple) else (fs,)
            require(len(values) > 0 and all(v > 0 and v < float("inf") for v in values), "hw.full_scale_weight",
                    f"must be a positive number, a list of them (one per layer), or null (got {fs})")
        require(self.bits is None or 1 <= self.bits <= 24, "hw.bits",
                f"must be in 1..24 or null for analog (got {self.bits})")
        for key in ("prog_sigma", "read_noise_rel", "comparator_offset_sigma_v", "comparator_delay_s",
                    "r_wire_row_ohm", "r_wire_col_ohm"):
            value = getattr(self, key)
            require(value >= 0, f"hw.{key}", f"must be >= 0 (got {value})")
        for key in ("stuck_on_fraction", "stuck_off_fraction"):
            value = getattr(self, key)
            require(0 <= value <= 1, f"hw.{key}", f"must be in [0, 1] (got {value})")
        require(self.stuck_on_fraction + self.stuck_off_fraction <= 1, "hw.stuck_off_fraction",
                f"hw.stuck_on_fraction + hw.stuck_off_fraction must be <= 1 "
                f"(got {self.stuck_on_fraction + self.stuck_off_fraction})")
        require(self.opamp_gain is None or self.opamp_gain > 1, "hw.opamp_gain",
                f"must be > 1 or null for an ideal op-amp (got {self.opamp_gain})")
        t_k = self.ktc_noise_temperature_k
        require(t_k is None or 0 < t_k <= KTC_TEMPERATURE_MAX_K, "hw.ktc_noise_temperature_k",
                f"must be in (0, {KTC_TEMPERATURE_MAX_K:g}] kelvin or null for no kT/C noise (got {t_k})")
        require(t_k is None or self.neuron != "passive" or self.wire_model != "exact"
                or not (self.r_wire_row_ohm > 0 or self.r_wire_col_ohm > 0), "hw.ktc_noise_temperature_k",
                "kT/C noise is not modelled for passive columns coupled by exact wires; use "
                "hw.wire_model: first-order, no wire resistance, or ktc_noise_temperature_k: null")
        require(self.gating in GATINGS, "hw.gating",
                f"must be one of {', '.join(GATINGS)} (got {self.gating!r})")
        require(self.decision_guard_s >= 0, "hw.decision_guard_s",
                f"must be >= 0 (got {self.decision_guard_s})")
        require(self.gating != "column" or self.wire_model != "exact"
                or not (self.r_wire_row_ohm > 0 or self.r_wire_col_ohm > 0), "hw.gating",
                "column gating is not modelled with exact wires (disconnecting a column changes the "
                "currents in the others); use hw.wire_model: first-order (the behavioural and energy "
                "models only: netlists write column gating without wire resistance), no wire resistance, "
                "or hw.gating: decision")
        require(self.wire_model in WIRE_MODELS, "hw.wire_model",
                f"must be one of {', '.join(WIRE_MODELS)} (got {self.wire_model!r})")
        for key, paired in (("tile_rows", "dual-rail"), ("tile_cols", "differential")):
            value = getattr(self, key)
            require(value is None or value >= 1, f"hw.{key}", f"must be >= 1 or null for one tile (got {value})")
            require(value is None or self.scheme != paired or value % 2 == 0, f"hw.{key}",
                    f"must be even with scheme {paired}: a + and - pair stays in one tile (got {value})")
        require(self.seed >= 0, "hw.seed", f"must be >= 0 (got {self.seed})")
        if self.neuron == "passive" and self.scale_by == "capacitance":
            require(self.v_th_v + self.comparator_offset_v < self.v_read_v, "hw.v_th_v",
                    f"a passive column never charges above hw.v_read_v, so the threshold must be below it "
                    f"(got v_th_v + comparator_offset_v = {self.v_th_v + self.comparator_offset_v} >= "
                    f"{self.v_read_v})")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if isinstance(d["full_scale_weight"], tuple):
            d["full_scale_weight"] = list(d["full_scale_weight"])
        return d

    def full_scale_of(self, layer: int, n_layers: int) -> float | None:
        """The fixed full-scale weight of `layer`, or None (take it from the weights)."""
        fs = self.full_scale_weight
        if not isinstance(fs, tuple):
            return fs
        require(len(fs) == n_layers, "hw.full_scale_weight",
                f"has {len(fs)} values but the network has {n_layers} layers (give one per layer or a single value)")
        return fs[layer]

    @classmethod
    def from_dict(cls, data: dict) -> "HardwareConfig":
        """Rebuild from `to_dict()` output (as stored in design.yaml) through the YAML loader:
        unknown keys, wrong types and NaN/inf are ConfigErrors naming the `hw.` key."""
        return build(cls, data, "hw")

    def with_(self, **changes) -> "HardwareConfig":
        """A copy with some keys changed, checked by the loader like a config file."""
        return build(type(self), {**self.to_dict(), **changes}, "hw")
