"""DSH-GAN on the CIFAR-10 hashing protocol, beside LSH, ITQ and real-only triplets.

    python -m bench.dshgan_cifar10 --bits 12 48 --pretrain-steps 3000 --hash-steps 3000

    # the presets' network and schedule (recipes/train.py, dshgan_cifar10_*), with
    # validation figures, at 1,000 labels (#24's table):
    python -m bench.dshgan_cifar10 --hasher resnet --hasher-norm batch \
        --hash-augment translation,flip --optimizer adamw_cosine --validation-per-class 10 \
        --labels-per-class 100 --methods real cls dsh --hash-steps 8000 --seed 0

Protocol (`zoo.data.cifar10_hashing_split`, seed 0): all 60,000 images of the
JPEG export in shared/datasets/cifar10.zip, 1,000 queries (100 a class), 5,000
labelled training images (500 a class) from the other 59,000, which are the
database; the remaining 54,000 feed the semi-supervised GAN unlabelled. MAP is
over the whole database (59,000), ties in Hamming distance broken by database
position (the database is in a seeded random order); precision within Hamming
radius 2 counts a query that retrieves nothing as 0.

Rows, all at the same code length:
- LSH and ITQ on raw pixels (3,072-d, zero-centred; the papers used GIST);
- "real triplets": the hashing network trained on triplets of real labelled
  images, no generator (the paper's ablation);
- "classification only" (`--methods cls`): the same network trained through its
  classification stream alone (`triplet_weight=0`), codes from its hash layer;
- "DSH-GAN": the same network on real-synthetic triplets, with the generator
  pre-trained once (semi-supervised) and shared by every code length.
`--hasher`, `--hasher-norm`, `--hash-augment` and `--optimizer` set H's network and
training for every row (defaults: the earlier tables' VGG-style net, no
augmentation, Adam; the presets' recipe: resnet, batch, "translation,flip",
adamw_cosine over --hash-steps).
`--labels-per-class N` keeps N labels a class of the 5,000 (seeded) and moves the
other training images to the unlabelled pool: the regime of "few labels" where
the paper expects synthetic triplets to help most.
`--validation-per-class N` holds N of each class's labelled images out of
training as validation queries against the rest of the database
(`zoo.data.validation_split`, seed 0): each row then reports its validation MAP
beside the test MAP, and choices are to be made on the former only.
`--protocol-seed 1` runs on a second, independent protocol split.

Budgets are fixed step counts, so rows compare on equal work whatever else
shares the machine; wall-clock times are printed beside them.
"""

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import keras
import numpy as np

from bench.provenance import git_commit
from zoo.data import HashingSplit, cifar10_hashing_split, validation_split
from zoo.data.pipeline import scale, semi_supervised_dataset
from zoo.metrics.retrieval import mean_average_precision, precision_within_radius
from zoo.models import DSHGAN
from zoo.retrieval.baselines import ITQ, LSH

RESULTS = Path(__file__).resolve().parent / "results"


def build(bits, args, **kwargs):
    return DSHGAN.build_default(
        (32, 32, 3), num_classes=10, code_length=bits, latent_dim=args.latent_dim,
        g_width=args.g_width, d_width=args.d_width, h_width=args.h_width, seed=args.seed,
        diversity_weight=args.diversity_weight, hasher=args.hasher, hasher_norm=args.hasher_norm,
        hash_augment=args.hash_augment or None, class_weight=args.class_weight, margin=args.margin, **kwargs,
    )


def compile_hash_phase(model, args):
    """H's optimizer for the hash phase (G's and D's as in the recipes)."""
    if args.optimizer == "adamw_cosine":
        from recipes.train import adam, adamw_cosine

        model.compile(g_optimizer=adam(2e-4), d_optimizer=adam(2e-4),
                      h_optimizer=adamw_cosine(1e-3, args.hash_steps))
    else:
        model.compile()


class _Deadline(keras.callbacks.Callback):
    """Counts steps and stops at a wall-clock deadline (a safety net on a lent
    machine: the table then reports the steps actually run)."""

    def __init__(self, minutes):
        super().__init__()
        self.end = time.time() + 60 * minutes if minutes else None
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.end is not None and time.time() > self.end:
            self.model.stop_training = True


def fit_steps(model, dataset, steps, label, max_minutes=None):
    """Train `steps` steps (fewer if `max_minutes` runs out); (steps run, minutes)."""
    start = time.time()
    chunk = max(1, min(steps, 250))
    deadline = _Deadline(max_minutes)
    before = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    model.fit(dataset, epochs=max(1, steps // chunk), steps_per_epoch=chunk, verbose=2,
              callbacks=[deadline])
    minutes = (time.time() - start) / 60
    ran = int(keras.ops.convert_to_numpy(model.optimizer.iterations)) - before
    print(f"[{label}] {deadline.steps} of {steps} steps in {minutes:.1f} min "
          f"(the model's step counter: {ran})", flush=True)
    return deadline.steps, minutes


def intra_class_diversity(model, x_tr, y_tr, n=50, seed=0):
    """Mean pairwise L1 distance (pixels in [0, 1]) between G's samples of a class,
    over that of real labelled images of the class, averaged over classes: near 0
    when G ignores z, near 1 when its samples vary as much as real ones."""
    def spread(x):
        x = x.reshape(len(x), -1)
        return np.mean(np.abs(x[:, None] - x[None]).mean(-1)[np.triu_indices(len(x), 1)])

    rng = np.random.default_rng(seed)
    ratios = []
    for c in range(model.num_classes):
        real = x_tr[rng.choice(np.flatnonzero(y_tr == c), n, replace=False)].astype("float32") / 255
        fake = model.generate(n, seed=seed + c, labels=c)
        ratios.append(spread(fake) / spread(real))
    return float(np.mean(ratios))


def fewer_labels(split, per_class, seed=0):
    """The split with `per_class` labelled images of each class kept (seeded); the
    rest join the unlabelled pool. The queries and the database do not change."""
    y_tr = split.y[split.train]
    rng = np.random.default_rng(seed)
    counts = np.bincount(y_tr)
    if per_class > counts.min():
        raise ValueError(f"--labels-per-class {per_class}: the protocol has only {counts.min()} "
                         "labelled images in its smallest class.")
    keep = np.zeros(len(y_tr), bool)
    for c in range(len(counts)):
        keep[rng.choice(np.flatnonzero(y_tr == c), per_class, replace=False)] = True
    return HashingSplit(split.x, split.y, split.query, split.train[keep], split.database,
                        np.concatenate([split.unlabelled, split.train[~keep]]), split.seed)


def evaluate(codes_q, codes_db, y_q, y_db):
    return {
        "map": mean_average_precision(codes_q, codes_db, y_q, y_db),
        "p_r2": precision_within_radius(codes_q, codes_db, y_q, y_db, radius=2),
    }


class Protocols:
    """The test protocol and, with --validation-per-class, the validation one:
    `figures(encode)` scores a code function on both (validation first)."""

    def __init__(self, test, validation=None):
        self.test, self.validation = test, validation

    def figures(self, encode):
        out, t, v = {}, self.test, self.validation
        if v is not None and v.x is t.x:
            # Both protocols index the same 60,000 images and codes are deterministic:
            # encode each image once (half the time of encoding both databases).
            codes = encode(t.x)
            cut = lambda s: (codes[s.query], codes[s.database], s.y[s.query], s.y[s.database])
        else:
            cut = lambda s: (encode(s.x[s.query]), encode(s.x[s.database]), s.y[s.query], s.y[s.database])
        if v is not None:
            val = evaluate(*cut(v))
            out.update(val_map=val["map"], val_p_r2=val["p_r2"])
        out.update(evaluate(*cut(t)))
        return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[12, 48])
    parser.add_argument("--pretrain-steps", type=int, default=3000)
    parser.add_argument("--hash-steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=100)
    parser.add_argument("--g-width", type=int, default=32)
    parser.add_argument("--d-width", type=int, default=32)
    parser.add_argument("--h-width", type=int, default=32)
    parser.add_argument("--diversity-weight", type=float, default=0.0,
                        help="mode-seeking term in G's pre-training (0: the paper's loss)")
    parser.add_argument("--labelled-fraction", type=float, default=0.5,
                        help="share of labelled images in a semi-supervised batch")
    parser.add_argument("--hash-labelled-fraction", type=float, default=None,
                        help="share of labelled images in DSH-GAN's hash-phase batches "
                             "(default: --labelled-fraction)")
    parser.add_argument("--labels-per-class", type=int, default=None,
                        help="keep this many labels a class of the protocol's 500 (the rest "
                             "become unlabelled)")
    parser.add_argument("--pretrained", default=None,
                        help="a pre-trained DSH-GAN (pretrained.keras: G and D) or generator "
                             "(.keras) instead of pre-training")
    parser.add_argument("--pretrain-only", action="store_true",
                        help="pre-train G and D, save them (pretrained.keras) and stop: parallel "
                             "runs per code length then load them with --pretrained")
    parser.add_argument("--methods", nargs="+", default=["lsh", "itq", "real", "dsh"],
                        choices=["lsh", "itq", "real", "cls", "dsh"])
    parser.add_argument("--hasher", default="vgg", choices=["vgg", "resnet"],
                        help="H's network (DSHGAN.build_default); the presets: resnet")
    parser.add_argument("--hasher-norm", default="group", choices=["group", "batch"],
                        help="the resnet hasher's normalisation; the presets: batch")
    parser.add_argument("--hash-augment", default="",
                        help='augmentation of H\'s training images, e.g. "translation,flip" (the presets)')
    parser.add_argument("--optimizer", default="adam", choices=["adam", "adamw_cosine"],
                        help="H's optimizer: the model's default Adam, or the presets' AdamW 1e-3 with a "
                             "cosine schedule over --hash-steps")
    parser.add_argument("--class-weight", type=float, default=1.0,
                        help="weight of H's classification stream beside the triplet loss (1, the presets'); "
                             "the triplet loss grows with the code length (margin q/4), this does not")
    parser.add_argument("--margin", type=float, default=None, help="the triplet margin (default q/4)")
    parser.add_argument("--validation-per-class", type=int, default=0,
                        help="labelled images a class held out as validation queries (0: none)")
    parser.add_argument("--protocol-seed", type=int, default=0,
                        help="the seed of zoo.data.cifar10_hashing_split (0: the protocol's)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop a training phase after this many minutes (the table shows "
                             "the steps run)")
    parser.add_argument("--no-save", action="store_true",
                        help="do not save the trained DSH-GANs (the table's many runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "dshgan_cifar10"))
    parser.add_argument("--merge", nargs="+", default=None, metavar="RUN_DIR",
                        help="only merge the tables of these runs into --out")
    args = parser.parse_args(argv)
    args.command = "python -m bench.dshgan_cifar10 " + " ".join(
        shlex.quote(portable(a) if a.startswith("/") else a) for a in (sys.argv[1:] if argv is None else argv))
    args.commit = git_commit(__file__)
    if args.merge:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        return merge(args.out, args.merge)
    keras.utils.set_random_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    split = cifar10_hashing_split(seed=args.protocol_seed)
    print(split, flush=True)
    x_q, y_q = split.arrays("query")
    x_db, y_db = split.arrays("database")
    if args.labels_per_class:
        split = fewer_labels(split, args.labels_per_class, seed=args.seed)
    validation = None
    if args.validation_per_class:  # from the labels a user has: never the queries
        validation = validation_split(split, args.validation_per_class, seed=0)
        print(f"validation: {validation}", flush=True)
    protocols = Protocols(split, validation)
    trained_on = validation or split
    x_tr, y_tr = trained_on.arrays("train")
    x_un, _ = split.arrays("unlabelled")
    print(f"{len(x_tr)} labelled training images, {len(x_un)} unlabelled", flush=True)

    semi = semi_supervised_dataset(x_tr, y_tr, x_un, args.batch_size, args.labelled_fraction,
                                   seed=args.seed)
    labelled_only = semi_supervised_dataset(x_tr, y_tr, x_un, args.batch_size, 1.0, seed=args.seed)
    hash_fraction = args.hash_labelled_fraction or args.labelled_fraction
    hash_data = semi_supervised_dataset(x_tr, y_tr, x_un, args.batch_size, hash_fraction,
                                        seed=args.seed)

    # One semi-supervised pre-training of G, shared by every code length.
    pretrained = build(args.bits[0], args)
    pretrained.compile()
    diversity = float("nan")  # measured after a pre-training
    if args.pretrained:
        loaded = keras.models.load_model(args.pretrained)
        if isinstance(loaded, DSHGAN):  # G and D of the pre-training phase
            pretrained.generator.set_weights(loaded.generator.get_weights())
            pretrained.discriminator.set_weights(loaded.discriminator.get_weights())
        else:  # a generator alone (older runs): D starts fresh
            pretrained.generator.set_weights(loaded.get_weights())
        pre_minutes, args.pretrain_steps = 0.0, f"loaded from {args.pretrained}"
    elif "dsh" in args.methods:
        pretrained.phase = "pretrain"
        args.pretrain_steps, pre_minutes = fit_steps(pretrained, semi, args.pretrain_steps,
                                                     "pretrain G", args.max_minutes)
        pretrained.generator.save(out / "generator_pretrained.keras")
        pretrained.save(out / "pretrained.keras")
        from zoo.visualize import save_image_grid

        save_image_grid(pretrained.generate(100, seed=0, labels=np.repeat(np.arange(10), 10)),
                        out / "pretrained_samples.png", cols=10)
        diversity = intra_class_diversity(pretrained, x_tr, y_tr)
        print(f"[pretrain G] intra-class diversity (G / real): {diversity:.3f}", flush=True)
    else:
        pre_minutes = 0.0
    if args.pretrain_only:
        header = (f"pre-training: backend {keras.backend.backend()}, batch {args.batch_size}, widths "
                  f"G {args.g_width} D {args.d_width}; G and D pre-trained {args.pretrain_steps} "
                  f"steps ({pre_minutes:.1f} min), {args.labelled_fraction:g} of a batch labelled, "
                  f"diversity weight {args.diversity_weight:g}; intra-class diversity of G's samples "
                  f"over real ones {diversity:.3f}.")
        return write_table(out, [header], [], {"args": vars(args), "minutes": pre_minutes},
                           labelled=len(x_tr), validation=validation)

    def pixels(x):
        return scale(x, (0.0, 1.0)).reshape(len(x), -1)

    pixels_db = pixels(x_db)
    rows = []
    for bits in args.bits:
        for name, hasher in (("LSH (pixels)", LSH(bits, seed=args.seed)),
                             ("ITQ (pixels)", ITQ(bits, seed=args.seed))):
            if name[:3].lower() not in args.methods:
                continue
            start = time.time()
            hasher.fit(pixels_db)  # unsupervised, on the test database (the papers' usage)
            minutes = (time.time() - start) / 60
            rows.append({"bits": bits, "method": name, "steps": 0, "minutes": minutes,
                         **protocols.figures(lambda x: hasher.encode(pixels(x)))})
            print(rows[-1], flush=True)

        for method, label, kwargs in (("real", "real triplets (no G)", {}),
                                      ("cls", "classification only", {"triplet_weight": 0.0})):
            if method not in args.methods:
                continue
            real = build(bits, args, synthetic_triplets=False, phase="hash", **kwargs)
            compile_hash_phase(real, args)
            steps, minutes = fit_steps(real, labelled_only, args.hash_steps, f"{label} {bits}",
                                       args.max_minutes)
            rows.append({"bits": bits, "method": label, "steps": steps, "minutes": minutes,
                         **protocols.figures(real.hash)})  # uint8 in: hash() scales
            print(rows[-1], flush=True)
        if "dsh" not in args.methods:
            continue

        dsh = build(bits, args, phase="hash")
        dsh.generator.set_weights(pretrained.generator.get_weights())
        dsh.discriminator.set_weights(pretrained.discriminator.get_weights())
        compile_hash_phase(dsh, args)
        steps, minutes = fit_steps(dsh, hash_data, args.hash_steps, f"DSH-GAN {bits}",
                                   args.max_minutes)
        rows.append({"bits": bits, "method": f"DSH-GAN (labelled share {hash_fraction:g})",
                     "steps": steps, "minutes": minutes, **protocols.figures(dsh.hash)})
        print(rows[-1], flush=True)
        if not args.no_save:
            dsh.save(out / f"dshgan_{bits}.keras")

    header = (
        f"backend {keras.backend.backend()}, batch {args.batch_size}, widths G {args.g_width} "
        f"D {args.d_width} H {args.h_width} ({args.hasher} hasher, {args.hasher_norm} norm, "
        f"augment {args.hash_augment or 'none'}, {args.optimizer}, class weight {args.class_weight:g}, margin "
        f"{'q/4' if args.margin is None else f'{args.margin:g}'}), seed {args.seed}, protocol seed "
        f"{args.protocol_seed}; "
        + (f"G pre-trained {args.pretrain_steps} steps ({pre_minutes:.1f} min), shared by every code length; "
           f"batches {args.labelled_fraction:g} labelled in pre-training, {hash_fraction:g} in DSH-GAN's hash "
           "phase." if "dsh" in args.methods else "no generator (no DSH-GAN row); hash batches all labelled.")
    )
    rows = [{**r, "seed": args.seed} for r in rows]
    write_table(out, [header], rows, {"args": vars(args)}, labelled=len(x_tr), validation=validation)


def portable(path):
    """`path` relative to the checkout when inside it, else its last two parts."""
    path = Path(path).resolve()
    root = Path(__file__).resolve().parents[1]
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else "/".join(path.parts[-2:])


def write_table(out, header, rows, extra, labelled=5000, validation=None):
    scope = ""
    if validation is not None or any("val_map" in r for r in rows):
        scope = ("val: validation queries (zoo.data.validation_split of the labelled images, never "
                 "trained on) against the rest of the database, the figures for choices; test: the "
                 "protocol's 1,000 queries, reported once. ")
    lines = [
        f"DSH-GAN on CIFAR-10 (JPEG export): 1,000 queries, {labelled:,} labelled training images, "
        "59,000 database; MAP over the whole database, ties by database position; "
        "P@r2 counts empty retrievals as 0. " + scope,
        *header,
        "",
        f"{'bits':>4}  {'method':<34} {'seed':>4} {'steps':>6} {'min':>6} {'val MAP':>8} "
        f"{'MAP':>7} {'P@r2':>7}",
    ]
    order = sorted(rows, key=lambda r: (r["bits"], r["method"], r.get("seed", 0)))
    for r in order:
        val = f"{r['val_map']:>8.4f}" if "val_map" in r else f"{'-':>8}"
        lines.append(f"{r['bits']:>4}  {r['method']:<34} {r.get('seed', '-'):>4} {r['steps']:>6} "
                     f"{r['minutes']:>6.1f} {val} {r['map']:>7.4f} {r['p_r2']:>7.4f}")
    groups = {}
    for r in order:
        groups.setdefault((r["bits"], r["method"]), []).append(r)
    if any(len(g) > 1 for g in groups.values()):
        lines += ["", "Over seeds (mean +- half the range):",
                  f"{'bits':>4}  {'method':<34} {'n':>2} {'val MAP':>16} {'MAP':>16}"]
        for (bits, method), g in groups.items():
            def spread(key):
                v = [r[key] for r in g if key in r]
                if not v:
                    return f"{'-':>16}"
                return f"{np.mean(v):>7.4f} +- {(max(v) - min(v)) / 2:.4f}"
            lines.append(f"{bits:>4}  {method:<34} {len(g):>2} {spread('val_map')} {spread('map')}")
    args = extra.get("args", {})
    provenance = {k: args[k] for k in ("command", "commit") if k in args}
    if provenance:  # the table names the run that wrote it (the rows' own runs: results.json)
        lines += ["", *(f"{'git commit' if k == 'commit' else k}: {v}" for k, v in provenance.items())]
    table = "\n".join(lines)
    print(table)
    (out / "table.txt").write_text(table + "\n")
    for key in ("out", "pretrained"):  # no path of this machine in a results file
        if args.get(key):
            args[key] = portable(args[key])
    (out / "results.json").write_text(json.dumps(
        {**provenance, **extra, "labelled": labelled, "rows": rows}, indent=1))


def merge(out, parts):
    """One table from the results.json of runs made in parallel (one per method,
    length or seed); each row keeps its run's seed, command and commit."""
    rows, headers, runs, labelled = [], [], {}, set()
    for part in parts:
        result = json.loads((Path(part) / "results.json").read_text())
        args = result["args"]
        for r in result["rows"]:
            rows.append({**r, "seed": args.get("seed", 0), "run": Path(part).name})
        runs[Path(part).name] = {"args": args, "command": result.get("command"),
                                 "commit": result.get("commit")}
        labelled.add(result.get("labelled", 5000))
        header = (Path(part) / "table.txt").read_text().splitlines()[1]
        headers.append(f"{Path(part).name}: {header}")
    if len(labelled) > 1:
        raise ValueError(f"runs with different numbers of labels cannot share a table: {sorted(labelled)}")
    command = "python -m bench.dshgan_cifar10 --merge " + " ".join(Path(p).name for p in parts)
    write_table(Path(out), headers, rows, {"args": {"command": command, "commit": git_commit(__file__)},
                                           "runs": runs}, labelled=labelled.pop())


if __name__ == "__main__":
    main()
