"""The CLI's exit contract: 0 done, 1 failed (every failed write too), 2 bad input, 130 interrupted; errors on
stderr in one line without a traceback unless --debug; -o writes into devices and FIFOs and through symlinks."""
import os
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

QUERY = "SELECT 1 AS x"


def cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "neuron_atlas.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def one_error_line(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.fixture
def full_device(tmp_path):
    """A device node that refuses every write with ENOSPC: a private copy of /dev/full when we may make one (so a
    wrong rename can only destroy the copy), else /dev/full itself (whose folder we then cannot write)."""
    if os.geteuid() == 0:
        path = tmp_path / "full"
        try:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
            with open(path, "wb") as f:  # a nodev mount would refuse to open it
                f.write(b"")
            return path
        except OSError:
            pytest.skip("cannot make a device node here; as root, -o /dev/full would be tried on the real device")
    return "/dev/full"


def test_write_to_a_full_device_exits_1_and_keeps_the_device(toy_atlas, full_device):
    for fmt in ("csv", "json", "parquet", "table"):
        proc = cli("sql", QUERY, "-a", toy_atlas, "-f", fmt, "-o", full_device)
        assert proc.returncode == 1, (fmt, proc.stderr)
        assert "No space left on device" in one_error_line(proc)
        assert stat.S_ISCHR(os.stat(full_device).st_mode)  # written into, never replaced by a regular file


def test_stdout_that_refuses_writes_exits_1(toy_atlas, full_device):
    with open(full_device, "wb") as out:
        proc = subprocess.run([sys.executable, "-m", "neuron_atlas.cli", "sql", QUERY, "-a", str(toy_atlas), "-f", "csv"],
                              stdout=out, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 1 and "cannot write stdout: No space left on device" in one_error_line(proc)


def test_output_into_a_fifo_reaches_its_reader(toy_atlas, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = {}

    def read():
        with open(fifo, "rb") as f:
            got["data"] = f.read()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    proc = cli("sql", QUERY, "-a", toy_atlas, "-f", "csv", "-o", fifo)
    reader.join(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert got["data"].split() == [b'"x"', b"1"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_output_through_a_symlink_writes_its_target(toy_atlas, tmp_path):
    target, link = tmp_path / "real" / "out.csv", tmp_path / "link.csv"
    target.parent.mkdir()
    target.write_text("old\n")
    link.symlink_to(target)
    proc = cli("sql", QUERY, "-a", toy_atlas, "-f", "csv", "-o", link)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and target.read_text().split() == ['"x"', "1"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.csv"]  # no temporary left beside it


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_write_into_a_read_only_folder_exits_1(toy_atlas, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        proc = cli("sql", QUERY, "-a", toy_atlas, "-f", "csv", "-o", folder / "x.csv")
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 1 and "Permission denied" in one_error_line(proc)


@pytest.mark.parametrize("args, expected", [
    (["sql", QUERY, "--timeout", "inf"], "timeout must be a positive number of seconds"),
    (["sql", QUERY, "--timeout", "1e300"], "timeout must be a positive number of seconds"),
    (["sql", "SELECT ? AS x"], "1 ? parameter"),
    (["sql", "SELECT ? AS x", "-p", "a", "-p", "b"], "1 ? parameter"),
    (["models", "-a", "hf://datasets/"], "expected hf://datasets/<org>/<name>"),
    (["models", "-a", "hf://datasets/a b/c"], "is not a Hub repo id"),
    (["models", "-a", "hf://models/org/name"], "atlases are dataset repos"),
    (["neurons", "toy", "--lang", "t\x01l"], "control character"),
])
def test_bad_input_exits_2_with_one_line(toy_atlas, args, expected):
    if "-a" not in args:
        args = [*args, "-a", toy_atlas]
    proc = cli(*args)
    assert proc.returncode == 2 and expected in one_error_line(proc)


def test_push_dry_run_with_an_invalid_repo_id_exits_2(toy_atlas):
    proc = cli("push", toy_atlas, "--repo", "not a valid/repo id!!", "--dry-run")
    assert proc.returncode == 2 and "is not a Hub repo id" in one_error_line(proc) and proc.stdout == ""


def test_debug_shows_the_traceback(toy_atlas, full_device):
    proc = cli("--debug", "sql", QUERY, "-a", toy_atlas, "-f", "csv", "-o", full_device)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and proc.stderr.rstrip().splitlines()[-1].startswith("error:")


def test_an_ascii_terminal_does_not_crash(toy_atlas):
    env = {"LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": "ascii"}
    proc = cli("sql", "SELECT 'Tagalog – é' AS x", "-a", toy_atlas, "-f", "table", env=env)
    assert proc.returncode == 0 and "\\xe9" in proc.stdout, proc.stderr
    proc = cli("sql", "SELECT 'é' AS x", "-a", toy_atlas, "-f", "csv", env=env)  # data stays UTF-8 (read here as UTF-8)
    assert proc.returncode == 0 and proc.stdout.split() == ['"x"', '"é"'], proc.stderr
    proc = cli("neurons", "toy", "--lang", "Tagalogé", "-a", toy_atlas, env=env)
    assert proc.returncode == 2 and "Tagalog\\xe9" in one_error_line(proc)


def test_ctrl_c_during_start_up_exits_130_without_a_traceback(toy_atlas):
    """SIGINT while the CLI's modules load (after Python's own start-up, which no package can guard)."""
    code = "import sys; print('up', flush=True); from neuron_atlas.cli import main; sys.argv[0] = 'neuron-atlas'; main()"
    for delay in (0.05, 0.1, 0.2):
        proc = subprocess.Popen([sys.executable, "-c", code, "models", "-a", str(toy_atlas), "-f", "csv"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "up\n"
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, (delay, err)
        assert proc.returncode == 130 or (proc.returncode == 0 and "toy-b" in out), (delay, proc.returncode, err)
