"""Progress bars whose rate and ETA are right: the rate is measured over the last few updates (rich's own speed
looks back 30 s, so batches slower than that show ``?``), the ETA is what is left at that rate. On a terminal a
live bar; in a log, a line per step with the same rate; nothing at all when quiet (``quieted``, the CLI's ``-q``).
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
)
from rich.text import Text

WINDOW = 8  # updates the rate is measured over: recent enough to follow a change, long enough to be steady
_QUIET = {"on": False}


@contextmanager
def quieted(on: bool = True) -> Iterator[None]:
    """Within the block, silence every progress bar of neuron_atlas, and transformers' and huggingface_hub's own
    bars and warnings (the CLI's ``-q``); everything is as before after it."""
    before = _QUIET["on"]
    _QUIET["on"] = on or before
    undo = _silence_libraries() if on and not before else []
    try:
        yield
    finally:
        _QUIET["on"] = before
        for restore in undo:
            restore()


def _silence_libraries() -> list[Callable[[], None]]:
    """Turn off huggingface_hub's and transformers' bars and warnings; return how to turn them back on."""
    undo: list[Callable[[], None]] = []
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    if not are_progress_bars_disabled():
        disable_progress_bars()
        undo.append(enable_progress_bars)
    try:
        import transformers
    except ImportError:  # transformers is an extra: nothing of it to quiet
        return undo
    logging = transformers.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    undo += [lambda: logging.set_verbosity(verbosity), logging.enable_progress_bar if bars else lambda: None]
    return undo


def quiet() -> bool:
    return _QUIET["on"]


class RecentRate:
    """Units per second over the last ``window`` updates, restarted by ``mark`` (after loading a model, say)."""

    def __init__(self, window: int = WINDOW, clock=time.monotonic) -> None:
        self.clock, self.samples = clock, deque(maxlen=window + 1)
        self.completed = 0.0
        self.mark()

    def mark(self) -> None:
        """Start measuring from now (time spent before, e.g. loading, is not work)."""
        self.samples.clear()
        self.samples.append((self.clock(), self.completed))

    def advance(self, n: float) -> None:
        self.completed += n
        self.samples.append((self.clock(), self.completed))

    @property
    def rate(self) -> float | None:
        """Units per second between the oldest and newest sample kept, or None before the first update."""
        (t0, c0), (t1, c1) = self.samples[0], self.samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 and c1 > c0 else None

    def eta(self, total: float | None) -> float | None:
        """Seconds left at the current rate (None when there is no total or no rate yet)."""
        rate = self.rate
        return None if total is None or not rate else max(total - self.completed, 0.0) / rate


def _meter(task) -> RecentRate | None:
    return task.fields.get("meter")


class RateColumn(ProgressColumn):
    """The recent rate, e.g. ``163 tok/s`` (``measuring`` before the first update)."""

    def render(self, task) -> Text:
        meter = _meter(task)
        rate = meter.rate if meter is not None else task.speed
        unit = task.fields.get("unit", "it")
        return Text(f"{rate:,.1f} {unit}/s" if rate and rate < 10 else f"{rate:,.0f} {unit}/s" if rate else "measuring",
                    style="progress.data.speed")


class EtaColumn(ProgressColumn):
    """Time left at the recent rate."""

    def render(self, task) -> Text:
        meter = _meter(task)
        left = meter.eta(task.total) if meter is not None else task.time_remaining
        if task.finished:
            return Text("done", style="progress.remaining")
        return Text("eta " + (str(timedelta(seconds=round(left))) if left is not None else "-:--:--"),
                    style="progress.remaining")


def new_progress(console: Console | None = None, enabled: bool = True, transient: bool = False) -> Progress:
    """A rich Progress with the recent-rate and ETA columns; disabled when quiet or not ``enabled``."""
    console = console or Console(stderr=True)
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(), EtaColumn(), console=console, disable=not enabled or quiet(), transient=transient)


class Bar:
    """One task of a Progress, advanced with its meter; ``log`` prints a line with the rate where no bar is drawn."""

    def __init__(self, progress: Progress, description: str, total: float | None, unit: str) -> None:
        self.progress, self.meter = progress, RecentRate()
        self.task = progress.add_task(description, total=total, unit=unit, meter=self.meter)

    def advance(self, n: float = 1) -> None:
        self.meter.advance(n)
        self.progress.advance(self.task, n)

    def mark(self) -> None:
        self.meter.mark()

    def describe(self, text: str) -> None:
        self.progress.update(self.task, description=text)

    def status(self) -> str:
        task = self.progress.tasks[self.task]
        unit, rate, left = task.fields["unit"], self.meter.rate, self.meter.eta(task.total)
        done = f"{task.completed:,.0f}/{task.total:,.0f}" if task.total is not None else f"{task.completed:,.0f}"
        pace = f"{rate:,.1f} {unit}/s" if rate else f"? {unit}/s"
        return f"{done} {unit}, {pace}" + (f", eta {timedelta(seconds=round(left))}" if left is not None else "")

    def log(self, text: str) -> None:
        """In a log (no live bar): ``text`` with the progress so far, rate and ETA; on a terminal the bar says it."""
        console = self.progress.console
        if not quiet() and not self.progress.disable and not console.is_terminal:
            console.print(f"{text}: {self.status()}", highlight=False, markup=False)


@contextmanager
def bar(description: str, total: float | None, unit: str = "it", *, console: Console | None = None,
        enabled: bool = True) -> Iterator[Bar]:
    """A single progress bar (transient on a terminal) for a library loop: ``with bar(...) as b: b.advance(n)``."""
    with new_progress(console, enabled, transient=True) as progress:
        yield Bar(progress, description, total, unit)
