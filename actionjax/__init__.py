"""actionjax: MMAction2's configs, registries and checkpoints on JAX, Flax and optax."""

__version__ = '0.1.0'
