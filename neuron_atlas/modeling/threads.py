"""How many CPU threads torch computes with: by default the cores no other process is busy on.

Measured (benchmarks/RESULTS.md, "CPU build threads"): on a 2-core machine whose cores other processes keep busy,
2 torch threads count 3x slower than 1 (OpenMP threads wait on each other while descheduled), so the default is
not torch's own (every core) but this process's cores minus the load average, at least 1.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity; all cores where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def idle_cores() -> int:
    """Usable cores minus the 1-minute load average of the others, at least 1: the default ``--threads``."""
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        busy = 0.0
    return max(1, min(usable_cores(), round(usable_cores() - busy)))


@contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Compute with ``threads`` intra-op threads (None: ``idle_cores()``) inside the block; torch's setting after."""
    import torch

    from ..errors import InvalidParameterError

    n = idle_cores() if threads is None else threads
    if n < 1:
        raise InvalidParameterError(f"threads must be at least 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
