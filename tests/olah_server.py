"""A real Hub-compatible server for tests: olah (PyPI) serving dataset repos from local git repositories, offline.

Run as a script under a Python that has olah (``python tests/olah_server.py --mirrors DIR --port N --log FILE``);
imported by the tests, it builds the git repositories and starts/stops that process. olah's local-mirror file
route answers ``Range`` requests with the whole file (the Hub answers 206), so the script wraps olah's ASGI app in
a small middleware that slices those answers; it also logs every request (path, range, bytes sent) to a JSON-lines
file so tests can count what a client fetched, and can cut a transfer mid-file to simulate a failing network.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# -- used by the tests (main venv; no olah import) -------------------------------------------------------------


def olah_python() -> str | None:
    """A Python interpreter with olah installed: $OLAH_PYTHON, this one, or a sibling venv named olah-venv."""
    candidates = [os.environ.get("OLAH_PYTHON", "")]
    if importlib.util.find_spec("olah") is not None:
        candidates.append(sys.executable)
    candidates.append(str(Path(sys.prefix).parent / "olah-venv" / "bin" / "python"))
    return next((c for c in candidates if c and Path(c).is_file()), None)


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
    """A running olah process: its endpoint (for HF_ENDPOINT), request log, and failure switch."""

    endpoint: str
    log: Path
    fail_file: Path
    process: subprocess.Popen

    def requests(self) -> list[dict]:
        """Every request served so far (method, path, range, status, bytes)."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def clear_log(self) -> None:
        self.log.write_text("")

    def fail_downloads(self, substring: str | None) -> None:
        """Cut file transfers whose path contains ``substring`` half-way (None: stop failing)."""
        if substring is None:
            self.fail_file.unlink(missing_ok=True)
        else:
            self.fail_file.write_text(substring)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_olah(python: str, mirrors: Path, workdir: Path, timeout: float = 60.0) -> OlahServer:
    """Start olah on a free loopback port serving the git repositories under ``mirrors/datasets/<org>/<name>``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir.mkdir(parents=True, exist_ok=True)
    log, fail_file = workdir / "requests.jsonl", workdir / "fail"
    out = open(workdir / "olah.out", "w")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(
        [python, __file__, "--mirrors", str(mirrors), "--port", str(port), "--workdir", str(workdir)],
        stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"olah exited with {process.returncode}: {(workdir / 'olah.out').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{endpoint}/api/whoami-v2", timeout=1)
            break
        except urllib.error.HTTPError:
            break  # answered (401 without a token): it is up
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError(f"olah did not start in {timeout}s: {(workdir / 'olah.out').read_text()[-2000:]}")
    server = OlahServer(endpoint, log, fail_file, process)
    server.clear_log()
    return server


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
        fail = self.fail_file.read_text() if self.fail_file.exists() else None
        cut = is_file and fail is not None and fail in scope["path"]
        with open(self.log, "a") as f:
            f.write(json.dumps({"method": scope["method"], "path": scope["path"], "range": range_header,
                                "status": status, "bytes": len(body), "cut": cut,
                                "authorization": headers.get(b"authorization", b"").decode()}) + "\n")
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
    config = work / "olah.toml"
    config.write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {args.port}\nrepos-path = "{work / "repos"}"\n'
        f'mirrors-path = ["{args.mirrors}"]\nmetadata-cache-ttl = 0\n'
        "[accessibility]\noffline = true\n"
    )
    os.environ["OLAH_CONFIG"] = str(config)
    os.environ["OLAH_LOG_PATH"] = str(work / "logs")
    import uvicorn
    from olah.server import app

    uvicorn.run(RangeAndLog(app, work / "requests.jsonl", work / "fail"), host="127.0.0.1", port=args.port,
                log_level="warning")


if __name__ == "__main__":
    _serve()
