"""Benchmarks (`python -m bench.X`). Importing stylecast first sets its thread defaults
(one OpenBLAS thread) before numpy loads: without it OpenBLAS's busy-spinning workers eat
most of a core and every figure measures them too."""

import stylecast  # noqa: F401
