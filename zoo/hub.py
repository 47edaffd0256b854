"""Publishing presets as keras-hub does: model cards and `upload_preset`.

A preset folder is published as it is (config.json, model.weights.h5,
metadata.json), with a model card, README.md, whose YAML block is what the
Hugging Face Hub reads (library, tags, data set, metrics) and whose body says
what metadata.json holds: the recipe command, each figure with how it was
measured, and the sample grid when the folder has one.

    >>> zoo.hub.write_model_card("saved_models/dcgan_mnist")     # README.md beside the weights
    >>> zoo.upload_preset("hf://me/dcgan-mnist", "saved_models/dcgan_mnist")

`upload_preset` needs `huggingface_hub` (optional: `pip install huggingface_hub`)
and a token (`huggingface-cli login` or `HF_TOKEN`). It writes the card if the
repository has none, and never overwrites one it has.
"""

import os
import shutil
import tempfile
from pathlib import Path

from zoo import presets
from zoo.presets import bundled_of_class  # noqa: F401  (its old home)

CARD_FILE = "README.md"
SAMPLES_FILE = "samples.png"
DATASETS = {"mnist": "ylecun/mnist", "cifar10": "uoft-cs/cifar10"}
TAGS = {
    "GAN": ["gan", "generative-adversarial-network", "image-generation"],
    "VAEGAN": ["vae-gan", "vae", "gan", "image-generation"],
    "VAE": ["vae", "image-generation"],
    "AVB": ["adversarial-variational-bayes", "vae", "image-generation"],
    "DSHGAN": ["deep-hashing", "image-retrieval", "gan"],
}


def _kind(meta):
    return str(meta.get("model", "")).split(">")[-1]


def _is_hasher(meta):
    """Whether the preset's model class (its registered name in the metadata) is a Hasher."""
    import keras

    from zoo.models.capabilities import capabilities_of

    cls = keras.saving.get_registered_object(str(meta.get("model", "")))
    return isinstance(cls, type) and "hasher" in capabilities_of(cls)


def card_metadata(meta):
    """The YAML block of a preset's model card, as a dict (Hugging Face's model card keys)."""
    kind = _kind(meta)
    dataset = meta.get("dataset")
    results = []
    for key, fig in (meta.get("figures") or {}).items():
        if isinstance(fig, dict) and "value" in fig:
            results.append({"type": key, "value": fig["value"], "name": key, "protocol": fig.get("how", "")})
    block = {
        "library_name": "keras",
        "tags": ["keras", "keras-gan-zoo", *TAGS.get(kind, []), *([dataset] if dataset else [])],
        "license": "apache-2.0",
    }
    if dataset in DATASETS:
        block["datasets"] = [DATASETS[dataset]]
    if results:
        block["model-index"] = [{
            "name": meta.get("recipe") or kind,
            "results": [{
                "task": {"type": "image-feature-extraction" if _is_hasher(meta) else "unconditional-image-generation"},
                "dataset": {"name": dataset or "unknown", "type": DATASETS.get(dataset, dataset or "unknown"),
                            "split": "test"},
                "metrics": results,
            }],
        }]
    return block


def model_card(folder, name=None):
    """The model card (README.md text) of a preset folder, from its metadata.json;
    `name`: the preset's name in it (default: the folder's)."""
    import yaml

    folder = Path(folder)
    meta = presets.load_metadata(folder)
    kind = _kind(meta)
    name = name or folder.name
    lines = ["---", yaml.safe_dump(card_metadata(meta), sort_keys=False, width=1000).rstrip(), "---", "",
             f"# {name}", "", meta.get("description", f"A {kind} preset of keras-gan-zoo."), ""]
    lines += ["## Use", "", "```python", "import zoo", "",
              f'model = zoo.{kind}.from_preset("{name}")   # or zoo.load("hf://OWNER/REPO")']
    if _is_hasher(meta):
        lines.append("codes = model.hash(images)               # uint8 images (n, h, w, c) -> packed bits")
    else:
        lines.append("images = model.generate(16, seed=0)      # floats in [0, 1]")
    lines += ["```", ""]
    figures = meta.get("figures") or {}
    if figures:
        lines += ["## Figures", "", "| figure | value | how it was measured |", "|---|---|---|"]
        for key, fig in figures.items():
            if isinstance(fig, dict):
                value = fig.get("value")
                extra = "".join(f" (+- {fig[k]})" for k in ("std_error", "std") if k in fig)
                lines.append(f"| {key} | {value}{extra} | {str(fig.get('how', '')).replace('|', '/')} |")
        lines.append("")
    lines += ["## Training", ""]
    for label, key in (("Data set", "dataset"), ("Split", "split"), ("Recipe", "recipe"),
                       ("Command", "command"), ("Reproduce", "reproduce")):
        if meta.get(key):
            value = meta[key]
            lines.append(f"- {label}: " + (f"`{value}`" if key in ("command", "reproduce") else str(value)))
    data = meta.get("data")
    if isinstance(data, dict):
        lines.append(f"- Data file: {data.get('name')}" + (f" (sha256 {data['sha256']})" if data.get("sha256") else ""))
    training = meta.get("training") or {}
    if training:
        lines.append(f"- Steps: {training.get('steps')}, batch size {training.get('batch_size')}, "
                     f"seed {training.get('seed')}, {training.get('seconds')} s")
    lines.append(f"- Saved with Keras {meta.get('keras_version')} on the {meta.get('backend')} backend "
                 f"(loads on TensorFlow, JAX and PyTorch); weights sha256 {meta.get('sha256')}")
    lines.append("")
    if (folder / SAMPLES_FILE).exists():
        lines += ["## Samples", "", f"![samples]({SAMPLES_FILE})", ""]
    if (folder / "precision_recall.png").exists():  # recipes.evaluate --write, for a hasher
        lines += ["## Precision and recall", "", "Hamming-radius retrieval on the full protocol "
                  "(`precision_recall.json` holds the points).", "", "![precision-recall](precision_recall.png)", ""]
    lines += ["Everything above is read from `metadata.json`, written by the recipe that trained the preset.", ""]
    return "\n".join(lines)


def write_model_card(folder, name=None):
    """Write README.md (the model card) into a preset folder, atomically; returns its path."""
    folder = Path(folder)
    text = model_card(folder, name)
    fd, tmp = tempfile.mkstemp(prefix=".README.", dir=folder)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, folder / CARD_FILE)
    return folder / CARD_FILE


def read_card_metadata(text):
    """The YAML block of a model card's text, as a dict."""
    import yaml

    if not text.startswith("---\n"):
        raise ValueError("A model card starts with a '---' YAML block.")
    end = text.index("\n---", 4)
    return yaml.safe_load(text[4:end])


def upload_preset(uri, preset, token=None, private=None):
    """Upload a preset folder to `hf://owner/repo[/subfolder]` with huggingface_hub.

    The preset is verified first (files present, weights matching their
    checksum). A model card is added if the repository has none. Returns the
    repository id."""
    folder, _, _ = presets.verify(preset)
    uri = os.fspath(uri)
    if not uri.startswith(presets.HF_PREFIX):
        raise ValueError(f"upload_preset takes an {presets.HF_PREFIX}owner/repo address; got {uri!r}.")
    parts = uri[len(presets.HF_PREFIX):].strip("/").split("/")
    if len(parts) < 2 or not all(parts[:2]):
        raise ValueError(f"A Hugging Face address is {presets.HF_PREFIX}owner/repo[/subfolder]; got {uri!r}.")
    repo_id, sub = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise ImportError("upload_preset needs huggingface_hub: pip install huggingface_hub") from None
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    has_card = CARD_FILE in set(api.list_repo_files(repo_id, repo_type="model"))
    with tempfile.TemporaryDirectory() as staging:
        staged = Path(staging) / folder.name
        shutil.copytree(folder, staged, ignore=shutil.ignore_patterns(".*"))
        if has_card:
            (staged / CARD_FILE).unlink(missing_ok=True)  # never replace the repository's own card
        elif not (staged / CARD_FILE).exists():
            (staged / CARD_FILE).write_text(model_card(folder))
        api.upload_folder(repo_id=repo_id, folder_path=str(staged), path_in_repo=sub or None,
                          repo_type="model", commit_message=f"Upload the keras-gan-zoo preset {folder.name}")
    return repo_id


__all__ = ["model_card", "write_model_card", "write_sample_grid", "card_metadata", "read_card_metadata", "upload_preset",
           "bundled_of_class"]


def write_sample_grid(folder, n=64, seed=0):
    """samples.png in a preset folder: n samples for a fixed seed (class i % C for a
    conditional model); None for a model that does not generate (a classifier)."""
    import numpy as np

    from zoo.callbacks import model_samples
    from zoo.visualize import save_image_grid

    folder = Path(folder)
    from zoo.models.capabilities import capabilities_of

    model = presets.load(folder)
    if "generator" not in capabilities_of(model, model.preset_metadata):  # none, or never trained
        return None
    images = model_samples(model, n=n, seed=seed)
    if np.asarray(images).ndim != 4:
        return None
    classes = getattr(model, "num_classes", None)
    return save_image_grid(images, folder / SAMPLES_FILE, cols=classes if classes and n % classes == 0 else 8)
