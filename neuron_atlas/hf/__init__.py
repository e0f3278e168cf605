"""Reading an atlas at ``hf://datasets/org/name[@rev]`` (below ``Atlas``, importing nothing above it): ``address``
parses the address and maps Hub errors, ``filesystem`` reads files lazily with timeouts and retries, ``remote``
locates an atlas lazily or as a cached snapshot. Publishing is ``neuron_atlas.hub``."""
