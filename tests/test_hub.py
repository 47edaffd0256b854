"""Publishing and listing presets as keras-hub does, offline: model cards, `cls.presets`,
`from_preset(load_weights=False)` and `upload_preset` against a local stand-in of
huggingface_hub's client (no network)."""

import shutil
import sys
import types
from pathlib import Path

import keras
import numpy as np
import pytest

import zoo
from zoo import hub, presets


@pytest.fixture
def preset(tmp_path):
    keras.utils.set_random_seed(0)
    gan = zoo.GAN.dcgan((8, 8, 1), latent_dim=4, width=4)
    meta = {"description": "tiny DCGAN", "dataset": "mnist", "recipe": "dcgan_mnist",
            "command": "python -m recipes.train dcgan_mnist --steps 2",
            "figures": {"fid": {"value": 1.5, "how": "2000 samples against 2000 test images | domain FID"}}}
    return zoo.save_preset(gan, tmp_path / "tiny_dcgan", meta), gan


class FakeHub:
    """Records what a HfApi would have sent; a repository is a folder under `root`."""

    def __init__(self, root, existing=()):
        self.root, self.calls = Path(root), []
        for repo, files in dict(existing).items():
            for name, text in files.items():
                (self.root / repo / name).parent.mkdir(parents=True, exist_ok=True)
                (self.root / repo / name).write_text(text)

    def module(self):
        hub_self = self

        class HfApi:
            def __init__(self, token=None):
                self.token = token

            def create_repo(self, repo_id, repo_type="model", private=None, exist_ok=False):
                hub_self.calls.append(("create_repo", repo_id))
                (hub_self.root / repo_id).mkdir(parents=True, exist_ok=True)

            def list_repo_files(self, repo_id, repo_type="model"):
                base = hub_self.root / repo_id
                return [str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()]

            def upload_folder(self, repo_id, folder_path, path_in_repo=None, repo_type="model", commit_message=""):
                hub_self.calls.append(("upload_folder", repo_id, path_in_repo))
                shutil.copytree(folder_path, hub_self.root / repo_id / (path_in_repo or ""), dirs_exist_ok=True)

        return types.SimpleNamespace(HfApi=HfApi)


def test_model_card_metadata_parses_back(preset):
    folder, _ = preset
    card = hub.write_model_card(folder).read_text()
    block = hub.read_card_metadata(card)
    assert block["library_name"] == "keras" and "gan" in block["tags"] and block["datasets"] == ["ylecun/mnist"]
    metric = block["model-index"][0]["results"][0]["metrics"][0]
    assert metric["type"] == "fid" and metric["value"] == 1.5 and "domain FID" in metric["protocol"]
    assert "`python -m recipes.train dcgan_mnist --steps 2`" in card and 'zoo.GAN.from_preset("tiny_dcgan")' in card
    assert "| fid | 1.5 |" in card and "2000 test images / domain FID" in card  # a | in the text is escaped
    presets.verify(folder)  # the card does not disturb the preset's own files


def test_upload_writes_a_card_when_the_repository_has_none(preset, tmp_path, monkeypatch):
    folder, _ = preset
    fake = FakeHub(tmp_path / "hub")
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake.module())
    assert zoo.upload_preset("hf://me/tiny", folder) == "me/tiny"
    uploaded = tmp_path / "hub" / "me" / "tiny"
    assert {p.name for p in uploaded.iterdir()} >= {*presets.PRESET_FILES, "README.md"}
    assert hub.read_card_metadata((uploaded / "README.md").read_text())["library_name"] == "keras"
    # What was uploaded loads as the preset it came from.
    a = zoo.load(uploaded).generate(4, seed=1)
    np.testing.assert_array_equal(a, zoo.load(folder).generate(4, seed=1))


def test_upload_keeps_the_repository_card_and_uses_the_subfolder(preset, tmp_path, monkeypatch):
    folder, _ = preset
    fake = FakeHub(tmp_path / "hub", existing={"me/zoo": {"README.md": "my own card"}})
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake.module())
    zoo.upload_preset("hf://me/zoo/dcgan", folder)
    assert ("upload_folder", "me/zoo", "dcgan") in fake.calls
    assert (tmp_path / "hub" / "me" / "zoo" / "README.md").read_text() == "my own card"
    assert not (tmp_path / "hub" / "me" / "zoo" / "dcgan" / "README.md").exists()


def test_upload_refuses_bad_addresses_and_tampered_presets(preset, tmp_path, monkeypatch):
    folder, _ = preset
    monkeypatch.setitem(sys.modules, "huggingface_hub", FakeHub(tmp_path / "hub").module())
    for bad in ("me/tiny", "hf://me", "hf:///tiny"):
        with pytest.raises(ValueError, match="owner/repo"):
            zoo.upload_preset(bad, folder)
    weights = folder / presets.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-8] + b"12345678")
    with pytest.raises(presets.PresetIntegrityError):
        zoo.upload_preset("hf://me/tiny", folder)
    assert not (tmp_path / "hub" / "me").exists()  # nothing sent


def test_load_weights_false_gives_fresh_weights_of_the_same_architecture(preset):
    folder, gan = preset
    loaded = zoo.GAN.from_preset(folder)
    fresh = zoo.GAN.from_preset(folder, load_weights=False)
    assert fresh.count_params() == gan.count_params() == presets.parameter_count(folder)
    assert [w.shape for w in fresh.weights] == [w.shape for w in loaded.weights]
    kernel = [np.array(keras.ops.convert_to_numpy(w)) for w in fresh.generator.trainable_weights]
    saved = [np.array(keras.ops.convert_to_numpy(w)) for w in loaded.generator.trainable_weights]
    assert not all(np.array_equal(a, b) for a, b in zip(kernel, saved))  # not the saved weights


def test_class_presets_list_the_bundled_presets_of_that_class():
    listed = zoo.GAN.presets
    bundled = zoo.list_presets()
    assert listed and set(listed) <= set(bundled)
    assert not set(listed) & set(zoo.DSHGAN.presets)
    for name, entry in listed.items():
        assert entry["description"] == bundled[name] and entry["params"] > 0
        assert entry["metadata"]["model"] == "zoo>GAN"
    with pytest.raises(AttributeError):  # torch's Module.__getattr__ rewrites the message
        zoo.GAN.dcgan((8, 8, 1), latent_dim=4, width=4).presets


# -- the tfds path, with tensorflow-datasets' own mock data (no download) ---------------------
@pytest.mark.parametrize("name, shape", [("mnist", (28, 28, 1)), ("tfds:cifar10", (32, 32, 3))])
def test_tfds_names_load_through_tfds_mock_data(name, shape):
    tfds = pytest.importorskip("tensorflow_datasets")
    from zoo.data import load, load_arrays

    with tfds.testing.mock_data(num_examples=24):
        x, y, names = load_arrays(name, "train")
        batch = next(iter(load(name, batch_size=8, shuffle=False)))
    assert x.shape == (24, *shape) and x.dtype == np.uint8 and y.dtype == np.int64
    assert len(names) == 10 and names[0] in ("0", "airplane")
    assert batch.shape == (8, *shape) and -1.0 <= float(np.min(batch)) <= float(np.max(batch)) <= 1.0


# -- samples while training -------------------------------------------------------------------
def test_sample_grid_every_n_steps_png_and_tensorboard(tmp_path):
    from PIL import Image

    from zoo.callbacks import LossHistory, SampleGrid

    keras.utils.set_random_seed(0)
    gan = zoo.GAN.dcgan((8, 8, 1), latent_dim=4, width=4)
    gan.compile()
    x = np.random.default_rng(0).uniform(-1, 1, (64, 8, 8, 1)).astype("float32")
    grid = SampleGrid(tmp_path / "samples", every_n_steps=2, n=16, seed=3, log_dir=tmp_path / "tb")
    losses = LossHistory(every=2)
    gan.fit(x, batch_size=8, epochs=1, steps_per_epoch=4, callbacks=[grid, losses], verbose=0)
    assert [p.name for p in grid.written] == ["samples_0000002.png", "samples_0000004.png"]
    first, second = (np.asarray(Image.open(p)) for p in grid.written)
    assert first.shape == second.shape and not np.array_equal(first, second)  # G moved between them
    again = np.asarray(Image.open(grid.write(4)))  # fixed noise: the same grid for the same weights
    np.testing.assert_array_equal(again, second)
    tf = pytest.importorskip("tensorflow")
    steps = [e.step for f in (tmp_path / "tb").glob("events.*")
             for e in tf.compat.v1.train.summary_iterator(str(f)) for v in e.summary.value if v.tag == "samples"]
    assert sorted(steps) == [2, 4, 4]
    assert losses.steps == [2, 4] and len(losses.logs["d_loss"]) == 2
    curve = losses.plot(tmp_path / "loss.png")
    if curve is not None:  # matplotlib installed
        assert Image.open(curve).size[0] > 100


def test_sample_grid_of_an_autoencoder_shows_inputs_beside_reconstructions(tmp_path):
    from zoo.callbacks import model_samples

    vae = zoo.VAE.larsen((16, 16, 1), latent_dim=4, width=0.125)
    images = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 1), dtype=np.uint8)
    pairs = model_samples(vae, n=12, images=images)
    assert pairs.shape == (12, 16, 16, 1)
    np.testing.assert_allclose(pairs[0::2], images / 255.0, atol=1e-6)
    np.testing.assert_allclose(pairs[1::2], vae.reconstruct(images), atol=1e-6)
    with pytest.raises(ValueError, match="every_n_steps"):
        from zoo.callbacks import SampleGrid

        SampleGrid(tmp_path, every_n_steps=0)


@pytest.mark.parametrize("name", sorted(zoo.list_presets()))
def test_every_bundled_preset_carries_its_model_card(name):
    folder = presets.SAVED_MODELS / name
    card = (folder / hub.CARD_FILE).read_text()
    # In sync with metadata.json: rerun `python -m recipes.model_cards saved_models/*` after a change.
    assert card == hub.model_card(folder)
    block = hub.read_card_metadata(card)
    figures = presets.load_metadata(folder).get("figures") or {}
    listed = {m["type"]: m["value"] for m in block.get("model-index", [{}])[0].get("results", [{}])[0]
              .get("metrics", [])} if figures else {}
    assert listed == {k: v["value"] for k, v in figures.items() if isinstance(v, dict) and "value" in v}
