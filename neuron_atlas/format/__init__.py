"""The on-disk atlas format: table descriptions, layout, Parquet files, fingerprints, containment, reading, writing and verifying."""
