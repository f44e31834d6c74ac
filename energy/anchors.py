"""Published efficiency figures of op-amp-free time-domain analog weighted-sum circuits, with their
conditions: the anchors `ttfs energy-report` sets our runs' TOPS/W-equivalent beside (docs/energy.md).

Each entry says only what its source says; a detail that could not be confirmed from the source
reads "not confirmed". The anchors count operations of their own circuits (weighted sums of their
own size and precision), so they are orientation, not a like-for-like comparison.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

OPS_PER_MAC = 2   # a multiply and an add: the convention behind TOPS/W-equivalent (docs/energy.md)


@dataclass(frozen=True)
class Anchor:
    """One published figure: `figure` in `unit` (TOPS/W), at `technology` and `precision`, under `conditions`."""

    name: str
    figure: float
    unit: str
    technology: str
    precision: str
    conditions: str
    citation: str

    @property
    def energy_per_op_j(self) -> float:
        """Energy per operation as the source counts operations, in joules (1 TOPS/W = 1 pJ^-1)."""
        return 1.0 / (self.figure * 1e12)

    @property
    def energy_per_mac_j(self) -> float:
        """Energy per MAC if the source counts OPS_PER_MAC operations per MAC (not confirmed for any anchor)."""
        return OPS_PER_MAC * self.energy_per_op_j

    def to_dict(self) -> dict:
        return {**asdict(self), "energy_per_op_j": self.energy_per_op_j, "energy_per_mac_j": self.energy_per_mac_j}


ANCHORS = (
    Anchor(
        name="Wang, Tamukoh, Morie 2018",
        figure=290.0, unit="TOPS/W",
        technology="250 nm CMOS (as cited in the literature; not confirmed from the source)",
        precision="not confirmed",
        conditions=("circuit simulation of a proof-of-concept time-domain weighted-sum circuit without "
                    "operational amplifiers, using resistive devices of the order of a gigaohm; the "
                    "operation count behind the figure not confirmed"),
        citation=("Q. Wang, H. Tamukoh, T. Morie, \"A time-domain analog weighted-sum calculation model for "
                  "extremely low power VLSI implementation of multi-layer neural networks\", "
                  "arXiv:1810.06819 (2018)"),
    ),
    Anchor(
        name="Wang, Tamukoh, Morie 2025",
        figure=237.7, unit="TOPS/W",
        technology="CMOS, node not confirmed",
        precision="above 4 bits",
        conditions=("circuit simulation of a proof-of-concept CMOS circuit performing the weighted sum with "
                    "the same weights, without operational amplifiers; energy of the weighted-sum calculation"),
        citation=("Q. Wang, H. Tamukoh, T. Morie, \"Spike-based time-domain analog weighted-sum calculation "
                  "model for extremely low power VLSI implementation of multi-layer neural networks\", "
                  "Frontiers in Neuroscience 19 (2025), doi:10.3389/fnins.2025.1656892"),
    ),
)
