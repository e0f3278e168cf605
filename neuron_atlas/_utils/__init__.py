"""Private helpers: files, lazy imports, settings, argument checks, progress bars."""
