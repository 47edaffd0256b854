"""The Gradio app (demos/): every endpoint through gradio_client, the tabs'
gradio_client snippets run as written, bad input, 20 concurrent requests, and
one real headless-Chromium session.

The app runs in-process on 127.0.0.1 on tiny presets saved here with
zoo.save_preset (plus the bundled dcgan_mnist when present), so the test is
fast and does not depend on which presets are bundled; its retrieval database
and nearest-training-images view use the MNIST / CIFAR-10 samples shipped in
demos/data. The browser test runs on one backend only (ZOO_BROWSER_BACKEND,
default tensorflow: the backend a user gets by default); it checks the page,
not the numerics, which the client tests check on every backend; its
screenshots go to a tmp dir. With $ZOO_DEMO_SCREENSHOTS set (e.g.
bench/results/demo) a second browser session runs on the bundled presets and
writes the README's screenshots of each tab there.
"""

import concurrent.futures
import hashlib
import inspect
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio", reason="the demo extra is not installed: pip install -e '.[demo]'")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

import zoo  # noqa: E402
from demos import app as demo_app  # noqa: E402
from demos import catalog, handlers, images, retrieval, samples  # noqa: E402

MNIST = (28, 28, 1)
TINY = ["tiny_vae", "tiny_avb", "tiny_cgan", "tiny_dsh", "tiny_vaegan_rgb"]


def _save_tiny_presets(folder):
    keras.utils.set_random_seed(0)
    meta = {"dataset": "mnist", "command": "python -m recipes.train tiny (test)",
            "figures": {"fid": {"value": 1.5, "how": "made up for the test"}}}
    zoo.save_preset(zoo.VAE.larsen(MNIST, latent_dim=8, width=0.125), folder / "tiny_vae",
                    {**meta, "description": "tiny VAE"})
    zoo.save_preset(zoo.AVB.build_default(MNIST, latent_dim=4, hidden=(16, 16), likelihood="bernoulli"),
                    folder / "tiny_avb", {**meta, "description": "tiny AVB"})
    zoo.save_preset(zoo.GAN.dcgan(MNIST, latent_dim=8, width=8, num_classes=10), folder / "tiny_cgan",
                    {**meta, "description": "tiny conditional GAN"})
    zoo.save_preset(zoo.DSHGAN.build_default(MNIST, num_classes=10, code_length=12, latent_dim=8, g_width=8,
                                             d_width=8, h_width=8), folder / "tiny_dsh",
                    {**meta, "description": "tiny DSH-GAN"})
    zoo.save_preset(zoo.VAEGAN.larsen((32, 32, 3), latent_dim=8, width=0.125), folder / "tiny_vaegan_rgb",
                    {"dataset": "cifar10", "description": "tiny RGB VAE-GAN"})


def _tiny_presets():
    """The tiny presets, built once per machine and shared by the backends' test runs.

    Preset weights are backend-independent (tests/test_presets.py checks it), and
    building these models takes over a minute on JAX (loading them, a second). Keyed
    by the builder's source and the Keras and zoo versions; written atomically."""
    key = hashlib.sha256((inspect.getsource(_save_tiny_presets) + keras.__version__ + zoo.__version__).encode())
    folder = Path(tempfile.gettempdir()) / f"zoo-test-demo-presets-{key.hexdigest()[:16]}"
    try:
        for name in TINY:
            zoo.presets.verify(folder / name)
        return folder
    except (OSError, ValueError):
        pass
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    _save_tiny_presets(staging)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        os.replace(staging, folder)
    except OSError:  # another run put it there first
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(demo, client, url, tmp): the app on tiny presets, launched in-process."""
    tmp = tmp_path_factory.mktemp("demo")
    old_cache = os.environ.get("ZOO_CACHE")
    os.environ["ZOO_CACHE"] = str(tmp / "cache")
    names = TINY + [n for n in ("dcgan_mnist",) if n in zoo.list_presets()]
    demo = demo_app.create_app(preset_names=names, preset_dirs=[_tiny_presets()])  # the default database
    _, url, _ = demo_app.launch(demo, port=_free_port(), prevent_thread_lock=True, quiet=True)
    client = gradio_client.Client(url, verbose=False, download_files=str(tmp / "downloads"),
                                  analytics_enabled=False)
    yield demo, client, url, tmp
    client.close() if hasattr(client, "close") else None
    demo.close()
    if old_cache is None:
        os.environ.pop("ZOO_CACHE", None)
    else:
        os.environ["ZOO_CACHE"] = old_cache


def _png(tmp, name, array, mode=None):
    path = tmp / name
    Image.fromarray(np.asarray(array, np.uint8), mode=mode).save(path)
    return path


def _read(path):
    if isinstance(path, dict):
        path = path.get("path") or path.get("url")
    return np.asarray(Image.open(path))


def _gallery(result):
    out = []
    for item in result:
        image = item["image"] if isinstance(item, dict) else item[0]
        caption = item.get("caption") if isinstance(item, dict) else item[1]
        out.append((_read(image), caption))
    return out


def _app_error(call):
    with pytest.raises(AppError) as info:
        call()
    message = str(info.value)
    assert "Traceback" not in message and 'File "' not in message, message
    return message


# -- Generate --------------------------------------------------------------------------------
def test_generate_grid_shape_and_range(served):
    _, client, _, _ = served
    path, note, nearest, table, nearest_note = client.predict("tiny_vae", 5, 3, None, api_name="/generate")
    grid = _read(path)
    assert grid.shape[:2] == images.grid_shape(5, 3, 28, 28)
    assert grid.dtype == np.uint8 and grid.min() >= 0 and grid.max() <= 255 and grid.std() > 0
    assert "seed 3" in note
    again = _read(client.predict("tiny_vae", 5, 3, None, api_name="/generate")[0])
    np.testing.assert_array_equal(grid, again)  # a seed fixes the images
    rows, k = handlers.NEAREST_ROWS, samples.NEAREST_K
    assert len(table["data"]) == rows * k and table["headers"] == ["sample", "rank", "training image", "label", "L2"]
    assert _read(nearest).shape == (*images.labelled_grid_layout(rows * (k + 1), k + 1, 28, 28)[-1], 3)
    assert "MNIST's train split" in nearest_note and "784 pixel values" in nearest_note


def test_nearest_training_images_are_the_exact_l2_neighbours(served):
    demo, client, _, _ = served
    path, _, nearest, table, note = client.predict("tiny_vae", 2, 5, None, api_name="/generate")
    picture, grid = _read(nearest), _read(path)
    k = samples.NEAREST_K
    x_train, y_train, names, _, where = samples.load_sample("mnist", "train")
    position = {w: j for j, w in enumerate(where)}
    f, tw, col, row, _ = images.labelled_grid_layout(2 * (k + 1), k + 1, 28, 28)
    pad = 4

    def tile(r, c):  # the picture's tile at row r, column c, back to 28x28 gray
        return picture[pad + r * row:pad + r * row + tw:f, pad + c * col:pad + c * col + tw:f, 0]

    g = images.CELL // 28
    for r in range(2):
        x0 = 2 + r * (28 * g + 2)  # sample r: column r of the generated grid (one row of 2)
        sample = grid[2:2 + 28 * g:g, x0:x0 + 28 * g:g]
        np.testing.assert_array_equal(tile(r, 0), sample)  # the left column: the samples themselves
        d = np.sqrt(((x_train[..., 0] / 255.0 - sample / 255.0) ** 2).sum(axis=(1, 2)))
        kth = np.sort(d)[k - 1]
        listed = [t for t in table["data"] if t[0] == r + 1]
        assert [t[1] for t in listed] == list(range(1, k + 1))
        for c, (_, _, ref, label, dist) in enumerate(listed):
            j = position[ref]
            assert label == names[y_train[j]]
            assert abs(dist - d[j]) < 1e-3 and d[j] <= kth + 1e-4, (ref, dist, d[j], kth)
            np.testing.assert_array_equal(tile(r, c + 1), x_train[j][..., 0])  # the listed image is the shown one
        assert [t[4] for t in listed] == sorted(t[4] for t in listed) and len({t[2] for t in listed}) == k
    assert "Closest here:" in note and "median L2" in note
    # A preset whose data set has no shipped sample says so instead.
    store = demo.zoo_store
    info = store.info("tiny_vae")
    other = handlers.Handlers(store, demo.zoo_retrieval)
    old = info.meta.get("dataset")
    info.meta["dataset"] = "svhn"
    try:
        image, rows, note = other.nearest("tiny_vae", store.get("tiny_vae"), np.zeros((1, 28, 28, 1), np.float32))
    finally:
        info.meta["dataset"] = old
    assert image is None and rows == [] and "No training sample" in note and "svhn" in note


def test_presets_are_listed_by_their_declared_capabilities():
    # The catalog knows what each preset can do from its config's class, without loading weights.
    presets, problems = catalog.discover_presets(TINY, [_tiny_presets()])
    store = catalog.ModelStore(presets)
    assert not problems
    tabs = ("generator", "autoencoder", "hasher")  # the capabilities the app's tabs use
    assert {n: tuple(c for c in p.capabilities if c in tabs) for n, p in presets.items()} == {
        "tiny_vae": ("generator", "autoencoder"), "tiny_avb": ("generator", "autoencoder"),
        "tiny_cgan": ("generator",), "tiny_dsh": ("generator", "hasher"),
        "tiny_vaegan_rgb": ("generator", "autoencoder")}
    assert store.having("hasher") == ["tiny_dsh"] and presets["tiny_vaegan_rgb"].kind == "VAE-GAN"
    assert store._models == {}


def test_generate_draws_the_models_prior(served):
    # The Generate tab's seed means what it means to the model: model.generate(n, seed).
    demo, client, _, _ = served
    path = client.predict("tiny_cgan", 4, 7, "2", api_name="/generate")[0]
    with demo.zoo_store.lock("tiny_cgan"):
        expected = images.image_grid(demo.zoo_store.get("tiny_cgan").generate(4, seed=7, labels=2), 2)
    np.testing.assert_allclose(_read(path).astype(int), expected.astype(int), atol=1)


def test_random_seed(served):
    _, client, _, _ = served
    seeds = {client.predict(api_name="/random_seed") for _ in range(3)}
    assert all(isinstance(s, (int, float)) and 1 <= s < 1_000_000 for s in seeds) and len(seeds) > 1


def test_generate_conditional_and_classes(served):
    _, client, _, _ = served
    update = client.predict("tiny_cgan", api_name="/classes")
    choices = [c[0] if isinstance(c, (list, tuple)) else c for c in update["choices"]]
    assert choices == [handlers.EACH_CLASS] + [str(i) for i in range(10)]
    path, note, _, _, _ = client.predict("tiny_cgan", 4, 0, "7", api_name="/generate")
    assert _read(path).shape[:2] == images.grid_shape(4, 2, 28, 28)
    assert "classes: 7" in note
    path = client.predict("tiny_cgan", 12, 0, handlers.EACH_CLASS, api_name="/generate")[0]
    assert _read(path).shape[:2] == images.grid_shape(12, 10, 28, 28)


@pytest.mark.parametrize("name", ["tiny_avb", "tiny_dsh", "tiny_vaegan_rgb", "dcgan_mnist"])
def test_generate_every_kind(served, name):
    demo, client, _, _ = served
    if name not in demo.zoo_store.presets:
        pytest.skip(f"{name} is not bundled")
    shape = demo.zoo_store.get(name).data_shape
    label = "3" if name == "tiny_dsh" else None
    path, _, nearest, table, note = client.predict(name, 4, 1, label, api_name="/generate")
    grid = _read(path)
    assert grid.shape[:2] == images.grid_shape(4, 2, shape[0], shape[1])
    assert grid.ndim == (3 if shape[-1] == 3 else 2)
    k = samples.NEAREST_K  # the training images in the generator's own shape, beside each sample
    assert _read(nearest).shape[:2] == images.labelled_grid_layout(4 * (k + 1), k + 1, *shape[:2])[-1]
    assert len(table["data"]) == 4 * k
    assert ("CIFAR-10's train split" if shape[-1] == 3 else "MNIST's train split") in note


def test_interpolate_grid(served):
    _, client, _, _ = served
    path, note = client.predict("tiny_cgan", 0, 1, 5, 2, "4", True, api_name="/interpolate")
    grid = _read(path)
    assert grid.shape[:2] == images.grid_shape(10, 5, 28, 28)
    assert "seed 0" in note and "seed 1" in note
    path, _ = client.predict("tiny_vae", 0, 1, 3, 1, None, False, api_name="/interpolate")
    assert _read(path).shape[:2] == images.grid_shape(3, 3, 28, 28)


def test_generate_bad_numbers(served):
    _, client, _, _ = served
    assert "greater than maximum value 64" in _app_error(  # gradio's own check of the slider
        lambda: client.predict("tiny_vae", 500, 0, None, api_name="/generate"))
    assert "Seed must be between" in _app_error(lambda: client.predict("tiny_vae", 2, -5, None, api_name="/generate"))
    assert "not in the list of choices" in _app_error(lambda: client.predict("nope", 4, 0, None, api_name="/generate"))
    assert "Unknown class" in _app_error(lambda: client.predict("tiny_cgan", 4, 0, "zebra", api_name="/generate"))


# -- Reconstruct ------------------------------------------------------------------------------
def test_reconstruct_upload_converts_per_preset(served):
    _, client, _, tmp = served
    rgb = np.random.default_rng(0).integers(0, 255, (40, 50, 3))
    gallery, note = client.predict(handle_file(_png(tmp, "rgb.png", rgb)), ["tiny_vae", "tiny_avb", "tiny_vaegan_rgb"],
                                   "auto", api_name="/reconstruct_upload")
    items = _gallery(gallery)
    assert len(items) == 6  # (input as the preset sees it, reconstruction) per preset
    for (image, caption), size in zip(items, [168, 168, 168, 168, 160, 160]):
        assert image.shape[:2] == (size, size), caption
    assert "tiny_vaegan_rgb: reconstruction" in items[5][1]
    assert "RGB -> grayscale" in note and "resized 40x40 -> 28x28" in note and "centre-cropped 50x40" in note


def test_reconstruct_grayscale_and_rgba_where_rgb_expected(served):
    _, client, _, tmp = served
    gray = _png(tmp, "gray.png", np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1)))
    _, note = client.predict(handle_file(gray), ["tiny_vaegan_rgb"], "no", api_name="/reconstruct_upload")
    assert "grayscale -> RGB" in note
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[8:24, 8:24] = (255, 0, 0, 255)
    gallery, note = client.predict(handle_file(_png(tmp, "rgba.png", rgba)), ["tiny_vaegan_rgb", "tiny_vae"], "auto",
                                   api_name="/reconstruct_upload")
    assert "composited onto white" in note
    seen = _gallery(gallery)[0][0]  # the RGB preset's input: red square on white
    assert seen.shape == (160, 160, 3) and tuple(seen[0, 0]) == (255, 255, 255) and tuple(seen[80, 80]) == (255, 0, 0)


def test_reconstruct_sketch(served):
    _, client, _, tmp = served
    black = np.zeros((280, 280, 3), np.uint8)
    drawn = black.copy()
    drawn[60:220, 130:150] = 255  # a "1"
    bg = handle_file(_png(tmp, "bg.png", black))
    layer = np.zeros((280, 280, 4), np.uint8)
    layer[60:220, 130:150] = 255
    sketch = {"background": bg, "layers": [handle_file(_png(tmp, "layer.png", layer))],
              "composite": handle_file(_png(tmp, "drawn.png", drawn))}
    gallery, note = client.predict(sketch, ["tiny_vae"], "auto", api_name="/reconstruct_sketch")
    assert len(gallery) == 2 and "(sketch)" in note and "resized 280x280 -> 28x28" in note
    empty = {"background": bg, "layers": [], "composite": bg}
    assert "sketch is empty" in _app_error(
        lambda: client.predict(empty, ["tiny_vae"], "auto", api_name="/reconstruct_sketch"))


def test_bad_uploads_get_readable_messages(served):
    _, client, _, tmp = served
    text = tmp / "notes.png"
    text.write_text("this is not an image\n" * 20)
    message = _app_error(lambda: client.predict(handle_file(text), ["tiny_vae"], "auto",
                                                api_name="/reconstruct_upload"))
    assert "not an image" in message
    huge = tmp / "huge.png"
    Image.new("L", (6000, 5000)).save(huge)  # 30 megapixels, 30 kB on disk
    assert "megapixels" in _app_error(lambda: client.predict(handle_file(huge), ["tiny_vae"], "auto",
                                                             api_name="/reconstruct_upload"))
    assert "not an image" in _app_error(lambda: client.predict("tiny_dsh", handle_file(text), "unknown", 5,
                                                               api_name="/retrieve"))
    assert "No image" in _app_error(lambda: client.predict(None, ["tiny_vae"], "auto",
                                                           api_name="/reconstruct_upload"))
    assert "at least one" in _app_error(lambda: client.predict(handle_file(_png(tmp, "ok.png", np.zeros((8, 8)))),
                                                               [], "auto", api_name="/reconstruct_upload"))


# -- Retrieve ---------------------------------------------------------------------------------
def test_retrieve_database_image_returns_itself_first(served):
    demo, client, _, tmp = served
    image, label, db_note = client.predict("tiny_dsh", 37, api_name="/example")
    query = _read(image)
    db = demo.zoo_retrieval.get("tiny_dsh")
    # The offline default for an MNIST preset: the shipped MNIST test sample, not load_digits.
    assert query.shape == (28, 28) and np.array_equal(query, db.x[37][..., 0])
    assert np.array_equal(db.x, samples.load_sample("mnist", "test")[0])
    assert label == db.names[int(db.y[37])]
    assert "MNIST's test split" in db_note and "2,000 images" in db_note and "seed 0" in db_note
    gallery, table, note = client.predict("tiny_dsh", handle_file(_png(tmp, "q.png", query)), label,
                                          8, api_name="/retrieve")
    rows = table["data"]
    assert table["headers"][3:] == ["Hamming distance", "code bits"]
    assert len(rows) == 8 and len(gallery) == 8
    assert rows[0][1] == 37 and rows[0][3] == 0  # itself, at distance 0
    distances = [r[3] for r in rows]
    assert distances == sorted(distances) and all(0 <= d <= 12 for d in distances)
    query_bits = note.split("Query code (12 bits): `")[1].split("`")[0]
    for row in rows:  # each result's code bits, and its Hamming distance from the query's
        assert len(row[4]) == 12 and set(row[4]) <= {"0", "1"}
        assert sum(a != b for a, b in zip(row[4], query_bits)) == row[3]
    assert rows[0][4] == query_bits
    hits = sum(r[2] == label for r in rows)
    assert f"Precision@8 = {hits / 8:.3f}" in note and "Hamming distance: the number" in note
    assert _gallery(gallery)[0][1] == f"#37 · {label} · d=0"
    _, _, note = client.predict("tiny_dsh", handle_file(_png(tmp, "q.png", query)), "unknown", 3, api_name="/retrieve")
    assert "set the query's label" in note


def test_retrieve_rgba_upload_and_database_cache(served):
    demo, client, _, tmp = served
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[20:44, 28:36, :3] = 255
    gallery, table, note = client.predict("tiny_dsh", handle_file(_png(tmp, "q.png", rgba)), "1", 5,
                                          api_name="/retrieve")
    assert len(table["data"]) == 5 and "RGB -> grayscale" in note and "resized 64x64 -> 28x28" in note
    cached = list((tmp / "cache" / "demo").glob("tiny_dsh-*.hidx"))
    assert len(cached) == 1
    # A second app on the same preset and database loads the index instead of hashing again.
    again = retrieval.Retrieval(demo.zoo_store).get("tiny_dsh")
    assert again.from_cache and again.cache_path == cached[0]
    np.testing.assert_array_equal(again.index.codes, demo.zoo_retrieval.get("tiny_dsh").index.codes)
    # --database digits: scikit-learn's load_digits, as 28x28, still offline.
    digits = retrieval.Retrieval(demo.zoo_store, "digits").get("tiny_dsh")
    assert len(digits.x) == 1797 and digits.x.shape[1:] == (28, 28, 1) and "load_digits" in digits.description


def test_cifar10_presets_search_cifar10_by_default(tmp_path, monkeypatch):
    # Offline, the bundled 12-bit DSH-GAN searches the shipped CIFAR-10 test sample (its own
    # domain): a database image finds itself first, at distance 0, with CIFAR-10's class names.
    if "dshgan_cifar10_12bit" not in zoo.list_presets():
        pytest.skip("the dshgan_cifar10_12bit preset is not bundled")
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    demo = demo_app.create_app(preset_names=["dshgan_cifar10_12bit"])
    _, url, _ = demo_app.launch(demo, port=_free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = gradio_client.Client(url, verbose=False, download_files=str(tmp_path / "dl"),
                                      analytics_enabled=False)
        image, label, db_note = client.predict("dshgan_cifar10_12bit", 5, api_name="/example")
        assert "CIFAR-10's test split" in db_note and "1,000 images" in db_note and "cifar10.zip" in db_note
        query = _read(image)
        assert query.shape == (32, 32, 3)
        db = demo.zoo_retrieval.get("dshgan_cifar10_12bit")
        assert label in db.names and db.names == catalog.CLASS_NAMES["cifar10"]
        gallery, table, note = client.predict("dshgan_cifar10_12bit", handle_file(_png(tmp_path, "q.png", query)),
                                              label, 10, api_name="/retrieve")
        rows = table["data"]
        assert len(rows) == 10 and rows[0][1] == 5 and rows[0][3] == 0
        assert [r[3] for r in rows] == sorted(r[3] for r in rows)
        assert "Precision@10" in note
        # A trained hasher on its own domain: each database image's 10 nearest others share its class
        # far more often than chance (0.1).
        _, ids = db.index.search(db.codes, 11)
        others = [row[row != i][:10] for i, row in enumerate(ids)]
        precision = float(np.mean([np.mean(db.y[o] == db.y[i]) for i, o in enumerate(others)]))
        print(f"\nmean precision@10 of the shipped CIFAR-10 sample against itself: {precision:.3f}")
        assert precision > 0.2, precision
    finally:
        demo.close()
    # --database still takes a path zoo.data.load_arrays reads: here the sample's keras-style .npz.
    npz = samples.SAMPLES_DIR / "cifar10_sample.npz"
    store = catalog.ModelStore(catalog.discover_presets(["dshgan_cifar10_12bit"])[0])
    other = retrieval.Retrieval(store, str(npz), "test").get("dshgan_cifar10_12bit")
    assert f"{npz} (test split)" in other.description
    np.testing.assert_array_equal(other.x, db.x)
    np.testing.assert_array_equal(other.codes, db.codes)


def test_shipped_samples_match_their_record():
    import json

    record = json.loads((samples.SAMPLES_DIR / "samples.json").read_text())
    total = 0
    for name, r in record.items():
        path = samples.SAMPLES_DIR / r["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == r["sha256"], name
        total += path.stat().st_size
        with np.load(path) as d:
            assert str(d["source_sha256"]) == r["source_sha256"] and int(d["seed"]) == r["seed"]
            for split, info in r["splits"].items():
                x, y = d[f"x_{split}"], d[f"y_{split}"]
                assert x.dtype == np.uint8 and list(x.shape[1:]) == info["shape"] and len(x) == info["images"]
                assert np.bincount(y).tolist() == [info["per_class"]] * len(r["class_names"])
    assert total < 8_000_000  # small: the demo's data, a few MB


def test_database_examples_and_model_card(served):
    _, client, _, _ = served
    examples, summary = client.predict("tiny_dsh", api_name="/database")
    assert len(examples) == 10 and "12-bit codes" in summary
    card = client.predict("tiny_cgan", api_name="/card")
    assert "tiny conditional GAN" in card and "python -m recipes.train tiny" in card
    assert "| fid | 1.5 | made up for the test |" in card


def test_model_card_of_a_bundled_preset():
    for name in zoo.list_presets():
        card = catalog.model_card(catalog._read_preset(name, zoo.presets.SAVED_MODELS / name))
        assert f"### {name}" in card


def test_every_figure_says_how_it_was_measured(served):
    demo = served[0]
    for name in zoo.list_presets():
        info = catalog._read_preset(name, zoo.presets.SAVED_MODELS / name)
        rows = catalog.figure_rows(info)
        assert all(how != catalog.NO_PROTOCOL and len(how) > 20 for _, _, how in rows), name
        shown = catalog.figures_markdown(info) + catalog.model_card(info)
        assert all(f"| {n} | {v} | {how} |" in shown for n, v, how in rows), name
    bare = catalog.PresetInfo("bare", Path("."), "GAN", "GAN", {"figures": {"fid": 3.0, "kid": {"value": 1}}})
    assert catalog.figures_markdown(bare).count(catalog.NO_PROTOCOL) == 2  # a figure without one says so
    # The Generate and Retrieve tabs show their preset's figures with the protocol column.
    texts = {b.elem_id: b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown)}
    for elem in ("gen-figures", "ret-figures"):
        assert "how it was measured" in texts[elem] and catalog.NO_PROTOCOL not in texts[elem], texts[elem]


def test_api_snippets_run_as_written(served, tmp_path, monkeypatch, capsys):
    # Each tab's gradio_client snippet, as the page shows it, run against this app.
    demo, _, url, _ = served
    snippets = demo.zoo_snippets
    assert set(snippets) == {"generate", "reconstruct", "retrieve", "cards"}
    codes = {b.elem_id: b.value for b in demo.blocks.values() if isinstance(b, gr.Code)}
    shown = {codes[e].strip() for e in ("gen-api", "rec-api", "ret-api", "card-api")}
    assert shown == {c.strip() for c in snippets.values()}
    monkeypatch.chdir(tmp_path)
    _png(tmp_path, "digit.png", samples.load_sample("mnist", "test")[0][0][..., 0])  # the snippet's file
    target = demo_app.client_target()
    for tab, code in snippets.items():
        assert f"Client({target!r})" in code and "api_name=" in code
        exec(compile(code.replace(repr(target), repr(url)), f"<{tab} snippet>", "exec"), {})
    out = capsys.readouterr().out
    assert "L2 " in out and "reconstruction (MSE" in out and "Precision@10" in out and "### " in out


def test_missing_kinds_are_explained():
    demo = demo_app.create_app(preset_names=[])
    texts = [b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown) and isinstance(b.value, str)]
    for kind in ("generator", "VAE, VAE-GAN or AVB", "DSH-GAN (hashing)"):
        assert any(f"No {kind}" in t and "python -m recipes.train" in t for t in texts), kind


# -- Load -------------------------------------------------------------------------------------
def test_twenty_concurrent_requests(served, tmp_path):
    _, client, url, tmp = served
    query = handle_file(_png(tmp, "cq.png", np.zeros((28, 28))))

    def request(i):
        start = time.monotonic()
        if i % 2:
            out = client.predict("tiny_dsh", query, "unknown", 5, api_name="/retrieve")
            ok = len(out[1]["data"]) == 5
        else:
            out = client.predict("tiny_vae", 16, i, None, api_name="/generate")
            ok = _read(out[0]).shape[:2] == images.grid_shape(16, 4, 28, 28)
        return ok, time.monotonic() - start

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(request, range(20)))
    wall = time.monotonic() - start
    latencies = sorted(t for _, t in results)
    queue = served[0]._queue
    print(f"\n20 concurrent requests: all ok {all(ok for ok, _ in results)}, wall {wall:.2f} s, "
          f"latency median {latencies[10]:.2f} s, p95 {latencies[18]:.2f} s, max {latencies[-1]:.2f} s, "
          f"{20 / wall:.1f} requests/s, behind a concurrency limit of {queue.default_concurrency_limit} "
          f"(queue of at most {queue.max_size})")
    assert all(ok for ok, _ in results)
    assert queue.default_concurrency_limit == demo_app.QUEUE_CONCURRENCY and queue.max_size >= 20
    assert client.predict("tiny_vae", 1, 0, None, api_name="/generate")  # still up


# -- A real browser --------------------------------------------------------------------------
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def _chrome(tmp_path):
    browser_backend = os.environ.get("ZOO_BROWSER_BACKEND", "tensorflow")
    if keras.backend.backend() != browser_backend:
        pytest.skip(f"the browser test runs on the {browser_backend} backend only (ZOO_BROWSER_BACKEND)")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("headless Chromium not installed: apt-get install -y chromium chromium-driver (.ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the demo extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1500", "--hide-scrollbars"):
        options.add_argument(arg)
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)), options=options)


def _shot(driver, path, small=False):
    """A screenshot; `small`: as a 256-colour PNG (the README's copies)."""
    driver.save_screenshot(str(path))
    if small:
        with Image.open(path) as im:
            im = im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        im.save(path, optimize=True)
    assert path.stat().st_size > 10_000, path


def _browser_tour(driver, url, shots, upload, small=False):
    """Click through every tab as a visitor would, checking the new controls; a screenshot of each.
    Returns what the page said, for the caller's checks."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 90)
    seen = {}

    def text(css):
        return driver.find_element(By.CSS_SELECTOR, css).text

    def tab(label):
        wait.until(EC.element_to_be_clickable(
            (By.XPATH, f"//button[@role='tab' and contains(normalize-space(.), '{label}')]"))).click()

    driver.get(url)
    # Generate: the seed button draws a seed and generates; the nearest training images come beside.
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#gen-btn"))).click()
    wait.until(lambda d: "seed 0" in text("#gen-note"))
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#gen-random"))).click()
    seed_box = driver.find_element(By.CSS_SELECTOR, "#gen-seed input")
    wait.until(lambda d: seed_box.get_attribute("value") not in ("", "0"))
    seed = seed_box.get_attribute("value")
    wait.until(lambda d: f"seed {seed}" in text("#gen-note"))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#gen-nearest img")))
    wait.until(lambda d: "L2" in text("#gen-nearest-note"))
    wait.until(lambda d: "train" in text("#gen-nearest-table"))
    seen.update(seed=seed, nearest_note=text("#gen-nearest-note"), gen_figures=text("#gen-figures"),
                nearest_table=text("#gen-nearest-table"))
    driver.find_element(By.CSS_SELECTOR, "#gen-api-acc button, #gen-api-acc .label-wrap").click()
    wait.until(lambda d: "api_name" in text("#gen-api"))
    seen["gen_snippet"] = text("#gen-api")
    driver.find_element(By.CSS_SELECTOR, "#gen-api-acc button, #gen-api-acc .label-wrap").click()
    driver.execute_script("window.scrollTo(0, 0)")
    _shot(driver, shots / "demo_generate.png", small)
    # Reconstruct: an upload, reconstructed by every autoencoder.
    tab("Reconstruct")
    wait.until(EC.element_to_be_clickable(
        (By.XPATH, "//button[@role='tab' and normalize-space(.)='Upload']"))).click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#rec-upload input[type=file]")))
    driver.find_element(By.CSS_SELECTOR, "#rec-upload input[type=file]").send_keys(str(upload))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#rec-upload img")))
    driver.find_element(By.CSS_SELECTOR, "#rec-upload-btn").click()
    wait.until(lambda d: "Pixel MSE" in text("#rec-note"))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#rec-out img")))
    seen["rec_note"] = text("#rec-note")
    driver.execute_script("window.scrollTo(0, 0)")
    _shot(driver, shots / "demo_reconstruct.png", small)
    # Retrieve: a database image as the query; each result's code bits and Hamming distance.
    tab("Retrieve")
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#ret-example"))).click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#ret-query img")))
    driver.find_element(By.CSS_SELECTOR, "#ret-btn").click()
    wait.until(lambda d: "Precision@10" in text("#ret-note"))
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#ret-out img")))
    wait.until(lambda d: "code bits" in text("#ret-table"))
    seen.update(ret_note=text("#ret-note"), ret_table=text("#ret-table"), ret_db=text("#ret-db"),
                ret_figures=text("#ret-figures"))
    driver.execute_script("window.scrollTo(0, 0)")
    _shot(driver, shots / "demo_retrieve.png", small)
    # Model cards.
    tab("Model cards")
    wait.until(lambda d: "how it was measured" in text("#card"))
    seen["card"] = text("#card")
    _shot(driver, shots / "demo_cards.png", small)
    assert "Traceback" not in driver.page_source
    return seen


def _check_tour(seen):
    assert seen["seed"] != "0" and "training image" in seen["nearest_table"] and "L2" in seen["nearest_table"]
    assert "nearest images among" in seen["nearest_note"] and "Euclidean distance" in seen["nearest_note"]
    assert "how it was measured" in seen["gen_figures"] and "how it was measured" in seen["ret_figures"]
    assert "from gradio_client import Client" in seen["gen_snippet"] and '"/generate"' in seen["gen_snippet"]
    assert "MSE" in seen["rec_note"]
    bits = int(seen["ret_note"].split("Query code (")[1].split(" bits")[0])
    codes = [w for w in seen["ret_table"].split() if set(w) <= {"0", "1"} and len(w) == bits]
    assert len(codes) >= 10, seen["ret_table"]  # each result's code bits, beside its Hamming distance
    assert "Hamming distance" in seen["ret_table"]


def test_browser_every_tab_and_the_new_controls(served, tmp_path):
    driver = _chrome(tmp_path)
    _, _, url, _ = served
    upload = _png(tmp_path, "digit.png", samples.load_sample("mnist", "test")[0][0][..., 0])
    try:
        seen = _browser_tour(driver, url, tmp_path, upload)
    finally:
        driver.quit()
    _check_tour(seen)
    assert "Query code (12 bits)" in seen["ret_note"] and "MNIST's test split" in seen["ret_db"]
    print(f"\nscreenshots: {sorted(str(p) for p in tmp_path.glob('demo_*.png'))}")


def test_browser_screenshots_of_the_bundled_presets(tmp_path, monkeypatch):
    # The README's screenshots: the app on the bundled presets (the page a visitor meets), each tab.
    # Only with $ZOO_DEMO_SCREENSHOTS set (e.g. bench/results/demo): the bundled models take a while to load.
    if not os.environ.get("ZOO_DEMO_SCREENSHOTS"):
        pytest.skip("set ZOO_DEMO_SCREENSHOTS=DIR to write the README's screenshots of the bundled presets")
    shots = Path(os.environ["ZOO_DEMO_SCREENSHOTS"])
    shots.mkdir(parents=True, exist_ok=True)
    driver = _chrome(tmp_path)
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    demo = demo_app.create_app()
    _, url, _ = demo_app.launch(demo, port=_free_port(), prevent_thread_lock=True, quiet=True)
    upload = tmp_path / "upload.png"  # a digit as dark ink on light paper, 112x112: the app converts it
    Image.fromarray(255 - np.kron(samples.load_sample("mnist", "test")[0][0][..., 0], np.ones((4, 4), np.uint8)),
                    "L").save(upload)
    try:
        seen = _browser_tour(driver, url, shots, upload, small=True)
    finally:
        driver.quit()
        demo.close()
    _check_tour(seen)
    assert "CIFAR-10's test split" in seen["ret_db"]
    print(f"\nscreenshots: {sorted(str(p) for p in shots.glob('demo_*.png'))}")
