"""A watcher for the Ray processes a build's driver started: if the driver dies without shutting them down
(SIGKILL, out-of-memory kill), it kills them, since Ray leaves its dashboard and runtime-env agents running.

The watcher is a separate small process holding one end of a pipe; the driver says "done" on it after its own
``ray.shutdown()``. End of file without "done" means the driver is gone.
"""
from __future__ import annotations

import subprocess
import sys

_WATCH = r"""
import sys
import psutil

said = sys.stdin.buffer.read()  # returns when the driver closes the pipe: "done", or nothing if it died
if said != b"done":
    for item in sys.argv[1:]:
        pid, created = item.split(":")
        try:
            process = psutil.Process(int(pid))
            if abs(process.create_time() - float(created)) < 1e-3:  # the same process, not a reused pid
                process.kill()
        except psutil.Error:
            pass
"""


def watch_ray_processes() -> subprocess.Popen | None:
    """Start the watcher over this process' Ray descendants (GCS, raylet, agents, workers); None if psutil is missing."""
    try:
        import psutil
    except ImportError:
        return None
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if "ray" in " ".join(process.cmdline()).lower():
                found.append(f"{process.pid}:{process.create_time()!r}")
        except psutil.Error:
            pass
    return subprocess.Popen([sys.executable, "-c", _WATCH, *found], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # its own session: outlives a Ctrl-C


def release(watcher: subprocess.Popen | None) -> None:
    """Tell the watcher the driver shut Ray down itself, and let it exit."""
    if watcher is None:
        return
    try:
        watcher.stdin.write(b"done")
        watcher.stdin.close()
        watcher.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        watcher.kill()
