"""Bytes a lazy Hub read fetches: the embedded atlas served by olah that answers ``Range`` with 206 and the slice
(as the Hub does) and by plain olah, which answers it with 200 and the whole file; and how long an open takes to
fail, with the default timeouts, against a server that accepts connections and never answers.

    OLAH_PYTHON=/path/to/olah-venv/bin/python python benchmarks/hub_reads.py [--model smollm2-135m] [--lang tl]

Both servers serve the commit ``plan_commit`` makes of the embedded atlas (a local git repository). The client
talks to them through a counting TCP proxy, so "bytes" is everything the client received (API answers and files);
"file GETs" counts the server's file downloads. Each query runs on a fresh open with a fresh Hugging Face cache;
the last row opens again with the cache that the range-ignoring server's query filled.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from olah_server import git_commit_folder, materialise, olah_python, silent_server, start_olah

import neuron_atlas as na
from neuron_atlas import hub
from neuron_atlas.atlas import EMBEDDED

REPO = "bench/atlas"


class CountingProxy:
    """A loopback TCP proxy to ``upstream`` (host, port) that counts the bytes it passes back to the client."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream, self.received = upstream, 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _pipe(self, reader, writer, count: bool) -> None:
        try:
            while data := await reader.read(65536):
                if count:
                    self.received += len(data)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _handle(self, client_reader, client_writer) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        await asyncio.gather(self._pipe(client_reader, up_writer, False), self._pipe(up_reader, client_writer, True))


def _file_gets(server) -> int:
    return sum(1 for r in server.requests() if "/resolve/" in r["path"] and r["method"] == "GET")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--lang", default="tl")
    args = parser.parse_args()
    python = olah_python()
    if python is None:
        sys.exit("needs olah: set OLAH_PYTHON to a Python that has it")
    from huggingface_hub import constants

    local = na.open()
    among = [args.lang, "en", "fr", "de", "es", "zh", "ar", "hi"]
    queries = {
        f"neurons({args.model!r}, lang={args.lang!r})": lambda a: a.neurons(args.model, lang=args.lang),
        f"neurons(..., among=<{len(among)} languages>)": lambda a: a.neurons(args.model, lang=args.lang, among=among),
        "sql: lape rows per language of the model":
            lambda a: a.sql(f"SELECT lang, count(*) FROM lape WHERE model = '{args.model}' GROUP BY lang"),
    }
    atlas_bytes = sum(p.stat().st_size for p in EMBEDDED.rglob("*.parquet"))
    model_bytes = sum(p.stat().st_size for p in EMBEDDED.rglob("*.parquet") if f"model={args.model}" in str(p))
    with tempfile.TemporaryDirectory(prefix="hub-reads-") as tmp:
        base = Path(tmp)
        ops, _ = hub.plan_commit(EMBEDDED, REPO)
        git_commit_folder(materialise(ops, base / "content"), base / "mirrors" / "datasets" / REPO, "embedded atlas")
        rows = []
        for kind, ranges in (("206 (honours Range)", True), ("200 (ignores Range)", False)):
            server = start_olah(python, base / "mirrors", base / f"olah-{ranges}", ranges=ranges)
            proxy = CountingProxy(("127.0.0.1", int(server.endpoint.rsplit(":", 1)[1])))
            os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{proxy.port}"
            try:
                for i, (name, query) in enumerate(queries.items()):
                    constants.HF_HUB_CACHE = str(base / f"cache-{ranges}-{i}")
                    before, _ = proxy.received, server.clear_log()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        result = query(na.open(f"hf://datasets/{REPO}"))
                    rows.append((name, kind, proxy.received - before, _file_gets(server)))
                    want = query(local)
                    assert (result.to_arrow() if hasattr(result, "to_arrow") else result).num_rows == \
                        (want.to_arrow() if hasattr(want, "to_arrow") else want).num_rows
                if not ranges:  # again, with the cache the first query filled
                    name, query = next(iter(queries.items()))
                    constants.HF_HUB_CACHE = str(base / f"cache-{ranges}-0")
                    before, _ = proxy.received, server.clear_log()
                    query(na.open(f"hf://datasets/{REPO}"))
                    rows.append((f"{name}, cache filled", kind, proxy.received - before, _file_gets(server)))
            finally:
                server.stop()
    print(f"embedded atlas: {atlas_bytes:,} bytes of Parquet; {args.model}'s files: {model_bytes:,} bytes\n")
    print(f"| query | server answers a range with | bytes fetched | file GETs | bytes / {args.model}'s files |")
    print("|---|---|---:|---:|---:|")
    for name, kind, received, gets in rows:
        print(f"| {name} | {kind} | {received:,} | {gets} | {received / model_bytes:.3f} |")

    print(f"\nserver that never answers (HF_HUB_ETAG_TIMEOUT={constants.HF_HUB_ETAG_TIMEOUT}, "
          f"HF_HUB_DOWNLOAD_TIMEOUT={constants.HF_HUB_DOWNLOAD_TIMEOUT})\n")
    print("| open | seconds to the error | error |\n|---|---:|---|")
    with silent_server() as url, tempfile.TemporaryDirectory(prefix="hub-hang-") as cache:
        os.environ["HF_ENDPOINT"] = url
        for mode in ("lazy", "snapshot"):
            start = time.monotonic()
            try:
                na.open(f"hf://datasets/{REPO}", mode=mode, cache_dir=cache)
                message = "no error"
            except na.AtlasError as exc:
                message = str(exc).split(";")[0]
            print(f"| {mode} | {time.monotonic() - start:.1f} | {message} |")


if __name__ == "__main__":
    main()
