"""A regression corpus of bad inputs: each is written into a temporary folder and fed
to the entry point a user meets (`zoo.data.load`, `fit`, `generate` / `reconstruct`
/ `hash`, `zoo.load`, `HammingIndex.load`, `recipes.train`, the demo's upload
handlers). Each must give a clear error naming the problem (the file, key or
member, the count of bad values), or a correct result; never a silent wrong answer.
"""

import io
import json
import types
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image

import zoo
from zoo.core.checks import NonFiniteBatchError
from zoo.data import DataError, load, load_arrays, make_dataset
from zoo.models import AVB, DSHGAN, GAN, VAE, blocks, common

SHAPE = (8, 8, 1)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _mnist_like(n=32, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 8, 8)).astype(dtype)
    y = np.arange(n) % 10
    return x, y


def _png_bytes(array, fmt="png"):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _folder_zip(path, n=4, extra=None):
    rng = np.random.default_rng(1)
    members = {f"train/{c}/{i}.png": _png_bytes(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
               for c in ("cat", "dog") for i in range(n)}
    members.update(extra or {})
    return _zip(path, members)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))


# -- zoo.data: .npz files -------------------------------------------------------------------
def test_float_images_in_unit_range_are_scaled_not_zeroed(tmp_path):
    x, y = _mnist_like()
    path = _npz(tmp_path / "floats.npz", x_train=x / 255.0, y_train=y, x_test=x / 255.0, y_test=y)
    xs, ys, _ = load_arrays(path, "train")
    assert xs.dtype == np.uint8
    np.testing.assert_array_equal(xs[..., 0], x)  # round(x / 255 * 255) == x
    batch = next(iter(load(path, batch_size=8, shuffle=False)))
    assert float(np.max(batch)) > 0.9  # not the all -1.0 of a truncating cast


def test_float_images_in_pixel_units_are_cast_when_whole(tmp_path):
    x, y = _mnist_like()
    path = _npz(tmp_path / "f255.npz", x_train=x.astype("float32"), y_train=y)
    np.testing.assert_array_equal(load_arrays(path)[0][..., 0], x)
    blurred = _npz(tmp_path / "fblur.npz", x_train=np.minimum(x, 254).astype("float32") + 0.5, y_train=y)
    with pytest.raises(DataError, match=r"fblur.npz \[x_train\].*not whole numbers"):
        load_arrays(blurred)


@pytest.mark.parametrize("bad, phrase", [(np.nan, "3 NaN and 0 infinite"), (np.inf, "0 NaN and 3 infinite")])
def test_nan_and_inf_pixels_are_refused_with_key_and_count(tmp_path, bad, phrase):
    x, y = _mnist_like(dtype=np.float32)
    x = x / 255.0
    x[5, 0, :3] = bad
    path = _npz(tmp_path / "nan.npz", x_train=x, y_train=y)
    with pytest.raises(DataError, match=rf"nan.npz \[x_train\]: {phrase}"):
        load_arrays(path)


def test_out_of_range_pixels_are_refused(tmp_path):
    x, y = _mnist_like(dtype=np.float32)
    path = _npz(tmp_path / "big.npz", x_train=x * 4, y_train=y)
    with pytest.raises(DataError, match=r"pixels span \[0, 1020\]"):
        load_arrays(path)


@pytest.mark.parametrize("labels, phrase", [
    (lambda y: np.where(np.arange(len(y)) == 3, -1, y), "1 labels are negative"),
    (lambda y: np.where(np.arange(len(y)) == 3, 1_000_000, y), "labels go up to 1000000"),
    (lambda y: y + 0.5, "not whole numbers"),
    (lambda y: y[:-1], "32 images but 31 labels"),
    (lambda y: np.stack([y, y], 1), "one integer label per image"),
])
def test_bad_labels_are_refused_when_data_loads(tmp_path, labels, phrase):
    x, y = _mnist_like()
    path = _npz(tmp_path / "labels.npz", x_train=x, y_train=labels(y))
    with pytest.raises(DataError, match=rf"labels.npz \[y_train\]: .*{phrase}"):
        load_arrays(path)


def test_a_set_missing_a_few_classes_still_loads(tmp_path):
    # Negative control for the label check: a small set without classes 1 and 7 is fine.
    x, _ = _mnist_like(n=8)
    path = _npz(tmp_path / "few.npz", x_train=x, y_train=np.array([0, 2, 3, 4, 5, 6, 8, 9]))
    _, _, names = load_arrays(path)
    assert len(names) == 10


def test_wrong_keys_and_broken_npz_name_the_file(tmp_path):
    x, y = _mnist_like()
    with pytest.raises(DataError, match=r"keys.npz lacks \['x_train'\].*found \['images', 'y_train'\]"):
        load_arrays(_npz(tmp_path / "keys.npz", images=x, y_train=y))
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="broken.npz is not a readable .npz"):
        load_arrays(broken)
    with pytest.raises(DataError, match="does not exist"):
        load_arrays(tmp_path / "missing.npz")


# -- zoo.data: image folders and zips -------------------------------------------------------
def test_broken_zip_is_named(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"this is not a zip file" * 10)
    with pytest.raises(DataError, match=r"broken.zip is not a readable zip file"):
        load_arrays(path)


def test_corrupt_and_truncated_members_are_named(tmp_path):
    good = _png_bytes(np.zeros((8, 8, 3), np.uint8))
    for name, data in [("garbage", b"not a png at all"), ("truncated", good[: len(good) // 2]), ("empty", b"")]:
        path = _folder_zip(tmp_path / f"{name}.zip", extra={f"train/dog/{name}.png": data})
        with pytest.raises(DataError, match=rf"{name}.zip: member 'train/dog/{name}.png' is not a readable image"):
            load_arrays(path)


def test_flat_zip_says_what_layout_it_expects(tmp_path):
    path = _zip(tmp_path / "flat.zip", {"a.png": _png_bytes(np.zeros((8, 8), np.uint8))})
    with pytest.raises(DataError, match=r"flat.zip has no images under 'train/<class>/'"):
        load_arrays(path)


def test_rgba_and_tiny_images_load(tmp_path):
    rgba = np.zeros((1, 1, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    path = _zip(tmp_path / "rgba.zip", {"train/a/0.png": _png_bytes(rgba), "train/b/0.png": _png_bytes(rgba)})
    x, y, names = load_arrays(path)
    assert x.shape == (2, 1, 1, 3) and x[0, 0, 0, 0] == 200 and names == ["a", "b"]
    mixed = _zip(tmp_path / "mixed.zip", {"train/a/0.png": _png_bytes(np.zeros((8, 8, 3), np.uint8)),
                                          "train/b/0.png": _png_bytes(np.zeros((9, 8, 3), np.uint8))})
    with pytest.raises(DataError, match="images of different shapes"):
        load_arrays(mixed)


# -- make_dataset and fit -------------------------------------------------------------------
def _tiny_gan(**kwargs):
    return GAN(blocks.mlp(4, 2, hidden=(8,), name="g"), blocks.mlp(2, 1, hidden=(8,), name="d"),
               data_range=None, seed=0, **kwargs)


def test_fit_checks_whole_arrays_not_the_first_rows():
    gan = _tiny_gan()
    gan.compile()
    x = np.random.default_rng(0).normal(size=(512, 2)).astype("float32")
    x[300, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN values \(the first at row 300\)"):
        gan.fit(x, batch_size=64, epochs=1, verbose=0)
    assert int(keras.ops.convert_to_numpy(gan.optimizer.iterations)) == 0  # refused before any step


def test_fit_checks_every_batch_of_a_dataset():
    tf = pytest.importorskip("tensorflow")
    gan = _tiny_gan()
    gan.compile()
    x = np.random.default_rng(0).normal(size=(512, 2)).astype("float32")
    x[5 * 64 + 7, 0] = np.inf  # in batch 5: the first-batch check cannot see it
    ds = tf.data.Dataset.from_tensor_slices(x).batch(64)
    with pytest.raises(NonFiniteBatchError, match="after [56] steps of this fit holds 1 NaN or infinite"):
        gan.fit(ds, epochs=1, verbose=0)
    assert int(keras.ops.convert_to_numpy(gan.optimizer.iterations)) < 8  # stopped, not all 8 batches
    # Negative control: the same pipeline without the bad value trains through.
    x[5 * 64 + 7, 0] = 0.0
    gan.fit(tf.data.Dataset.from_tensor_slices(x).batch(64), epochs=1, verbose=0)


def test_fit_checks_every_batch_of_a_generator():
    gan = _tiny_gan()
    gan.compile()
    rng = np.random.default_rng(0)

    def batches():
        for i in range(10):
            b = rng.normal(size=(32, 2)).astype("float32")
            if i == 4:
                b[0, 0] = np.nan
            yield (b,)

    with pytest.raises(NonFiniteBatchError, match="Batch 4 of the training generator"):
        gan.fit(batches(), steps_per_epoch=10, epochs=1, verbose=0)


def test_make_dataset_refuses_float_images():
    x = np.zeros((8, 4, 4, 1), "float32")
    with pytest.raises(ValueError, match="uint8"):
        make_dataset(x, batch_size=4)


# -- generate / reconstruct / hash ----------------------------------------------------------
@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    return types.SimpleNamespace(
        gan=GAN.dcgan(SHAPE, latent_dim=4, width=4),
        cgan=GAN.dcgan(SHAPE, latent_dim=4, width=4, num_classes=3),
        vae=VAE.larsen((16, 16, 1), latent_dim=4, width=0.125),
        avb=AVB.build_default(SHAPE, latent_dim=2, hidden=(8,), likelihood="bernoulli"),
        dsh=DSHGAN.build_default(SHAPE, num_classes=3, code_length=8, latent_dim=4, g_width=4, d_width=4,
                                 h_width=4),
    )


def test_generate_zero_negative_and_fractional_counts(models):
    for m in (models.gan, models.vae, models.avb):
        assert m.generate(0).shape == (0, *m.data_shape)
        for bad in (-1, 2.5, True, "3"):
            with pytest.raises(ValueError, match="n must be"):
                m.generate(bad)
    assert models.cgan.generate(0, labels=1).shape == (0, *SHAPE)


def test_generate_refuses_what_would_not_fit_in_memory(models, monkeypatch):
    monkeypatch.setattr(common, "available_memory", lambda: 4e9)
    with pytest.raises(MemoryError, match=r"generate\(10000000\) would return 2.6 GB .*4.0 GB available"):
        models.gan.generate(10_000_000)
    with pytest.raises(MemoryError, match="would return"):
        models.vae.generate(10**9)
    assert models.gan.generate(3).shape == (3, *SHAPE)  # negative control: a small request is served


def test_reconstruct_and_hash_refuse_nan_and_accept_empty(models):
    nan = np.full((2, *SHAPE), np.nan, "float32")
    half = np.zeros((1, *SHAPE), "float32")
    half.reshape(-1)[:32] = np.nan
    with pytest.raises(ValueError, match=r"32 NaN values \(the first at row 0\)"):
        models.dsh.hash(half)  # was an all-zero code: a wrong retrieval
    with pytest.raises(ValueError, match="NaN"):
        models.vae.reconstruct(np.full((1, 16, 16, 1), np.nan, "float32"))
    with pytest.raises(ValueError, match="NaN"):
        models.avb.reconstruct(nan)
    assert models.vae.reconstruct(np.zeros((0, 16, 16, 1), np.uint8)).shape == (0, 16, 16, 1)
    assert models.dsh.hash(np.zeros((0, *SHAPE), np.uint8)).shape == (0, 1)
    assert models.dsh.hash(np.zeros((2, *SHAPE), np.uint8)).shape == (2, 1)  # the valid case still works


def test_labels_are_not_truncated_and_nan_vectors_refused(models):
    with pytest.raises(ValueError, match="non-integer value.*2.7"):
        models.cgan.generate(2, labels=2.7)
    with pytest.raises(ValueError, match=r"label vectors hold 6 NaN"):
        models.cgan.generate(2, labels=np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match=r"must be in \[0, 3\)"):
        models.cgan.generate(2, labels=3)
    with pytest.raises(ValueError, match="z holds 4 NaN"):
        models.gan.decode_latents(np.full((1, 4), np.nan, "float32"))
    assert models.cgan.generate(2, labels=2.0).shape == (2, *SHAPE)  # a whole float is a class index


# -- presets and the Hamming index ----------------------------------------------------------
def test_tampered_preset_and_broken_index_are_named(tmp_path, models):
    zoo.save_preset(models.gan, tmp_path / "p", {"description": "test"})
    weights = next((tmp_path / "p").glob("*.weights.h5"))
    weights.write_bytes(weights.read_bytes()[:-100] + b"\0" * 100)
    with pytest.raises(ValueError, match=weights.name):
        zoo.load(tmp_path / "p")
    broken = tmp_path / "index.zoohash"
    broken.write_bytes(b"\0" * 10)
    with pytest.raises(ValueError):
        zoo.retrieval.HammingIndex.load(broken)


# -- recipes.train ---------------------------------------------------------------------------
def _train_error(capsys, *argv):
    from recipes import train

    with pytest.raises(SystemExit) as info:
        train.main(list(argv))
    message = str(info.value.code)
    assert message.startswith("error: ") and "Traceback" not in message and "\n" not in message
    return message


def test_recipes_train_prints_one_line_for_every_data_error(tmp_path, capsys):
    x, y = _mnist_like()
    x = x / 255.0
    x[0, 0, 0] = np.nan
    nan = _npz(tmp_path / "nan.npz", x_train=x, y_train=y)
    args = ["--steps", "2", "--batch-size", "8", "--no-eval", "--out", str(tmp_path / "run")]
    assert "nan.npz [x_train]: 1 NaN" in _train_error(capsys, "dcgan_mnist", "--data", str(nan), *args)
    x, y = _mnist_like()
    labels = _npz(tmp_path / "neg.npz", x_train=x, y_train=y - 1)
    assert "neg.npz [y_train]" in _train_error(capsys, "cdcgan_mnist", "--data", str(labels), *args)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"nope")
    assert "broken.zip is not a readable zip" in _train_error(capsys, "dcgan_mnist", "--data", str(broken), *args)
    corrupt = _folder_zip(tmp_path / "corrupt.zip", extra={"train/cat/bad.png": b"xx"})
    assert "member 'train/cat/bad.png'" in _train_error(capsys, "dcgan_mnist", "--data", str(corrupt), *args)
    x, y = _mnist_like()
    many = _npz(tmp_path / "twenty.npz", x_train=np.zeros((40, 28, 28), np.uint8), y_train=np.arange(40) % 20)
    assert "Class labels must be in [0, 10)" in _train_error(capsys, "cdcgan_mnist", "--data", str(many), *args)
    assert not (tmp_path / "run" / "preset").exists()


# -- the demo's upload handlers --------------------------------------------------------------
def test_demo_scales_16_bit_grayscale_by_its_depth():
    demo_app = pytest.importorskip("demos.app")
    ramp = (np.arange(28 * 28, dtype=np.uint16).reshape(28, 28) * 80)  # 0 .. 62,640 of 65,535
    im = Image.fromarray(ramp, mode="I;16")
    x, notes = demo_app.to_shape(im, (28, 28, 1), invert=False)
    expected = np.round(ramp / 65535.0 * 255).astype(np.uint8)
    np.testing.assert_allclose(x[..., 0].astype(int), expected.astype(int), atol=1)
    assert (x == 255).mean() < 0.01 and any("16-bit" in n for n in notes)
    # Negative control: PIL's own convert("L") clips this image to white.
    assert (np.asarray(im.convert("L")) == 255).mean() > 0.9
    x, _ = demo_app.to_shape(Image.fromarray(ramp.astype(np.int32), mode="I"), (28, 28, 3), invert=False)
    np.testing.assert_allclose(x[..., 1].astype(int), expected.astype(int), atol=1)


def test_demo_upload_of_truncated_empty_and_huge_images(tmp_path):
    demo_app = pytest.importorskip("demos.app")
    good = _png_bytes(np.zeros((64, 64), np.uint8))
    for name, data in [("truncated.png", good[: len(good) // 2]), ("empty.png", b"")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(demo_app.gr.Error):
            demo_app.open_image(tmp_path / name).load()
    big = Image.new("L", (4000, 4000), 255)  # 16 megapixels: under the app's limit, resized
    x, notes = demo_app.to_shape(big, (28, 28, 1), invert="auto")
    assert x.shape == (28, 28, 1) and x.max() == 0 and any("resized 4000x4000" in n for n in notes)


def test_demo_sketch_endpoint_checks_its_input_like_the_upload():
    demo_app = pytest.importorskip("demos.app")
    handlers = types.SimpleNamespace(reconstruct=lambda image, *a, **k: image)
    sketch = demo_app.Handlers.reconstruct_sketch
    for junk, phrase in [({"composite": "not an image"}, "must be an image"),
                         ({"composite": np.zeros((4, 4, 2))}, "got shape"),
                         ({"composite": np.full((4, 4), np.nan)}, "NaN"),
                         ([[1, 2], [3]], "must be an image")]:
        with pytest.raises(demo_app.gr.Error, match=phrase):
            sketch(handlers, junk, ["x"], "auto")
    drawn = np.zeros((8, 8, 3), np.uint8)
    drawn[2:6, 3] = 255
    assert isinstance(sketch(handlers, {"composite": drawn, "layers": []}, ["x"], "auto"), Image.Image)


def test_json_metadata_records_no_machine_path(tmp_path):
    from recipes.train import data_record

    path = _npz(tmp_path / "data.npz", x_train=np.zeros((1, 2, 2), np.uint8), y_train=np.zeros(1))
    record = data_record(path)
    assert record["name"] == "data.npz" and len(record["sha256"]) == 64
    assert str(tmp_path) not in json.dumps(record)
