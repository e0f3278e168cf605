"""A real Hub-compatible server for tests: olah (PyPI) serving dataset repos from local git repositories, offline.

Two setups, both started by ``start_olah``. ``ranges=False``: plain olah as installed (``python -m olah.server
-c olah.toml``, what ``olah-cli`` runs), whose local-mirror file route answers ``Range`` requests with ``200`` and
the whole file; the requests it served are read from its uvicorn access log. ``ranges=True``: this file, run as a
script under a Python that has olah, wraps olah's ASGI app in a small middleware that answers ranges with ``206``
and the slice, as the Hub does; it logs every request (path, range, bytes sent, token) to a JSON-lines file so
tests can count what a client fetched, and can cut or stall a transfer to simulate a failing network.
``silent_server`` is a loopback server that accepts connections and never answers.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

_ACCESS = re.compile(r'"(GET|HEAD|POST) (\S+) HTTP/[\d.]+" (\d+)')

# -- used by the tests (main venv; no olah import) -------------------------------------------------------------


def olah_python() -> str | None:
    """A Python interpreter with olah installed: $OLAH_PYTHON, this one, or the venv ``scripts/setup.sh full`` makes
    beside the project's (``.olah-venv``, next to ``.venv``)."""
    candidates = [os.environ.get("OLAH_PYTHON", "")]
    if importlib.util.find_spec("olah") is not None:
        candidates.append(sys.executable)
    candidates.append(str(Path(sys.prefix).parent / ".olah-venv" / "bin" / "python"))
    return next((c for c in candidates if c and Path(c).is_file()), None)


def materialise(ops, folder: Path) -> Path:
    """Write a planned commit's files (``plan_commit``'s operations) into ``folder``: the repo content a push makes."""
    for op in ops:
        path = folder / op.path_in_repo
        path.parent.mkdir(parents=True, exist_ok=True)
        src = op.path_or_fileobj
        path.write_bytes(src if isinstance(src, bytes) else Path(src).read_bytes())
    return folder


def git_commit_folder(src: Path, repo_dir: Path, message: str) -> str:
    """Make ``repo_dir`` (a git repository, created if needed) hold exactly the files of ``src``; commit; return the sha."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.org",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.org"}

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo_dir), *args], check=True, capture_output=True, text=True,
                              env=env).stdout.strip()

    if not (repo_dir / ".git").exists():
        repo_dir.mkdir(parents=True, exist_ok=True)
        git("init", "-q", "-b", "main")
    for child in repo_dir.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.copytree(src, repo_dir, dirs_exist_ok=True)
    git("add", "-A")
    git("commit", "-q", "--allow-empty", "-m", message)
    return git("rev-parse", "HEAD")


@dataclass
class OlahServer:
    """A running olah process: its endpoint (for HF_ENDPOINT), request log, and failure switch (ranges=True only)."""

    endpoint: str
    log: Path
    fail_file: Path
    process: subprocess.Popen
    ranges: bool

    def requests(self) -> list[dict]:
        """Every request served so far: method, path, status (with ranges=True also range, bytes, authorization, cut)."""
        if not self.log.exists():
            return []
        lines = self.log.read_text().splitlines()
        if self.ranges:
            return [json.loads(line) for line in lines if line.strip()]
        return [{"method": m[1], "path": unquote(m[2].split("?")[0]), "status": int(m[3])}
                for m in map(_ACCESS.search, lines) if m]

    def clear_log(self) -> None:
        self.log.write_text("")  # plain olah's output is opened for appending, so it may be truncated under it

    def fail_downloads(self, substring: str | None, how: str = "cut") -> None:
        """Cut file transfers whose path contains ``substring`` half-way, or (``how="stall"``) never answer them
        (None: stop failing)."""
        if substring is None:
            self.fail_file.unlink(missing_ok=True)
        else:
            self.fail_file.write_text(f"{how}:{substring}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _olah_config(workdir: Path, mirrors: Path, port: int) -> Path:
    """olah's TOML config: serve the git repositories under ``mirrors`` on loopback, offline, no metadata reuse."""
    config = workdir / "olah.toml"
    config.write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {port}\nrepos-path = "{workdir / "repos"}"\n'
        f'mirrors-path = ["{mirrors}"]\nmetadata-cache-ttl = 0\n'
        "[accessibility]\noffline = true\n"
    )
    return config


def start_olah(python: str, mirrors: Path, workdir: Path, ranges: bool = True, timeout: float = 60.0) -> OlahServer:
    """Start olah on a free loopback port serving the git repositories under ``mirrors/datasets/<org>/<name>``.

    ``ranges=False`` runs plain olah (its own command line, no wrapper); ``ranges=True`` the range-serving wrapper.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir.mkdir(parents=True, exist_ok=True)
    output, fail_file = workdir / "olah.out", workdir / "fail"
    out = open(output, "a")  # noqa: SIM115 - owned by the process; appending, so the log can be cleared under it
    if ranges:
        command = [python, __file__, "--mirrors", str(mirrors), "--port", str(port), "--workdir", str(workdir)]
    else:
        command = [python, "-m", "olah.server", "-c", str(_olah_config(workdir, mirrors, port)),
                   "--log-path", str(workdir / "logs")]
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"olah exited with {process.returncode}: {output.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{endpoint}/api/whoami-v2", timeout=1)
            break
        except urllib.error.HTTPError:
            break  # answered (401 without a token): it is up
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError(f"olah did not start in {timeout}s: {output.read_text()[-2000:]}")
    server = OlahServer(endpoint, workdir / "requests.jsonl" if ranges else output, fail_file, process, ranges)
    server.clear_log()
    return server


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A loopback HTTP endpoint that accepts connections and never answers (a hung server); yields its URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


# -- the server process (a Python with olah) --------------------------------------------------------------------


class RangeAndLog:
    """ASGI middleware: answer Range requests on files with 206 + the slice, log requests, inject failures."""

    def __init__(self, app, log: Path, fail_file: Path) -> None:
        self.app, self.log, self.fail_file = app, log, fail_file

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        range_header = headers.get(b"range", b"").decode()
        is_file = "/resolve/" in scope["path"] and scope["method"] == "GET"
        start_msg: dict = {}
        chunks: list[bytes] = []

        async def capture(message):
            if message["type"] == "http.response.start":
                start_msg.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        status = start_msg.get("status", 500)
        out_headers = list(start_msg.get("headers", []))
        if scope["method"] != "HEAD":  # HEAD keeps the file's content-length
            out_headers = [(k, v) for k, v in out_headers if k.lower() not in (b"content-length", b"transfer-encoding")]
            if is_file and range_header and status == 200:
                first, _, last = range_header.removeprefix("bytes=").partition("-")
                size = len(body)
                if first == "":  # suffix range: the last N bytes
                    lo, hi = max(0, size - int(last)), size - 1
                else:
                    lo, hi = int(first), min(size - 1, int(last)) if last else size - 1
                out_headers.append((b"content-range", f"bytes {lo}-{hi}/{size}".encode()))
                body, status = body[lo:hi + 1], 206
            out_headers.append((b"content-length", str(len(body)).encode()))
        how, _, fail = (self.fail_file.read_text() if self.fail_file.exists() else "").partition(":")
        cut = is_file and bool(fail) and fail in scope["path"]
        with open(self.log, "a") as f:
            f.write(json.dumps({"method": scope["method"], "path": scope["path"], "range": range_header,
                                "status": status, "bytes": len(body), "cut": cut,
                                "authorization": headers.get(b"authorization", b"").decode()}) + "\n")
        if cut and how == "stall":  # accept the request, never answer it
            await asyncio.sleep(3600)
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        if cut:  # send half the promised bytes, then drop the connection
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            raise ConnectionAbortedError("test: network failure injected mid-transfer")
        await send({"type": "http.response.body", "body": body})


def _serve() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--mirrors", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    work = Path(args.workdir)
    os.environ["OLAH_CONFIG"] = str(_olah_config(work, Path(args.mirrors), args.port))
    os.environ["OLAH_LOG_PATH"] = str(work / "logs")
    import uvicorn
    from olah.server import app

    uvicorn.run(RangeAndLog(app, work / "requests.jsonl", work / "fail"), host="127.0.0.1", port=args.port,
                log_level="warning")


if __name__ == "__main__":
    _serve()
