"""Typed, frozen constants of the energy model: what the hardware config does not already say.

The circuit itself (read voltage, conductances, capacitances, window, layer sizes, scheme and
neuron) comes from the design (hence from the hardware config it was mapped with); `EnergyConfig`
adds only the per-event energies and static powers of the peripheral circuits, and the wire
capacitance of the crossbar rows. Read from YAML by `infra.config.load_config(path, EnergyConfig,
section="energy")` (see configs/energy/default.yaml, which cites a source for every default).
Range errors name the key: `energy.c_wire_per_m_f: must be >= 0 (got -1.0)`.

Every default below is an order of magnitude "typical of" published low-power CMOS circuits, not a
value copied from one chip; docs/energy.md gives the reasoning and the sources.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from infra.config import require

CONDUCTION_FORMS = ("exact", "spike-count")


@dataclass(frozen=True)
class EnergyConfig:
    """Per-event energies (J), static powers (W) and wire capacitance (F/m) of the crossbar chip."""

    # Comparator: energy of one decision (the output switching once), typical of low-power
    # latched / continuous-time CMOS comparators in 65-28 nm: tens of fJ.
    e_comparator_j: float = 50e-15
    # Comparator bias over the window (continuous-time comparator, ~1 uA at ~1 V).
    p_comparator_static_w: float = 1e-6
    # Op-amp of an integrator neuron: bias over the window (low-power two-stage OTA, ~10 uA at 1 V).
    # Not used for the passive neuron, which has no op-amp.
    p_opamp_static_w: float = 10e-6
    # Row driver: internal switching energy per row switch (besides charging the row's wire),
    # typical of a small CMOS buffer: ~1 fJ.
    e_row_driver_j: float = 1e-15
    # Row wire: capacitance per metre of minimum-pitch interconnect (~0.2 fF/um) and cell pitch.
    c_wire_per_m_f: float = 0.2e-9
    cell_pitch_m: float = 1e-6
    # Which conduction form the report's totals use; both are always computed.
    conduction_form: str = "exact"
    # Integrator output swing: the membrane (op-amp output) is clamped at +v_swing_v (one-sided). null (the
    # default): derived from the design, per layer swing_over_threshold x that layer's threshold (an
    # output range sized to the threshold with headroom). swing_over_threshold .inf: unclamped, the
    # ideal op-amp of the netlists (an integrator keeps integrating after it fired and can reach
    # tens of volts; the one field here that may be infinite). An ideal clamp holds the output at the
    # swing: the capacitor and clamp terms use it (docs/energy.md, "Capacitor and clamp").
    v_swing_v: float | None = None
    swing_over_threshold: float = field(default=1.5, metadata={"allow_inf": True})

    def __post_init__(self):
        for key in ("e_comparator_j", "p_comparator_static_w", "p_opamp_static_w", "e_row_driver_j",
                    "c_wire_per_m_f"):
            value = getattr(self, key)
            require(value >= 0, f"energy.{key}", f"must be >= 0 (got {value})")
        require(self.cell_pitch_m > 0, "energy.cell_pitch_m", f"must be > 0 (got {self.cell_pitch_m})")
        require(self.cell_pitch_m < 1e-3, "energy.cell_pitch_m",
                f"must be < 1e-3 m (a cell pitch in metres, e.g. 1e-6; got {self.cell_pitch_m})")
        require(self.conduction_form in CONDUCTION_FORMS, "energy.conduction_form",
                f"must be one of {', '.join(CONDUCTION_FORMS)} (got {self.conduction_form!r})")
        require(self.v_swing_v is None or self.v_swing_v > 0, "energy.v_swing_v",
                f"must be > 0, or null to derive it from each layer's threshold (got {self.v_swing_v})")
        require(self.swing_over_threshold >= 1, "energy.swing_over_threshold",
                f"must be >= 1 (the output must reach the threshold), or .inf for an unclamped op-amp "
                f"(got {self.swing_over_threshold})")

    def static_power_w(self, neuron: str) -> float:
        """A neuron's static power (W): its comparator's bias, and its op-amp's for an integrator."""
        return self.p_comparator_static_w + (self.p_opamp_static_w if neuron == "integrator" else 0.0)

    def swing_v(self, v_th_v: float) -> float | None:
        """The op-amp output swing of a layer with threshold v_th_v (None: unclamped)."""
        if self.v_swing_v is not None:
            return self.v_swing_v
        return None if math.isinf(self.swing_over_threshold) else self.swing_over_threshold * v_th_v

    @property
    def c_wire_per_cell_f(self) -> float:
        """Row wire capacitance per cell pitch."""
        return self.c_wire_per_m_f * self.cell_pitch_m

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
