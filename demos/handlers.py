"""What each endpoint of the app does: generate (with the nearest training images) and
interpolate, reconstruct an upload or a sketch, retrieve from the hashed database.

A handler asks a preset what it can do by its declared capabilities
(zoo.models.capabilities): a `Generator` samples its prior and decodes, an
`Autoencoder` reconstructs, a `Hasher` hashes.
"""

import secrets
import time

import numpy as np

import gradio as gr

from demos.catalog import class_names, figures_markdown, padded
from demos.errors import UserError, whole_number
from demos.images import image_grid, labelled_grid, png_file, sketch_composite, to_shape, to_uint8, upscale
from demos.retrieval import code_bits, exact_first
from demos.samples import NEAREST_K, SCALE_QUERIES, SHIPPED, TrainingSamples
from zoo.models.capabilities import Generator

MAX_IMAGES = 64
MAX_STEPS = 16
MAX_K = 50
NEAREST_ROWS = 4  # samples shown with their nearest training images
EACH_CLASS = "each class in turn"
UNKNOWN = "unknown"


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------
def num_classes_of(model):
    """The number of classes a generator is conditional on, or None."""
    return model.num_classes if isinstance(model, Generator) else None


def decode(model, z, labels=None):
    """model.decode(z[, labels]) in padded batches: few input shapes, few compiles."""
    if labels is None:
        return padded(model.decode, z)
    return padded(model.decode, z, labels)


def labels_for(choice, names, n):
    """n class indices for the class dropdown's `choice`: that class, or each class in turn."""
    if choice in (None, "", EACH_CLASS):
        return np.arange(n) % len(names)
    if choice not in names:
        raise UserError(f"Unknown class {choice!r}; choose one of {', '.join(names)} or '{EACH_CLASS}'.")
    return np.full(n, names.index(choice))


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------
class Handlers:
    """The endpoints, on a `ModelStore` of presets, a `Retrieval` database and `TrainingSamples`."""

    def __init__(self, store, retrieval, training=None):
        self.store, self.retrieval = store, retrieval
        self.training = training or TrainingSamples(store)

    def preset_that_can(self, name, capability, what):
        """The preset's info, or a UserError when its model lacks `capability` (`what` names one)."""
        info = self.store.info(name)
        if capability not in info.capabilities:
            raise UserError(f"{name} is a {info.kind or info.model}, not {what}.")
        return info

    def figures(self, name):
        """The preset's measured figures, each with how it was measured (its metadata)."""
        return figures_markdown(self.store.info(name))

    # -- generate ---------------------------------------------------------------------------
    def class_choices(self, name):
        """(choices, visible) of the class dropdown for a generator preset."""
        if not name:
            return [], False
        info = self.store.info(name)
        model = self.store.get(name)
        k = num_classes_of(model)
        if not k:
            return [], False
        return [EACH_CLASS] + class_names(info, k), True

    def on_generator(self, name):
        choices, visible = self.class_choices(name)
        return gr.update(choices=choices, value=choices[0] if choices else None, visible=visible)

    def generate(self, name, n, seed, label, progress=gr.Progress()):
        info = self.preset_that_can(name, "generator", "a generator")
        n = whole_number(n, "Number of images", 1, MAX_IMAGES)
        seed = whole_number(seed, "Seed", 0, 2**32 - 1)
        progress(0.1, desc=f"Loading {name}")
        model = self.store.get(name)
        k = num_classes_of(model)
        labels = labels_for(label, class_names(info, k), n) if k else None
        progress(0.4, desc=f"Generating {n} images")
        start = time.monotonic()
        with self.store.lock(name):
            images = decode(model, model.sample_prior(n, seed), labels)
        seconds = time.monotonic() - start
        cols = int(np.ceil(np.sqrt(n))) if not k or label not in (None, "", EACH_CLASS) else min(n, k)
        note = f"{n} images from **{name}**, seed {seed}" + (
            f", classes: {label or EACH_CLASS}" if k else "") + f" ({seconds:.2f} s to generate on this server)"
        progress(0.8, desc="Finding the nearest training images")
        nearest, nearest_table, nearest_note = self.nearest(name, model, np.asarray(images)[:NEAREST_ROWS])
        return png_file(image_grid(images, cols)), note, nearest, nearest_table, nearest_note

    def nearest(self, name, model, images):
        """(image, table, note): each image beside its NEAREST_K nearest images of the shipped
        training sample of the model's data set, by L2 distance in pixel space, as one picture
        (one file to serve, not 20) with the distances written under each image; the table
        lists them: [sample, rank, training image, label, L2]."""
        shape = tuple(model.data_shape)
        sample = self.training.get(name, shape)
        if sample is None:
            dataset = self.store.info(name).dataset
            return None, [], (f"No training sample of {name}'s data set ({dataset or 'not recorded in its metadata'}) "
                              f"ships with this app (it has {', '.join(SHIPPED)}), so no nearest training images.")
        images = to_uint8(images)  # the samples as shown, PNG pixels
        distances, ids = sample.nearest(images.astype(np.float32) / 255.0)
        tiles, captions, rows = [], [], []
        for r, (image, ds, js) in enumerate(zip(images, distances, ids)):
            tiles.append(image)
            captions.append((f"sample {r + 1}", "generated"))
            for rank, (d, j) in enumerate(zip(ds, js)):
                label = sample.names[int(sample.y[j])]
                tiles.append(sample.x[j])
                captions.append((f"L2 {d:.2f}", label))
                rows.append([r + 1, rank + 1, sample.where[j], label, round(float(d), 3)])
        picture = labelled_grid(np.stack(tiles), captions, NEAREST_K + 1)
        dims = int(np.prod(shape))
        closest = float(distances[:, 0].min())
        note = (f"**Nearest training images**: each of the first {len(images)} samples (left column) and its "
                f"{NEAREST_K} nearest images among {len(sample.x):,} training images: {sample.description}. "
                f"**L2** = Euclidean distance over all {dims:,} pixel values ({'x'.join(map(str, shape))}, "
                f"scaled to [0, 1]), exact search. Closest here: {closest:.2f}. For scale: {SCALE_QUERIES} of the "
                f"shipped *test* images (real images the model never trained on) lie at median L2 "
                f"{sample.test_median:.2f} (min {sample.test_min:.2f}) from their nearest image in this sample; "
                f"a copied training image would be at 0. A sample of the training set, not all of it.")
        return png_file(picture), rows, note

    def random_seed(self):
        """A fresh seed for the Generate tab (the system's randomness, not a seeded draw)."""
        return 1 + secrets.randbelow(999_999)  # never 0, the default: a click always changes it

    def interpolate(self, name, seed_a, seed_b, steps, rows, label, spherical, progress=gr.Progress()):
        from zoo.models.common import slerp

        info = self.preset_that_can(name, "generator", "a generator")
        seed_a, seed_b = whole_number(seed_a, "Seed A", 0, 2**32 - 1), whole_number(seed_b, "Seed B", 0, 2**32 - 1)
        steps, rows = whole_number(steps, "Steps", 2, MAX_STEPS), whole_number(rows, "Rows", 1, 8)
        progress(0.1, desc=f"Loading {name}")
        model = self.store.get(name)
        za, zb = model.sample_prior(rows, seed_a), model.sample_prior(rows, seed_b)
        t = np.linspace(0.0, 1.0, steps, dtype="float32")[None, :, None]
        if spherical:
            z = slerp(za[:, None], zb[:, None], t)
        else:
            z = (1 - t) * za[:, None] + t * zb[:, None]
        z = z.reshape(rows * steps, -1).astype("float32")
        k = num_classes_of(model)
        labels = None
        if k:
            per_row = labels_for(label, class_names(info, k), rows)
            labels = np.repeat(per_row, steps)
        progress(0.4, desc=f"Decoding {rows * steps} latents")
        with self.store.lock(name):
            images = decode(model, z, labels)
        note = (f"{'Spherical' if spherical else 'Linear'} interpolation, {steps} steps, from seed {seed_a} "
                f"(left) to seed {seed_b} (right); row r joins the r-th latent of each seed.")
        return png_file(image_grid(images, steps)), note

    # -- reconstruct --------------------------------------------------------------------------
    def reconstruct(self, image, names, invert="auto", progress=gr.Progress(), source="upload"):
        if image is None:
            raise UserError("No image: upload one (PNG, JPEG, WebP, BMP or GIF) or draw in the sketchpad.")
        names = [n for n in (names or []) if n]
        if not names:
            raise UserError("Choose at least one VAE, VAE-GAN or AVB preset.")
        invert = {"auto": "auto", "yes": True, "no": False}.get(invert, "auto")
        gallery, lines = [], [f"Input: {image.size[0]}x{image.size[1]} {image.mode} ({source})", ""]
        for i, name in enumerate(names):
            info = self.preset_that_can(name, "autoencoder", "a VAE, VAE-GAN or AVB")
            progress(i / len(names), desc=f"Reconstructing with {name}")
            model = self.store.get(name)
            shape = tuple(model.data_shape)
            x, notes = to_shape(image, shape, invert)
            with self.store.lock(name):
                rec = model.reconstruct(x[None])
            rec = np.asarray(rec)[0]
            mse = float(np.mean((rec - x / 255.0) ** 2))
            gallery += [(png_file(upscale(x, 168)), f"{name}: input as {shape[0]}x{shape[1]}x{shape[2]}"),
                        (png_file(upscale(rec, 168)), f"{name}: reconstruction (MSE {mse:.4f})")]
            lines.append(f"- **{name}** ({info.kind}, {shape[0]}x{shape[1]}x{shape[2]}): "
                         + ("; ".join(notes) if notes else "no conversion needed")
                         + f". Pixel MSE of the reconstruction: {mse:.4f}.")
        return gallery, "\n".join(lines)

    def reconstruct_upload(self, image, names, invert, progress=gr.Progress()):
        return self.reconstruct(image, names, invert, progress, source="upload")

    def reconstruct_sketch(self, sketch, names, invert, progress=gr.Progress()):
        composite = sketch_composite(sketch)
        if composite is None:
            raise UserError("The sketch is empty: draw something first (or upload an image in the Upload tab).")
        return self.reconstruct(composite, names, invert, progress, source="sketch")

    # -- retrieve ---------------------------------------------------------------------------------
    def database_summary(self, name, progress=gr.Progress()):
        db = self.retrieval.get(name, progress)
        return self._db_note(name, db)

    def _db_note(self, name, db):
        where = f"`{db.cache_path.name}` in the demo's cache ($ZOO_CACHE/demo)"
        how = f"loaded from {where}" if db.from_cache else f"hashed once and kept as {where}"
        return (f"Database: {db.description}, {len(db.x):,} images as {'x'.join(map(str, db.x.shape[1:]))}; "
                f"{db.index.bits}-bit codes from **{name}**, {how} ({db.seconds:.1f} s).")

    def example(self, name, number, progress=gr.Progress()):
        """Database image `number` (its native pixels, so it retrieves itself) and its label."""
        db = self.retrieval.get(name, progress)
        i = whole_number(number, "Example number", 0, len(db.x) - 1)
        x = db.x[i]
        return png_file(x), db.names[int(db.y[i])], self._db_note(name, db)

    def examples(self, name, progress=gr.Progress()):
        """One database image of each class: the example queries."""
        db = self.retrieval.get(name, progress)
        picks = [int(np.flatnonzero(db.y == c)[0]) for c in np.unique(db.y)]
        return [(png_file(upscale(db.x[i])), f"#{i} · {db.names[int(db.y[i])]}") for i in picks], picks

    def retrieve(self, name, image, label, k, progress=gr.Progress()):
        self.preset_that_can(name, "hasher", "a hashing model (DSH-GAN)")
        if image is None:
            raise UserError("No query image: pick an example or upload an image.")
        k = whole_number(k, "k", 1, MAX_K)
        db = self.retrieval.get(name, progress)
        model = self.store.get(name)
        progress(0.9, desc="Hashing the query")
        x, notes = to_shape(image, tuple(model.data_shape), invert=False)
        with self.store.lock(name):
            code = model.hash(x[None])
        distances, ids = db.index.search(code, min(k, len(db.x)))
        distances, ids = exact_first(db, {"code": code, "x": x}, distances[0], ids[0], k)
        labels = [db.names[int(db.y[i])] for i in ids]
        gallery = [(png_file(upscale(db.x[i])), f"#{i} · {lab} · d={d}") for i, lab, d in zip(ids, labels, distances)]
        rows = [[r + 1, int(i), lab, int(d), code_bits(db.codes[i], model.code_length)]
                for r, (i, lab, d) in enumerate(zip(ids, labels, distances))]
        bits = code_bits(code[0], model.code_length)
        lines = [f"Query code ({model.code_length} bits): `{bits}`",
                 f"Hamming distance: the number of the {model.code_length} code bits in which a result differs "
                 "from the query (the table lists each result's bits); the list is the exact top k by that "
                 "distance, ties in database order, a database image identical to the query first.",
                 f"Conversion: {'; '.join(notes) if notes else 'none needed'}."]
        if label not in (None, "", UNKNOWN):
            if label not in db.names:
                raise UserError(f"Unknown label {label!r}; choose one of {', '.join(db.names)} or '{UNKNOWN}'.")
            hits = sum(lab == label for lab in labels)
            lines.insert(0, f"**Precision@{len(ids)} = {hits / len(ids):.3f}** ({hits} of {len(ids)} results are "
                            f"labelled {label!r}): the fraction of this one query's results whose database label "
                            "is the query's label; not the preset's measured MAP, whose protocol is in its figures")
        else:
            lines.insert(0, "Precision: set the query's label to measure it.")
        lines.append(self._db_note(name, db))
        return gallery, rows, "\n\n".join(lines)
