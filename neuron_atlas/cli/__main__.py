"""``python -m neuron_atlas.cli``: the same as the ``neuron-atlas`` command."""
from . import main

main()
