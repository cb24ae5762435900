"""Benchmarks of s2s against hand-written gradients and other AD tools (``python -m benchmarks``)."""
