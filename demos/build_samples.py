"""Build the demo's shipped data samples (demos/data/*.npz) from the full data sets.

    python -m demos.build_samples                       # from ../shared/datasets
    python -m demos.build_samples --source DIR --out demos/data

Each sample is a seeded, class-balanced draw from a data set's train and test
splits, saved as a compressed .npz of uint8 in the keras.datasets layout
(`x_train, y_train, x_test, y_test`, so `zoo.data.load_arrays` and
`python -m demos --database` read it too) with `class_names`, the `seed`, the
source file's name and `source_sha256`, and, per split, where each image came
from (`train_source`/`test_source`: the zip member's name for CIFAR-10, the
position in the source's `x_train`/`x_test` for MNIST).
`demos/data/samples.json` records the same, plus each file's sha256 and size.

The demo uses the test samples as its offline retrieval database (the
hashing presets search images of their own data set) and the train samples for
the "nearest training images" view of the Generate tab. Images are the source's
pixels, unchanged: CIFAR-10 decoded from the JPEG export in cifar10.zip with
PIL (as zoo.data.load_arrays decodes it), MNIST as stored in mnist.npz.
"""

import argparse
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

SEED = 0
# Per class: kept small, the CIFAR-10 pixels barely compress (about 2.9 MB a thousand images).
COUNTS = {"cifar10": {"train": 100, "test": 100}, "mnist": {"train": 500, "test": 200}}
DEFAULT_SOURCE = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
DEFAULT_OUT = Path(__file__).resolve().parent / "data"


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def draw(labels, per_class, rng):
    """Positions of `per_class` items of each class (seeded, without replacement), shuffled."""
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)]
    return rng.permutation(np.concatenate(picks))


def cifar10(path, counts, seed):
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = {}
    with zipfile.ZipFile(path) as z:
        members = sorted(n for n in z.namelist() if n.lower().endswith((".jpg", ".jpeg", ".png")))
        classes = sorted({n.split("/")[-2] for n in members})
        for split in ("train", "test"):
            names = [n for n in members if n.split("/")[-3] == split]
            labels = np.array([classes.index(n.split("/")[-2]) for n in names])
            keep = draw(labels, counts[split], rng)
            images = []
            for i in keep:
                with Image.open(io.BytesIO(z.read(names[i]))) as im:
                    images.append(np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im))
            out[split] = (np.stack(images).astype(np.uint8), labels[keep].astype(np.uint8),
                          np.array([names[i] for i in keep]))
    return out, classes


def mnist(path, counts, seed):
    rng = np.random.default_rng(seed)
    out = {}
    with np.load(path) as d:
        for split in ("train", "test"):
            x, y = d[f"x_{split}"], d[f"y_{split}"].astype(np.int64)
            keep = draw(y, counts[split], rng)
            out[split] = (x[keep][..., None].astype(np.uint8), y[keep].astype(np.uint8), keep.astype(np.int32))
    return out, [str(i) for i in range(10)]


BUILDERS = {"cifar10": ("cifar10.zip", cifar10), "mnist": ("mnist.npz", mnist)}


def build(source=DEFAULT_SOURCE, out=DEFAULT_OUT, seed=SEED, names=tuple(BUILDERS)):
    source, out = Path(source), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record_path = out / "samples.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    for name in names:
        filename, builder = BUILDERS[name]
        src = source / filename
        src_sha = sha256_of(src)
        splits, classes = builder(src, COUNTS[name], seed)
        target = out / f"{name}_sample.npz"
        arrays = {}
        for split, (x, y, where) in splits.items():
            arrays[f"x_{split}"], arrays[f"y_{split}"], arrays[f"{split}_source"] = x, y, where
        np.savez_compressed(target, **arrays, class_names=np.array(classes), seed=np.int64(seed),
                            source=np.array(filename), source_sha256=np.array(src_sha))
        record[name] = {
            "file": target.name,
            "bytes": target.stat().st_size,
            "sha256": sha256_of(target),
            "source": filename,
            "source_sha256": src_sha,
            "seed": seed,
            "draw": "numpy.random.default_rng(seed): per split (train, then test), per class in label order, "
                    "rng.choice(positions of that class, n, replace=False); then rng.permutation of the split",
            "splits": {s: {"images": int(len(splits[s][0])), "per_class": COUNTS[name][s],
                           "shape": list(splits[s][0].shape[1:])} for s in splits},
            "class_names": classes,
            "command": "python -m demos.build_samples",
        }
        print(f"{target}: {target.stat().st_size / 1e6:.2f} MB, "
              + ", ".join(f"{s} {len(v[0])}" for s, v in splits.items()) + f" (seed {seed}, {filename} {src_sha[:12]})")
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m demos.build_samples", description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default=str(DEFAULT_SOURCE), help="folder with cifar10.zip and mnist.npz")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--only", action="append", choices=sorted(BUILDERS))
    args = p.parse_args(argv)
    build(args.source, args.out, args.seed, args.only or tuple(BUILDERS))


if __name__ == "__main__":
    main()
