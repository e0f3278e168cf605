"""How a CPU computes best: how many threads torch uses (by default the cores no other process is busy on), and
whether it has half-precision matrix instructions.

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


MAX_THREADS = 1024  # more intra-op threads than any machine's cores: a typo, refused before torch is asked


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
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_THREADS:
        raise InvalidParameterError(f"threads must be a whole number from 1 to {MAX_THREADS} (this machine has "
                                    f"{usable_cores()} usable cores), got {threads!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def slow_half_precision(dtype: str) -> bool:
    """Whether ``dtype`` ('bfloat16', 'float16') would run emulated, hence several times slower than float32, on this
    CPU: it lacks AVX512-BF16/AMX for bfloat16, AMX-FP16 for float16 (with them, bfloat16 ran 2.4x faster than float32
    here: benchmarks/RESULTS.md)."""
    import torch

    def has(probe: str) -> bool:  # private probes of torch.cpu, absent in old versions
        return bool(getattr(torch.cpu, probe, lambda: False)())

    if dtype in ("bfloat16", "bf16"):
        return not (has("_is_avx512_bf16_supported") or has("_is_amx_tile_supported"))
    if dtype in ("float16", "fp16"):
        return not has("_is_amx_fp16_supported")
    return False
