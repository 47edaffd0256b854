"""A keras-tuner search of the MNIST DCGAN's learning rates, against the defaults.

    python -m bench.tune_dcgan_mnist --trials 10 --steps 600

Random search over each player's Adam learning rate (log-uniform in [1e-5, 1e-3];
beta_1 = 0.5, k = 1, latent 100 fixed), every trial trained for the same number of
steps and scored by `val_fid`: domain FID of 1,000 samples against 2,000 images
held out from MNIST's training set. Then the best trial's model, as the search
trained it (`tuner.get_best_models`, not retrained), and a model with the default
learning rates (2e-4 for both players, DCGAN's) trained once for the same number
of steps, are both measured on the test set: domain FID / KID of 5,000 samples
against the 10,000 test images (bundled MNIST classifier's features).
"""

import argparse
import json
import time
from pathlib import Path

import keras
import keras_tuner as kt

from zoo import data as zdata
from zoo.metrics import FeatureExtractor, fid_kid
from zoo.tuning import GANHyperModel, make_tuner

RESULTS = Path(__file__).resolve().parent / "results"
TRIAL_STEPS = []  # each trial's model's own step counter at the end of its fit


class CountSteps(keras.callbacks.Callback):
    # keras-tuner deep-copies callbacks per trial: the list is a module global.
    def on_train_end(self, logs=None):
        TRIAL_STEPS.append(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/datasets/mnist.npz"))
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--steps", type=int, default=600, help="training steps per trial")
    p.add_argument("--dir", default="/tmp/zoo_tune_dcgan_mnist")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    start = time.time()

    x, _, _ = zdata.load_arrays(args.data, "train")
    x_test, _, _ = zdata.load_arrays(args.data, "test")
    val_idx, train_idx = zdata.holdout(len(x), 2000, seed=args.seed)
    extractor = FeatureExtractor.load("mnist")
    hypermodel = GANHyperModel((28, 28, 1), beta_1s=(0.5,), d_steps=(1,), latent_dims=(100,),
                               val_images=x[val_idx], extractor=extractor, fid_samples=1000)
    tuner = make_tuner(hypermodel, "random", args.trials, args.dir, "dcgan_lr", seed=args.seed)
    train = zdata.make_dataset(x[train_idx], batch_size=64, seed=args.seed, repeat=True)
    epochs, per_epoch = 2, args.steps // 2
    tuner.search(train, epochs=epochs, steps_per_epoch=per_epoch, verbose=0, callbacks=[CountSteps()])
    search_minutes = (time.time() - start) / 60

    trials = sorted(tuner.oracle.trials.values(), key=lambda t: t.score)
    best_model = tuner.get_best_models(1)[0]
    default_hp = kt.HyperParameters()
    default_hp.Fixed("d_learning_rate", 2e-4)
    default_hp.Fixed("g_learning_rate", 2e-4)
    keras.utils.set_random_seed(args.seed)
    default_model = hypermodel.build(default_hp)
    default_model.fit(train, epochs=epochs, steps_per_epoch=per_epoch, verbose=0)
    default_steps = int(keras.ops.convert_to_numpy(default_model.optimizer.iterations))

    rows = []
    for name, model, lrs in (
        ("best trial", best_model, trials[0].hyperparameters.values),
        ("default (2e-4, 2e-4)", default_model, {"d_learning_rate": 2e-4, "g_learning_rate": 2e-4}),
    ):
        figures = fid_kid(model.generate(5000, seed=1), x_test, extractor)
        rows.append({"model": name, "d_lr": lrs["d_learning_rate"], "g_lr": lrs["g_learning_rate"],
                     "test_fid": figures["fid"], "test_kid": figures["kid"]})

    lines = [f"DCGAN MNIST learning-rate search: {args.trials} random trials x {args.steps} steps "
             f"(batch 64), {search_minutes:.1f} min for the search on backend {keras.backend.backend()}.",
             "val_fid: 1,000 samples vs 2,000 held-out train images; test: 5,000 samples vs 10,000 test "
             "images, bundled MNIST classifier features.",
             f"steps asked per trial {epochs * per_epoch}; run, by each trial's model's own counter: "
             f"{TRIAL_STEPS}; the default model: {default_steps}. The best trial's model is the one "
             "the search trained (tuner.get_best_models), not retrained.", "", "trials (by val_fid):",
             f"{'d_lr':>10} {'g_lr':>10} {'val_fid':>8}"]
    for t in trials:
        hp = t.hyperparameters.values
        lines.append(f"{hp['d_learning_rate']:>10.2e} {hp['g_learning_rate']:>10.2e} {t.score:>8.2f}")
    lines += ["", f"{'model':<22} {'d_lr':>10} {'g_lr':>10} {'test FID':>9} {'test KID':>9}"]
    for r in rows:
        lines.append(f"{r['model']:<22} {r['d_lr']:>10.2e} {r['g_lr']:>10.2e} "
                     f"{r['test_fid']:>9.2f} {r['test_kid']:>9.4f}")
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tune_dcgan_mnist.txt").write_text(table + "\n")
    (RESULTS / "tune_dcgan_mnist.json").write_text(json.dumps(
        {"args": vars(args), "rows": rows, "trial_steps": TRIAL_STEPS, "default_steps": default_steps}, indent=1))


if __name__ == "__main__":
    main()
