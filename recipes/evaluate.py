"""Re-measure a preset's figures and print them beside those its metadata records.

    python -m recipes.evaluate dcgan_mnist [--data ../shared/datasets/mnist.npz] [--quick] [--write]

Figures, by model:
- generators (GAN, VAE, VAE-GAN, AVB): the Parzen-window log-likelihood of the
  test images (Goodfellow et al.'s protocol: sigma chosen on 1,000 held-out
  training images, train[50000:51000] for MNIST recipes, which train on
  train[:50000]; a preset trained on the whole train split says so; mean and
  standard error over the test images, pixels in [0, 1]) and the domain FID /
  KID against the test images, in the features of the bundled classifier of
  the data set (comparable within this zoo, not with Inception-FID in papers);
- VAE and AVB: the AIS log-likelihood (Wu et al. 2017) of test images, and the
  VAE's IWAE bound, from `zoo.metrics.loglik`; VAE and VAE-GAN: the
  reconstruction MSE;
- DSH-GAN: MAP over the whole database and precision within Hamming radius 2 on
  the seeded CIFAR-10 protocol (`zoo.data.cifar10_hashing_split`).

`--quick` measures on subsets (minutes instead of tens of minutes on a CPU); the
figures say which. `--write` records the re-measured figures in the preset's
metadata.json (atomically; the weights are untouched).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

DATA_FILES = {"mnist": "mnist.npz", "cifar10": "cifar10.zip"}
ROOT = Path(__file__).resolve().parents[1]

# Sizes of the measurements: full (the metadata's) and quick (smoke checks).
SIZES = {
    "full": dict(parzen_samples=10000, parzen_test=10000, fid_n=10000, loglik_n=100,
                 ais_steps=200, ais_chains=4, ais_leapfrog=5, iwae_samples=1000, queries=None, database=None),
    "quick": dict(parzen_samples=2000, parzen_test=1000, fid_n=2000, loglik_n=32,
                  ais_steps=100, ais_chains=4, ais_leapfrog=5, iwae_samples=200, queries=200, database=10000),
}
VALID_N = 1000


def default_data(dataset):
    base = Path(os.environ.get("ZOO_DATA_DIR", ROOT.parent / "shared" / "datasets"))
    return base / DATA_FILES[dataset]


def _figure(value, how, **extra):
    return {"value": round(float(value), 4), "how": how, **{k: (round(float(v), 4) if isinstance(v, float) else v)
                                                             for k, v in extra.items()}}


def _seeded_subset(n_total, n, seed):
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).permutation(n_total)[:n])


def generated_images(model, n, seed=0):
    """n samples in [0, 1]; a conditional model gets balanced labels."""
    if getattr(model, "num_classes", None):
        return model.generate(n, seed=seed, labels=np.arange(n) % model.num_classes)
    return model.generate(n, seed=seed)


def sigma_images(x_train, train_images):
    """(images Parzen's sigma is chosen on, how to say so). Held out when the model
    trained on train[:train_images] only (Goodfellow et al.: train[50000:51000]);
    otherwise a seeded subset of images the model trained on, and said so."""
    from zoo import data as zdata

    n = len(x_train)
    if train_images is not None and train_images + VALID_N <= n:
        return (x_train[train_images: train_images + VALID_N],
                f"train[{train_images}:{train_images + VALID_N}], held out (the model trained on "
                f"train[:{train_images}])")
    return (x_train[zdata.holdout(n, VALID_N, seed=0)[0]],
            f"{VALID_N} training images (not held out: the model trained on the whole train split)")


def measure(model, dataset, data_path=None, quick=False, seed=0, log=print, train_images=None, protocol_seed=0):
    """{figure name: {"value", "how", ...}} for `model` on `dataset` ("mnist" or "cifar10").
    `train_images`: the model trained on train[:train_images] (None: all of it).
    `protocol_seed`: a hasher's CIFAR-10 protocol split (0: the presets')."""
    from zoo import data as zdata
    from zoo.data import ranges
    from zoo.models.capabilities import Autoencoder, ExplicitLikelihood, Hasher

    size = SIZES["quick" if quick else "full"]
    data_path = Path(data_path) if data_path else default_data(dataset)
    if isinstance(model, Hasher):
        return _measure_hashing(model, data_path, size, log, protocol_seed)
    figures = {}
    x_train, _, _ = zdata.load_arrays(data_path, "train")
    x_test, _, _ = zdata.load_arrays(data_path, "test")
    valid, valid_how = sigma_images(x_train, train_images)
    unit = ranges.pixels_to_unit

    # Parzen window on generated samples.
    from zoo.metrics.parzen import parzen_estimate

    start = time.monotonic()
    samples = generated_images(model, size["parzen_samples"], seed=seed)
    test = x_test[_seeded_subset(len(x_test), size["parzen_test"], 0)]
    p = parzen_estimate(samples.reshape(len(samples), -1), unit(test).reshape(len(test), -1),
                        unit(valid).reshape(len(valid), -1))
    figures["parzen_log_likelihood"] = _figure(
        p["mean"], f"Gaussian Parzen window on {len(samples)} samples (seed {seed}), sigma {p['sigma']:.4g} "
        f"chosen from logspace(-1, 0, 10) on {valid_how}, mean over {len(test)} "
        f"{dataset} test images, pixels in [0, 1], nats", std_error=p["std_error"])
    log(f"parzen {figures['parzen_log_likelihood']['value']} ({time.monotonic() - start:.0f} s)")

    # Domain FID / KID.
    from zoo.metrics.fid import FeatureExtractor, fid_kid

    start = time.monotonic()
    extractor = FeatureExtractor.load(dataset)
    n = size["fid_n"]
    test = x_test[_seeded_subset(len(x_test), n, 1)]
    fake = generated_images(model, n, seed=seed + 1)
    f = fid_kid(fake, test, extractor, kid_subsets=100, kid_subset_size=min(1000, n))
    how = (f"{len(fake)} samples against {len(test)} {dataset} test images in the features of the bundled "
           f"classifier ({f['features']}); domain FID, comparable within this zoo, not with Inception FID")
    figures["fid"] = _figure(f["fid"], how)
    figures["kid"] = _figure(f["kid"], how + "; KID mean over 100 subsets", std=f["kid_std"])
    log(f"fid {figures['fid']['value']} ({time.monotonic() - start:.0f} s)")
    figures.update(inception_figures(fake, test, dataset, log))
    figures.update(class_figures(model, dataset, size["fid_n"]))

    if isinstance(model, Autoencoder):
        test = x_test[_seeded_subset(len(x_test), min(n, 2000), 2)]
        mse = float(np.mean((model.reconstruct(test) - unit(test)) ** 2))
        figures["reconstruction_mse"] = _figure(
            mse, f"mean squared error of Dec(E[z|x]) (reconstruct) on {len(test)} {dataset} test images, pixels in [0, 1]")

    if isinstance(model, ExplicitLikelihood):
        figures.update(_measure_loglik(model, x_test, dataset, size, log))
    return figures


COVERAGE_SEED = 12345  # the samples behind #23's class-coverage bars


def class_figures(model, dataset, n):
    """Class coverage of n samples (seed 12345) read by the bundled classifier: the
    largest class share, the class entropy and, for a conditional generator, the
    label agreement (zoo.metrics.coverage)."""
    from zoo.metrics.coverage import generator_coverage

    c = generator_coverage(model, dataset, n=n, seed=COVERAGE_SEED)
    how = (f"{c['n']} samples (seed {COVERAGE_SEED}{', balanced labels' if 'label_agreement' in c else ''}) "
           f"classified by the bundled {dataset} classifier (saved_models/classifier_{dataset})")
    figures = {
        "max_class_share": _figure(c["max_share"], f"largest share of one class (class {c['max_class']}); {how}",
                                   shares=c["shares"]),
        "class_entropy_bits": _figure(c["entropy_bits"], f"entropy of the class shares, bits (log2 10 = 3.32 "
                                      f"uniform); {how}"),
    }
    if "label_agreement" in c:
        figures["label_agreement"] = _figure(c["label_agreement"],
                                             f"share of samples read as the label they were drawn for; {how}")
    return figures


def inception_figures(fake, test, dataset, log=print):
    """Inception-v3 FID on the reference protocol, when $ZOO_INCEPTION_WEIGHTS names a
    weights file (zoo.metrics.InceptionExtractor); {} otherwise (domain FID stays
    the offline default)."""
    from zoo.metrics.fid import InceptionExtractor, frechet_distance, statistics

    extractor = InceptionExtractor.from_env()
    if extractor is None:
        return {}
    start = time.monotonic()
    value = frechet_distance(*statistics(extractor(fake)), *statistics(extractor(test)))
    log(f"inception_fid {value:.4g} ({time.monotonic() - start:.0f} s)")
    return {"inception_fid": _figure(value, (
        f"{len(fake)} samples against {len(test)} {dataset} test images, Inception-v3 pool3 (2048-d) of "
        f"{extractor.name}, 299x299 bilinear resize, float64 statistics; comparable with papers only "
        "at their sample counts (FID is biased upward for small n)"))}


def _measure_loglik(model, x_test, dataset, size, log):
    from zoo.data import ranges
    from zoo.metrics import loglik
    from zoo.models import VAE

    idx = _seeded_subset(len(x_test), size["loglik_n"], 3)
    x = ranges.pixels_to_unit(x_test[idx])
    space = "the model's data space"
    if getattr(model, "likelihood", None) == "bernoulli":
        # Binarised test images: one seeded draw (pixel on with its grey level).
        x = (np.random.default_rng(1).uniform(size=x_test.shape) < x_test / 255.0)[idx].astype("float32")
        space = "binarised pixels (one seeded draw, seed 1)"
    elif tuple(model.data_range) != (0.0, 1.0):
        space = (f"pixels scaled to {list(model.data_range)} with a Gaussian of width {model.pixel_sigma} "
                 "(the model's data space)")
    out = {}
    start = time.monotonic()
    ais = loglik.ais_log_likelihood(model, x, num_steps=size["ais_steps"], num_chains=size["ais_chains"],
                                    leapfrog_steps=size["ais_leapfrog"], seed=0, batch_size=len(x))
    out["ais_log_likelihood"] = _figure(
        ais.mean(), f"AIS (Wu et al. 2017), {size['ais_steps']} sigmoid-scheduled steps, {size['ais_chains']} "
        f"chains, {size['ais_leapfrog']} leapfrog steps, on {len(x)} {dataset} test images, {space}, "
        "nats per image (a stochastic lower bound)", std_error=ais.std(ddof=1) / np.sqrt(len(ais)))
    log(f"ais {out['ais_log_likelihood']['value']} ({time.monotonic() - start:.0f} s)")
    if isinstance(model, VAE):  # IWAE needs q(z|x)'s density: the VAE's Gaussian
        iw = loglik.iwae_log_likelihood(model, x, num_samples=size["iwae_samples"], seed=0)
        out["iwae_log_likelihood"] = _figure(
            iw.mean(), f"IWAE bound with K={size['iwae_samples']} on the same {len(x)} test images, {space}, nats",
            std_error=iw.std(ddof=1) / np.sqrt(len(iw)))
    return out


def _measure_hashing(model, data_path, size, log, protocol_seed=0):
    from zoo.data import cifar10_hashing_split
    from zoo.metrics.retrieval import mean_average_precision, precision_within_radius

    start = time.monotonic()
    split = cifar10_hashing_split(data_path, seed=protocol_seed)
    x_q, y_q = split.arrays("query")
    x_db, y_db = split.arrays("database")
    q_idx = _seeded_subset(len(x_q), size["queries"], 4)
    db_idx = _seeded_subset(len(x_db), size["database"], 5)
    x_q, y_q, x_db, y_db = x_q[q_idx], y_q[q_idx], x_db[db_idx], y_db[db_idx]
    codes_q, codes_db = model.hash(x_q), model.hash(x_db)
    scope = (f"{len(x_q)} queries against {len(x_db)} database images of the seeded CIFAR-10 hashing protocol "
             f"(zoo.data.cifar10_hashing_split, seed {protocol_seed}), {model.code_length}-bit codes")
    figures = {
        "map": _figure(mean_average_precision(codes_q, codes_db, y_q, y_db),
                       f"MAP over the full ranking of the database images (no top-k cut-off), ties by database position; {scope}"),
        "precision_radius_2": _figure(precision_within_radius(codes_q, codes_db, y_q, y_db, radius=2),
                                      f"mean precision within Hamming radius 2, empty retrievals count 0; {scope}"),
    }
    figures["map_check"] = hashing_check_figure(model, split)
    log(f"map {figures['map']['value']} ({time.monotonic() - start:.0f} s)")
    return figures


PR_CURVE_FILES = ("precision_recall.json", "precision_recall.png")


def write_precision_recall(model, data_path, folder, log=print, command=None, protocol_seed=0):
    """The Hamming-radius precision-recall curve of a hasher on the full protocol
    (1,000 queries, 59,000 database images), as JSON and PNG in `folder`; the
    JSON records `command` (the one that wrote it) and the git commit."""
    from recipes.provenance import git_commit
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo.data import cifar10_hashing_split
    from zoo.metrics.retrieval import precision_recall_curve

    split = cifar10_hashing_split(data_path, seed=protocol_seed)
    (x_q, y_q), (x_db, y_db) = split.arrays("query"), split.arrays("database")
    precision, recall, radii = precision_recall_curve(model.hash(x_q), model.hash(x_db), y_q, y_db,
                                                      bits=model.code_length)
    folder = Path(folder)
    record = {"command": command, "commit": git_commit(__file__),
              "how": f"precision and recall of the images within Hamming radius r (r = 0..{model.code_length}), "
                     "means over the 1,000 queries against the 59,000 database images of the seeded CIFAR-10 "
                     f"hashing protocol (seed {protocol_seed}); a query retrieving nothing has precision 0",
              "radius": radii.tolist(), "precision": np.round(precision, 4).tolist(),
              "recall": np.round(recall, 4).tolist()}
    (folder / PR_CURVE_FILES[0]).write_text(json.dumps(record, indent=1))
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(recall, precision, marker=".")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1),
           title=f"{model.code_length}-bit codes, Hamming radius 0..{model.code_length}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(folder / PR_CURVE_FILES[1], dpi=100)
    plt.close(fig)
    log(f"precision-recall curve: {folder / PR_CURVE_FILES[1]}")
    return record


CHECK_QUERIES, CHECK_DATABASE = 100, 2000


def hashing_check_figure(model, split):
    """A cheap figure that the preset tests re-measure on every backend: MAP of a
    seeded 100 queries over a seeded 2,000-image slice of the database."""
    from zoo.metrics.retrieval import mean_average_precision

    x_q, y_q = split.arrays("query")
    x_db, y_db = split.arrays("database")
    q, db = _seeded_subset(len(x_q), CHECK_QUERIES, 6), _seeded_subset(len(x_db), CHECK_DATABASE, 7)
    value = mean_average_precision(model.hash(x_q[q]), model.hash(x_db[db]), y_q[q], y_db[db])
    return _figure(value, f"MAP over the full ranking of {CHECK_DATABASE} database images (seeded subset, seed 7) "
                          f"for {CHECK_QUERIES} queries (seeded subset, seed 6) of the seeded CIFAR-10 hashing "
                          "protocol: a cheap check figure, smaller database than `map`'s")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("preset", help="a bundled preset name, a preset folder, or hf://owner/repo")
    p.add_argument("--data", default=None, help="the data set file (default: ../shared/datasets/<its file>)")
    p.add_argument("--quick", action="store_true", help="measure on subsets (smoke check)")
    p.add_argument("--write", action="store_true", help="record the figures in the preset's metadata.json")
    p.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = p.parse_args(argv)

    from zoo import presets

    try:
        model = presets.load(args.preset)
    except (FileNotFoundError, ValueError, TypeError, ImportError) as e:
        sys.exit(f"error: {e}")
    meta = model.preset_metadata
    dataset = meta.get("dataset")
    if dataset not in DATA_FILES:
        sys.exit(f"error: the preset's metadata names data set {dataset!r}; this evaluates {sorted(DATA_FILES)}.")
    if not hasattr(model, "players"):
        sys.exit("error: this preset is not a zoo model (a classifier?); nothing to evaluate here.")
    log = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    train_images = meta.get("training", {}).get("train_images")  # None: the whole train split
    # A hasher trained on another protocol split (recipes.train --protocol-seed) is measured on it.
    protocol_seed = meta.get("training", {}).get("protocol_seed", 0)
    figures = measure(model, dataset, args.data, quick=args.quick, log=log, train_images=train_images,
                      protocol_seed=protocol_seed)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        recorded = meta.get("figures", {})
        print(f"{args.preset}: {meta.get('description', '')}")
        print(f"{'figure':<24} {'metadata':>12} {'measured':>12}  how (measured)")
        for name, fig in figures.items():
            old = recorded.get(name, {}).get("value")
            old = "-" if old is None else f"{old:.4g}"
            new = "-" if fig["value"] is None else f"{fig['value']:.4g}"
            print(f"{name:<24} {old:>12} {new:>12}  {fig['how']}")
    if args.write:
        from recipes.provenance import git_commit

        folder = presets.resolve(args.preset)
        command = "python -m recipes.evaluate " + " ".join(sys.argv[1:] if argv is None else argv)
        presets.update_metadata(folder, figures={**meta.get("figures", {}), **figures},
                                figures_command=command, figures_commit=git_commit(__file__))
        print(f"Figures written to {folder / presets.METADATA_FILE}", file=sys.stderr)
        from zoo.models.capabilities import Hasher

        if isinstance(model, Hasher) and not args.quick:
            write_precision_recall(model, args.data, folder, log=log, command=command, protocol_seed=protocol_seed)
        from zoo import hub

        hub.write_model_card(folder)  # the card shows the figures just written


if __name__ == "__main__":
    main()
