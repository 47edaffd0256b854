"""Frechet (FID) and kernel (KID) distances in a domain classifier's feature space.

Inception weights cannot be downloaded here, so, as in the "domain FID" practice
of the literature, features come from a classifier trained on the same data set
(the presets `saved_models/classifier_<dataset>/`, trained by
`python -m recipes.train_classifier`). Figures are comparable within this zoo,
not with Inception-FID numbers in papers: say so wherever one is printed.

- FID (Heusel et al. 2017): ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)).
- KID (Binkowski et al. 2018): unbiased MMD^2 with the kernel (a.b / d + 1)^3,
  averaged over random subsets; reported as mean and standard deviation.
"""

import json
import os
from pathlib import Path

import keras
import numpy as np

from zoo.data.ranges import renamed_value_range
from zoo.models.common import images_to_model
from zoo.presets import SAVED_MODELS  # the one definition


class FeatureExtractor:
    """Penultimate-layer features of a domain classifier, for images in [0, 1] or uint8.
    `data_range`: the classifier's input range (`value_range`: its deprecated name)."""

    def __init__(self, classifier, data_range=(-1.0, 1.0), layer="features", name=None, *, value_range=None):
        self.classifier = classifier
        self.data_range = tuple(renamed_value_range(data_range, value_range, "FeatureExtractor"))
        self.image_shape = tuple(classifier.inputs[0].shape[1:])
        self.model = keras.Model(classifier.inputs[0], classifier.get_layer(layer).output)
        self.name = name or classifier.name
        self.dim = int(self.model.outputs[0].shape[-1])

    @classmethod
    def load(cls, dataset):
        """The bundled classifier for `dataset` ("mnist" or "cifar10": the preset
        `classifier_<dataset>`), or a preset folder path."""
        from zoo import presets

        if Path(dataset).is_dir():
            folder = Path(dataset)
        else:
            folder = SAVED_MODELS / f"classifier_{dataset}"
            if not folder.is_dir():
                available = sorted(p.name[len("classifier_"):] for p in SAVED_MODELS.glob("classifier_*"))
                raise FileNotFoundError(
                    f"No domain classifier for {dataset!r} at {folder}; bundled: {available}. Train one "
                    "with `python -m recipes.train_classifier DATASET --data PATH`."
                )
        legacy = folder / "classifier.keras"
        if not (folder / presets.CONFIG_FILE).exists() and legacy.exists():
            # The layout before presets: a whole-model .keras file (still loaded safely).
            meta = json.loads((folder / "metadata.json").read_text()) if (folder / "metadata.json").exists() else {}
            model = keras.saving.load_model(legacy, compile=False, safe_mode=True)
        else:
            model = presets.load(folder, expected_class=keras.Model)
            meta = model.preset_metadata
        # "value_range": the key of the bundled presets' metadata (written before the rename).
        data_range = meta.get("data_range", meta.get("value_range", (-1.0, 1.0)))
        return cls(model, data_range, name=Path(folder).name)

    @property
    def value_range(self):  # the old name of data_range
        return self.data_range

    def __call__(self, images, batch_size=500):
        x = images_to_model(images, self.image_shape, self.data_range)
        outs = [keras.ops.convert_to_numpy(self.model(x[s : s + batch_size], training=False))
                for s in range(0, len(x), batch_size)]
        return np.concatenate(outs).astype(np.float64)


INCEPTION_ENV = "ZOO_INCEPTION_WEIGHTS"


class InceptionExtractor:
    """Inception-v3 pool3 features (2048-d) on the reference FID protocol, from a
    weights file the user supplies (nothing is downloaded): FID comparable with
    papers' figures when the weights are the ones the paper used.

    The protocol of the TF reference (Heusel et al.'s TTUR code) and pytorch-fid:
    images as RGB in [0, 255] (grayscale copied to three channels), resized to
    299x299 bilinearly without antialiasing, scaled to [-1, 1], the 2048-d
    average pool before the logits, statistics in float64.

    `weights`: a Keras InceptionV3 weights file (`.weights.h5`, or a Keras 2
    `.h5` of `keras.applications.InceptionV3`, with or without its top), or
    None to read the path from $ZOO_INCEPTION_WEIGHTS. Keras's ImageNet
    InceptionV3 is not bit-identical with the 2015 graph the TF reference uses
    (pytorch-fid's FIDInceptionA/C/E blocks), so its FIDs come within a few
    percent of published ones, not to the digit; the pytorch-fid `.pth` file is
    refused with that reason rather than converted silently."""

    dim = 2048

    def __init__(self, weights=None, batch_size=50):
        path = weights or os.environ.get(INCEPTION_ENV)
        if not path:
            raise ValueError(
                f"No Inception weights: pass a Keras InceptionV3 weights file or set ${INCEPTION_ENV}. "
                "The zoo's offline default is domain FID (FeatureExtractor.load)."
            )
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"Inception weights file {str(path)!r} does not exist (from ${INCEPTION_ENV}).")
        if path.suffix in (".pth", ".pt"):
            raise ValueError(
                f"{path.name} is a PyTorch file (pytorch-fid / torch-fidelity); this zoo reads Keras "
                "InceptionV3 weights (.weights.h5 or .h5), e.g. keras.applications.InceptionV3("
                "weights='imagenet').save_weights('inception.weights.h5') on a machine that can download."
            )
        self.batch_size = int(batch_size)
        self.model = _inception_pool3(path)
        self.name = f"inception_v3_pool3({path.name})"

    @classmethod
    def from_env(cls):
        """An extractor from $ZOO_INCEPTION_WEIGHTS, or None when it is not set."""
        return cls() if os.environ.get(INCEPTION_ENV) else None

    @staticmethod
    def preprocess(images):
        """uint8 or [0, 1] images (n, h, w, 1 or 3) -> float32 (n, 299, 299, 3) in [-1, 1]."""
        x = np.asarray(images)
        if x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise ValueError(f"Expected images (n, h, w, 1 or 3); got shape {x.shape}.")
        if x.dtype == np.uint8:
            x = x.astype("float32")
        else:
            x = images_to_model(x, x.shape[1:], (0.0, 255.0))
        if x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        x = keras.ops.image.resize(x, (299, 299), interpolation="bilinear", antialias=False)
        return keras.ops.convert_to_numpy(x) / 127.5 - 1.0

    def __call__(self, images, batch_size=None):
        batch_size = batch_size or self.batch_size
        outs = [keras.ops.convert_to_numpy(self.model(self.preprocess(images[s : s + batch_size]), training=False))
                for s in range(0, len(images), batch_size)]
        return np.concatenate(outs).astype(np.float64)


_INCEPTION_CACHE = {}


def _inception_pool3(path):
    """keras.applications.InceptionV3 up to its 2048-d average pool, weights from `path`
    (built once per file and version of it: a build takes seconds)."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, keras.backend.backend())
    if key not in _INCEPTION_CACHE:
        _INCEPTION_CACHE.clear()  # one Inception (90 MB) in memory at a time
        _INCEPTION_CACHE[key] = _build_inception_pool3(path)
    return _INCEPTION_CACHE[key]


def _build_inception_pool3(path):
    base = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3))
    try:
        base.load_weights(path)
        return base
    except (ValueError, OSError, KeyError):
        pass
    full = keras.applications.InceptionV3(include_top=True, weights=None, input_shape=(299, 299, 3))
    try:
        full.load_weights(path)  # a file saved with the classifier on top
    except (ValueError, OSError, KeyError) as e:
        raise ValueError(f"{path} does not hold Keras InceptionV3 weights (with or without the top): {e}") from e
    return keras.Model(full.inputs, full.get_layer("avg_pool").output)


def statistics(features):
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu_a, cov_a, mu_b, cov_b):
    """FID between two Gaussians, with Tr((S_a S_b)^(1/2)) from a symmetric
    eigendecomposition: S_a^(1/2) S_b S_a^(1/2) is PSD and has the same trace root."""
    w, v = np.linalg.eigh(cov_a)
    sqrt_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = sqrt_a @ cov_b @ sqrt_a
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt)


def kernel_distance(feat_a, feat_b, subsets=100, subset_size=1000, seed=0):
    """KID: (mean, std) of unbiased MMD^2 with the cubic polynomial kernel over subsets."""
    feat_a, feat_b = np.asarray(feat_a, np.float64), np.asarray(feat_b, np.float64)
    m = min(subset_size, len(feat_a), len(feat_b))
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set.")
    d = feat_a.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        a = feat_a[rng.choice(len(feat_a), m, replace=False)]
        b = feat_b[rng.choice(len(feat_b), m, replace=False)]
        k_aa = (a @ a.T / d + 1) ** 3
        k_bb = (b @ b.T / d + 1) ** 3
        k_ab = (a @ b.T / d + 1) ** 3
        mmd = ((k_aa.sum() - np.trace(k_aa)) + (k_bb.sum() - np.trace(k_bb))) / (m * (m - 1)) - 2 * k_ab.mean()
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


def fid_kid(images_a, images_b, extractor, kid_subsets=100, kid_subset_size=1000):
    """{"fid", "kid", "kid_std", "n_a", "n_b", "features"} between two image sets."""
    fa, fb = extractor(images_a), extractor(images_b)
    kid, kid_std = kernel_distance(fa, fb, kid_subsets, kid_subset_size)
    return {
        "fid": frechet_distance(*statistics(fa), *statistics(fb)),
        "kid": kid, "kid_std": kid_std, "n_a": len(fa), "n_b": len(fb),
        "features": f"{extractor.name}:{extractor.dim}-d",
    }
