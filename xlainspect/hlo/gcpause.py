"""Pausing Python's cyclic garbage collector while building many small objects on top of a large heap.

A parsed 15 MB module is millions of objects. Each time a stage allocates enough new objects (census kernels,
fingerprint strings, matcher sets), CPython's cyclic collector runs and, every so often, rescans that whole heap:
on large modules that was a third of the parse and half of the census time. None of these stages makes reference
cycles, so reference counting frees everything they drop, and the collector can wait until they finish.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disables the cyclic collector for the block, and restores its previous state after it (nesting is fine)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
