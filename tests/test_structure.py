"""The package's shape: layers whose imports point only down, no import cycles, a core that loads no torch, typer
or rich, and a local query that loads no Hub transport and no writer."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import neuron_atlas

PACKAGE = Path(neuron_atlas.__file__).parent

# The layers, lowest first: a module may import its own layer and those below, never one above. Each entry names
# packages (a few single modules: the public surface, and the two sides of ``hub``); a module belongs to the layer of
# the longest prefix naming it; importing ``a.b.c`` imports the packages ``a.b`` and ``a`` too.
LAYERS = [
    ("foundations: private helpers, errors", ["neuron_atlas._utils", "neuron_atlas.errors"]),
    ("reference data: languages, the catalog", ["neuron_atlas.languages", "neuron_atlas.catalog"]),
    ("statistics (numpy, no I/O)", ["neuron_atlas.stats"]),
    ("the on-disk format; neuron sets", ["neuron_atlas.format", "neuron_atlas.neuronset"]),
    ("reading hf:// addresses", ["neuron_atlas.hub", "neuron_atlas.hub.address", "neuron_atlas.hub.filesystem",
                                 "neuron_atlas.hub.remote"]),
    ("selection methods", ["neuron_atlas.methods"]),
    ("queries", ["neuron_atlas._query"]),
    ("Atlas", ["neuron_atlas.atlas"]),
    ("changing atlases; synthetic atlases", ["neuron_atlas.maintenance", "neuron_atlas.testing"]),
    ("the package's public names", ["neuron_atlas"]),
    ("models, corpora, figures", ["neuron_atlas.modeling", "neuron_atlas.corpus", "neuron_atlas.plots"]),
    ("publishing to the Hub", ["neuron_atlas.hub.card", "neuron_atlas.hub.commit", "neuron_atlas.hub.publish"]),
    ("building and importing atlases", ["neuron_atlas.builder", "neuron_atlas.importers"]),
    ("using neuron sets", ["neuron_atlas.masks", "neuron_atlas.interventions", "neuron_atlas.finetune",
                           "neuron_atlas.prune"]),
    ("the explorer site", ["neuron_atlas.explore"]),
    ("command line", ["neuron_atlas.cli"]),
]


def _runtime_nodes(tree: ast.AST):
    """Every node of the tree except what ``if TYPE_CHECKING:`` guards (never imported at run time)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(path: Path, name: str) -> set[str]:
    """neuron_atlas modules that ``path`` imports, at module level or lazily inside a function."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = ([target] if node.module else []) + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        # a module's own parent packages are already being imported when it runs
        out.update(c for c in candidates if c.startswith("neuron_atlas") and not name.startswith(c + "."))
    return out


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, with the parent packages an import runs (``a.b`` for ``a.b.c``)."""
    modules = {_module_name_in(p, package): p for p in package.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for m in _imports(path, name):
            parts = m.split(".")
            deps.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        graph[name] = {m for m in deps if m in modules and m != name and not name.startswith(m + ".")}
    return graph


def _module_name_in(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    """Index in LAYERS of the module's layer (the longest prefix naming it); KeyError if none does."""
    best = max(((len(p), i) for i, (_, prefixes) in enumerate(LAYERS) for p in prefixes
                if module == p or module.startswith(p + ".")), default=None)
    if best is None:
        raise KeyError(f"{module} belongs to no layer of LAYERS in tests/test_structure.py; add it where it belongs")
    return best[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import that points to a higher layer, as 'a (layer) -> b (layer)'."""
    return [f"{a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})"
            for a in sorted(graph) for b in sorted(graph[a]) if layer_of(b) > layer_of(a)]


def test_every_module_has_a_layer_and_imports_only_downward():
    graph = import_graph(PACKAGE)
    for name in graph:
        layer_of(name)
    assert upward_imports(graph) == []


def _copy_with(tmp_path: Path, module: str, code: str) -> Path:
    """A copy of the package's sources with ``code`` appended to ``module``'s file."""
    copy = tmp_path / "neuron_atlas"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("data", "__pycache__", "*.pyc", "templates"))
    path = copy / (module.replace(".", "/").removeprefix("neuron_atlas/") + ".py")
    if not path.exists():
        path = path.with_suffix("") / "__init__.py"
    path.write_text(path.read_text() + code)
    return copy


def test_an_upward_import_fails_the_layer_check(tmp_path):
    lazy_up = "\n\ndef _up():\n    from ..atlas import Atlas\n\n    return Atlas\n"
    graph = import_graph(_copy_with(tmp_path / "a", "neuron_atlas.stats.lape", lazy_up))
    assert upward_imports(graph) == ["neuron_atlas.stats.lape (statistics (numpy, no I/O)) -> neuron_atlas.atlas (Atlas)"]
    # atlas imports hub.address, which runs hub/__init__: a lazy import there going back up is an upward import
    lazy_package = "\n\ndef open_hub(url):\n    from ..atlas import open\n\n    return open(url)\n"
    graph = import_graph(_copy_with(tmp_path / "b", "neuron_atlas.hub", lazy_package))
    assert [v.split(" (")[0] for v in upward_imports(graph)] == ["neuron_atlas.hub"]
    assert "neuron_atlas.hub" in graph["neuron_atlas.atlas"]  # the parent package counts as imported


def test_no_import_cycles():
    graph = import_graph(PACKAGE)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(dep):] + [dep]))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_local_query_loads_no_hub_transport_and_no_writer():
    code = ("import sys, neuron_atlas as na; a = na.open(); a.neurons('gemma-3-270m', lang='tl', size=50, method='ovr'); "
            "a.sql('SELECT count(*) FROM lape'); print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('huggingface_hub', 'fsspec') or m in ('neuron_atlas.hub.remote', 'neuron_atlas.hub.filesystem', "
            "'neuron_atlas.hub.publish', 'neuron_atlas.hub.card', 'neuron_atlas.format.writer')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_core_import_loads_no_torch_typer_or_rich():
    code = ("import sys, neuron_atlas as na; na.open().neurons('gemma-3-270m', lang='tl'); "
            "print(sorted(m for m in ('torch', 'typer', 'rich', 'click') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_library_modules_do_not_import_the_cli_framework():
    for path in PACKAGE.rglob("*.py"):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        imported = {n.split(".")[0] for n in _all_imports(path)}
        assert "typer" not in imported and "click" not in imported, f"{path} imports a CLI framework"


def _all_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
    return names


def test_every_module_is_placed_in_a_layer_by_name():
    """A new module names its layer in LAYERS; it does not fall into the package's own layer by default."""
    unplaced = [m for m in import_graph(PACKAGE) if m != "neuron_atlas"
                and not any(m == p or m.startswith(p + ".") for _, prefixes in LAYERS for p in prefixes if p != "neuron_atlas")]
    assert unplaced == [], f"add these modules to LAYERS where they belong: {unplaced}"


def test_the_tree_shows_the_architecture():
    """A public surface of a few modules at the root, everything else in packages named for their job; no module
    named like a standard-library one (``statistics``), and one definition of the Parquet magic."""
    assert len(list(PACKAGE.glob("*.py"))) <= 10
    shadowing = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
                       if p.stem in sys.stdlib_module_names and p.stem != "__init__")
    assert shadowing == []
    magic = [p for p in PACKAGE.rglob("*.py") if b'b"PAR1"' in p.read_bytes()]
    assert [p.relative_to(PACKAGE).as_posix() for p in magic] == ["format/schema.py"]
