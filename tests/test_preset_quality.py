"""No bundled generator has collapsed (#23): 1,000 samples of each, read by the bundled
classifier of its data set, must cover the classes.

Bars: no class above 15% of the samples, class entropy of at least 3.2 bits (3.32 is
uniform) and, for a conditional generator, the classifier agreeing with the asked
label on 97% (MNIST) or 70% (CIFAR-10) of samples. With 1,000 samples a balanced
generator's largest share is about 0.10 + 2.3 * 0.0095 = 0.12 (the largest of ten
binomial shares), so the 0.15 bar does not fail a good preset by chance; the noise
is NumPy-seeded, the same on every backend, and a backend's rounding moves a few
samples at most.

Presets that do not meet the bars yet are marked strict xfail: the test shows they
fail (a negative control of the bars), and fails the day one passes, so that its
mark is removed when the preset is retrained.
"""

import json

import numpy as np
import pytest

from zoo import presets
from zoo.metrics.coverage import generator_coverage
from zoo.models.capabilities import Generator, capabilities_of

BARS = {"mnist": dict(max_share=0.15, entropy_bits=3.2, label_agreement=0.97),
        "cifar10": dict(max_share=0.15, entropy_bits=3.2, label_agreement=0.70)}
N, SEED = 1000, 0

# Measured collapsed or below the bars on 10,000 samples (bench/results/class_coverage.json);
# retrained under #23.
BELOW_BARS = {"dcgan_mnist", "vae_mnist", "vaegan_mnist", "avb_ac_mnist", "cdcgan_cifar10",
              "vae_cifar10", "vaegan_cifar10"}


def bundled_generators():
    out = []
    for name in presets.list_presets():
        meta = presets.load_metadata(name)
        config = json.loads((presets.resolve(name) / presets.CONFIG_FILE).read_text())
        # A preset whose recipe never trained its generator (metadata untrained_networks) is none.
        if "generator" not in capabilities_of(presets.preset_class(config) or object, meta):
            continue
        marks = [pytest.mark.xfail(strict=True, reason="below #23's bars until retrained")] * (name in BELOW_BARS)
        out.append(pytest.param(name, meta["dataset"], marks=marks, id=name))
    return out


def check_bars(stats, bars):
    """The bars a coverage result misses, as messages (empty: all met)."""
    missed = []
    if stats["max_share"] > bars["max_share"]:
        missed.append(f"class {stats['max_class']} is {stats['max_share']:.1%} of samples (bar {bars['max_share']:.0%})")
    if stats["entropy_bits"] < bars["entropy_bits"]:
        missed.append(f"class entropy {stats['entropy_bits']:.2f} bits (bar {bars['entropy_bits']})")
    if "label_agreement" in stats and stats["label_agreement"] < bars["label_agreement"]:
        missed.append(f"label agreement {stats['label_agreement']:.1%} (bar {bars['label_agreement']:.0%})")
    return missed


def test_the_bars_fail_a_collapsed_generator():
    # Negative control of check_bars on made-up statistics: one class in 85% of samples.
    collapsed = dict(max_share=0.85, max_class=1, entropy_bits=0.9, label_agreement=0.16)
    assert len(check_bars(collapsed, BARS["cifar10"])) == 3
    assert check_bars(dict(max_share=0.11, max_class=0, entropy_bits=3.31), BARS["mnist"]) == []


def test_every_generator_preset_is_checked():
    names = {p.values[0] for p in bundled_generators()}
    assert {"gan_mlp_mnist", "cdcgan_mnist", "vaegan_cifar10"} <= names
    # DSH-GAN's presets train the hasher on real triplets only: their G is untrained and not checked.
    assert "dshgan_cifar10_12bit" in presets.list_presets() and "dshgan_cifar10_12bit" not in names
    assert "gan_mlp_mnist" not in BELOW_BARS  # retrained: 13.3% largest class, 3.31 bits
    assert not any(n.startswith("classifier_") for n in names)
    assert BELOW_BARS <= names  # a mark for a preset that is gone would hide nothing


@pytest.mark.parametrize("name, dataset", bundled_generators())
def test_bundled_generator_covers_the_classes(name, dataset):
    model = presets.load(name)
    assert isinstance(model, Generator)
    stats = generator_coverage(model, dataset, n=N, seed=SEED)
    assert np.isclose(sum(stats["shares"]), 1.0, atol=1e-3)
    missed = check_bars(stats, BARS[dataset])
    assert not missed, f"{name}: " + "; ".join(missed)
