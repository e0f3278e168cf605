"""The tests of the [torch] extra: without torch and transformers every module here is skipped, for one reason."""
import importlib.util

import pytest

MISSING = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
REASON = f"needs the [torch] extra (pip install -e '.[torch]'); missing: {', '.join(MISSING)}"


class _NeedsTorch(pytest.Module):
    """A test module that is reported as skipped instead of failing to import."""

    def collect(self):
        pytest.skip(REASON)


def pytest_pycollect_makemodule(module_path, parent):
    if MISSING:
        return _NeedsTorch.from_parent(parent, path=module_path)
    return None
