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
from pathlib import Path

import keras
import numpy as np

from zoo.models.common import images_to_model

SAVED_MODELS = Path(__file__).resolve().parents[2] / "saved_models"


class FeatureExtractor:
    """Penultimate-layer features of a domain classifier, for images in [0, 1] or uint8."""

    def __init__(self, classifier, value_range=(-1.0, 1.0), layer="features", name=None):
        self.classifier = classifier
        self.value_range = tuple(value_range)
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
        return cls(model, meta.get("value_range", (-1.0, 1.0)), name=Path(folder).name)

    def __call__(self, images, batch_size=500):
        x = images_to_model(images, self.image_shape, self.value_range)
        outs = [keras.ops.convert_to_numpy(self.model(x[s : s + batch_size], training=False))
                for s in range(0, len(x), batch_size)]
        return np.concatenate(outs).astype(np.float64)


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
