"""Presets: a trained model in a folder that loads with one call, on any backend.

The layout follows keras-hub's::

    saved_models/dcgan_mnist/
        config.json         keras.saving.serialize_keras_object(model), no compile state
        model.weights.h5    the weights (no optimizer slots)
        metadata.json       data set and split, the recipe command, measured figures
                            (each with how it was measured), backend, Keras version,
                            creation time and the sha256 of model.weights.h5

    >>> zoo.list_presets()                      # {"dcgan_mnist": "DCGAN on MNIST ...", ...}
    >>> gan = zoo.GAN.from_preset("dcgan_mnist")  # bundled name, folder, or hf://owner/repo
    >>> model = zoo.load("path/to/preset")        # whatever model the preset holds

Loading reads the config with `safe_mode=True` (a config holding code, such as a
Lambda layer's, is refused), checks the weights' sha256 against the metadata,
then loads the weights. Weights files are backend-independent: a preset saved on
TensorFlow loads on JAX and PyTorch.

`save_preset(model, folder, metadata)` writes a temporary folder beside the
target and renames it into place: a save that fails or is killed leaves the
previous preset (if any) as it was.
"""

import datetime
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import keras

SAVED_MODELS = Path(__file__).resolve().parents[1] / "saved_models"
CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE = "config.json", "model.weights.h5", "metadata.json"
PRESET_FILES = (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE)
HF_PREFIX = "hf://"


class PresetNotFoundError(FileNotFoundError):
    """No preset of that name or path, or a preset folder missing one of its files."""


class PresetIntegrityError(ValueError):
    """A preset's files are unreadable, truncated, or do not match its checksum."""


class PresetClassError(TypeError):
    """The preset holds a different kind of model than the class asked to load it."""


# -- finding presets -----------------------------------------------------------------------
def _is_preset(folder):
    return folder.is_dir() and not folder.name.startswith(".") and (folder / CONFIG_FILE).exists()


def list_presets(folder=None):
    """{name: one-line description} of the bundled presets (in `saved_models/`), sorted."""
    root = Path(folder) if folder is not None else SAVED_MODELS
    out = {}
    for sub in sorted(root.iterdir()) if root.is_dir() else ():
        if not _is_preset(sub):
            continue
        try:
            meta = json.loads((sub / METADATA_FILE).read_text())
        except (OSError, ValueError):
            meta = {}
        out[sub.name] = meta.get("description") or meta.get("model", "(no description)")
    return out


def _unknown(name):
    available = list(list_presets())
    return PresetNotFoundError(
        f"No preset {name!r}: not a bundled preset nor a folder holding {CONFIG_FILE}. "
        f"Bundled presets: {', '.join(available) if available else '(none)'}. A preset can also "
        f"be a local folder or an {HF_PREFIX}owner/repo address."
    )


def resolve(name_or_path):
    """The local folder of a preset: a bundled name, a folder, or hf://owner/repo[/subfolder]
    (downloaded with huggingface_hub, an optional dependency)."""
    name = os.fspath(name_or_path)
    if name.startswith(HF_PREFIX):
        return _download(name[len(HF_PREFIX):])
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).exists():
            missing = [f for f in PRESET_FILES if not (path / f).exists()]
            raise PresetNotFoundError(f"{path} is not a preset folder: it lacks {', '.join(missing)}.")
        return path
    if "/" not in name and os.sep not in name and (SAVED_MODELS / name).is_dir():
        return SAVED_MODELS / name
    raise _unknown(name)


def _download(address):
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ImportError(
            f"Loading {HF_PREFIX}{address} needs huggingface_hub (pip install huggingface_hub); "
            "or download the preset folder yourself and pass its path."
        ) from None
    parts = address.strip("/").split("/")
    if len(parts) < 2:
        raise ValueError(f"A Hugging Face preset is {HF_PREFIX}owner/repo[/subfolder]; got {HF_PREFIX}{address}.")
    repo, sub = "/".join(parts[:2]), "/".join(parts[2:])
    patterns = [f"{sub}/{f}" if sub else f for f in PRESET_FILES]
    local = Path(snapshot_download(repo_id=repo, allow_patterns=patterns))
    return resolve(local / sub if sub else local)


# -- reading -------------------------------------------------------------------------------
def sha256(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _read_json(path, what):
    try:
        return json.loads(Path(path).read_text())
    except ValueError as e:
        raise PresetIntegrityError(f"{path} is not valid JSON ({e}); the {what} is corrupt.") from None


def load_metadata(name_or_path):
    """The preset's metadata.json as a dict."""
    folder = resolve(name_or_path)
    _check_files(folder)
    return _read_json(folder / METADATA_FILE, "metadata")


def _check_files(folder):
    missing = [f for f in PRESET_FILES if not (folder / f).exists()]
    if missing:
        raise PresetNotFoundError(
            f"The preset at {folder} is incomplete: {', '.join(missing)} missing "
            f"(a preset holds {', '.join(PRESET_FILES)})."
        )


def verify(name_or_path):
    """Check that a preset's files are all there and its weights match their sha256.

    Returns (folder, config, metadata); raises PresetNotFoundError or PresetIntegrityError."""
    folder = resolve(name_or_path)
    _check_files(folder)
    meta = _read_json(folder / METADATA_FILE, "metadata")
    config = _read_json(folder / CONFIG_FILE, "config")
    weights = folder / WEIGHTS_FILE
    expected = meta.get("sha256")
    if not expected:
        raise PresetIntegrityError(
            f"{folder / METADATA_FILE} records no sha256 of {WEIGHTS_FILE}; the weights cannot be checked."
        )
    actual = sha256(weights)
    if actual != expected:
        size = weights.stat().st_size
        recorded = meta.get("weights_bytes")
        if not _readable_hdf5(weights) or (recorded is not None and size != recorded):
            raise PresetIntegrityError(
                f"{weights} is corrupt or truncated ({size} bytes"
                + (f", {recorded} expected" if recorded is not None else "")
                + "); download or copy the preset again."
            )
        raise PresetIntegrityError(
            f"Checksum mismatch for {weights}: sha256 {actual[:16]}..., metadata records "
            f"{expected[:16]}... The weights were changed after the preset was saved; save the "
            "preset again with zoo.save_preset (which records the new checksum)."
        )
    return folder, config, meta


def _readable_hdf5(path):
    import h5py

    try:
        with h5py.File(path, "r") as f:
            f.visit(lambda name: None)
        return True
    except (OSError, ValueError, RuntimeError):
        return False


def preset_class(config):
    """The class a serialized config names (registered zoo class or Keras built-in), or None."""
    registered = config.get("registered_name")
    cls = keras.saving.get_registered_object(registered) if registered else None
    if cls is None and config.get("module", "").startswith("keras"):
        cls = {"Functional": keras.Model, "Sequential": keras.Sequential}.get(config.get("class_name"))
    return cls


def bundled_of_class(cls):
    """{name: {"description", "params", "path", "metadata"}} of the bundled presets
    holding a `cls` (or a subclass), as keras-hub's `cls.presets`."""
    out = {}
    for name in list_presets():
        folder = SAVED_MODELS / name
        try:
            config = json.loads((folder / CONFIG_FILE).read_text())
            meta = json.loads((folder / METADATA_FILE).read_text())
        except (OSError, ValueError):
            continue
        held = preset_class(config)
        if held is None or not (isinstance(held, type) and issubclass(held, cls)):
            continue
        out[name] = {"description": meta.get("description", ""), "params": parameter_count(folder),
                     "path": str(folder.relative_to(SAVED_MODELS.parent)), "metadata": meta}
    return out


def parameter_count(folder):
    """The number of values in a preset's weights (as `model.count_params()`): recorded
    in the metadata by `save_preset`, counted in the weights file for older presets."""
    folder = Path(folder)
    try:
        recorded = json.loads((folder / METADATA_FILE).read_text()).get("params")
    except (OSError, ValueError):
        recorded = None
    if recorded is not None:
        return int(recorded)
    import h5py

    total = 0

    def count(_, obj):
        nonlocal total
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f":
            total += int(obj.size)

    with h5py.File(folder / WEIGHTS_FILE, "r") as f:
        f.visititems(count)
    return total


def load(name_or_path, expected_class=None, compile=False, load_weights=True):
    """The model a preset holds, with its weights: a bundled name, a folder or hf://owner/repo.

    `expected_class` (what `Model.from_preset` passes): refuse a preset holding a
    model of another class. The config is deserialised with safe_mode=True.
    `load_weights=False`: the preset's architecture with fresh (initial) weights,
    as keras-hub's `from_preset(..., load_weights=False)`.
    """
    # The zoo's classes are registered by the package import (zoo/__init__.py),
    # which runs before this module: presets import no model (keras-hub's preset_utils alike).
    folder, config, meta = verify(name_or_path)
    if not isinstance(config, dict) or "class_name" not in config:
        raise PresetIntegrityError(f"{folder / CONFIG_FILE} is not a serialized Keras object.")
    cls = preset_class(config)
    label = config.get("registered_name") or config["class_name"]
    if expected_class is not None and (cls is None or not issubclass(cls, expected_class)):
        raise PresetClassError(
            f"The preset at {folder} holds a {label} model, not a {expected_class.__name__}: load "
            f"it with zoo.load({os.fspath(name_or_path)!r})"
            + (f" or {cls.__name__}.from_preset(...)" if cls is not None and hasattr(cls, "from_preset") else "")
            + "."
        )
    config = {k: v for k, v in config.items() if k != "compile_config"}
    try:
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except (TypeError, ValueError) as e:
        raise PresetIntegrityError(f"Cannot rebuild the {label} model from {folder / CONFIG_FILE}: {e}") from e
    try:
        if load_weights:
            model.load_weights(folder / WEIGHTS_FILE)
    except (OSError, ValueError, KeyError) as e:
        raise PresetIntegrityError(
            f"{folder / WEIGHTS_FILE} does not fit the model of {CONFIG_FILE} ({label}): {e}"
        ) from e
    if compile and hasattr(model, "players"):
        model.compile()
    model.preset_metadata = meta
    return model


# -- writing -------------------------------------------------------------------------------
def _config(model):
    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)  # training state, not part of the preset
    return config


def _save_weights(model, path):
    """Weights only: the optimizer's slots are training state (BackupAndRestore keeps them)."""
    from zoo.core import keras_internals

    skip = [model.optimizer] if getattr(model, "optimizer", None) is not None else None
    keras_internals.save_weights_only(model, path, objects_to_skip=skip)


def save_preset(model, path, metadata=None):
    """Write `model` as a preset folder at `path`, atomically.

    `metadata`: what to record (description, dataset, split, command, figures ...);
    model class, backend, Keras version, creation time and the weights' sha256
    and size are added. Returns the folder's Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = _config(model)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")
        _save_weights(model, tmp / WEIGHTS_FILE)
        from zoo import __version__

        meta = {
            "model": config.get("registered_name") or config.get("class_name"),
            **(metadata or {}),
            "backend": keras.backend.backend(),
            "keras_version": keras.__version__,
            "zoo_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "sha256": sha256(tmp / WEIGHTS_FILE),
            "weights_bytes": (tmp / WEIGHTS_FILE).stat().st_size,
            "params": int(model.count_params()),
        }
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
        for f in PRESET_FILES:
            _fsync(tmp / f)
        _swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _swap_into_place(tmp, path):
    """Rename tmp to path; an existing preset is moved aside first and removed after."""
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
        os.rmdir(old)
        os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fsync(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def update_metadata(path, **fields):
    """Add or replace metadata fields of an existing preset (atomically; weights untouched)."""
    folder = Path(path)
    _check_files(folder)
    meta = {**_read_json(folder / METADATA_FILE, "metadata"), **fields}
    fd, tmp = tempfile.mkstemp(prefix=".metadata.", dir=folder)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(meta, indent=2, default=_json_default) + "\n")
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, folder / METADATA_FILE)
    return meta


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


__all__ = [
    "list_presets", "load", "save_preset", "verify", "parameter_count", "resolve", "load_metadata", "update_metadata",
    "PresetNotFoundError", "PresetIntegrityError", "PresetClassError", "SAVED_MODELS",
]
