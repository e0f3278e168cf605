"""Build and import settings are written once (builder/config.py, importers/config.py): the library's defaults and
the CLI options' defaults and help all come from those dataclasses."""
import inspect
from dataclasses import fields

import pytest
import typer

from neuron_atlas._utils.settings import help_of, setting
from neuron_atlas.builder.config import BUILD, BuildConfig
from neuron_atlas.cli import app
from neuron_atlas.importers.config import IMPORT, ImportConfig


def _options(command: str) -> dict[str, object]:
    """The click parameters of a CLI command, by Python name."""
    group = typer.main.get_command(app)
    return {p.name: p for p in group.commands[command].params}


@pytest.mark.parametrize(("command", "config", "defaults"), [("build", BuildConfig, BUILD), ("import", ImportConfig, IMPORT)])
def test_cli_options_read_the_config(command, config, defaults):
    options = _options(command)
    for f in fields(config):
        assert f.name in options, f"neuron-atlas {command} has no option for {config.__name__}.{f.name}"
        assert options[f.name].default == getattr(defaults, f.name), f.name
        assert options[f.name].help == f.metadata["help"] and f.metadata["help"], f.name


def test_library_defaults_are_the_configs():
    from neuron_atlas.builder.run import build, build_models
    from neuron_atlas.importers.activations import import_activations
    from neuron_atlas.importers.neuron_sets import import_neuron_sets

    every_build_setting = [f.name for f in fields(BuildConfig) if f.name != "corpus"]  # corpus: required in the API
    shape = ["hf_repo", "hidden_size"]  # the model's shape; the CLI's comma-separated lists are sequences in the API
    for fn, names, defaults in ((build_models, every_build_setting, BUILD), (build, ["langs", "gguf_file"], BUILD),
                                (import_neuron_sets, [*shape, "n_layers", "ffn_width"], IMPORT),
                                (import_activations, shape, IMPORT)):
        params = inspect.signature(fn).parameters
        for name in names:
            assert params[name].default == getattr(defaults, name), (fn.__name__, name)


def test_help_of_names_the_settings():
    from dataclasses import dataclass

    @dataclass
    class Toy:
        size: int = setting(3, "how many")

    assert help_of(Toy, "size") == "how many" and Toy().size == 3
    with pytest.raises(KeyError, match="it has size"):
        help_of(Toy, "sise")
