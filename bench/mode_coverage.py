"""Mode coverage on the 2-D ring of 8 Gaussians and grid of 25 (VEEGAN, PacGAN).

Minimax against non-saturating generator loss, same MLPs and budget, several
seeds. Figures: modes covered (a mode with at least a fifth of its uniform share
of high-quality samples) and the share of high-quality samples (within 3 std of
a mode), from 2,500 samples as in PacGAN.

    KERAS_BACKEND=jax python bench/mode_coverage.py --steps 4000 --seeds 3
"""

import argparse
import json
import time

import keras
import numpy as np

from zoo.data import toy
from zoo.models import GAN, blocks


def train(mixture, loss, seed, steps, batch=256, latent=16):
    keras.utils.set_random_seed(seed)
    x, modes, std = toy.mixture(mixture, 100_000, seed=seed)
    gan = GAN(
        blocks.mlp(latent, 2, hidden=(128, 128, 128), name="g"),
        blocks.mlp(2, 1, hidden=(128, 128, 128), name="d"),
        generator_loss=loss, data_range=None, seed=seed,
    )
    gan.compile(
        d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
    )
    per_epoch = len(x) // batch
    gan.fit(x, batch_size=batch, epochs=max(1, steps // per_epoch),
            steps_per_epoch=min(per_epoch, steps), verbose=0)
    samples = gan.generate(2500, seed=seed + 100)
    return toy.mode_coverage(samples, modes, std)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", default="bench/out/mode_coverage.json")
    args = p.parse_args()
    rows = []
    for mixture, n_modes in (("ring", 8), ("grid", 25)):
        for loss in ("minimax", "non_saturating"):
            covered, quality = [], []
            start = time.monotonic()
            for seed in range(args.seeds):
                c, q = train(mixture, loss, seed, args.steps)
                covered.append(c)
                quality.append(q)
            rows.append(dict(mixture=mixture, modes=n_modes, loss=loss, covered=covered,
                             quality=[round(q, 3) for q in quality],
                             seconds=round(time.monotonic() - start, 1)))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nMode coverage, {args.steps} steps, batch 256, {args.seeds} seeds, backend {keras.backend.backend()}")
    print(f"{'mixture':<8} {'loss':<15} {'modes covered (per seed)':<28} {'mean':>6} {'high-quality share':>20}")
    for r in rows:
        print(f"{r['mixture']:<8} {r['loss']:<15} {str(r['covered']) + ' of ' + str(r['modes']):<28} "
              f"{np.mean(r['covered']):>6.1f} {np.mean(r['quality']):>20.3f}")
    from pathlib import Path

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
