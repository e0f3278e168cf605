import shutil
from pathlib import Path

import numpy as np
import pytest

from toy_langs import LANGS, SMALL_LANGS

from neuron_atlas.testing import make_atlas

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture(scope="session")
def toy_atlas(tmp_path_factory):
    """A synthetic atlas with two models (random counts, realistic skew)."""
    root = tmp_path_factory.mktemp("atlas")
    make_atlas(root, model="toy", n_layers=4, ffn_width=96, langs=LANGS, tokens=3000, seed=1)
    make_atlas(root, model="toy-b", n_layers=3, ffn_width=40, langs=LANGS[:5], tokens=[500, 900, 0, 700, 1200], seed=2)
    return root


@pytest.fixture
def rng():
    return np.random.default_rng()


@pytest.fixture(scope="session")
def reference() -> Path:
    """The published LAPE neuron sets in ../shared/reference (beside the checkout), read in place."""
    if not REFERENCE.is_dir():
        pytest.skip(f"published neuron sets not found at {REFERENCE} (a checkout with shared/ beside it has them)")
    return REFERENCE


@pytest.fixture(scope="session")
def pristine(tmp_path_factory):
    """A small two-model atlas to copy before tampering with it (toy: 3 × 32, 4 languages; other: 2 × 16, 3)."""
    root = tmp_path_factory.mktemp("pristine") / "atlas"
    make_atlas(root, model="toy", n_layers=3, ffn_width=32, langs=SMALL_LANGS, tokens=800, seed=3)
    make_atlas(root, model="other", n_layers=2, ffn_width=16, langs=SMALL_LANGS[:3], tokens=500, seed=4)
    return root


@pytest.fixture
def atlas_copy(pristine, tmp_path):
    """A fresh copy of ``pristine`` for one test to damage."""
    root = tmp_path / "atlas"
    shutil.copytree(pristine, root)
    return root
