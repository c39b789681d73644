"""Benchmark modes of ``python -m actionjax.benchmark``."""
