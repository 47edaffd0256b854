"""Mode coverage on the 2-D ring of 8 Gaussians and grid of 25 (VEEGAN, PacGAN).

Minimax against non-saturating generator loss, same MLPs and budget, several
seeds. Figures: modes covered (a mode with at least a fifth of its uniform share
of high-quality samples) and the share of high-quality samples (within 3 std of
a mode), from 2,500 samples as in PacGAN.

Data: 100,000 points of the mixture (seeded), fed as an endless stream of full
batches (each pass over the points a fresh seeded permutation, the remainder
dropped), so that exactly --steps optimizer steps run. The table and the JSON
give the model's own step counter (`gan.optimizer.iterations`) and each
player's update counter beside the requested steps, and the run stops with an
error if they differ. The JSON records the command line and the git commit.

    KERAS_BACKEND=jax python bench/mode_coverage.py --steps 4000 --seeds 3
"""

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's zoo, when not installed

import keras  # noqa: E402
import numpy as np  # noqa: E402

from provenance import git_commit  # noqa: E402  (bench/provenance.py)
from zoo.data import toy  # noqa: E402
from zoo.models import GAN, blocks  # noqa: E402


def batches(x, batch, seed):
    """Endless full batches of `x`, a new seeded permutation per pass."""
    rng = np.random.default_rng(seed)
    per_pass = len(x) // batch
    while True:
        order = rng.permutation(len(x))
        for i in range(per_pass):
            yield (x[order[i * batch:(i + 1) * batch]],)


def train(mixture, loss, seed, steps, batch=256, latent=16):
    keras.utils.set_random_seed(seed)
    x, modes, std = toy.mixture(mixture, 100_000, seed=seed)
    gan = GAN(
        blocks.mlp(latent, 2, hidden=(128, 128, 128), name="g"),
        blocks.mlp(2, 1, hidden=(128, 128, 128), name="d"),
        gan_loss=loss, data_range=None, seed=seed,
    )
    gan.compile(
        d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
    )
    gan.fit(batches(x, batch, seed), epochs=1, steps_per_epoch=steps,
            shuffle=False, verbose=0)
    counted = dict(steps=int(keras.ops.convert_to_numpy(gan.optimizer.iterations)),
                   d_updates=int(keras.ops.convert_to_numpy(gan.optimizer["d"].iterations)),
                   g_updates=int(keras.ops.convert_to_numpy(gan.optimizer["g"].iterations)))
    if counted["steps"] != steps:
        raise RuntimeError(f"asked for {steps} steps, the model ran {counted}")
    samples = gan.generate(2500, seed=seed + 100)
    covered, quality = toy.mode_coverage(samples, modes, std)
    return covered, quality, counted




def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", default="bench/out/mode_coverage.json")
    args = p.parse_args()
    command = f"KERAS_BACKEND={keras.backend.backend()} python " + shlex.join(sys.argv)
    commit = git_commit(__file__)
    print(f"command: {command}\ncommit: {commit}", flush=True)
    rows = []
    for mixture, n_modes in (("ring", 8), ("grid", 25)):
        for loss in ("minimax", "non_saturating"):
            covered, quality, counted = [], [], []
            start = time.monotonic()
            for seed in range(args.seeds):
                c, q, n = train(mixture, loss, seed, args.steps)
                covered.append(c)
                quality.append(q)
                counted.append(n)
            rows.append(dict(mixture=mixture, modes=n_modes, loss=loss, covered=covered,
                             quality=[round(q, 3) for q in quality],
                             requested_steps=args.steps,
                             model_steps=[n["steps"] for n in counted],
                             d_updates=[n["d_updates"] for n in counted],
                             g_updates=[n["g_updates"] for n in counted],
                             seconds=round(time.monotonic() - start, 1)))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nMode coverage, {args.steps} steps requested, batch 256, {args.seeds} seeds, "
          f"backend {keras.backend.backend()}")
    print(f"{'mixture':<8} {'loss':<15} {'steps asked':>11} {'model steps (per seed)':>24}  "
          f"{'modes covered (per seed)':<28} {'mean':>6} {'high-quality share':>20}")
    for r in rows:
        print(f"{r['mixture']:<8} {r['loss']:<15} {r['requested_steps']:>11} "
              f"{str(r['model_steps']):>24}  "
              f"{str(r['covered']) + ' of ' + str(r['modes']):<28} "
              f"{np.mean(r['covered']):>6.1f} {np.mean(r['quality']):>20.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(dict(
        command=command, commit=commit, backend=keras.backend.backend(),
        requested_steps=args.steps, batch=256, seeds=args.seeds, rows=rows), indent=2) + "\n")


if __name__ == "__main__":
    main()
