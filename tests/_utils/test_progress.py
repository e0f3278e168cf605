"""Progress rates and ETAs: measured over the last updates (not a 30-s window that is empty for slow batches),
restarted after loading, and shown as real numbers in logs; quiet silences every bar."""
import io

import pytest
from rich.console import Console

from neuron_atlas._utils import progress
from neuron_atlas._utils.progress import Bar, RecentRate, new_progress


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_rate_is_over_the_last_updates_and_restarts_at_mark():
    clock = Clock()
    meter = RecentRate(window=3, clock=clock)
    assert meter.rate is None and meter.eta(100) is None
    clock.t = 60.0  # loading the model: not work
    meter.mark()
    for step in range(1, 6):  # 40-s batches of 100 tokens: slower than rich's 30-s speed window
        clock.t = 60.0 + 40 * step
        meter.advance(100)
        assert meter.rate == pytest.approx(2.5)
    assert meter.eta(1000) == pytest.approx(500 / 2.5)
    for step in range(1, 4):  # the pace doubles: the last 3 updates show it, older ones are forgotten
        clock.t = 260.0 + 20 * step
        meter.advance(100)
    assert meter.rate == pytest.approx(5.0)
    assert meter.eta(800) == pytest.approx(0.0)


def test_log_lines_show_real_rates_and_quiet_silences_them(monkeypatch):
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=200)
    clock = Clock()
    with new_progress(console) as bars:
        b = Bar(bars, "tokens", 300, "tok")
        b.meter.clock = clock
        b.mark()
        for step in (1, 2):
            clock.t = 10.0 * step
            b.advance(100)
            b.log(f"shard {step}")
    lines = [line for line in buf.getvalue().splitlines() if line.startswith("shard")]
    assert lines == ["shard 1: 100/300 tok, 10.0 tok/s, eta 0:00:20", "shard 2: 200/300 tok, 10.0 tok/s, eta 0:00:10"]
    monkeypatch.setitem(progress._QUIET, "on", True)
    buf.truncate(0)
    with new_progress(console) as bars:
        assert bars.disable
        Bar(bars, "tokens", 10, "tok").log("shard")
    assert buf.getvalue().strip("\x00") == ""
