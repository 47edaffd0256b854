"""The presets the app serves: found at start, each with what its model can do (the
capabilities its class declares, known without loading weights), loaded on first use,
and described by its model card and measured figures."""

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from demos.errors import UserError
from zoo.models.capabilities import capabilities_of
from zoo.presets import SAVED_MODELS, list_presets, preset_class

log = logging.getLogger("demos")

CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "digits": [str(i) for i in range(10)],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}


# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------
@dataclass
class PresetInfo:
    name: str
    path: Path
    model: str  # registered name or class name from config.json
    kind: str | None  # the zoo model's name for the page ("VAE-GAN"), or None (classifiers, ...)
    meta: dict = field(default_factory=dict)
    capabilities: tuple = ()  # capabilities_of(the model's class): ("generator", "autoencoder"), ...

    @property
    def description(self):
        return self.meta.get("description") or self.model

    @property
    def dataset(self):
        return self.meta.get("dataset")

    @property
    def label(self):
        return f"{self.name} ({self.kind or self.model})"


def _read_preset(name, path):
    config = json.loads((path / "config.json").read_text())
    try:
        meta = json.loads((path / "metadata.json").read_text())
    except (OSError, ValueError):
        meta = {}
    model = config.get("registered_name") or config.get("class_name", "?")
    cls = preset_class(config)  # the class alone: no weights loaded
    capabilities = capabilities_of(cls, meta) if cls is not None else ()
    kind = (getattr(cls, "display_name", None) or cls.__name__) if capabilities else None
    return PresetInfo(name, path, model, kind, meta, capabilities)


def discover_presets(preset_names=None, preset_dirs=None):
    """{name: PresetInfo} of the bundled presets and of those in `preset_dirs`
    (each a preset folder or a folder of presets); `preset_names` keeps only those.
    Returns (presets, problems): unreadable presets are skipped and reported."""
    found, problems = {}, []
    candidates = [(n, SAVED_MODELS / n) for n in list_presets()]
    for d in preset_dirs or ():
        d = Path(d).expanduser()
        if (d / "config.json").exists():
            candidates.append((d.name, d))
        elif d.is_dir():
            candidates += [(s.name, s) for s in sorted(d.iterdir())
                           if s.is_dir() and not s.name.startswith(".") and (s / "config.json").exists()]
        else:
            problems.append(f"{d}: not a folder")
    for name, path in candidates:
        if preset_names is not None and name not in preset_names:
            continue
        try:
            found[name] = _read_preset(name, path)
        except (OSError, ValueError) as e:
            problems.append(f"{name}: unreadable ({e})")
    return found, problems


class ModelStore:
    """Loads presets on first use (once, under a per-preset lock) and serialises each model's calls."""

    def __init__(self, presets):
        self.presets = presets
        self._models = {}
        self._locks = {name: threading.RLock() for name in presets}

    def info(self, name):
        if name not in self.presets:
            raise UserError(f"No preset {name!r} in this app; choose one of {', '.join(self.presets) or '(none)'}.")
        return self.presets[name]

    def lock(self, name):
        self.info(name)
        return self._locks[name]

    def get(self, name):
        info = self.info(name)
        with self._locks[name]:
            if name not in self._models:
                import zoo

                start = time.monotonic()
                self._models[name] = zoo.load(info.path)
                log.info("loaded %s in %.1f s", name, time.monotonic() - start)
            return self._models[name]

    def having(self, capability):
        """The presets whose model has `capability` ("generator", "autoencoder" or "hasher")."""
        return [n for n, p in self.presets.items() if capability in p.capabilities]


BUCKET = 64  # model calls get batches padded to a multiple of this: few shapes, few JAX/XLA compiles


def padded(fn, *arrays, bucket=BUCKET):
    """fn(*arrays) with the batch zero-padded to a multiple of `bucket` rows, output cut back.

    On JAX every new input shape compiles anew (seconds); padding keeps the
    shapes to a few, whatever number of images is asked for."""
    n = len(arrays[0])
    m = -(-n // bucket) * bucket
    if m == n:
        return fn(*arrays)
    pad = [np.concatenate([a, np.zeros((m - n, *a.shape[1:]), a.dtype)]) for a in arrays]
    return fn(*pad)[:n]


def class_names(info, num_classes):
    """The names of a conditional model's classes: its data set's, its metadata's, else "0", "1", ..."""
    names = CLASS_NAMES.get(info.dataset) or info.meta.get("class_names")
    if not names or len(names) != num_classes:
        names = [str(i) for i in range(num_classes)]
    return list(names)


# ---------------------------------------------------------------------------------------------
# Model cards
# ---------------------------------------------------------------------------------------------
def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def model_card(info):
    m = info.meta
    lines = [f"### {info.name}", "", f"**{info.description}**", "",
             f"| | |\n|---|---|\n| model | `{info.model}`{' (' + info.kind + ')' if info.kind else ''} |"]
    for key in ("dataset", "data", "split", "recipe", "backend", "trained_on_backend", "keras_version",
                "zoo_version", "created"):
        if m.get(key) is not None:
            lines.append(f"| {key.replace('_', ' ')} | {_fmt(m[key])} |")
    training = m.get("training") or {}
    labels = {"seconds": "training seconds (wall time of the recorded run"
                         + (f", {m['backend']} backend" if m.get("backend") else "") + ")",
              "steps": "training steps (optimizer steps of the recorded run)"}
    for key in ("seconds", "steps", "batch_size", "seed"):
        if training.get(key) is not None:
            lines.append(f"| {labels.get(key, 'training ' + key.replace('_', ' '))} | {_fmt(training[key])} |")
    if m.get("weights_bytes"):
        lines.append(f"| weights | {m['weights_bytes'] / 1e6:.1f} MB, sha256 `{str(m.get('sha256', ''))[:16]}...` |")
    lines.append("")
    if m.get("command"):
        lines += ["**Recipe** (reproduces this preset):", "", "```bash", m["command"], "```", ""]
    lines += ["**Measured figures**", "", figures_markdown(info, title=False), "", f"Folder: `{info.path}`"]
    return "\n".join(lines)


NO_PROTOCOL = "_not recorded in this preset's metadata_"


def figure_rows(info):
    """[(name, value text, how it was measured)] of a preset's metadata figures."""
    rows = []
    for name, f in (info.meta.get("figures") or {}).items():
        if isinstance(f, dict):
            value = _fmt(f.get("value"))
            if f.get("std_error") is not None:
                value += f" ± {_fmt(f['std_error'])} (standard error)"
            elif f.get("std") is not None:
                value += f" ± {_fmt(f['std'])} (std)"
            how = str(f.get("how") or "").replace("|", "/").replace("\n", " ") or NO_PROTOCOL
        else:
            value, how = _fmt(f), NO_PROTOCOL
        rows.append((name, value, how))
    return rows


def figures_markdown(info, title=True):
    """A preset's measured figures as a Markdown table, each with how it was measured."""
    rows = figure_rows(info)
    head = [f"**Measured figures of {info.name}** (from its metadata; recipe: "
            f"`{info.meta.get('command') or info.meta.get('recipe') or 'not recorded'}`)", ""] if title else []
    if not rows:
        return "\n".join(head + ["_No measured figures recorded in this preset's metadata._"])
    return "\n".join(head + ["| figure | value | how it was measured |", "|---|---|---|"]
                     + [f"| {n} | {v} | {h} |" for n, v, h in rows])


