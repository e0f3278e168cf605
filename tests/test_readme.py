"""Every line of README.md runs, and so does the copy-paste code of the explorer's language pages.

README's ```python and ```bash/```shell blocks run in README order in one working folder (a temporary folder shared
by the whole file, as a reader following README in one shell would have it: ``ATLAS`` built under "CLI" is the one
"Hub, importers, pruning" exports). Python blocks run in one namespace per section (a ``##`` or ``###`` heading),
like a notebook: a later block uses the names an earlier one of its section defined. Shell blocks run with
``bash -e``, the venv's ``bin`` (``neuron-atlas``, ``python``) first on PATH. A block README marks with
``<!-- readme-test: skip: REASON -->`` on the line above its fence is reported skipped with REASON; ```text blocks
show output and do not run. Each test is one block, with the id ``section:index`` (index among the section's
runnable blocks); run alone (``-k``), it first runs the unmarked blocks above it.

The packaged models load once per run of this module: ``load_packaged`` (and ``load_model`` through it) hands each
block its own copy of the model, so an intervention or fine-tuning left on one cannot reach the next. CI runs all of
it (scripts/test.sh deselects nothing; the blocks are marked ``slow``: real models, minutes).
"""
from __future__ import annotations

import copy
import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent  # the venv's bin: neuron-atlas and python beside the interpreter running pytest
SHELL_TIMEOUT = 1800  # seconds per shell block (the builds and `explore` take a minute or two on 2 CPU cores)

FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
HEADING = re.compile(r"^(#{2,3})\s+(.+?)\s*$")
SKIP = re.compile(r"^<!--\s*readme-test:\s*skip:\s*(.+?)\s*-->$")
KINDS = {"python": "python", "py": "python", "bash": "bash", "shell": "bash", "sh": "bash"}
SHOWN = {"text", "console", "output"}  # fences that show output or layout: never run

MISSING = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
NEEDS_FULL = (f"README's blocks need the full environment of scripts/test.sh (torch, transformers, the packaged models); "
              f"missing: {', '.join(MISSING)}")


@dataclass(frozen=True)
class Block:
    """One runnable fenced block of README.md."""

    section: str  # the slug of the heading it is under
    index: int  # its position among the section's runnable blocks
    kind: str  # "python" or "bash"
    code: str
    line: int  # README line of the code's first line
    skip: str | None  # the reason README gives for not running it here

    @property
    def id(self) -> str:
        return f"{self.section}:{self.index}"


def slug(heading: str) -> str:
    """'Masks, interventions, subnetwork fine-tuning (the `[torch]` extra)' -> 'masks-interventions-subnetwork-fine-tuning'."""
    title = re.split(r"[:(]", heading, maxsplit=1)[0]
    return "-".join(re.findall(r"[a-z0-9]+", title.lower())) or "top"


def fences(text: str) -> list[tuple[int, str, str, str | None, str]]:
    """Every fenced block: (line of its first code line, info string, code, skip reason, heading slug)."""
    lines = text.splitlines()
    out, section, previous, i = [], "top", "", 0
    while i < len(lines):
        line = lines[i]
        opening = FENCE.match(line)
        if opening:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
            if end is None:
                raise ValueError(f"README.md:{i + 1}: a fence that never closes")
            mark = SKIP.match(previous.strip())
            out.append((i + 2, opening.group(1).lower(), "\n".join(lines[i + 1:end]), mark and mark.group(1), section))
            previous, i = "", end + 1
            continue
        heading = HEADING.match(line)
        if heading:
            section = slug(heading.group(2))
        if line.strip():
            previous = line
        i += 1
    return out


def readme_blocks(text: str) -> list[Block]:
    blocks, counts = [], {}
    for line, info, code, skip, section in fences(text):
        if info in KINDS:
            index = counts.get(section, 0)
            counts[section] = index + 1
            blocks.append(Block(section, index, KINDS[info], code, line, skip))
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def test_every_fence_says_what_it_holds():
    """An unlabelled fence would be neither run nor known to be output: each names python, bash/shell or text."""
    for line, info, _code, skip, _section in fences(README.read_text(encoding="utf-8")):
        assert info in KINDS or info in SHOWN, f"README.md:{line - 1}: label the fence ```python, ```bash or ```text"
        assert skip is None or info in KINDS, f"README.md:{line - 2}: a skip mark above a block that never runs"
    assert len({b.id for b in BLOCKS}) == len(BLOCKS) and any(b.kind == "python" for b in BLOCKS)


# -- running blocks ------------------------------------------------------------------------------------------------
class Session:
    """README read top to bottom: one working folder, a namespace per section, what ran and how it ended."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.namespaces: dict[str, dict] = {}
        self.outcome: dict[str, str | None] = {}  # block id -> None (ran) or why it failed

    def run(self, block: Block) -> None:
        """Run the unmarked blocks above ``block`` not yet run, then ``block``; fail naming the first that failed."""
        position = BLOCKS.index(block)
        for earlier in BLOCKS[:position]:
            if earlier.skip is None and earlier.id not in self.outcome:
                self._attempt(earlier)
        broken = [b.id for b in BLOCKS[:position] if b.section == block.section and self.outcome.get(b.id)]
        if broken:
            pytest.fail(f"{block.id} continues the section after {broken[0]}, which failed")
        self._attempt(block)
        if self.outcome[block.id]:
            pytest.fail(self.outcome[block.id], pytrace=False)
        if block is max((b for b in BLOCKS if b.section == block.section), key=BLOCKS.index):
            self.namespaces.pop(block.section, None)  # the section is done: free its models

    def _attempt(self, block: Block) -> None:
        try:
            (self._python if block.kind == "python" else self._bash)(block)
        except Exception as exc:  # noqa: BLE001 - recorded: the block's own test reports it
            import traceback

            frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(README)]
            where = f"README.md:{frames[-1].lineno}" if frames else f"README.md:{block.line}"
            self.outcome[block.id] = (f"{block.id} ({where}) raised {type(exc).__name__}: {exc}\n"
                                      + "".join(traceback.format_exception(exc)[-12:]))
        else:
            self.outcome[block.id] = None

    def _python(self, block: Block) -> None:
        namespace = self.namespaces.setdefault(block.section, {"__name__": "__readme__"})
        code = compile("\n" * (block.line - 1) + block.code, str(README), "exec")  # tracebacks name README's lines
        cwd = os.getcwd()
        os.chdir(self.workdir)
        try:
            exec(code, namespace)
        finally:
            os.chdir(cwd)

    def _bash(self, block: Block) -> None:
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "BROWSER": "true"}
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.code], cwd=self.workdir, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=SHELL_TIMEOUT)
        if done.returncode:
            raise RuntimeError(f"bash exited {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n"
                               f"--- stderr\n{done.stderr[-5000:]}")


@pytest.fixture(scope="module")
def packaged_once():
    """``load_packaged`` that loads each packaged model once (for this module: other tests see the real one) and
    hands out copies of it."""
    if MISSING:
        pytest.skip(NEEDS_FULL)
    from neuron_atlas.modeling import load

    original = load.load_packaged

    loads: dict[tuple, load.LoadedModel] = {}

    def load_packaged(slug, dtype="float32", device="cpu", **kwargs):
        key = (slug, str(dtype), device)
        if key not in loads:
            loads[key] = original(slug, dtype=dtype, device=device, **kwargs)
        loaded = loads[key]
        return load.LoadedModel(copy.deepcopy(loaded.model), loaded.tokenizer, loaded.source, loaded.revision)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(load, "load_packaged", load_packaged)
        yield
    loads.clear()


@pytest.fixture(scope="module")
def readme(tmp_path_factory, packaged_once):
    return Session(tmp_path_factory.mktemp("readme"))


def _param(block: Block):
    return pytest.param(block, id=block.id, marks=[pytest.mark.slow])


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_readme_block(block: Block, readme: Session):
    if block.skip:
        pytest.skip(f"{block.id} (README.md:{block.line - 1}) is marked: {block.skip}")
    readme.run(block)


# -- the explorer's copy-paste code --------------------------------------------------------------------------------
EXPLORER_MODEL, EXPLORER_LANG = "gemma-3-270m", "tgl_Latn"
N_SNIPPETS = 3  # mask, steering, fine-tuning


@pytest.fixture(scope="module")
def explorer_snippets(packaged_once):
    """The code a language page of the embedded atlas shows (``pages.snippets``), for Tagalog in gemma-3-270m."""
    import neuron_atlas as na
    from neuron_atlas.explore import pages
    from neuron_atlas.explore.gather import gather_model

    data = gather_model(na.open(), EXPLORER_MODEL)
    found = pages.snippets(data, data.tags.index(EXPLORER_LANG), pages.atlas_argument("", embedded=True))
    assert len(found) == N_SNIPPETS, f"the page shows {len(found)} snippets: update N_SNIPPETS"
    return found


@pytest.mark.slow
@pytest.mark.parametrize("index", range(N_SNIPPETS), ids=[f"explorer:{i}" for i in range(N_SNIPPETS)])
def test_explorer_snippet(index, explorer_snippets, tmp_path, monkeypatch, capsys):
    title, code = explorer_snippets[index]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"<explorer snippet {index}: {title}>", "exec"), {"__name__": "__snippet__"})
    printed = capsys.readouterr().out
    if "steer" in code:  # the steered continuation is Tagalog, not a loop of letters ('Milaanililililil…')
        words = re.findall(r"[a-z]+", printed.lower())
        assert {"ang", "ng", "sa", "mga", "na"} & set(words), printed
        assert len(set(words)) >= len(words) / 2, printed
