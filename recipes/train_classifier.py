"""Train the domain classifier whose features define the zoo's FID and KID.

    python -m recipes.train_classifier cifar10 --data ../shared/datasets/cifar10.zip \
        --epochs 30 --width 48 --mixed-precision --backup runs/classifier_cifar10.backup
    python -m recipes.train_classifier mnist --data ../shared/datasets/mnist.npz --epochs 3

Trains on the recipes' training images only (CIFAR-10 train[:45000], MNIST
train[:50000]) and scores every epoch on the rest of the train split, the
validation images; the test split is scored once, at the end, and nothing is
chosen on it. CIFAR-10 is augmented with random 4-pixel translations (reflected
borders) and horizontal flips; the optimizer is SGD with Nesterov momentum,
weight decay and a cosine schedule with a one-epoch warm-up, all fixed before
training (none tuned here). `--mixed-precision` computes in bfloat16 (float32
weights; about 3x faster on a CPU with AMX); the preset is saved as a float32
model, so the features behind FID are computed in float32.

`--backup DIR` makes the run resumable: the model and optimizer are saved
(atomically) after every epoch, and each epoch's shuffle and augmentation are
seeded by (seed, epoch), so a resumed run replays the same batches.

Writes the preset `saved_models/classifier_<dataset>` (or `--out`): config,
weights, metadata.json with the accuracies, the validation curve, the split,
the command and the git commit.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np

from recipes.provenance import cpu_description, git_commit
from recipes.train import data_record  # the file's name and sha256, not its path
from zoo import data as zdata
from zoo import presets
from zoo.metrics.classifier import domain_classifier
from zoo.presets import SAVED_MODELS

SHAPES = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
TRAIN_IMAGES = {"mnist": 50000, "cifar10": 45000}  # the generators' recipes' training images
FEATURE_DIM = {"mnist": 128, "cifar10": 256}
PAD = 4  # the translation of the standard CIFAR-10 augmentation


def epoch_dataset(x, y, batch_size, seed, epoch, augment):
    """One epoch of (images in [-1, 1], labels): shuffled and augmented by stateless
    ops seeded by (seed, epoch), so that epoch `epoch` is the same on every run."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed * 100_003 + epoch)
    if augment:
        h, w = x.shape[1:3]

        def shift_and_flip(i, example):
            image, label = example
            s = tf.stack([tf.cast(seed * 100_003 + epoch, tf.int64), i])
            image = tf.pad(image, [[PAD, PAD], [PAD, PAD], [0, 0]], mode="REFLECT")
            image = tf.image.stateless_random_crop(image, (h, w, x.shape[3]), seed=s)
            return tf.image.stateless_random_flip_left_right(image, seed=s + 1), label

        ds = ds.enumerate().map(shift_and_flip, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(lambda a, b: (zdata.scale(a), b), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def accuracy(model, x, y):
    ds = zdata.make_dataset(x, y, batch_size=500, shuffle=False, drop_remainder=False)
    hits = sum(int(np.sum(np.argmax(keras.ops.convert_to_numpy(model(a, training=False)), -1) == b.numpy()))
               for a, b in ds)
    return hits / len(x)


def build(args, steps_per_epoch):
    model = domain_classifier(SHAPES[args.dataset], 10, width=args.width, feature_dim=FEATURE_DIM[args.dataset],
                              name=f"classifier_{args.dataset}")
    steps = args.epochs * steps_per_epoch
    warm = steps_per_epoch if args.epochs > 1 else 0
    lr = keras.optimizers.schedules.CosineDecay(0.0 if warm else args.lr, steps - warm,
                                                warmup_target=args.lr if warm else None, warmup_steps=warm)
    model.compile(
        optimizer=keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
    )
    return model


def rng_states(model):
    # Dropout's SeedGenerators: Keras saves none of them with a Functional model,
    # and a resumed run would drop other units than the uninterrupted one.
    return [v for v in model.variables if v.name == "seed_generator_state"]


def save_backup(model, state, folder):
    """Model + optimizer of epoch state["epoch"] in their own folder; state.json, which
    names that folder, is replaced last, so a cut at any point leaves a consistent pair."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{state['epoch']}.keras"
    model.save(folder / f".tmp{os.getpid()}.keras")
    os.replace(folder / f".tmp{os.getpid()}.keras", folder / name)
    (folder / "state.json.tmp").write_text(json.dumps(
        {**state, "model": name, "rng": [keras.ops.convert_to_numpy(v).tolist() for v in rng_states(model)]}))
    os.replace(folder / "state.json.tmp", folder / "state.json")
    for old in folder.glob("epoch-*.keras"):
        if old.name != name:
            old.unlink()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=sorted(SHAPES))
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--width", type=int, default=32, help="filters of the first conv pair")
    p.add_argument("--lr", type=float, default=0.05, help="SGD's peak learning rate")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--train-images", type=int, default=None,
                   help="train on train[:N], validate on train[N:] (default: the recipes' split)")
    p.add_argument("--mixed-precision", action="store_true", help="compute in bfloat16 (float32 weights)")
    p.add_argument("--backup", default=None, help="folder of the per-epoch backup (resumable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--stop-after-epoch", type=int, default=None, help=argparse.SUPPRESS)  # tests: a cut-off run
    args = p.parse_args(argv)
    command = "python -m recipes.train_classifier " + " ".join(sys.argv[1:] if argv is None else argv)
    keras.utils.set_random_seed(args.seed)
    try:
        x_all, y_all, _ = zdata.load_arrays(args.data, "train")
        xt, yt, _ = zdata.load_arrays(args.data, "test")
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    n = args.train_images or TRAIN_IMAGES[args.dataset]
    if not 0 < n < len(x_all):
        sys.exit(f"error: --train-images {n} leaves no validation images of the {len(x_all)} in the train split")
    x, y, xv, yv = x_all[:n], y_all[:n], x_all[n:], y_all[n:]
    steps_per_epoch = len(x) // args.batch_size
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    backup = Path(args.backup) if args.backup else None
    state = {"epoch": 0, "curve": [], "train_seconds": 0.0, "command": command}
    if backup is not None and (backup / "state.json").exists():
        state = json.loads((backup / "state.json").read_text())
        model = keras.saving.load_model(backup / state.pop("model"))
        for v, value in zip(rng_states(model), state.pop("rng"), strict=True):
            v.assign(np.asarray(value, dtype=v.dtype))
        print(f"resumed from {backup} after epoch {state['epoch']}", flush=True)
    else:
        model = build(args, steps_per_epoch)
    for epoch in range(state["epoch"], args.epochs):
        start = time.monotonic()
        hist = model.fit(epoch_dataset(x, y, args.batch_size, args.seed, epoch, args.dataset == "cifar10"),
                         initial_epoch=epoch, epochs=epoch + 1, verbose=0)
        val = accuracy(model, xv, yv)
        state["train_seconds"] += time.monotonic() - start
        state["epoch"] = epoch + 1
        state["curve"].append({"epoch": epoch + 1, "step": int(model.optimizer.iterations),
                               "train_loss": round(float(hist.history["loss"][-1]), 4),
                               "validation_accuracy": round(val, 4)})
        print(json.dumps(state["curve"][-1]), f"{state['train_seconds']:.0f} s", flush=True)
        if backup is not None:
            save_backup(model, state, backup)
        if state["epoch"] == args.stop_after_epoch:
            return None
    # The preset computes in float32 whatever the training policy was.
    keras.mixed_precision.set_global_policy("float32")
    final = domain_classifier(SHAPES[args.dataset], 10, width=args.width, feature_dim=FEATURE_DIM[args.dataset],
                              name=f"classifier_{args.dataset}")
    final.set_weights(model.get_weights())
    val, test = accuracy(final, xv, yv), accuracy(final, xt, yt)
    meta = {
        "description": f"Domain classifier for {args.dataset} FID/KID features ({FEATURE_DIM[args.dataset]}-d), "
                       f"test accuracy {test:.4f}",
        "dataset": args.dataset, "data": data_record(args.data),
        "split": f"train[:{n}] for training; train[{n}:] ({len(xv)} images) for the validation curve; "
                 f"the test split ({len(xt)} images) scored once, at the end",
        "test_accuracy": round(test, 4), "validation_accuracy": round(val, 4), "epochs": args.epochs,
        "steps": int(model.optimizer.iterations), "steps_asked": args.epochs * steps_per_epoch,
        "feature_layer": "features", "feature_dim": FEATURE_DIM[args.dataset], "data_range": [-1.0, 1.0],
        "training": ("random 4-pixel translations (reflected) and flips, " if args.dataset == "cifar10" else "")
                    + f"SGD (Nesterov 0.9, weight decay {args.weight_decay}), peak lr {args.lr}, one-epoch "
                      f"warm-up then cosine, batch {args.batch_size}, "
                    + ("mixed bfloat16" if args.mixed_precision else "float32") + "; nothing tuned",
        "validation_curve": state["curve"], "train_seconds": round(state["train_seconds"], 1),
        "command": state["command"], "git_commit": git_commit(__file__),
        "device": f"{keras.backend.backend()} on {cpu_description()}",
        "figures": {
            "test_accuracy": {"value": round(test, 4),
                              "how": f"top-1 accuracy on the whole {args.dataset} test split ({len(xt)} images), "
                                     "measured once"},
            "validation_accuracy": {"value": round(val, 4),
                                    "how": f"top-1 accuracy on train[{n}:] ({len(xv)} images, never trained on)"},
        },
    }
    out = presets.save_preset(final, Path(args.out or SAVED_MODELS / f"classifier_{args.dataset}"), meta)
    print(json.dumps({k: meta[k] for k in ("test_accuracy", "validation_accuracy", "steps", "train_seconds")}))
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
