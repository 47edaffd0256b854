"""Shared fixtures. The backend is fixed per process: `python -m tests` runs the
suite once per backend (KERAS_BACKEND=tensorflow|jax|torch)."""

import os
from pathlib import Path

import keras
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("ZOO_DATA_DIR", ROOT.parent / "shared" / "datasets"))


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}, data {DATA_DIR}"


def _reset_random_state(seed):
    """Every generator a test can draw from, to a fixed state: Python's `random`
    (Keras's unseeded initializers and SeedGenerators take their seeds from
    it), NumPy's global generator, TensorFlow's global seed, torch's, and
    Keras's global SeedGenerator (keras.random without a seed)."""
    keras.utils.set_random_seed(seed)


@pytest.fixture(autouse=True, scope="module")
def _seed_module():
    # Module-scoped fixtures (a model built once for a file) are created
    # before any test's own `_seed`: without this, they would draw from
    # whatever state the previous file's last test left (pytest-xdist sends
    # files to workers in no fixed order).
    _reset_random_state(4321)
    yield


@pytest.fixture(autouse=True)
def _seed():
    _reset_random_state(1234)
    yield
    # Global settings a test may change, back to the defaults, so that no test
    # sees another's: the graph and layer names, the dtype policy, a distribution.
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    if keras.backend.backend() == "jax":
        keras.distribution.set_distribution(None)


@pytest.fixture
def mnist_path():
    path = DATA_DIR / "mnist.npz"
    if not path.exists():
        pytest.skip(f"{path} not found (set ZOO_DATA_DIR)")
    return path


@pytest.fixture
def cifar_path():
    path = DATA_DIR / "cifar10.zip"
    if not path.exists():
        pytest.skip(f"{path} not found (set ZOO_DATA_DIR)")
    return path


def weights_of(layer):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in layer.trainable_variables]


def changed(before, after):
    """Per-variable flags: did the variable change at all?"""
    return [not np.array_equal(b, a) for b, a in zip(before, after)]
