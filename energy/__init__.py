"""Energy of a mapped TTFS network: spike-count model, reports of what SSR saves, ngspice check."""
