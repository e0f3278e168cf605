"""The public API's docstrings are its reference (``help(atlas.neurons)``): Google style, with ``Args:`` naming every
parameter, ``Returns:`` unless the callable returns None, and ``Raises:`` naming only real exception classes wherever
the callable can raise. Properties carry a one-line docstring."""
import builtins
import importlib.util
import inspect
import re

import pytest

import neuron_atlas as na
from neuron_atlas import errors
from neuron_atlas.atlas import Atlas
from neuron_atlas.explore.build import build_site
from neuron_atlas.format.verify import verify
from neuron_atlas.hub.publish import export, open_hub, plan_commit, push
from neuron_atlas.importers.neuron_sets import assign_languages, import_neuron_sets
from neuron_atlas.importers.registry import find_known, known
from neuron_atlas.maintenance.compact import compact_atlas, layer_steps, round_significant, round_to_step
from neuron_atlas.maintenance.merge import merge_atlas
from neuron_atlas.maintenance.retag import migrate_tags, retag_imported
from neuron_atlas.neuronset import NeuronSet

# (callable, whether it can raise: then its docstring must have a Raises: section)
DOCUMENTED = [
    (na.open, True),
    (Atlas, True),  # the class docstring documents the constructor
    (Atlas.model, True),
    (Atlas.resolve_model, True),
    (Atlas.models, True),
    (Atlas.langs_of, True),
    (Atlas.languages, True),
    (Atlas.disk_bytes, True),
    (Atlas.neurons, True),
    (Atlas.coverage, True),
    (Atlas.steering_vector, True),
    (Atlas.activation_means, True),
    (Atlas.panels, False),
    (Atlas.overlap, True),
    (Atlas.features, True),
    (Atlas.feature_overlap, True),
    (Atlas.sql, True),
    (NeuronSet.to_arrow, False),
    (NeuronSet.to_pandas, True),
    (NeuronSet.__arrow_c_stream__, False),
    (NeuronSet.sizes, False),
    (NeuronSet.by_layer, False),
    (NeuronSet.indices, False),
    (NeuronSet.mask, False),
    # the library functions the CLI (neuron_atlas/cli/) calls
    (plan_commit, True),
    (export, True),
    (push, True),
    (open_hub, True),
    (merge_atlas, True),
    (migrate_tags, True),
    (retag_imported, False),
    (compact_atlas, True),
    (layer_steps, False),
    (round_to_step, False),
    (round_significant, False),
    (verify, True),
    (build_site, True),
    (find_known, False),
    (known, True),
    (assign_languages, True),
    (import_neuron_sets, True),
]

# builder.run imports torch at module level: checked where the [torch] extra is installed
BUILDER = ["build", "build_models"]

PROPERTIES = [Atlas.location, Atlas.model_slugs]

SECTIONS = ("Args", "Attributes", "Returns", "Raises")


def _name(obj) -> str:
    return getattr(obj, "__qualname__", repr(obj))


def sections(obj) -> dict[str, list[str]]:
    """The docstring's Google-style sections: header -> the lines under it (dedented by one level)."""
    doc = inspect.getdoc(obj) or ""
    found: dict[str, list[str]] = {}
    current = None
    for line in doc.splitlines():
        header = re.fullmatch(r"(\w+):", line)
        if header and header.group(1) in SECTIONS:
            assert header.group(1) not in found, f"{_name(obj)}: two {header.group(1)}: sections"
            current = found.setdefault(header.group(1), [])
        elif line and not line[0].isspace():
            current = None  # prose after a section
        elif current is not None:
            current.append(line[4:] if line.startswith("    ") else line.strip())
    return found


def entries(lines: list[str]) -> list[str]:
    """The names a section lists (``name: text`` or ``name (type): text`` at its first indentation level)."""
    return [m.group(1) for line in lines if (m := re.match(r"(\*{0,2}\w+)(?: \([^)]*\))?:", line))]


def parameters(obj) -> list[str]:
    """The parameters a caller passes (``self`` and ``cls`` left out), as an Args: section names them."""
    out = []
    for p in inspect.signature(obj).parameters.values():
        if p.name in ("self", "cls"):
            continue
        stars = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        out.append(stars + p.name)
    return out


def returns_none(obj) -> bool:
    if inspect.isclass(obj):
        return True  # a constructor: its class is what it returns
    annotation = inspect.signature(obj).return_annotation
    return annotation is None or annotation == "None"


def check(obj, can_raise: bool) -> None:
    name = _name(obj)
    found = sections(obj)
    params = parameters(obj)
    if params:
        assert "Args" in found, f"{name} takes {params} but its docstring has no Args: section"
        assert entries(found["Args"]) == params, f"{name}: Args: lists {entries(found['Args'])}, not {params}"
    else:
        assert "Args" not in found, f"{name} takes no parameters but documents Args:"
    if not returns_none(obj):
        assert found.get("Returns"), f"{name} returns a value but its docstring has no Returns: section"
    if can_raise:
        assert "Raises" in found, f"{name} can raise but its docstring has no Raises: section"
    if "Raises" in found:
        raised = entries(found["Raises"])
        assert raised, f"{name}: its Raises: section names no exception"
        for exc in raised:
            cls = getattr(errors, exc, None) or getattr(builtins, exc, None)
            assert isinstance(cls, type) and issubclass(cls, BaseException), f"{name} raises {exc}: no such exception"


@pytest.mark.parametrize(("obj", "can_raise"), DOCUMENTED, ids=[_name(o) for o, _ in DOCUMENTED])
def test_sections(obj, can_raise):
    check(obj, can_raise)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="neuron_atlas.builder.run needs torch")
@pytest.mark.parametrize("name", BUILDER)
def test_builder_sections(name):
    from neuron_atlas.builder import run

    check(getattr(run, name), True)


@pytest.mark.parametrize("prop", PROPERTIES, ids=lambda p: getattr(p, "attrname", None) or p.fget.__name__)
def test_properties_have_one_line(prop):
    doc = inspect.getdoc(prop)
    assert doc and "\n" not in doc.strip(), f"{prop}: a property's docstring is one line saying what it returns"


def test_classes_describe_their_fields():
    assert entries(sections(NeuronSet)["Attributes"]) == [f.name for f in NeuronSet.__dataclass_fields__.values()]
    assert {"layout", "revision", "manifest"} <= set(entries(sections(Atlas)["Attributes"]))


def test_every_public_method_is_listed():
    """A public method or property added to Atlas or NeuronSet must be documented here too."""
    listed = {obj for obj, _ in DOCUMENTED} | set(PROPERTIES)
    for cls in (Atlas, NeuronSet):
        for attr, value in vars(cls).items():
            public = not attr.startswith("_") or attr == "__arrow_c_stream__"
            if public and (callable(value) or isinstance(value, property) or hasattr(value, "attrname")):
                assert value in listed, f"{cls.__name__}.{attr} is public but not checked by this test"


def test_the_check_fails_on_a_missing_section():
    """The check itself: removing a section from a documented callable is caught."""
    def documented(model: str) -> int:
        """Summary.

        Args:
            model: a slug.

        Returns:
            int: a number.

        Raises:
            UnknownModelError: no such model.
        """

    check(documented, True)
    for section in ("Args", "Returns", "Raises"):
        doc = documented.__doc__
        start = doc.index(f"        {section}:")
        end = doc.find("\n\n", start)
        documented.__doc__ = doc[:start] + doc[end + 2 if end != -1 else len(doc):]
        with pytest.raises(AssertionError):
            check(documented, True)
        documented.__doc__ = doc
