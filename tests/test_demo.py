"""The Gradio app (demos/): every endpoint through gradio_client, bad input, 20
concurrent requests, and one real headless-Chromium session.

The app runs in-process on 127.0.0.1 on tiny presets saved here with
zoo.save_preset (plus the bundled dcgan_mnist when present), so the test is
fast and does not depend on which presets are bundled. The browser test runs
on one backend only (ZOO_BROWSER_BACKEND, default tensorflow: the backend a
user gets by default); it checks the page, not the numerics, which the client
tests check on every backend. Screenshots go to a tmp dir, or to
$ZOO_DEMO_SCREENSHOTS (e.g. bench/results/demo) when set.
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
    demo = demo_app.create_app(preset_names=names, preset_dirs=[_tiny_presets()], database="digits")
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
    path, note = client.predict("tiny_vae", 5, 3, None, api_name="/generate")
    grid = _read(path)
    assert grid.shape[:2] == demo_app.grid_shape(5, 3, 28, 28)
    assert grid.dtype == np.uint8 and grid.min() >= 0 and grid.max() <= 255 and grid.std() > 0
    assert "seed 3" in note
    again = _read(client.predict("tiny_vae", 5, 3, None, api_name="/generate")[0])
    np.testing.assert_array_equal(grid, again)  # a seed fixes the images


def test_generate_conditional_and_classes(served):
    _, client, _, _ = served
    update = client.predict("tiny_cgan", api_name="/classes")
    choices = [c[0] if isinstance(c, (list, tuple)) else c for c in update["choices"]]
    assert choices == [demo_app.EACH_CLASS] + [str(i) for i in range(10)]
    path, note = client.predict("tiny_cgan", 4, 0, "7", api_name="/generate")
    assert _read(path).shape[:2] == demo_app.grid_shape(4, 2, 28, 28)
    assert "classes: 7" in note
    path, _ = client.predict("tiny_cgan", 12, 0, demo_app.EACH_CLASS, api_name="/generate")
    assert _read(path).shape[:2] == demo_app.grid_shape(12, 10, 28, 28)


@pytest.mark.parametrize("name", ["tiny_avb", "tiny_dsh", "tiny_vaegan_rgb", "dcgan_mnist"])
def test_generate_every_kind(served, name):
    demo, client, _, _ = served
    if name not in demo.zoo_store.presets:
        pytest.skip(f"{name} is not bundled")
    shape = demo.zoo_store.get(name).data_shape
    label = "3" if name == "tiny_dsh" else None
    grid = _read(client.predict(name, 4, 1, label, api_name="/generate")[0])
    assert grid.shape[:2] == demo_app.grid_shape(4, 2, shape[0], shape[1])
    assert grid.ndim == (3 if shape[-1] == 3 else 2)


def test_interpolate_grid(served):
    _, client, _, _ = served
    path, note = client.predict("tiny_cgan", 0, 1, 5, 2, "4", True, api_name="/interpolate")
    grid = _read(path)
    assert grid.shape[:2] == demo_app.grid_shape(10, 5, 28, 28)
    assert "seed 0" in note and "seed 1" in note
    path, _ = client.predict("tiny_vae", 0, 1, 3, 1, None, False, api_name="/interpolate")
    assert _read(path).shape[:2] == demo_app.grid_shape(3, 3, 28, 28)


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
    image, label_update, db_note = client.predict("tiny_dsh", 37, api_name="/example")
    query = _read(image)
    db = demo.zoo_retrieval.get("tiny_dsh")
    assert query.shape == (28, 28) and np.array_equal(query, db.x[37][..., 0])
    assert label_update["value"] == db.names[int(db.y[37])]
    assert "load_digits" in db_note and "1,797 images" in db_note
    gallery, table, note = client.predict("tiny_dsh", handle_file(_png(tmp, "q.png", query)), label_update["value"],
                                          8, api_name="/retrieve")
    rows = table["data"]
    assert len(rows) == 8 and len(gallery) == 8
    assert rows[0][1] == 37 and rows[0][3] == 0  # itself, at distance 0
    distances = [r[3] for r in rows]
    assert distances == sorted(distances) and all(0 <= d <= 12 for d in distances)
    hits = sum(r[2] == label_update["value"] for r in rows)
    assert f"Precision@8 = {hits / 8:.3f}" in note
    assert _gallery(gallery)[0][1] == f"#37 · {label_update['value']} · d=0"
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
    again = demo_app.Retrieval(demo.zoo_store, "digits").get("tiny_dsh")
    assert again.from_cache and again.cache_path == cached[0]
    np.testing.assert_array_equal(again.index.codes, demo.zoo_retrieval.get("tiny_dsh").index.codes)


def test_cifar10_database_with_the_bundled_dshgan_preset(cifar_path, tmp_path, monkeypatch):
    # The retrieval tab on CIFAR-10 from ../shared/datasets (a JPEG export), with
    # the bundled 12-bit DSH-GAN: a database image finds itself first, at distance 0.
    if "dshgan_cifar10_12bit" not in zoo.list_presets():
        pytest.skip("the dshgan_cifar10_12bit preset is not bundled")
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    demo = demo_app.create_app(preset_names=["dshgan_cifar10_12bit"], database=str(cifar_path),
                               database_split="test", database_limit=2000)
    _, url, _ = demo_app.launch(demo, port=_free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = gradio_client.Client(url, verbose=False, download_files=str(tmp_path / "dl"),
                                      analytics_enabled=False)
        image, label_update, db_note = client.predict("dshgan_cifar10_12bit", 5, api_name="/example")
        assert "cifar10.zip (test split)" in db_note and "2,000 images" in db_note
        query = _read(image)
        assert query.shape == (32, 32, 3)
        label = label_update["value"]
        assert label in demo.zoo_retrieval.get("dshgan_cifar10_12bit").names  # a CIFAR-10 class name
        gallery, table, note = client.predict("dshgan_cifar10_12bit", handle_file(_png(tmp_path, "q.png", query)),
                                              label, 10, api_name="/retrieve")
        rows = table["data"]
        assert len(rows) == 10 and rows[0][1] == 5 and rows[0][3] == 0
        assert [r[3] for r in rows] == sorted(r[3] for r in rows)
        assert "Precision@10" in note
    finally:
        demo.close()


def test_database_examples_and_model_card(served):
    _, client, _, _ = served
    examples, summary = client.predict("tiny_dsh", api_name="/database")
    assert len(examples) == 10 and "12-bit codes" in summary
    card = client.predict("tiny_cgan", api_name="/card")
    assert "tiny conditional GAN" in card and "python -m recipes.train tiny" in card
    assert "| fid | 1.5 | made up for the test |" in card


def test_model_card_of_a_bundled_preset():
    for name in zoo.list_presets():
        card = demo_app.model_card(demo_app._read_preset(name, zoo.presets.SAVED_MODELS / name))
        assert f"### {name}" in card


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
            ok = _read(out[0]).shape[:2] == demo_app.grid_shape(16, 4, 28, 28)
        return ok, time.monotonic() - start

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(request, range(20)))
    wall = time.monotonic() - start
    latencies = sorted(t for _, t in results)
    print(f"\n20 concurrent requests: all ok {all(ok for ok, _ in results)}, wall {wall:.2f} s, "
          f"latency median {latencies[10]:.2f} s, max {latencies[-1]:.2f} s, {20 / wall:.1f} requests/s")
    assert all(ok for ok, _ in results)
    assert client.predict("tiny_vae", 1, 0, None, api_name="/generate")  # still up


# -- A real browser --------------------------------------------------------------------------
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def test_browser_generation_and_retrieval(served, tmp_path):
    browser_backend = os.environ.get("ZOO_BROWSER_BACKEND", "tensorflow")
    if keras.backend.backend() != browser_backend:
        pytest.skip(f"the browser test runs on the {browser_backend} backend only (ZOO_BROWSER_BACKEND)")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("headless Chromium not installed: apt-get install -y chromium chromium-driver (.ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the demo extra)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    _, _, url, _ = served
    shots = Path(os.environ.get("ZOO_DEMO_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(url)
        wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#gen-btn"))).click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#gen-out img")))
        wait.until(lambda d: "seed 0" in d.find_element(By.CSS_SELECTOR, "#gen-note").text)
        driver.save_screenshot(str(shots / "demo_generate.png"))
        tab = wait.until(EC.element_to_be_clickable(
            (By.XPATH, "//button[@role='tab' and contains(normalize-space(.), 'Retrieve')]")))
        tab.click()
        wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#ret-example"))).click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#ret-query img")))
        driver.find_element(By.CSS_SELECTOR, "#ret-btn").click()
        wait.until(lambda d: "Precision@10" in d.find_element(By.CSS_SELECTOR, "#ret-note").text)
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#ret-out img")))
        note = driver.find_element(By.CSS_SELECTOR, "#ret-note").text
        driver.save_screenshot(str(shots / "demo_retrieve.png"))
        assert "Traceback" not in driver.page_source
    finally:
        driver.quit()
    assert "Query code (12 bits)" in note
    for name in ("demo_generate.png", "demo_retrieve.png"):
        assert (shots / name).stat().st_size > 10_000
    print(f"\nscreenshots: {shots / 'demo_generate.png'}, {shots / 'demo_retrieve.png'}")
