"""Train a zoo model from a named recipe.

    python -m recipes.train dcgan_mnist --data ../shared/datasets/mnist.npz --minutes 3

Writes, under --out (default runs/<recipe>): `model.keras` (atomically),
`samples.png`, TensorBoard logs in `logs/`, and a `backup/` that lets an
interrupted run resume where it stopped (run the same command again).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import keras

import zoo
from zoo import data as zdata
from zoo.callbacks import TimeLimit
from zoo.visualize import save_image_grid

# name -> (data source kind, how to build the model, conditional?)
RECIPES = {
    "gan_mlp_mnist": dict(
        image_shape=(28, 28, 1), build=lambda c: zoo.GAN.paper_mlp((28, 28, 1), seed=c["seed"]),
        value_range=(0.0, 1.0), labels=False, lr=2e-4,
    ),
    "dcgan_mnist": dict(
        image_shape=(28, 28, 1), build=lambda c: zoo.GAN.dcgan((28, 28, 1), seed=c["seed"]),
        value_range=(-1.0, 1.0), labels=False, lr=2e-4,
    ),
    "cdcgan_mnist": dict(
        image_shape=(28, 28, 1),
        build=lambda c: zoo.GAN.dcgan((28, 28, 1), num_classes=10, seed=c["seed"]),
        value_range=(-1.0, 1.0), labels=True, lr=2e-4,
    ),
    "dcgan_cifar10": dict(
        image_shape=(32, 32, 3), build=lambda c: zoo.GAN.dcgan((32, 32, 3), seed=c["seed"]),
        value_range=(-1.0, 1.0), labels=False, lr=2e-4,
    ),
    "cdcgan_cifar10": dict(
        image_shape=(32, 32, 3),
        build=lambda c: zoo.GAN.dcgan((32, 32, 3), num_classes=10, seed=c["seed"]),
        value_range=(-1.0, 1.0), labels=True, lr=2e-4,
    ),
}


def atomic_save(model, path):
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    model.save(tmp)
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", choices=sorted(RECIPES), metavar="RECIPE", help=f"one of {sorted(RECIPES)}")
    p.add_argument("--data", required=True, help=".npz, image folder/zip, or tfds name")
    p.add_argument("--out", default=None, help="output folder (default runs/RECIPE)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--minutes", type=float, default=None, help="stop after this much training time")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="batches per epoch (default: one pass)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", type=int, default=1)
    args = p.parse_args(argv)

    recipe = RECIPES[args.recipe]
    out = Path(args.out or Path("runs") / args.recipe)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    try:
        x, y, _ = zdata.load_arrays(args.data, "train")
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    if x.shape[1:] != recipe["image_shape"]:
        sys.exit(f"{args.data} holds images of shape {x.shape[1:]}; {args.recipe} needs {recipe['image_shape']}.")
    ds = zdata.make_dataset(
        x, y if recipe["labels"] else None, batch_size=args.batch_size,
        value_range=recipe["value_range"], seed=args.seed,
    )
    model = recipe["build"](vars(args))
    model.compile(
        d_optimizer=keras.optimizers.Adam(recipe["lr"], beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(recipe["lr"], beta_1=0.5),
    )
    callbacks = [
        keras.callbacks.BackupAndRestore(str(out / "backup")),
        keras.callbacks.TensorBoard(str(out / "logs"), update_freq=100),
        keras.callbacks.TerminateOnNaN(),
    ]
    if args.minutes:
        callbacks.append(TimeLimit(args.minutes))
    start = time.monotonic()
    history = model.fit(
        ds, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
        callbacks=callbacks, verbose=args.verbose,
    )
    seconds = time.monotonic() - start

    atomic_save(model, out / "model.keras")
    labels = (list(range(10)) * 10)[:100] if model.num_classes else None
    grid = save_image_grid(model.generate(100, seed=args.seed, labels=labels), out / "samples.png", cols=10)
    summary = {
        "recipe": args.recipe, "backend": keras.backend.backend(), "seconds": round(seconds, 1),
        "steps": int(model.optimizer.iterations.numpy()),
        "last_logs": {k: float(v[-1]) for k, v in history.history.items()},
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"Samples: {grid}\nModel: {out / 'model.keras'}")


if __name__ == "__main__":
    main()
