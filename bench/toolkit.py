"""The training toolkit on DCGAN, MNIST and CIFAR-10: which options should the recipes use?

    python bench/toolkit.py --steps 1500          # every row, both data sets
    python bench/toolkit.py --steps 20 --samples 500 --datasets mnist   # a smoke run

Rows (each trained for the same number of steps from the same seed, batch 64, with
today's recipe's optimizers, Adam(2e-4, beta_1=0.5) for both players):

    recipe        today's recipe: GAN.dcgan, non-saturating loss
    +EMA          samples from the moving average of G (ema_decay, with the warm-up ramp)
    +SN+hinge     D's layers spectrally normalised, hinge loss
    +DiffAugment  "color,translation,cutout" before D
    +R1           R1 penalty on real data (r1_gamma)
    all           all of the above together

Protocol: the last 10,000 training images are held out as a validation split and
never trained on; the model trains on the rest (a seeded, shuffled, endless stream).
Each row is scored on the validation split: domain FID and KID (the bundled
classifier's features, `zoo.metrics.fid`; comparable within this zoo, not with
Inception FID) of 10,000 samples (`generate(seed=1)`) against the 10,000 validation
images. The row with the lowest validation FID is selected per data set, and only
that row is measured once on the test split (10,000 samples, seed 2, against the
10,000 test images). Writes results.json (after each row), table.txt and a sample
grid per row (`<dataset>_<row>.png`, 64 samples of seed 0) to --out, with the
command line, the git commit and, per row, the requested steps beside the model's
own optimizer iteration count.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import zoo  # noqa: E402
from provenance import git_commit  # noqa: E402  (bench/provenance.py)
from zoo import data as zdata  # noqa: E402
from zoo.metrics.fid import FeatureExtractor, frechet_distance, kernel_distance, statistics  # noqa: E402
from zoo.visualize import save_image_grid  # noqa: E402

DATA = {"mnist": ("mnist.npz", (28, 28, 1)), "cifar10": ("cifar10.zip", (32, 32, 3))}
EMA = dict(ema_decay=0.995, ema_warmup=True)
SN_HINGE = dict(spectral_norm=True, gan_loss="hinge")
DIFF_AUGMENT = dict(diff_augment="color,translation,cutout")
R1 = dict(r1_gamma=1.0)
ROWS = {
    "recipe": {},
    "+EMA": EMA,
    "+SN+hinge": SN_HINGE,
    "+DiffAugment": DIFF_AUGMENT,
    "+R1": R1,
    "all": {**EMA, **SN_HINGE, **DIFF_AUGMENT, **R1},
}




def build(dataset, row, seed):
    shape = DATA[dataset][1]
    gan = zoo.GAN.dcgan(shape, seed=seed, **ROWS[row])
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    return gan


def distances(fa, fb, kid_subsets):
    kid, kid_std = kernel_distance(fa, fb, subsets=kid_subsets)
    return {"fid": frechet_distance(*statistics(fa), *statistics(fb)), "kid": kid, "kid_std": kid_std}


def table(results):
    lines = []
    for dataset, rows in results["datasets"].items():
        lines.append(f"DCGAN on {dataset}: {results['steps']} steps a row, batch {results['batch_size']}, "
                     f"seed {results['seed']}; validation = last {results['val']} training images "
                     f"(not trained on), {results['samples']} samples")
        lines.append(f"{'row':<14}{'steps':>7}{'G iters':>9}{'train s':>9}{'val FID':>11}{'val KID':>11}"
                     f"{'+-':>9}  options")
        for name, r in rows["rows"].items():
            lines.append(f"{name:<14}{r['steps_requested']:>7}{r['g_iterations']:>9}{r['train_seconds']:>9.0f}"
                         f"{r['val']['fid']:>11.2f}{r['val']['kid']:>11.4f}{r['val']['kid_std']:>9.4f}  "
                         f"{r['options'] or '-'}")
        if "selected" in rows:
            t = rows["test"]
            lines.append(f"selected on validation FID: {rows['selected']}; test split, once: FID {t['fid']:.2f}, "
                         f"KID {t['kid']:.4f} +- {t['kid_std']:.4f} ({results['samples']} samples vs "
                         f"{rows['n_test']} test images)")
        lines.append("")
    lines.append("Domain FID/KID in the bundled classifiers' features (saved_models/classifier_<dataset>): "
                 "comparable within this zoo, not with Inception FID.")
    lines.append(f"command: {results['command']}")
    lines.append(f"git commit: {results['commit']}; backend {results['backend']}, keras {results['keras']}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets"))
    p.add_argument("--datasets", default="mnist,cifar10")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {list(ROWS)}")
    p.add_argument("--steps", type=int, default=1500, help="training steps per row")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--val", type=int, default=10000, help="training images held out for validation")
    p.add_argument("--samples", type=int, default=10000, help="samples per FID / KID")
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "toolkit"))
    args = p.parse_args(argv)
    rows = args.rows.split(",")
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        p.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {
        "command": " ".join(["python", *sys.argv]) if argv is None else "main(" + repr(argv) + ")",
        "commit": git_commit(__file__), "backend": keras.backend.backend(), "keras": keras.__version__,
        "steps": args.steps, "batch_size": args.batch_size, "seed": args.seed, "val": args.val,
        "samples": args.samples, "rows": {r: ROWS[r] for r in rows}, "datasets": {},
    }
    start = time.time()
    for dataset in args.datasets.split(","):
        path = Path(args.data_dir) / DATA[dataset][0]
        x, _, _ = zdata.load_arrays(str(path), "train")
        x_test, _, _ = zdata.load_arrays(str(path), "test")
        x_train, x_val = x[: -args.val], x[-args.val:]
        extractor = FeatureExtractor.load(dataset)
        f_val = extractor(x_val)
        entry = results["datasets"].setdefault(dataset, {"n_train": len(x_train), "n_val": len(x_val), "rows": {}})
        models = {}
        for row in rows:
            keras.utils.set_random_seed(args.seed)
            gan = build(dataset, row, args.seed)
            stream = zdata.make_dataset(x_train, batch_size=args.batch_size, seed=args.seed, repeat=True)
            t0 = time.time()
            hist = gan.fit(stream, epochs=1, steps_per_epoch=args.steps, verbose=0)
            seconds = time.time() - t0
            iterations = int(keras.ops.convert_to_numpy(gan.optimizer["g"].iterations))
            samples = gan.generate(args.samples, seed=1, output="uint8")
            val = distances(extractor(samples), f_val, args.kid_subsets)
            save_image_grid(gan.generate(64, seed=0), out / f"{dataset}_{row.replace('+', 'plus_')}.png", cols=8)
            entry["rows"][row] = {
                "options": ROWS[row], "steps_requested": args.steps, "g_iterations": iterations,
                "train_seconds": seconds, "steps_per_second": args.steps / seconds, "val": val,
                "last_logs": {k: float(v[-1]) for k, v in hist.history.items()},
            }
            models[row] = gan
            print(f"{dataset} {row}: {args.steps} steps requested, G optimizer iterations {iterations}, "
                  f"{seconds:.0f} s; val FID {val['fid']:.2f}, KID {val['kid']:.4f}", flush=True)
            (out / "results.json").write_text(json.dumps(results, indent=2))
        selected = min(entry["rows"], key=lambda r: entry["rows"][r]["val"]["fid"])
        samples = models[selected].generate(args.samples, seed=2, output="uint8")
        entry.update(selected=selected, n_test=len(x_test),
                     test=distances(extractor(samples), extractor(x_test), args.kid_subsets))
        print(f"{dataset}: selected {selected}; test FID {entry['test']['fid']:.2f}", flush=True)
        results["minutes"] = (time.time() - start) / 60
        (out / "results.json").write_text(json.dumps(results, indent=2))
        del models
    text = table(results)
    (out / "table.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
