"""Wall-clock timing shared by the benchmark scripts (run as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import statistics
import threading
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


def interleaved_medians(functions: dict, repeats: int, sync=None) -> dict:
    """Median seconds of each function, called round-robin ``repeats`` times after one warm-up
    round, so that a machine's slow spells fall on every function alike."""
    times = {name: [] for name in functions}
    for round_index in range(-1, repeats):
        for name, fn in functions.items():
            if sync:
                sync()
            start = time.perf_counter()
            fn()
            if sync:
                sync()
            if round_index >= 0:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def peak_rss_growth(fn) -> int:
    """Peak growth in bytes of this process's resident set during ``fn()``, sampled every
    millisecond by a thread (a CPU stand-in for CUDA's ``max_memory_allocated``; run it in a fresh
    process so that allocators of earlier work do not hide the peak)."""
    import psutil

    process = psutil.Process()
    baseline, peak, done = process.memory_info().rss, [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return max(peak[0], process.memory_info().rss) - baseline
