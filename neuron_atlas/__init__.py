"""neuron-atlas: language-specific neuron atlases (LAPE) as Parquet, queried with DuckDB."""
__version__ = "0.1.0"
