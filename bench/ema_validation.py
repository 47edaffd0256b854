"""EMA or raw generator, chosen on held-out training images (never the test split).

Parzen log-likelihood (Goodfellow et al.'s estimator) of 10,000 samples of each of a
preset's two generators (`generate(use_ema=True/False)`), sigma chosen from
logspace(-1, 0, 10) on train[50000:51000], scored on train[51000:60000]: the recipe
trained on train[:50000], so both sets are held out and neither is the test split.

    python bench/ema_validation.py gan_mlp_mnist --out bench/results/gan_mlp_ema_validation.json
"""

import argparse
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's zoo, when not installed

from provenance import git_commit  # noqa: E402  (bench/provenance.py)
from zoo import data as zdata, presets  # noqa: E402
from zoo.data import ranges  # noqa: E402
from zoo.metrics.parzen import parzen_estimate  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("preset")
    p.add_argument("--data", default=None)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    model = presets.load(args.preset)
    meta = model.preset_metadata
    data = args.data or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist.npz"
    x, _, _ = zdata.load_arrays(data, "train")
    n_train = meta["training"]["train_images"]
    sigma_set = ranges.pixels_to_unit(x[n_train:n_train + 1000]).reshape(1000, -1)
    valid = ranges.pixels_to_unit(x[n_train + 1000:]).reshape(len(x) - n_train - 1000, -1)
    rows = {}
    for use_ema in (True, False):
        samples = model.generate(args.n, seed=0, use_ema=use_ema).reshape(args.n, -1)
        est = parzen_estimate(samples, valid, sigma_set)
        rows["ema" if use_ema else "raw"] = {"parzen": round(float(est["mean"]), 2),
                                             "std_error": round(float(est["std_error"]), 2),
                                             "sigma": round(float(est["sigma"]), 4)}
        print(f"{'EMA' if use_ema else 'raw'} G: Parzen {est['mean']:.2f} +- {est['std_error']:.2f} "
              f"(sigma {est['sigma']:.4g}) on train[{n_train + 1000}:{len(x)}]", flush=True)
    chosen = max(rows, key=lambda k: rows[k]["parzen"])
    print(f"chosen on validation: {chosen}")
    if args.out:
        record = {"command": "python bench/ema_validation.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
                  "commit": git_commit(__file__), "preset": args.preset, "steps": meta["training"]["steps"],
                  "sigma_images": f"train[{n_train}:{n_train + 1000}]",
                  "scored_on": f"train[{n_train + 1000}:{len(x)}]", "n_samples": args.n, "rows": rows,
                  "chosen": chosen}
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
