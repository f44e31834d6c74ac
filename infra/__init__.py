"""Ground floor: what every stage uses (errors, atomic files and readers, config loading and presets,
folder locks, worker processes and dask tasks, fingerprints, inert netlist text, shape checks, provenance,
numba threads); imports nothing of the project. docs/architecture.md lists the modules,
docs/reliability.md what they promise."""
