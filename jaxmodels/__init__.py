"""jaxmodels: pure-function Flax models trained by one jit-compiled step.

Config (ml_collections) -> model (Flax Linen, by name) + task (loss, metrics) + optimizer
(Optax) + data (TFDS, Grain) -> `train_step` -> Orbax checkpoints. See README.md.
"""

__version__ = "0.1.0"
