"""stylecast: a real-time streaming engine for stylized talking-head avatars."""

import os as _os

# numpy's and scipy's OpenBLAS start worker threads that busy-spin after every small matrix
# product; with the engine's many tiny per-frame products one such thread burned most of a
# core per live session (docs/server.md). One BLAS thread is right for this workload. It has
# to be set before numpy loads, so it lives here; a value set by the user wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
