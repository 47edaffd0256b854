"""The shape of trained posteriors q(z|x) on binarised MNIST: test loss terms, the
standard deviation of each latent and its excess kurtosis (0 for a Gaussian,
negative for flatter, positive for heavier tails), averaged over test images.

Works for `AVB` (samples of the black-box encoder) and the Gaussian `VAE`
(its predicted standard deviations; kurtosis 0 by construction).

    python -m bench.avb_posterior_stats runs/a/avb_ac_z8.keras runs/b/vae_z8.keras
"""

import argparse
import json
from pathlib import Path

import keras
import numpy as np

from bench.avb_mnist import eval_subset
from zoo.models import AVB


def main():
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="+", help="trained AVB or VAE models (.keras) on flattened MNIST")
    p.add_argument("--data", default="../shared/datasets/mnist.npz")
    p.add_argument("--n-test", type=int, default=500, help="test images for the loss terms (seeded)")
    p.add_argument("--n-shape", type=int, default=200, help="of those, images for the posterior's shape")
    p.add_argument("--draws", type=int, default=200, help="samples of q(z|x) per image (AVB)")
    args = p.parse_args()
    x_eval = eval_subset(args.data, args.n_test)  # the images of bench/avb_mnist.py's table
    x_shape = x_eval[: args.n_shape]
    for path in args.models:
        model = keras.saving.load_model(path)
        terms = model.evaluate(x_eval, batch_size=250, verbose=0, return_dict=True)
        row = {"model": Path(path).name, **{k: round(float(v), 2) for k, v in terms.items()}}
        if isinstance(model, AVB):
            z = model.sample_posterior(x_shape, n_samples=args.draws, seed=0)  # (n, draws, latent)
            centred = z - z.mean(1, keepdims=True)
            var = (centred**2).mean(1)
            row["sd_per_latent"] = [round(float(v), 3) for v in np.sqrt(var).mean(0)]
            row["excess_kurtosis_per_latent"] = [round(float(v), 2) for v in ((centred**4).mean(1) / var**2 - 3).mean(0)]
        else:
            _, log_var = model.encoder(x_shape, training=False)
            row["sd_per_latent"] = [round(float(v), 3) for v in np.exp(0.5 * keras.ops.convert_to_numpy(log_var)).mean(0)]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
