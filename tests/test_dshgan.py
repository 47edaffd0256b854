"""DSH-GAN (Qiu et al. 2017): the losses by hand, triplets, who learns, codes, and errors."""

import keras
import numpy as np
import pytest
from keras import ops

from tests.conftest import changed, weights_of
from zoo.models import DSHGAN
from zoo.models.dshgan import has_labels, mode_seeking_loss, sigmoid_label_loss, triplet_loss

SHAPE = (16, 16, 3)


def small(num_classes=4, code_length=12, **kwargs):
    kwargs.setdefault("seed", 1)
    return DSHGAN.build_default(SHAPE, num_classes=num_classes, code_length=code_length,
                                latent_dim=8, g_width=8, d_width=8, h_width=8, **kwargs)


def images(n=32, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *SHAPE)).astype("float32")


def np_(t):
    return np.asarray(ops.convert_to_numpy(t))


# ---------------------------------------------------------------------------
# The losses on hand-checkable cases
# ---------------------------------------------------------------------------
def test_triplet_loss_by_hand():
    h_q = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]], "float32")
    h_pos = np.array([[1.0, 0.0, 0.5], [0.0, 0.0, 0.0]], "float32")  # d+ = 0.25, 0
    h_neg = np.array([[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]], "float32")  # d- = 2, 3
    # max(0, m - d- + d+) with m = 2: row 0: 2 - 2 + 0.25 = 0.25; row 1: 2 - 3 + 0 < 0 -> 0
    np.testing.assert_allclose(np_(triplet_loss(h_q, h_pos, h_neg, 2.0)), [0.25, 0.0], atol=1e-6)


def test_mode_seeking_loss_and_pairs_by_hand():
    x1, x2 = np.zeros((2, 2, 2, 1), "float32"), np.full((2, 2, 2, 1), 0.5, "float32")
    z1, z2 = np.zeros((2, 3), "float32"), np.full((2, 3), 2.0, "float32")
    # mean|x1 - x2| / mean|z1 - z2| = 0.5 / 2 = 0.25 -> 1 / (0.25 + 1e-5)
    assert float(np_(mode_seeking_loss(x1, x2, z1, z2))) == pytest.approx(1 / (0.25 + 1e-5), rel=1e-6)
    # G ignoring z (the same image for different noise) costs 1 / eps.
    assert float(np_(mode_seeking_loss(x1, x1, z1, z2))) == pytest.approx(1e5, rel=1e-6)
    y = np.eye(5, dtype="float32")
    # Rows i and i + 2 share the first half's labels; an odd last row keeps its own.
    np.testing.assert_array_equal(np_(DSHGAN.paired_labels(y)), y[[0, 1, 0, 1, 4]])


def test_diversity_term_trains_and_round_trips(tmp_path):
    model = small(diversity_weight=0.5)
    model.compile()
    labels = np.array([0, 1, 2, 3, -1, -1, 0, 1] * 2)
    for phase in ("pretrain", "hash"):
        model.phase = phase
        assert np.isfinite(model.train_on_batch(images(16), labels, return_dict=True)["g_loss"])
    # G's losses carry exactly weight x the mode-seeking term (inference mode: no batch statistics).
    rng = np.random.default_rng(0)
    z1, z2, z3 = (rng.standard_normal((4, 8)).astype("float32") for _ in range(3))
    y, y_neg = np.eye(4, dtype="float32"), np.eye(4, dtype="float32")[[1, 0, 3, 2]]
    ms = float(np_(mode_seeking_loss(model.decode(z1, y) * 2 - 1, model.decode(z3, y) * 2 - 1,
                                     z1, z3)))
    with_term = float(np_(model.generator_hash_loss(z1, y, z2, y_neg, False, z3)[0]))
    model.diversity_weight = 0.0
    without = float(np_(model.generator_hash_loss(z1, y, z2, y_neg, False)[0]))
    assert with_term - without == pytest.approx(0.5 * ms, rel=1e-4)
    model.diversity_weight = 0.5
    model.save(tmp_path / "m.keras")
    assert keras.models.load_model(tmp_path / "m.keras").diversity_weight == 0.5
    with pytest.raises(ValueError, match="diversity_weight"):
        small(diversity_weight=-1.0)


def test_all_zero_label_target_is_valid():
    """An unlabelled image's target is all zeros: the loss vanishes as every
    label's logit goes to -inf and grows when the model claims any label."""
    zeros = np.zeros((1, 4), "float32")
    confident_none = np.full((1, 4), -20.0, "float32")
    claims_one = np.array([[5.0, -20.0, -20.0, -20.0]], "float32")
    assert np_(sigmoid_label_loss(confident_none, zeros))[0] < 1e-7
    # softplus(5) + 3 softplus(-20) = 5.0067
    np.testing.assert_allclose(np_(sigmoid_label_loss(claims_one, zeros)), [np.log1p(np.exp(5.0))], rtol=1e-5)
    np.testing.assert_allclose(np_(has_labels(np.array([[0, 0, 0], [0, 1, 0]], "float32"))), [0, 1])


def test_integer_labels_minus_one_is_unlabelled():
    model = small()
    y = np_(model.label_vectors(ops.convert_to_tensor(np.array([2, -1, 0], "int32"))))
    np.testing.assert_array_equal(y, [[0, 0, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]])


# ---------------------------------------------------------------------------
# Triplets
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("multi_label", [False, True])
def test_negatives_never_share_a_label_with_their_query(multi_label):
    model = small(num_classes=6, multi_label=multi_label)
    rng = np.random.default_rng(0)
    if multi_label:
        y = (rng.uniform(size=(2000, 6)) < 0.4).astype("float32")
        y[0] = 1.0  # holds every label: no negative exists, and it must be flagged
    else:
        y = np.eye(6, dtype="float32")[rng.integers(6, size=2000)]
    y_neg = np_(model.negative_labels(ops.convert_to_tensor(y)))
    valid = np_(model.valid_negatives(y, y_neg))
    assert np.all(y_neg.sum(axis=1) == 1)
    shared = (y * y_neg).sum(axis=1) > 0
    np.testing.assert_array_equal(valid, ~shared)
    if multi_label:
        # Exactly the rows holding every label lack a negative.
        assert not valid[0]
        np.testing.assert_array_equal(valid, y.sum(axis=1) < 6)
    else:
        assert valid.all()
        # Every other class is drawn: all 5 negatives of class 0 appear.
        assert len(np.unique(y_neg[y[:, 0] == 1].argmax(1))) == 5


def test_real_triplets_pick_a_positive_and_a_negative_from_the_batch():
    model = small(num_classes=3)
    labels = np.array([0, 0, 1, 1, 2, -1, 2, 0])
    y = np_(model.label_vectors(ops.convert_to_tensor(labels)))
    pos, neg, valid = (np_(t) for t in model.real_triplets(ops.convert_to_tensor(y)))
    for i in range(len(labels)):
        if labels[i] < 0:
            assert valid[i] == 0, "an unlabelled image is never a query"
            continue
        assert valid[i] == 1
        assert pos[i] != i and labels[pos[i]] == labels[i]
        assert labels[neg[i]] >= 0 and labels[neg[i]] != labels[i]


def test_make_triplets_returns_images_and_disjoint_negative_labels():
    model = small()
    pos, neg, y_neg = model.make_triplets([0, 1, 3], seed=0)
    assert pos.shape == neg.shape == (3, *SHAPE)
    assert 0 <= pos.min() and pos.max() <= 1
    assert not np.any(y_neg.argmax(1) == np.array([0, 1, 3]))


# ---------------------------------------------------------------------------
# Who learns in each phase
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("phase, synthetic, moved, still", [
    ("pretrain", True, ("generator", "discriminator"), ("hasher",)),
    ("hash", True, ("generator", "hasher"), ("discriminator",)),
    ("hash", False, ("hasher",), ("generator", "discriminator")),
])
def test_each_phase_trains_only_its_players(phase, synthetic, moved, still):
    model = small(phase=phase, synthetic_triplets=synthetic)
    model.compile()
    labels = np.array([0, 1, 2, 3, -1, -1, 0, 1] * 2)
    before = {n: weights_of(getattr(model, n)) for n in moved + still}
    logs = model.train_on_batch(images(16), labels, return_dict=True)
    assert all(np.isfinite(float(v)) for v in logs.values())
    for n in moved:
        assert any(changed(before[n], weights_of(getattr(model, n)))), f"{n} should train in {phase}"
    for n in still:
        assert not any(changed(before[n], weights_of(getattr(model, n)))), f"{n} must not move in {phase}"
    expected = {"pretrain": {"d_loss", "g_loss"}, "hash": {"h_loss", "triplet_loss", "class_loss"}}[phase]
    assert expected <= set(logs)


def test_hashing_learns_to_separate_classes():
    """Four classes of images that differ in their mean colour: after a short
    run of the hash phase on real triplets, a query's nearest codes (Hamming)
    belong to its class far more often than chance (0.25)."""
    rng = np.random.default_rng(0)
    colours = rng.uniform(-0.8, 0.8, (4, 3)).astype("float32")
    labels = rng.integers(4, size=256)
    x = np.clip(colours[labels][:, None, None, :] + 0.3 * rng.standard_normal((256, *SHAPE)), -1, 1)
    x = x.astype("float32")
    model = small(phase="hash", synthetic_triplets=False)
    model.compile(h_optimizer=keras.optimizers.Adam(2e-3))
    model.fit(x, labels, batch_size=32, epochs=8, verbose=0)
    bits = model.hash((x + 1) / 2, packed=False).astype(int)
    dist = (bits[:, None, :] != bits[None, :, :]).sum(-1) + np.eye(len(x), dtype=int) * 99
    nearest = dist.argmin(axis=1)
    agreement = float(np.mean(labels[nearest] == labels))
    # Chance is 0.25; colour is easy to read, so 0.8 leaves room for noise.
    assert agreement > 0.8, agreement


def test_hash_augment_changes_only_the_training_loss_and_survives_a_round_trip(tmp_path):
    """hash_augment transforms H's inputs in a training step only: the same
    weights give the same evaluation loss with and without it, and (control)
    a different training loss."""
    x, y = images(16, seed=3), np.arange(16) % 4
    plain = small(phase="hash", synthetic_triplets=False, hash_augment=None)
    shifted = small(phase="hash", synthetic_triplets=False, hash_augment="translation,flip")
    shifted.set_weights(plain.get_weights())
    pos, neg, valid = plain.real_triplets(plain.label_vectors(ops.convert_to_tensor(y)))
    yv = plain.label_vectors(ops.convert_to_tensor(y))
    evaluation = [np_(m.real_hashing_loss(x, yv, pos, neg, valid, training=False)[0]) for m in (plain, shifted)]
    np.testing.assert_allclose(evaluation[0], evaluation[1], rtol=1e-6)
    train_plain = np_(plain.real_hashing_loss(x, yv, pos, neg, valid, training=True)[0])
    train_shifted = np_(shifted.real_hashing_loss(x, yv, pos, neg, valid, training=True)[0])
    assert abs(float(train_plain) - float(train_shifted)) > 1e-4
    with pytest.raises(ValueError, match="hash_augment"):
        small(hash_augment="mirror")
    shifted.compile()
    path = tmp_path / "augmented.keras"
    shifted.save(path)
    assert keras.models.load_model(path).hash_augment == "translation,flip"


def test_triplet_weight_zero_leaves_the_classification_stream_alone(tmp_path):
    """triplet_weight=0 (the classification-only baseline): H's loss is its class
    loss on both triplet kinds, the triplet term still logged; at the default 1
    (control) the loss is triplet + class."""
    x, y = images(16, seed=4), np.arange(16) % 4
    full = small(phase="hash", synthetic_triplets=False)
    cls_only = small(phase="hash", synthetic_triplets=False, triplet_weight=0.0)
    cls_only.set_weights(full.get_weights())
    yv = full.label_vectors(ops.convert_to_tensor(y))
    pos, neg, valid = full.real_triplets(yv)
    total, (trip, cls, *_) = full.real_hashing_loss(x, yv, pos, neg, valid, training=False)
    total0, (trip0, cls0, *_) = cls_only.real_hashing_loss(x, yv, pos, neg, valid, training=False)
    assert float(np_(trip)) > 1e-3  # the triplet term is there to drop
    np.testing.assert_allclose(np_(total0), np_(cls0), rtol=1e-6)
    np.testing.assert_allclose(np_(trip0), np_(trip), rtol=1e-6)
    np.testing.assert_allclose(np_(total), np_(trip) + np_(cls), rtol=1e-6)
    # The synthetic-triplet loss too: total = class + adversary without the triplet term.
    synthetic = small(phase="hash", triplet_weight=0.0)
    z = ops.convert_to_tensor(np.random.default_rng(0).standard_normal((8, 8)).astype("float32"))
    labels = synthetic.label_vectors(ops.convert_to_tensor(np.arange(8) % 4))
    x_pos = synthetic.generator([z, labels], training=False)
    x_neg = synthetic.generator([z, ops.roll(labels, 1, axis=0)], training=False)
    total_s, (trip_s, cls_s, adv_s, *_) = synthetic.hashing_loss(
        images(8, seed=5), labels, x_pos, labels, x_neg, ops.roll(labels, 1, axis=0), training=False)
    np.testing.assert_allclose(np_(total_s), np_(cls_s) + np_(adv_s), rtol=1e-5)
    assert float(np_(trip_s)) > 1e-3
    with pytest.raises(ValueError, match="triplet_weight"):
        small(triplet_weight=-1.0)
    cls_only.compile()
    path = tmp_path / "cls_only.keras"
    cls_only.save(path)
    assert keras.models.load_model(path).triplet_weight == 0.0


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_resnet_hasher_streams_and_norms(norm):
    from zoo.models import blocks

    net = blocks.resnet_hashing_network((32, 32, 3), code_length=12, num_classes=10, width=4, norm=norm)
    h, logits, adv = net(np.zeros((2, 32, 32, 3), "float32"))
    assert h.shape == (2, 12) and logits.shape == (2, 10) and adv.shape == (2, 1)
    assert np.all((np_(h) > 0) & (np_(h) < 1))  # sigmoid codes
    layer_kinds = {type(layer).__name__ for layer in net.layers}
    assert {"Add", {"batch": "BatchNormalization", "group": "GroupNormalization"}[norm]} <= layer_kinds
    with pytest.raises(ValueError, match="norm"):
        blocks.resnet_hashing_network((32, 32, 3), 12, 10, norm="layer")
    model = DSHGAN.build_default((32, 32, 3), num_classes=10, code_length=12, latent_dim=8, g_width=4,
                                 d_width=4, h_width=4, hasher="resnet", hasher_norm=norm)
    assert model.hash(np.zeros((3, 32, 32, 3), "uint8")).shape == (3, 2)
    with pytest.raises(ValueError, match="hasher"):
        DSHGAN.build_default((32, 32, 3), hasher="vit")


def test_an_application_backbone_loads_its_weights_from_a_file(tmp_path):
    """#24's route to an ImageNet start, without a download: a keras.applications
    backbone initialised at random, saved, then given by file: the hasher's
    backbone holds exactly those weights (control: a fresh one does not), trains
    a step, and round-trips through a .keras file."""
    kwargs = dict(include_top=False, input_shape=(32, 32, 3), pooling="avg", alpha=0.35)
    saved = keras.applications.MobileNetV2(weights=None, **kwargs)
    path = tmp_path / "mobilenet_v2.weights.h5"
    saved.save_weights(path)

    def build(weights):
        return DSHGAN.build_default((32, 32, 3), num_classes=4, code_length=12, latent_dim=8, g_width=4,
                                    d_width=4, hasher="application", backbone="MobileNetV2",
                                    backbone_weights=weights, backbone_kwargs={"alpha": 0.35},
                                    synthetic_triplets=False, phase="hash")

    def backbone_of(model):
        return next(layer for layer in model.hasher.layers if isinstance(layer, keras.Model))

    model = build(str(path))
    assert all(np.array_equal(a, b) for a, b in zip(backbone_of(model).get_weights(), saved.get_weights()))
    assert not all(np.array_equal(a, b) for a, b in zip(backbone_of(build(None)).get_weights(), saved.get_weights()))
    model.compile()
    x = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 3)).astype("float32")
    logs = model.train_on_batch(x, np.arange(8) % 4, return_dict=True)
    assert np.isfinite(float(logs["h_loss"]))
    model.save(tmp_path / "m.keras")
    pixels = ((x[:3] + 1) * 127.5).astype("uint8")
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "m.keras").hash(pixels), model.hash(pixels))
    with pytest.raises(FileNotFoundError, match="no such file"):
        build(str(tmp_path / "missing.weights.h5"))
    with pytest.raises(ValueError, match="backbone must be one of"):
        DSHGAN.build_default((32, 32, 3), hasher="application", backbone="AlexNet")


def test_application_input_modes_match_keras_preprocessing():
    from zoo.models.blocks import ApplicationInput

    pixels = np.random.default_rng(1).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    x = pixels / 127.5 - 1.0
    for mode in ("caffe", "tf", "torch"):
        expected = keras.applications.imagenet_utils.preprocess_input(pixels.copy(), mode=mode)
        np.testing.assert_allclose(np_(ApplicationInput(mode)(x)), expected, atol=2e-3)
    np.testing.assert_allclose(np_(ApplicationInput("none")(x)), pixels, atol=2e-3)
    assert not np.allclose(np_(ApplicationInput("caffe")(x)), np_(ApplicationInput("torch")(x)))  # control


# ---------------------------------------------------------------------------
# Codes: shape, determinism, round trip
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [12, 24, 32, 48, 64])
def test_code_lengths_pack_into_bytes(bits):
    model = small(code_length=bits)
    codes = model.hash(images(5, seed=2) * 0.5 + 0.5)
    assert codes.shape == (5, (bits + 7) // 8) and codes.dtype == np.uint8
    unpacked = model.hash(images(5, seed=2) * 0.5 + 0.5, packed=False)
    np.testing.assert_array_equal(np.unpackbits(codes, axis=1)[:, :bits], unpacked)


def test_codes_are_deterministic_and_survive_a_keras_round_trip(tmp_path):
    model = small(phase="hash")
    model.compile()
    model.fit(images(32), np.arange(32) % 4, batch_size=16, epochs=1, verbose=0)
    x = images(20, seed=5) * 0.5 + 0.5
    codes = model.hash(x)
    np.testing.assert_array_equal(codes, model.hash(x))
    path = tmp_path / "dshgan.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, DSHGAN) and loaded.phase == "hash" and loaded.code_length == 12
    np.testing.assert_array_equal(loaded.hash(x), codes)
    np.testing.assert_allclose(loaded.generate(4, seed=1, labels=2), model.generate(4, seed=1, labels=2),
                               atol=1e-5)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------
def test_bad_input_gets_a_clear_error():
    model = small()
    model.compile()
    with pytest.raises(ValueError, match="shape"):
        model.fit(np.zeros((8, 32, 32, 3), "float32"), np.zeros(8, int), verbose=0)
    with pytest.raises(ValueError, match=r"vectors \(batch, 4\)"):
        model.fit(images(8), np.zeros((8, 5), "float32"), verbose=0)
    with pytest.raises(ValueError, match=r"\[0, 4\) or -1"):
        model.fit(images(8), np.full(8, 7), verbose=0)
    with pytest.raises(ValueError, match="labels"):
        model.fit(images(8), verbose=0)
    with pytest.raises(ValueError, match="multi_label"):
        model.fit(images(2), np.array([[1, 1, 0, 0], [0, 1, 0, 0]], "float32"), verbose=0)
    with pytest.raises(ValueError, match="shape"):
        model.hash(np.zeros((2, 28, 28, 1), "uint8"))
    with pytest.raises(ValueError, match="phase"):
        model.phase = "finetune"
    with pytest.raises(ValueError, match="predicts 5 labels"):
        DSHGAN(small().generator, small(num_classes=5).discriminator, small().hasher)
