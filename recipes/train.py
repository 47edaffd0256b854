"""Train a zoo model from scratch with a named recipe and write it as a preset.

    python -m recipes.train dcgan_mnist --data ../shared/datasets/mnist.npz --minutes 3
    python -m recipes.train vae_cifar10 --data ../shared/datasets/cifar10.zip --epochs 20 \\
        --preset saved_models/vae_cifar10

Seeded (--seed), with Keras's progress bar. Under --out (default runs/RECIPE):
`samples.png`, TensorBoard logs in `logs/`, `train_summary.json`, and `backup/`:
a run that is interrupted resumes from its last checkpoint (each epoch) when the
same command is run again, and ends with the weights the uninterrupted run would
have had: the backup holds the weights, optimizer slots and random-number state,
and the seeded data stream is replayed from that epoch (--steps-per-epoch sets
how much work an interruption can cost). A recipe with two phases (DSH-GAN:
pretrain, then hash) also skips the phases it finished. --minutes is a budget
per run (a resumed run gets it afresh). A run whose losses turn NaN or Inf stops
with a message and keeps its last good checkpoint.

At the end the recipe measures the model's figures (`recipes.evaluate`; --quick-eval
on subsets, --no-eval to skip) and writes the preset folder (--preset, default
OUT/preset) atomically: config.json, model.weights.h5 and metadata.json with the
data set and split, this exact command, the figures and how they were measured.
A killed run never leaves a half-written preset.
"""

import argparse
import hashlib
import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

import zoo
from zoo import data as zdata
from zoo.callbacks import LossHistory, SampleGrid, StepLimit, StopOnNaN, TimeLimit, TrainingDiverged
from zoo.models.capabilities import Autoencoder
from zoo.visualize import save_image_grid

from recipes.evaluate import VALID_N  # the held-out images Parzen's sigma is chosen on
from recipes.provenance import cpu_description, git_commit

MNIST, CIFAR = (28, 28, 1), (32, 32, 3)


def adam(lr):
    return keras.optimizers.Adam(lr, beta_1=0.5)


@dataclass
class Recipe:
    description: str
    dataset: str  # "mnist" or "cifar10"
    build: callable  # seed -> model
    optimizers: callable  # () -> compile keywords
    data: str = "images"  # "images", "labelled", "binarised" or "hashing"
    data_range: tuple = (-1.0, 1.0)  # the model's; zoo.data scales the images to it
    phases: tuple = (None,)  # DSH-GAN: ("pretrain", "hash")
    labelled_share: tuple = (0.5,)  # "hashing" data: share of a batch labelled, per phase
    # Leading training images trained on; the rest of the train split is held
    # out (Parzen's sigma is chosen there). None: all of them.
    train_images: int = None
    split: str = "train split (all) for training; test split for the figures"
    notes: dict = field(default_factory=dict)
    # "hashing" data: labelled images a class moved to a validation protocol
    # (zoo.data.validation_split: queries against the rest of the training pool),
    # tracked during training and measured at the end; 0: none.
    validation_per_class: int = 0
    untrained: tuple = ()  # networks the recipe never trains (metadata "untrained_networks")


def _gan_opts(lr=2e-4):
    return lambda: dict(d_optimizer=adam(lr), g_optimizer=adam(lr))


def _held_out(n, training=None):
    """Recipe fields: train on train[:n], hold out the rest; Parzen's sigma is then
    chosen on the first VALID_N held-out images (recipes.evaluate.sigma_images)."""
    training = training or f"train[:{n}] for training"
    return dict(train_images=n, split=f"{training}; train[{n}:] held out (Parzen's sigma chosen on "
                                      f"train[{n}:{n + VALID_N}]); test split for the figures")


MNIST_SPLIT = _held_out(50000)  # Goodfellow et al.'s MNIST protocol
CIFAR_SPLIT = _held_out(45000)  # CIFAR-10's last 5,000 training images held out alike


def _vaegan_opts(lr=3e-4):
    return lambda: dict(enc_optimizer=adam(lr), dec_optimizer=adam(lr), dis_optimizer=adam(lr))


def adamw_cosine(lr, steps, warmup=None, weight_decay=0.05):
    """AdamW with a linear warm-up (500 steps, or a quarter of a shorter schedule)
    and a cosine decay to 0 over `steps`; the recipe's `--steps` must match. (SGD with Nesterov momentum at the CIFAR
    ResNets' 0.05 collapsed the hashing net to chance within 1,000 steps, and at
    0.02 its training loss rose again at the peak rate; AdamW at 1e-3 kept
    falling: bench/results/dshgan_optimizer_pilot.txt, training loss only.)"""
    warmup = min(500, steps // 4) if warmup is None else warmup
    if not 0 <= warmup < steps:
        raise ValueError(f"adamw_cosine: the warm-up ({warmup} steps) must be shorter than the schedule ({steps} steps).")
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=steps - warmup, warmup_target=lr, warmup_steps=warmup)
    return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)


HASH_STEPS = 12_000  # the hashing recipes' schedule length: run them with --steps 12000


def _dshgan(bits):
    # The triplet loss grows with the code length (margin q/4, squared distances
    # up to q) and the classification loss does not; class weight q/12 keeps their
    # balance at 12 bits' (4 at 48 bits: chosen on validation MAP in a 1,500-step
    # pilot, 0.4449 vs 0.3548: bench/results/dshgan_class_weight_pilot/).
    class_weight = bits / 12
    return Recipe(
        description=f"DSH-GAN's hashing network, {bits}-bit codes, on the CIFAR-10 hashing protocol, trained "
                    "from scratch on real triplets (the paper's real-only ablation: no generator; G and D are "
                    "in the preset untrained): a residual hashing net (blocks.resnet_hashing_network, width "
                    "32, batch norm), each training image randomly shifted by up to 4 pixels and flipped "
                    f"(hash_augment), AdamW (1e-3, weight decay 0.05) with a cosine schedule over "
                    f"{HASH_STEPS} steps, batches of 64 labelled images, classification loss weight {class_weight:g} "
                    "(q/12: chosen at 48 bits on validation MAP, bench/results/dshgan_class_weight_pilot/); "
                    "trained on 4,500 of the 5,000 labelled "
                    "images, the other 500 the validation queries (no setting was tuned on retrieval figures: "
                    "the optimizer was chosen on the training loss of a 600-step pilot, the class weight on "
                    "validation MAP, the rest before any run; the validation MAP is recorded beside the test MAP)",
        dataset="cifar10", data="hashing", phases=("hash",), labelled_share=(1.0,),
        build=lambda s: zoo.DSHGAN.build_default(
            CIFAR, num_classes=10, code_length=bits, g_width=32, d_width=32, h_width=32, hasher="resnet",
            hasher_norm="batch", synthetic_triplets=False, hash_augment="translation,flip",
            class_weight=class_weight, seed=s),
        optimizers=lambda: dict(g_optimizer=adam(2e-4), d_optimizer=adam(2e-4),
                                h_optimizer=adamw_cosine(1e-3, HASH_STEPS)),
        validation_per_class=50, untrained=("generator", "discriminator"),
        split="zoo.data.cifar10_hashing_split(seed 0) of all 60,000 images: 1,000 queries (the test "
              "figures), 59,000 database; of its 5,000 labelled images, zoo.data.validation_split (50 a "
              "class, seed 0) holds out 500 as validation queries (against the other 58,500 database "
              "images) and trains on the other 4,500 (batches all labelled)",
    )


def _dshgan_synthetic(bits):
    return Recipe(
        description=f"DSH-GAN, {bits}-bit codes, on the CIFAR-10 hashing protocol (5,000 labelled images): "
                    "width-32 G, D and hashing net from scratch; pre-training batches half labelled, hash-phase "
                    "batches all labelled (a choice made by MAP on the protocol's test queries, not on a "
                    "validation split: bench/README.md); a mode-seeking term (weight 1, not in the paper) in "
                    "G's losses",
        dataset="cifar10", data="hashing", phases=("pretrain", "hash"),
        # Half-labelled batches for the semi-supervised GAN; in the hash phase only
        # labelled images make triplets (bench: all-labelled batches gave higher MAP).
        labelled_share=(0.5, 1.0),
        # diversity_weight: a mode-seeking term (not in the paper) that stops G from
        # making one image per class (see zoo/models/dshgan.py).
        build=lambda s: zoo.DSHGAN.build_default(CIFAR, num_classes=10, code_length=bits, g_width=32,
                                                 d_width=32, h_width=32, diversity_weight=1.0, seed=s),
        optimizers=lambda: dict(g_optimizer=adam(2e-4), d_optimizer=adam(2e-4), h_optimizer=adam(2e-4)),
        split="zoo.data.cifar10_hashing_split(seed 0) of all 60,000 images: 5,000 labelled (500 a class) and "
              "54,000 unlabelled for training (pre-training batches half labelled, hash-phase batches all "
              "labelled), 1,000 queries, 59,000 database",
    )


RECIPES = {
    "gan_mlp_mnist": Recipe(
        "The paper's GAN (ReLU MLP generator, maxout discriminator) on MNIST; samples from the moving "
        "average of G's weights (decay 0.999, not in the paper)", "mnist",
        # The EMA of G removes the last iterate's speckle noise (a 10,000-step trial's samples), which
        # Parzen's estimate punishes; the raw G is kept beside it (generate(use_ema=False)).
        lambda s: zoo.GAN.paper_mlp(MNIST, ema_decay=0.999, ema_warmup=True, seed=s), _gan_opts(),
        data_range=(0.0, 1.0), **MNIST_SPLIT),
    "dcgan_mnist": Recipe(
        "DCGAN on MNIST", "mnist", lambda s: zoo.GAN.dcgan(MNIST, seed=s), _gan_opts(), **MNIST_SPLIT),
    "cdcgan_mnist": Recipe(
        "Class-conditional DCGAN on MNIST (generate(n, labels=...))", "mnist",
        lambda s: zoo.GAN.dcgan(MNIST, num_classes=10, seed=s), _gan_opts(), data="labelled", **MNIST_SPLIT),
    "dcgan_cifar10": Recipe(
        "DCGAN on CIFAR-10", "cifar10", lambda s: zoo.GAN.dcgan(CIFAR, seed=s), _gan_opts(), **CIFAR_SPLIT),
    "cdcgan_cifar10": Recipe(
        "Class-conditional DCGAN on CIFAR-10 (generate(n, labels=...))", "cifar10",
        lambda s: zoo.GAN.dcgan(CIFAR, num_classes=10, seed=s), _gan_opts(), data="labelled", **CIFAR_SPLIT),
    "vae_mnist": Recipe(
        "Gaussian VAE with Larsen et al.'s nets (x0.25 width, 64-d latent) on MNIST", "mnist",
        lambda s: zoo.VAE.larsen(MNIST, latent_dim=64, width=0.25, pixel_sigma=0.1, seed=s),
        lambda: dict(optimizer=adam(3e-4)), **MNIST_SPLIT),
    "vae_cifar10": Recipe(
        "Gaussian VAE with Larsen et al.'s nets (x0.25 width, 64-d latent) on CIFAR-10", "cifar10",
        lambda s: zoo.VAE.larsen(CIFAR, latent_dim=64, width=0.25, pixel_sigma=0.1, seed=s),
        lambda: dict(optimizer=adam(3e-4)), **CIFAR_SPLIT),
    "vaegan_mnist": Recipe(
        "VAE-GAN (Larsen et al., x0.25 width, 64-d latent, equilibrium 0.68 +- 0.35) on MNIST", "mnist",
        lambda s: zoo.VAEGAN.larsen(MNIST, latent_dim=64, width=0.25, equilibrium=(0.68, 0.35), seed=s),
        _vaegan_opts(), **MNIST_SPLIT),
    "vaegan_cifar10": Recipe(
        "VAE-GAN (Larsen et al., x0.25 width, 64-d latent, equilibrium 0.68 +- 0.35) on CIFAR-10", "cifar10",
        lambda s: zoo.VAEGAN.larsen(CIFAR, latent_dim=64, width=0.25, equilibrium=(0.68, 0.35), seed=s),
        _vaegan_opts(), **CIFAR_SPLIT),
    "avb_ac_mnist": Recipe(
        "AVB with adaptive contrast (the authors' basis encoder, 8 noise networks), Bernoulli decoder, "
        "32-d latent, 128-unit layers, on binarised MNIST",
        "mnist",
        lambda s: zoo.AVB.build_default(MNIST, latent_dim=32, hidden=(128, 128), likelihood="bernoulli",
                                        adaptive_contrast=True, num_basis=8, noise_hidden=(64, 64), seed=s),
        # T at twice the encoder's rate, as in the authors' code.
        lambda: dict(T_optimizer=adam(6e-4), vae_optimizer=adam(3e-4)),
        data="binarised", data_range=(0.0, 1.0),
        **_held_out(50000, "train[:50000], binarised afresh each time an image is drawn (pixel on with "
                           "probability its grey level), for training")),
    "dshgan_cifar10_12bit": _dshgan(12),
    "dshgan_cifar10_48bit": _dshgan(48),
    # The recipes of the presets before the residual hasher (MAP 0.27 at 3,500 steps).
    "dshgan_synthetic_cifar10_12bit": _dshgan_synthetic(12),
    "dshgan_synthetic_cifar10_48bit": _dshgan_synthetic(48),
}
DEFAULT_STEPS_ENDLESS = 250  # steps per epoch on the semi-supervised pipeline
VALIDATION_EVERY_EPOCHS = 10


def make_data(recipe, path, batch_size, seed, phase_index=0, protocol_seed=0):
    """(endless seeded pipeline, steps in one epoch). Endless, so that one
    iterator runs through all epochs and a resumed run can replay it exactly."""
    if recipe.data == "hashing":
        from zoo.data.pipeline import semi_supervised_dataset

        split = hashing_split_of(recipe, path, protocol_seed)
        x_tr, y_tr = split.arrays("train")
        x_un, _ = split.arrays("unlabelled")
        share = recipe.labelled_share[min(phase_index, len(recipe.labelled_share) - 1)]
        ds = semi_supervised_dataset(x_tr, y_tr, x_un, batch_size, share, recipe.data_range, seed=seed)
        return ds, DEFAULT_STEPS_ENDLESS
    x, y, _ = zdata.load_arrays(path, "train")
    x = x[: recipe.train_images]  # the rest of the train split is held out
    y = None if y is None else y[: recipe.train_images]
    shape = {"mnist": MNIST, "cifar10": CIFAR}[recipe.dataset]
    if x.shape[1:] != shape:
        raise ValueError(f"{path} holds images of shape {x.shape[1:]}; this recipe needs {shape}.")
    ds = zdata.make_dataset(x, y if recipe.data == "labelled" else None, batch_size=batch_size,
                            data_range=recipe.data_range, seed=seed, repeat=True)
    if recipe.data == "binarised":
        import tensorflow as tf

        ds = ds.map(lambda b: tf.cast(tf.random.uniform(tf.shape(b), seed=seed) < b, tf.float32))
    return ds, len(x) // batch_size  # one pass over the data


def hashing_split_of(recipe, path, protocol_seed=0):
    """The split a hashing recipe trains on: the protocol's (seed 0, the presets';
    another seed is a second, independent split), or its validation protocol
    when the recipe holds labelled images out."""
    split = zdata.cifar10_hashing_split(path, seed=protocol_seed)
    if recipe.validation_per_class:
        split = zdata.validation_split(split, recipe.validation_per_class, seed=0)
    return split


VALIDATION_DATABASE = 10_000  # the validation curve's database: a seeded subset (the end figure: all)


def validation_callback(recipe, path, every, protocol_seed=0):
    """MAP of the validation queries, logged as val_map every `every` epochs."""
    from zoo.metrics.callbacks import MAPCallback

    split = hashing_split_of(recipe, path, protocol_seed)
    x_q, y_q = split.arrays("query")
    x_db, y_db = split.arrays("database")
    db = np.random.default_rng(3).choice(len(x_db), VALIDATION_DATABASE, replace=False)
    return MAPCallback(x_q, y_q, x_db[db], y_db[db], every=every, name="val_map")


def validation_figures(model, recipe, path, protocol_seed=0):
    """The validation protocol's MAP and precision within radius 2 (all its database)."""
    from zoo.metrics.retrieval import mean_average_precision, precision_within_radius

    split = hashing_split_of(recipe, path, protocol_seed)
    x_q, y_q = split.arrays("query")
    x_db, y_db = split.arrays("database")
    codes_q, codes_db = model.hash(x_q), model.hash(x_db)
    scope = (f"{len(x_q)} validation queries (zoo.data.validation_split, {recipe.validation_per_class} a "
             f"class of the labelled images of protocol seed {protocol_seed}, seed 0) against the other "
             f"{len(x_db)} database images, {model.code_length}-bit codes: the figure for choices, never "
             "trained on")
    return {
        "map_validation": {"value": round(float(mean_average_precision(codes_q, codes_db, y_q, y_db)), 4),
                           "how": f"MAP over the full ranking; {scope}"},
        "precision_radius_2_validation": {
            "value": round(float(precision_within_radius(codes_q, codes_db, y_q, y_db, radius=2)), 4),
            "how": f"mean precision within Hamming radius 2, empty retrievals count 0; {scope}"},
    }


def split_text(recipe, protocol_seed):
    """The recipe's split as metadata, naming the protocol seed it ran on."""
    marker = "cifar10_hashing_split(seed 0)"
    if recipe.data != "hashing" or not protocol_seed:
        return recipe.split
    if marker not in recipe.split:  # never a metadata that names the wrong split
        raise ValueError(f"The recipe's split text does not name {marker!r}; cannot restate it for seed {protocol_seed}.")
    return recipe.split.replace(marker, f"cifar10_hashing_split(seed {protocol_seed})")


def sample_grid(model, path, seed):
    n = 100
    if model.num_classes:
        images = model.generate(n, seed=seed, labels=np.repeat(np.arange(10), 10))
    else:
        images = model.generate(n, seed=seed)
    return save_image_grid(images, path, cols=10)


def command_line(argv):
    args = sys.argv[1:] if argv is None else list(argv)
    return "python -m recipes.train " + " ".join(shlex.quote(a) for a in args)


def reproduce_command(argv, phase_steps):
    """The command with the wall-time budget replaced by the steps it bought (one
    per phase): on the same backend it retrains the same weights (seeded data,
    noise and init)."""
    args = sys.argv[1:] if argv is None else list(argv)
    kept, skip = [], False
    for a in args:
        if skip and not a.startswith("-"):  # a value of --minutes or --steps
            continue
        skip = False
        if a in ("--minutes", "--steps"):
            skip = True
            continue
        if a.startswith(("--minutes=", "--steps=")):
            continue
        kept.append(a)
    return command_line(kept + ["--steps", *(str(n) for n in phase_steps)])


def main(argv=None):
    """Train a recipe; a data problem (found when loading or while training) is one
    line on stderr and exit status 1, not a traceback."""
    from zoo.core.checks import NonFiniteBatchError
    from zoo.data import DataError

    try:
        return _train(argv)
    except (DataError, NonFiniteBatchError) as e:
        sys.exit(f"error: {e}")


def data_record(path):
    """The data set as metadata: its file name and sha256 (never a path of this machine)."""
    path = Path(path)
    record = {"name": path.name}
    if path.is_file():
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        record["sha256"] = digest.hexdigest()
    return record


def _train(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", choices=sorted(RECIPES), metavar="RECIPE", help=f"one of {sorted(RECIPES)}")
    p.add_argument("--data", default=None,
                   help="the data set (.npz, image folder/zip or tfds name; default ../shared/datasets/<file>)")
    p.add_argument("--out", default=None, help="run folder: logs, backups, samples (default runs/RECIPE)")
    p.add_argument("--preset", default=None, help="where the preset goes (default OUT/preset)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs (per phase); default 50, or 1000 with --minutes (the time limit stops it)")
    p.add_argument("--minutes", type=float, default=None, help="training time budget (split between phases)")
    p.add_argument("--steps", type=int, nargs="+", default=None,
                   help="training steps, one number for every phase or one per phase (DSH-GAN: "
                        "pretrain, hash); a budget that replays exactly: the preset's metadata "
                        "records the --steps command that reproduces a --minutes run")
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help=f"batches per epoch (default: one pass; {DEFAULT_STEPS_ENDLESS} for DSH-GAN's endless data)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--protocol-seed", type=int, default=0,
                   help="hashing recipes: the CIFAR-10 protocol split (zoo.data.cifar10_hashing_split's seed; "
                        "0, the presets', is the one their figures use, 1 a second, independent split)")
    p.add_argument("--quick-eval", action="store_true", help="measure the figures on subsets")
    p.add_argument("--no-eval", action="store_true", help="write the preset without figures")
    p.add_argument("--verbose", type=int, default=1, help="Keras's progress bar (1), one line per epoch (2)")
    p.add_argument("--samples-every", type=int, default=1000,
                   help="write a fixed-noise sample grid (and a TensorBoard image) every N steps (0: never)")
    args = p.parse_args(argv)

    from recipes import evaluate
    from zoo import hub, presets

    recipe = RECIPES[args.recipe]
    if args.steps and len(args.steps) not in (1, len(recipe.phases)):
        p.error(f"--steps takes one number or one per phase {list(recipe.phases)}; got {args.steps}")
    if args.protocol_seed and recipe.data != "hashing":
        p.error(f"--protocol-seed is for the hashing recipes; {args.recipe} trains on {recipe.dataset}'s own split")
    phase_budgets = (args.steps * len(recipe.phases))[: len(recipe.phases)] if args.steps else None
    data_path = Path(args.data) if args.data else evaluate.default_data(recipe.dataset)
    out = Path(args.out or Path("runs") / args.recipe)
    preset_path = Path(args.preset) if args.preset else out / "preset"
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    try:
        ds, steps_per_pass = make_data(recipe, data_path, args.batch_size, args.seed,
                                       protocol_seed=args.protocol_seed)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")

    model = recipe.build(args.seed)
    model.compile(**recipe.optimizers())
    try:  # the model's own checks (shape, range, labels for its classes), as one line
        model.check_data(ds)
    except ValueError as e:
        sys.exit(f"error: {data_path}: {e}")
    epochs = args.epochs or (1000 if args.minutes or args.steps else 50)
    steps = args.steps_per_epoch or steps_per_pass
    phase_dir = out / "phases"
    start = time.monotonic()
    history, phase_steps = {}, []
    losses = LossHistory(every=10)
    sample_inputs = None
    if isinstance(model, Autoencoder):  # its grids: test inputs beside their reconstructions
        sample_inputs = zdata.load_arrays(data_path, "test")[0][:32]
    for i, phase in enumerate(recipe.phases):
        tag = phase or "train"
        done = phase_dir / f"{tag}.weights.h5"
        if phase is not None:
            model.phase = phase
        if done.exists():  # finished in an earlier, interrupted run
            model.load_weights(done)
            phase_steps.append(json.loads(done.with_suffix(".json").read_text())["steps"])
            print(f"[{args.recipe}] phase {tag}: done in an earlier run, weights restored", flush=True)
            continue
        if i and recipe.data == "hashing":  # this phase's own mix of labelled images
            ds, _ = make_data(recipe, data_path, args.batch_size, args.seed, phase_index=i,
                              protocol_seed=args.protocol_seed)
        first_step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        callbacks = [
            StopOnNaN(backup_dir=str(out / "backup" / tag)),
            keras.callbacks.BackupAndRestore(str(out / "backup" / tag)),
            keras.callbacks.TensorBoard(str(out / "logs" / tag), update_freq=100),
            losses,
        ]
        if recipe.validation_per_class:  # before the backup, so the backed-up logs hold it
            callbacks.insert(1, validation_callback(recipe, data_path, every=VALIDATION_EVERY_EPOCHS,
                                                    protocol_seed=args.protocol_seed))
        if args.samples_every:
            callbacks.append(SampleGrid(out / "samples" / tag, every_n_steps=args.samples_every, seed=args.seed,
                                        images=sample_inputs, log_dir=out / "logs" / tag / "samples"))
        if args.minutes:
            callbacks.append(TimeLimit(args.minutes / len(recipe.phases)))
        if phase_budgets:  # counted from where the phase starts
            callbacks.append(StepLimit(phase_budgets[i], start=first_step))
        print(f"[{args.recipe}] phase {tag}: training on {data_path}", flush=True)
        try:
            h = model.fit(ds, epochs=epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=args.verbose)
        except TrainingDiverged as e:
            sys.exit(f"error: {e} No preset written.")
        history[tag] = {k: float(v[-1]) for k, v in h.history.items()} if h.history else {}
        if h.history and "val_map" in h.history:  # this run's curve (a resumed run: from where it resumed)
            curve = [{"epoch": e + 1, "val_map": round(float(v), 4)} for e, v in enumerate(h.history["val_map"])]
            (out / f"validation_curve_{tag}.json").write_text(json.dumps(
                {"command": command_line(argv), "git_commit": git_commit(__file__),
                 "steps_per_epoch": steps, "evaluated_every_epochs": VALIDATION_EVERY_EPOCHS,
                 "database": VALIDATION_DATABASE, "curve": curve}, indent=1))
        phase_steps.append(int(keras.ops.convert_to_numpy(model.optimizer.iterations)) - first_step)
        if len(recipe.phases) > 1:
            phase_dir.mkdir(exist_ok=True)
            done.with_suffix(".json").write_text(json.dumps({"steps": phase_steps[-1]}))
            tmp = phase_dir / f".{tag}.tmp.weights.h5"
            model.save_weights(tmp)
            tmp.replace(done)
    seconds = time.monotonic() - start
    if any(not np.isfinite(v) for logs in history.values() for v in logs.values()):
        sys.exit(f"error: training diverged (NaN or Inf in the last logs: {history}); no preset written.")

    grid = sample_grid(model, out / "samples.png", args.seed)
    curve = losses.plot(out / "loss_curve.png", title=f"{args.recipe}: the logs of fit every 10 steps")
    if curve:
        print(f"Loss curve: {curve}")
    figures = {}
    if not args.no_eval:
        print(f"[{args.recipe}] measuring figures{' (quick)' if args.quick_eval else ''} ...", flush=True)
        figures = evaluate.measure(model, recipe.dataset, data_path, quick=args.quick_eval, seed=args.seed,
                                   train_images=recipe.train_images, protocol_seed=args.protocol_seed)
        if recipe.validation_per_class:
            figures.update(validation_figures(model, recipe, data_path, args.protocol_seed))
    steps_done = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    metadata = {
        "description": recipe.description,
        "recipe": args.recipe,
        "dataset": recipe.dataset,
        "data": data_record(data_path) if Path(data_path).exists() else {"name": str(args.data)},
        "split": split_text(recipe, args.protocol_seed),
        "command": command_line(argv),
        "git_commit": git_commit(__file__),
        "reproduce": reproduce_command(argv, phase_steps),
        "figures": figures,
        **({"untrained_networks": list(recipe.untrained)} if recipe.untrained else {}),
        "training": {
            "seed": args.seed, **({"protocol_seed": args.protocol_seed} if recipe.data == "hashing" else {}),
            "batch_size": args.batch_size, "steps": steps_done,
            "seconds": round(seconds, 1), "minutes_budget": args.minutes, "epochs": epochs,
            "device": f"{keras.backend.backend()} on {cpu_description()}",
            "train_images": recipe.train_images,
            "steps_per_epoch": steps, "phases": [p for p in recipe.phases if p],
            **({"phase_steps": phase_steps} if len(recipe.phases) > 1 else {}), "last_logs": history,
            "note": "seconds and steps of the last run; a resumed run continued from its checkpoint",
        },
    }
    presets.save_preset(model, preset_path, metadata)
    # The folder complete as saved_models/ bundles it, so that copying it is enough:
    # a hasher's precision-recall curve, the sample grid and the model card.
    from zoo.models.capabilities import Hasher

    if isinstance(model, Hasher) and figures and not args.quick_eval:
        evaluate.write_precision_recall(model, data_path, preset_path, command=metadata["command"],
                                        protocol_seed=args.protocol_seed)
    hub.write_sample_grid(preset_path)
    # Named after the recipe, as saved_models/ bundles it (the run's folder is often "preset").
    hub.write_model_card(preset_path, args.recipe)
    # The run is complete: its phase checkpoints are no longer needed.
    shutil.rmtree(phase_dir, ignore_errors=True)
    summary = {"recipe": args.recipe, "command": metadata["command"], "git_commit": metadata["git_commit"],
               "backend": keras.backend.backend(), "seconds": round(seconds, 1),
               "steps": steps_done, "last_logs": history, "figures": {k: v["value"] for k, v in figures.items()}}
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"Samples: {grid}\nPreset: {preset_path}")


if __name__ == "__main__":
    main()
