"""Goodfellow et al. 2014, Table 1 protocol on MNIST: Parzen-window log-likelihood.

Train on MNIST train[:50000] for a fixed wall-time budget, draw 10,000 samples,
choose sigma from logspace(-1, 0, 10) on train[50000:51000] (the authors'
script), report the mean log-likelihood of the 10,000 test images (pixels in
[0, 1]) with its standard error. The paper: GAN 225 +- 2, deep GSN 214 +- 1.1,
DBN 138 +- 2, stacked CAE 121 +- 1.6.

    KERAS_BACKEND=jax python bench/parzen_mnist.py --data ../shared/datasets/mnist.npz --minutes 12
"""

import argparse
import json
import time
from pathlib import Path

import keras

import zoo
from zoo import data as zdata
from zoo.callbacks import TimeLimit
from zoo.metrics import parzen_estimate
from zoo.visualize import save_image_grid

MODELS = {
    "gan_mlp": lambda: zoo.GAN.paper_mlp(seed=0),
    "dcgan": lambda: zoo.GAN.dcgan((28, 28, 1), seed=0),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="../shared/datasets/mnist.npz")
    p.add_argument("--minutes", type=float, default=12.0, help="training budget per model")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated: gan_mlp (paper: MLP G, maxout D), dcgan")
    p.add_argument("--out", default="bench/out")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    x, _, _ = zdata.load_arrays(args.data, "train")
    x_test, _, _ = zdata.load_arrays(args.data, "test")
    unit = lambda a: a.reshape(len(a), -1).astype("float32") / 255.0  # noqa: E731
    x_valid, x_test = unit(x[50000:51000]), unit(x_test)
    rows = []
    for name in args.models.split(","):
        keras.utils.set_random_seed(0)
        gan = MODELS[name]()
        ds = zdata.make_dataset(x[:50000], batch_size=args.batch_size, data_range=gan.data_range, seed=0)
        gan.compile(
            d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
            g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        )
        start = time.monotonic()
        gan.fit(ds, epochs=1000, callbacks=[TimeLimit(args.minutes)], verbose=0)
        train_s = time.monotonic() - start
        samples = gan.generate(10000, seed=1)
        save_image_grid(samples[:100], out / f"parzen_{name}.png", cols=10)
        start = time.monotonic()
        est = parzen_estimate(samples.reshape(10000, -1), x_test, x_valid)
        rows.append({
            "model": name, "backend": keras.backend.backend(),
            "train_minutes": round(train_s / 60, 1),
            "steps": int(gan.optimizer.iterations.numpy()),
            "parzen_ll": round(est["mean"], 1), "std_error": round(est["std_error"], 1),
            "sigma": round(est["sigma"], 4), "parzen_seconds": round(time.monotonic() - start, 1),
        })
        print(json.dumps(rows[-1]), flush=True)
    print("\nParzen-window log-likelihood of the MNIST test set (10,000 samples; sigma on train[50000:51000])")
    print(f"{'model':<36} {'backend':<10} {'minutes':>7} {'steps':>7} {'LL':>8} {'+-':>5} {'sigma':>7}")
    for r in rows:
        print(f"{r['model']:<36} {r['backend']:<10} {r['train_minutes']:>7} {r['steps']:>7} "
              f"{r['parzen_ll']:>8} {r['std_error']:>5} {r['sigma']:>7}")
    print(f"{'paper: GAN (Goodfellow et al. 2014)':<36} {'':<10} {'':>7} {'':>7} {225:>8} {2:>5}")
    (out / "parzen_mnist.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
