"""Train the domain classifier whose features define the zoo's FID and KID.

    python -m recipes.train_classifier mnist --data ../shared/datasets/mnist.npz --epochs 3
    python -m recipes.train_classifier cifar10 --data ../shared/datasets/cifar10.zip --epochs 15

Writes saved_models/classifier_<dataset>/classifier.keras and metadata.json
(test accuracy, data, the command, backend, Keras version).
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import keras

from recipes.train import data_record  # the file's name and sha256, not its path
from zoo import data as zdata
from zoo.metrics.classifier import domain_classifier
from zoo.presets import SAVED_MODELS

SHAPES = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=sorted(SHAPES))
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--width", type=int, default=32, help="filters of the first conv pair")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    try:
        x, y, _ = zdata.load_arrays(args.data, "train")
        xt, yt, _ = zdata.load_arrays(args.data, "test")
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    model = domain_classifier(SHAPES[args.dataset], 10, width=args.width,
                              feature_dim=128 if args.dataset == "mnist" else 256,
                              name=f"classifier_{args.dataset}")
    steps = args.epochs * (len(x) // args.batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
    )
    train = zdata.make_dataset(x, y, batch_size=args.batch_size, seed=args.seed)
    if args.dataset == "cifar10":  # flips: the one augmentation that keeps CIFAR's statistics
        import tensorflow as tf

        train = train.map(lambda a, b: (tf.image.random_flip_left_right(a, seed=args.seed), b))
    test = zdata.make_dataset(xt, yt, batch_size=500, shuffle=False, drop_remainder=False)
    start = time.monotonic()
    model.fit(train, epochs=args.epochs, verbose=2)
    _, acc = model.evaluate(test, verbose=0)
    out = Path(args.out or SAVED_MODELS / f"classifier_{args.dataset}")
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save(tmp / "classifier.keras")
    meta = {
        "dataset": args.dataset, "data": data_record(args.data), "split": "train (all) / test (all)",
        "test_accuracy": round(float(acc), 4), "epochs": args.epochs,
        "feature_layer": "features", "feature_dim": int(model.get_layer("features").units),
        "data_range": [-1.0, 1.0], "train_seconds": round(time.monotonic() - start, 1),
        "command": "python -m recipes.train_classifier " + " ".join(sys.argv[1:] if argv is None else argv),
        "backend": keras.backend.backend(), "keras_version": keras.__version__,
        "sha256": hashlib.sha256((tmp / "classifier.keras").read_bytes()).hexdigest(),
    }
    (tmp / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
