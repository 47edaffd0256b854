"""Hyperparameter search for a zoo model with keras-tuner.

    python -m recipes.tune dcgan --data ../shared/datasets/mnist.npz --tuner random --max-trials 10 \\
        --epochs 2 --steps-per-epoch 200 --dir tuning --write-preset runs/dcgan_tuned

Running the same command again resumes the search in --dir: finished trials are
kept, and only the remaining ones run. The objective is read from the fit logs:
domain FID of samples against 2,000 held-out training images (val_fid) for the
generators, the validation negative ELBO (val_loss) for the VAE, the AIS negative
log-likelihood of 200 held-out binarised images (val_nll) for AVB, and for
DSH-GAN (`--data` a labelled image folder/zip/npz, e.g. CIFAR-10) the MAP
(val_map) of 200 held-out labelled queries against 800 other held-out
labelled images; it trains on the rest, with the seeded protocol's share of
labels (500 a class) and the other images unlabelled.

    python -m recipes.tune dshgan --data ../shared/datasets/cifar10.zip --max-trials 10 \
        --epochs 2 --steps-per-epoch 200
"""

import argparse
import os
import shlex
import sys
from pathlib import Path

import keras

from zoo import data as zdata
from zoo.metrics import FeatureExtractor, InceptionExtractor
from zoo.tuning import AVBHyperModel, DSHGANHyperModel, GANHyperModel, VAEGANHyperModel, VAEHyperModel, make_tuner

MODELS = ("dcgan", "gan_mlp", "vaegan", "vae", "avb", "dshgan")
DATASETS = {(28, 28, 1): "mnist", (32, 32, 3): "cifar10"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=MODELS)
    p.add_argument("--data", required=True)
    p.add_argument("--tuner", default="random", choices=("random", "bayesian", "hyperband"))
    p.add_argument("--max-trials", type=int, default=10)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--objective", default=None, help="a name in the fit logs (default per model)")
    p.add_argument("--dir", default="tuning")
    p.add_argument("--write-best", default=None, help="save the best trial's model here (.keras)")
    p.add_argument("--write-preset", default=None, metavar="DIR",
                   help="write the best trial's model as a preset folder (zoo.load(DIR) loads it)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    try:
        x, y, _ = zdata.load_arrays(args.data, "train")
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    shape = tuple(x.shape[1:])
    if args.model == "dshgan":
        return tune_dshgan(args, x, y, shape, argv)
    if args.model == "avb":
        return tune_avb(args, x, shape, argv)
    val_idx, train_idx = zdata.holdout(len(x), 2000, seed=args.seed)
    x_val, x_train = x[val_idx], x[train_idx]
    data_range = (0.0, 1.0) if args.model == "gan_mlp" else (-1.0, 1.0)
    if args.model == "vae":
        hypermodel = VAEHyperModel(shape)
    else:
        # Inception FID when the user has the weights ($ZOO_INCEPTION_WEIGHTS); domain FID otherwise.
        extractor = InceptionExtractor.from_env() or FeatureExtractor.load(DATASETS.get(shape, "mnist"))
        if args.model == "vaegan":
            hypermodel = VAEGANHyperModel(shape, val_images=x_val, extractor=extractor)
        else:
            arch = "dcgan" if args.model == "dcgan" else "paper_mlp"
            hypermodel = GANHyperModel(shape, architecture=arch, val_images=x_val, extractor=extractor)
    try:
        tuner = make_tuner(hypermodel, args.tuner, args.max_trials, args.dir, args.model,
                           objective=args.objective, seed=args.seed, max_epochs=args.epochs)
    except ValueError as e:
        sys.exit(f"error: {e}")
    train = zdata.make_dataset(x_train, batch_size=args.batch_size, data_range=data_range, seed=args.seed)
    fit_kwargs = dict(epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, verbose=2)
    if args.model == "vae":
        fit_kwargs["validation_data"] = zdata.make_dataset(x_val, batch_size=500, data_range=data_range,
                                                           shuffle=False, drop_remainder=False)
    tuner.search(train, **fit_kwargs)
    tuner.results_summary(num_trials=5)
    _write_best(tuner, args, argv)


def tune_dshgan(args, x, y, shape, argv=None):
    if y is None:
        sys.exit("error: DSH-GAN needs labelled data (an image folder/zip of class folders, or an npz).")
    # 100 labelled images a class held out for validation: 20 queries, 80 database.
    val, rest = zdata.split_per_class(y, 100, seed=args.seed)
    val_q, val_db = zdata.split_per_class(y[val], 20, seed=args.seed + 1)
    labelled, unlabelled = zdata.split_per_class(y[rest], 500, seed=args.seed + 2)
    labelled, unlabelled = rest[labelled], rest[unlabelled]
    validation = (x[val][val_q], y[val][val_q], x[val][val_db], y[val][val_db])
    hypermodel = DSHGANHyperModel(shape, int(y.max()) + 1, validation=validation)
    try:
        tuner = make_tuner(hypermodel, args.tuner, args.max_trials, args.dir, args.model,
                           objective=args.objective, seed=args.seed, max_epochs=args.epochs)
    except ValueError as e:
        sys.exit(f"error: {e}")
    train = zdata.pipeline.semi_supervised_dataset(x[labelled], y[labelled], x[unlabelled],
                                                   args.batch_size, 0.5, seed=args.seed)
    tuner.search(train, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch or 200, verbose=2)
    tuner.results_summary(num_trials=5)
    _write_best(tuner, args, argv)


def tune_avb(args, x, shape, argv=None):
    # Binarised with a fixed threshold (pixels > 127), Bernoulli likelihood in [0, 1].
    xb = (x > 127).astype("float32")
    val_idx, train_idx = zdata.holdout(len(xb), 2000, seed=args.seed)
    hypermodel = AVBHyperModel(shape, val_data=xb[val_idx[:200]])
    try:
        tuner = make_tuner(hypermodel, args.tuner, args.max_trials, args.dir, args.model,
                           objective=args.objective, seed=args.seed, max_epochs=args.epochs)
    except ValueError as e:
        sys.exit(f"error: {e}")
    import tensorflow as tf

    train = (tf.data.Dataset.from_tensor_slices(xb[train_idx]).shuffle(len(train_idx), seed=args.seed)
             .batch(args.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    tuner.search(train, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                 validation_data=xb[val_idx], verbose=2)
    tuner.results_summary(num_trials=5)
    _write_best(tuner, args, argv)


def _write_best(tuner, args, argv):
    """--write-best (a .keras file) and --write-preset (a preset folder)."""
    if not (args.write_best or args.write_preset):
        return
    model = tuner.get_best_models(1)[0]
    if args.write_best:
        _save_atomically(model, args.write_best)
    if args.write_preset:
        from recipes.train import data_record
        from zoo import save_preset

        trial = tuner.oracle.get_best_trials(1)[0]
        objective = tuner.oracle.objective
        command = "python -m recipes.tune " + " ".join(
            shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
        shape = tuple(getattr(model, "data_shape", ()))
        meta = {
            "description": f"{args.model}: the best of a {args.tuner} search ({len(tuner.oracle.trials)} trials)",
            "dataset": DATASETS.get(shape, str(args.data)),
            "data": data_record(args.data),  # the file's name and sha256, not its path
            "split": "train split, less the held-out validation images the objective is measured on",
            "command": command,
            "hyperparameters": trial.hyperparameters.values,
            "figures": {objective.name: {
                "value": round(float(trial.score), 4),
                "how": f"the search's objective ({objective.direction}) on held-out training images, "
                       "as recipes.tune measures it (see its docstring)",
            }},
        }
        print(f"Best model as a preset: {save_preset(model, args.write_preset, meta)}")


def _save_atomically(model, path):
    out = Path(path)
    tmp = out.with_name(f".{out.stem}.tmp{os.getpid()}{out.suffix}")
    model.save(tmp)
    os.replace(tmp, out)
    print(f"Best model: {out}")


if __name__ == "__main__":
    main()
