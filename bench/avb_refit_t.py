"""Is AVB's adversary keeping up? Refit a fresh T to a trained AVB's frozen encoder.

AVB's KL term is E_q[T(x, z)], with T trained online against an encoder that
moves. If T lags, the encoder exploits it and the estimated -ELBO falls below
the true negative log-likelihood. Here the encoder and decoder are frozen and a
fresh T (the same form and widths, or wider) is fitted by logistic regression
alone for a fixed number of steps; its E_q[T] (+ KL(r || p) with adaptive
contrast) on test images is set beside the online T's. A refitted T that finds
a much larger KL means the online T was outrun, not that the posterior is
simple.

    KERAS_BACKEND=tensorflow python -m bench.avb_refit_t bench/out/avb_mnist/avb_ac_z32.keras --steps 20000
"""

import argparse
import json
import time

import keras
import numpy as np

from bench.avb_mnist import D, load, eval_subset
from zoo.models import AVB, blocks


class TOnly(AVB):
    """AVB whose training step moves T alone (the encoder and decoder stay frozen)."""

    def train_step(self, data):
        x, _ = self._unpack(data)
        t_loss, _ = self.update("T", lambda: self.adversary_loss(x))
        return self.track(t_loss=t_loss)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", help="a trained AVB (.keras) on flattened binarised MNIST")
    p.add_argument("--data", default="../shared/datasets/mnist.npz")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--hidden", default="300,300", help="the fresh T's widths")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--n-test", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    trained = keras.saving.load_model(args.model)
    x_eval = eval_subset(args.data, args.n_test)
    online = trained.evaluate(x_eval, batch_size=250, verbose=0, return_dict=True)

    keras.utils.set_random_seed(args.seed)
    hidden = tuple(int(u) for u in args.hidden.split(","))
    refit = TOnly(trained.encoder, trained.decoder, blocks.avb_adversary((D,), trained.latent_dim, hidden),
                  adaptive_contrast=trained.adaptive_contrast, contrast_samples=trained.contrast_samples,
                  seed=args.seed)
    refit.encoder.trainable = refit.decoder.trainable = False
    refit.compile(T_optimizer=keras.optimizers.Adam(args.lr, beta_1=0.5),
                  vae_optimizer=keras.optimizers.Adam(args.lr, beta_1=0.5))
    x_train = load(args.data, "train")
    rng = np.random.default_rng(args.seed)
    t0, done, trace = time.monotonic(), 0, []
    while done < args.steps:
        xb = (rng.uniform(size=x_train.shape) < x_train).astype("float32")
        n = min(len(xb) // args.batch_size, args.steps - done)
        refit.fit(xb[: n * args.batch_size], batch_size=args.batch_size, epochs=1, verbose=0)
        done += n
        kl = float(refit.evaluate(x_eval, batch_size=250, verbose=0, return_dict=True)["kl"])
        trace.append((done, round(kl, 2)))
        print(json.dumps({"steps": done, "kl": round(kl, 2), "minutes": round((time.monotonic() - t0) / 60, 2)}),
              flush=True)
    final = refit.evaluate(x_eval, batch_size=250, verbose=0, return_dict=True)
    ran = int(keras.ops.convert_to_numpy(refit.optimizer.iterations))
    print(f"\n{args.model}: test images {args.n_test}; fresh T {hidden}, {args.steps} T-only steps "
          f"asked, {ran} run by the model's step counter, "
          f"Adam({args.lr}, 0.5), batch {args.batch_size}")
    print(f"{'':>12} {'reconstruction':>14} {'KL estimate':>12} {'-ELBO estimate':>15}")
    print(f"{'online T':>12} {online['reconstruction']:>14.2f} {online['kl']:>12.2f} {online['loss']:>15.2f}")
    print(f"{'refitted T':>12} {final['reconstruction']:>14.2f} {final['kl']:>12.2f} {final['loss']:>15.2f}")
    print("KL estimate after each pass: " + ", ".join(f"{s}: {k}" for s, k in trace))


if __name__ == "__main__":
    main()
