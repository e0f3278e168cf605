"""How a CPU computes best: how many threads torch uses (by default the cores no other process is busy on), and
whether it has half-precision matrix instructions.

Measured (benchmarks/RESULTS.md, "CPU build threads"): on a 2-core machine whose cores other processes keep busy,
2 torch threads count 3x slower than 1 (OpenMP threads wait on each other while descheduled), so the default is
not torch's own (every core) but this process's cores minus the load average, at least 1.

One policy for every entry point that runs a model (build, loading a packaged model, fine-tuning, steering
calibration, perplexity and the deactivation matrix, pruning calibration): each takes ``threads=`` (default
``COMPUTE.threads``, None) and computes inside ``torch_threads(threads)``, which restores torch's setting after.
None means: the enclosing entry point's count when one calls another, else ``$NEURON_ATLAS_THREADS`` when set (read
here only), else ``idle_cores()``.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from .._utils.settings import setting

ENV = "NEURON_ATLAS_THREADS"  # the process-wide default: a count, or 'auto' (the idle cores)


@dataclass(frozen=True)
class ComputeConfig:
    """How torch computes on CPU; every model-running entry point's ``threads`` reads its default and help here."""

    threads: int | None = setting(None, f"CPU threads torch computes with (default: ${ENV} if set, else the cores "
                                        "no other process is busy on)")


COMPUTE = ComputeConfig()  # the defaults


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity; all cores where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


MAX_THREADS = 1024  # more intra-op threads than any machine's cores: a typo, refused before torch is asked


def idle_cores() -> int:
    """Usable cores minus the 1-minute load average of the others, at least 1: the default thread count."""
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        busy = 0.0
    return max(1, min(usable_cores(), round(usable_cores() - busy)))


_ACTIVE: ContextVar[int | None] = ContextVar("neuron_atlas_torch_threads", default=None)  # the enclosing block's


def check_threads(threads: int | None) -> int | None:
    """``threads`` if None or a whole number from 1 to MAX_THREADS, else InvalidParameterError (before any work)."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        from ..errors import InvalidParameterError

        raise InvalidParameterError(f"threads must be a whole number from 1 to {MAX_THREADS} (this machine has "
                                    f"{usable_cores()} usable cores), got {threads!r}")
    return threads


def default_threads() -> int:
    """The count when a call names none: ``$NEURON_ATLAS_THREADS`` (a count; 'auto' or empty: unset), else
    ``idle_cores()``. A malformed value is an InvalidParameterError naming the variable."""
    raw = os.environ.get(ENV, "").strip()
    if raw.lower() in ("", "auto"):
        return idle_cores()
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_THREADS:
        from ..errors import InvalidParameterError

        raise InvalidParameterError(f"{ENV} must be a whole number of threads from 1 to {MAX_THREADS}, or 'auto' "
                                    f"(the idle cores); got {raw!r}")
    return n


def resolve_threads(threads: int | None) -> int:
    """The count a call computes with: ``threads`` if given, else the enclosing ``torch_threads`` block's (an entry
    point called by another keeps its caller's count), else ``default_threads()``."""
    if check_threads(threads) is not None:
        return threads
    active = _ACTIVE.get()
    return active if active is not None else default_threads()


@contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Compute with ``threads`` intra-op threads (None: see ``resolve_threads``) inside the block, yielding the count;
    torch's own setting after."""
    import torch

    n = resolve_threads(threads)
    before = torch.get_num_threads()
    token = _ACTIVE.set(n)
    if n != before:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        _ACTIVE.reset(token)
        if torch.get_num_threads() != before:
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
