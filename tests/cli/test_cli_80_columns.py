"""Screen captures at 80 columns: the CLI run on a pseudo-terminal 80 columns wide, as a user at such a terminal sees
it. No line is wider than the screen (but for a line holding a word wider than the screen, a URL, printed whole for
the terminal to wrap and keep one line), no word is cut, no column is left out, and every option of every command's
``--help`` is shown whole."""
import os
import re
import subprocess
import sys

import pytest
import typer
from rich.cells import cell_len

import neuron_atlas as na
from neuron_atlas.catalog import available
from neuron_atlas.cli import COMMANDS, app
from neuron_atlas.cli.tables import _fmt

pytestmark = pytest.mark.skipif(not sys.platform.startswith(("linux", "darwin")), reason="needs a POSIX pty")
WIDTH = 80
BORDERS = "│┃╭╮╰╯─━┏┓┗┛┡┩╇┳┻┣┫╋└┘┌┐├┤┼"


def screen(*args: str) -> list[str]:
    """The lines a terminal WIDTH columns wide shows for ``neuron-atlas ARGS`` (stdout and stderr, as on a screen)."""
    code = ("import fcntl, struct, sys, termios\n"
            f"fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack('HHHH', 50, {WIDTH}, 0, 0))\n"
            "from neuron_atlas.cli import main\n"
            f"sys.argv = ['neuron-atlas', *{list(args)!r}]\n"
            "main()\n")
    env = {**os.environ, "COLUMNS": str(WIDTH), "LINES": "50", "TERM": "xterm", "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    primary, secondary = os.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=secondary, stdout=secondary, stderr=secondary,
                                env=env, close_fds=True)
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the other end closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")
    finally:
        os.close(primary)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())  # no colour asked, but to be sure
    return text.replace("\r\n", "\n").split("\n")


def words(lines: list[str], separators: str = "") -> set[str]:
    """Every word on the screen, box-drawing characters and ``separators`` being spaces."""
    pattern = "[\\s" + re.escape(BORDERS + separators) + "]+"
    return {w for line in lines for w in re.split(pattern, line) if w}


def assert_fits(lines: list[str]) -> None:
    """No line wider than the screen, but for one holding a single word wider than the screen (printed whole)."""
    for line in lines:
        if cell_len(line) > WIDTH:
            assert max(len(w) for w in line.split()) > WIDTH - 2, f"{cell_len(line)} columns: {line!r}"
            assert not line.startswith(" "), line  # at the left margin, so the terminal's wrap keeps it whole


def test_models_available_shows_every_column_and_whole_urls():
    lines = screen("models", "--available")
    assert_fits(lines)
    shown = words(lines, ",")
    table = available()
    for name in table.column_names:  # no column dropped: each named, as a header or beside its value
        assert name in shown, name
    for row in table.to_pylist():
        for name, value in row.items():
            for word in _fmt(name, value).replace(",", " ").split():
                assert word in shown, (name, word)  # whole, never cut
        for url in re.findall(r"https?://\S+", row["get"]):
            assert any(url in line.split() for line in lines), url  # whole, on one line
        assert any(row["get"] in line for line in lines), row["get"]  # the command, one line to copy
    assert "not shown" not in "\n".join(lines) and "…" not in "\n".join(lines)


def test_neurons_of_every_language_title_summarised_and_every_column_shown():
    lines = screen("neurons", "gemma-3-270m")
    assert_fits(lines)
    expected = na.open().neurons("gemma-3-270m").to_arrow()
    title = next(line for line in lines if line.startswith("gemma-3-270m top 1%"))
    assert "458 languages" in title and "tgl_Latn" not in "\n".join(lines[:lines.index(title) + 1])
    shown = words(lines, ",")
    for name in expected.column_names:
        values = set(expected.column(name).to_pylist())
        if values == {None}:  # an all-null column says nothing
            continue
        if len(values) == 1:  # the same on every row: in the title
            assert _fmt(name, values.pop()) in title, name
        else:
            assert name in shown, name
    assert "not shown" not in "\n".join(lines) and "…" not in "\n".join(lines)
    for row in expected.slice(0, 200).to_pylist():
        assert {row["lang"], str(row["neuron"])} <= shown
        assert set(row["top_langs"].split(",")) <= shown, row["top_langs"]


@pytest.mark.parametrize("command", [None, *(name for name, _ in COMMANDS)])
def test_help_of_every_command_reads_at_80_columns(command):
    lines = screen(*([command] if command else []), "--help")
    assert_fits(lines)
    text = "\n".join(lines)
    group = typer.main.get_command(app)
    click_command = group if command is None else group.get_command(None, command)
    shown, joined = words(lines), words(lines, ",")
    for param in click_command.params:
        for option in [*param.opts, *param.secondary_opts]:
            if option.startswith("-"):
                assert option in joined, option  # every option name whole
        help_text = (getattr(param, "help", None) or "").replace("\\[", "[")
        for word in help_text.split():
            assert word in shown, (param.name, word)  # not cut, not eaten as markup
    for word in (click_command.help or "").replace("\\[", "[").split():
        assert word in shown, word
    assert "<bool>" not in text  # a flag takes no value
    assert "Usage: neuron-atlas" in text
    if command == "import":
        assert "entry point" not in text  # user help, not the developers' notes
