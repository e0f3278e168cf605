"""CPU builds: --threads sets torch's threads for the build only, a half-precision dtype the CPU would emulate is
warned about, and in a log every shard line shows the tokens per second it was counted at."""
import io

import torch
from rich.console import Console
from test_build import TinyCorpus, loaded, run, tokenizer  # noqa: F401 - fixtures

from neuron_atlas.builder import run as run_mod
from neuron_atlas.modeling.threads import idle_cores, slow_half_precision, usable_cores


def test_threads_shard_rates_and_the_half_precision_warning(loaded, tmp_path, monkeypatch):  # noqa: F811
    seen = []
    count = run_mod.ShardCounter.count

    def spy(self, *a, **kw):
        seen.append(torch.get_num_threads())
        return count(self, *a, **kw)

    monkeypatch.setattr(run_mod.ShardCounter, "count", spy)
    monkeypatch.setattr(run_mod, "slow_half_precision", lambda dtype: dtype == "bfloat16")
    before = torch.get_num_threads()
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=300)
    run(loaded, tmp_path / "a", langs="tl,id", threads=2, console=console, progress=True, dtype="bfloat16")
    assert seen == [2, 2] and torch.get_num_threads() == before
    text = buf.getvalue()
    assert "warning: this CPU has no bfloat16 matrix instructions" in text
    shard_lines = [line for line in text.splitlines() if " tokens at " in line]
    assert len(shard_lines) == 2
    for line in shard_lines:  # e.g. "tiny tgl_Latn: 60 tokens at 1,234 tok/s; 1/2 shards: 60/120 tok, 987.0 tok/s, eta 0:00:00"
        own = float(line.split(" tokens at ")[1].split(" tok/s")[0].replace(",", ""))
        assert own > 0 and "? tok/s" not in line
    seen.clear()
    run(loaded, tmp_path / "b", langs="tl", progress=False)  # default: the idle cores
    assert seen == [idle_cores()] and 1 <= idle_cores() <= usable_cores()


def test_half_precision_probe_is_a_bool_per_dtype():
    assert slow_half_precision("float32") is False
    assert isinstance(slow_half_precision("bfloat16"), bool) and isinstance(slow_half_precision("float16"), bool)
