"""Hardware model: map a trained TTFS network onto an analog crossbar and simulate it behaviourally.

Public API: `hwmodel.design.load_design(path) -> Design`, `hwmodel.mapping.map_model`,
`hwmodel.behavioural.layer_times(design, t_input_s)`, `hwmodel.behavioural.evaluate`. Models: docs/hwmodel.md.
"""
