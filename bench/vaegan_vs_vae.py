"""VAE against VAE-GAN (Larsen et al. 2016): same encoder and decoder, same budget.

Figures, on the test split: domain FID and KID of 5,000 samples from the prior
against 5,000 test images, FID of the reconstructions of those test images, and
the pixel MSE of the reconstructions (pixels in [0, 1]). FID/KID use the zoo's
domain classifier (saved_models/classifier_<dataset>, penultimate layer), not
Inception: comparable within this table, not with papers' Inception-FID.
The paper's claim: VAE-GAN's samples and reconstructions are sharper (lower
FID) than the VAE's, at some cost in pixel MSE.

    KERAS_BACKEND=jax python bench/vaegan_vs_vae.py mnist --data ../shared/datasets/mnist.npz --minutes 8
    KERAS_BACKEND=jax python bench/vaegan_vs_vae.py cifar10 --data ../shared/datasets/cifar10.zip --minutes 8
"""

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np

from zoo import data as zdata
from zoo.callbacks import TimeLimit
from zoo.metrics import FeatureExtractor, fid_kid
from zoo.models import VAE, VAEGAN
from zoo.visualize import save_image_grid

SHAPES = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3)}


def build(kind, shape, latent, width, seed):
    if kind == "vae":
        return VAE.larsen(shape, latent_dim=latent, width=width, pixel_sigma=0.1, seed=seed)
    return VAEGAN.larsen(shape, latent_dim=latent, width=width, equilibrium=(0.68, 0.35), seed=seed)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dataset", choices=sorted(SHAPES))
    p.add_argument("--data", required=True)
    p.add_argument("--minutes", type=float, default=8.0, help="training budget per model")
    p.add_argument("--width", type=float, default=0.25, help="multiplier of the authors' layer widths")
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--n-eval", type=int, default=5000)
    p.add_argument("--models", default="vae,vaegan")
    p.add_argument("--out", default="bench/out")
    args = p.parse_args()
    out = Path(args.out)
    shape = SHAPES[args.dataset]
    x, _, _ = zdata.load_arrays(args.data, "train")
    xt, _, _ = zdata.load_arrays(args.data, "test")
    test = xt[np.random.default_rng(0).permutation(len(xt))[: args.n_eval]]
    extractor = FeatureExtractor.load(args.dataset)
    rows = []
    for kind in args.models.split(","):
        keras.utils.set_random_seed(0)
        model = build(kind, shape, args.latent, args.width, seed=0)
        opt = lambda: keras.optimizers.Adam(3e-4, beta_1=0.5)  # noqa: E731
        if kind == "vae":
            model.compile(optimizer=opt())
        else:
            model.compile(enc_optimizer=opt(), dec_optimizer=opt(), dis_optimizer=opt())
        ds = zdata.make_dataset(x, batch_size=args.batch_size, data_range=(-1, 1), seed=0)
        start = time.monotonic()
        model.fit(ds, epochs=1000, callbacks=[TimeLimit(args.minutes)], verbose=0)
        minutes = (time.monotonic() - start) / 60
        samples = model.generate(args.n_eval, seed=1)
        recon = model.reconstruct(test)
        prior = fid_kid(samples, test, extractor)
        rec = fid_kid(recon, test, extractor)
        mse = float(np.mean((recon - test.astype("float32") / 255.0) ** 2))
        save_image_grid(samples[:64], out / f"{args.dataset}_{kind}_samples.png", cols=8)
        pairs = np.stack([test[:32].astype("float32") / 255.0, recon[:32]], 1).reshape(64, *shape)
        save_image_grid(pairs, out / f"{args.dataset}_{kind}_reconstructions.png", cols=8)
        rows.append(dict(model=kind, dataset=args.dataset, backend=keras.backend.backend(),
                         minutes=round(minutes, 1), steps=int(model.optimizer.iterations.numpy()),
                         fid_prior=round(prior["fid"], 2), kid_prior=round(prior["kid"], 4),
                         kid_prior_std=round(prior["kid_std"], 4), fid_recon=round(rec["fid"], 2),
                         mse_recon=round(mse, 5), features=prior["features"], n=args.n_eval))
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{args.dataset}: VAE vs VAE-GAN, Larsen nets x{args.width} width, latent {args.latent}, "
          f"{args.minutes} min each; domain FID/KID ({rows[0]['features']}), {args.n_eval} test images")
    print(f"{'model':<8} {'steps':>6} {'FID prior':>10} {'KID prior':>16} {'FID recon':>10} {'MSE recon':>10}")
    for r in rows:
        print(f"{r['model']:<8} {r['steps']:>6} {r['fid_prior']:>10} {r['kid_prior']:>9}+-{r['kid_prior_std']:<6}"
              f"{r['fid_recon']:>10} {r['mse_recon']:>10}")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"vaegan_vs_vae_{args.dataset}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
