"""Wall-clock timing shared by the benchmark scripts (run as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import time


def run_times(fn, repeats: int, sync=None, setup=None) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn()``, after one untimed warm-up call.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs before and after each timed call, so the time
    covers the device's work; ``setup(i)`` runs untimed before call ``i`` (``-1``: the warm-up).
    """
    times = []
    for i in range(-1, repeats):
        if setup:
            setup(i)
        if sync:
            sync()
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        if i >= 0:
            times.append(time.perf_counter() - start)
    return times
