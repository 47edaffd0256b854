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


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


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
