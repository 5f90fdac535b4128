"""Datasets: seeded stratified splits, per-resolution resizing, ImageFolder trees, clear errors."""
from __future__ import annotations

import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from evaluators.data import dataset_from_options, load_dataset
from evaluators.proxy import ProxyEvaluator
from search_spaces.errors import ConfigError, NasError


def test_digits_splits_are_disjoint_stratified_and_normalised():
    data = load_dataset("digits", seed=0)
    sizes = [len(s[1]) for s in (data.train, data.val, data.test)]
    assert sum(sizes) == 1797 and sizes[1] == sizes[2] == pytest.approx(1797 * 0.2, abs=1)
    assert data.num_classes == 10 and data.train[0].shape[1:] == (3, 8, 8)
    for _, labels in (data.train, data.val, data.test):
        counts = torch.bincount(labels, minlength=10).float()
        assert (counts / counts.sum() - 0.1).abs().max() < 0.02  # stratified: ~10% per digit
    rows = {tuple(x.flatten().tolist()) for x in data.val[0]} & {tuple(x.flatten().tolist()) for x in data.test[0]}
    assert len(rows) < 5  # digits has a handful of duplicate images; the splits share no others
    channel_mean = data.train[0].mean(dim=(0, 2, 3))
    assert channel_mean.abs().max() < 1e-4


def test_splits_depend_only_on_the_data_seed():
    a, b, c = load_dataset(seed=0), load_dataset(seed=0), load_dataset(seed=1)
    assert torch.equal(a.val[0], b.val[0]) and not torch.equal(a.val[1], c.val[1])


def test_limit_keeps_a_stratified_subset():
    data = load_dataset(limit=500)
    assert sum(len(s[1]) for s in (data.train, data.val, data.test)) == 500
    assert torch.bincount(data.train[1]).min() >= 25


def test_resized_splits_are_cached_per_resolution():
    data = load_dataset(limit=200)
    x, y = data.at("train", 24)
    assert x.shape[1:] == (3, 24, 24) and torch.equal(y, data.train[1])
    assert data.at("train", 24)[0] is x and data.at("train", 8)[0].shape[-1] == 8


def test_imagefolder_reads_a_tree_of_class_folders(tmp_path):
    rng = np.random.default_rng(0)
    for cls, colour in (("cat", 0), ("dog", 2)):
        (tmp_path / cls).mkdir()
        for i in range(30):
            pixels = rng.integers(0, 60, (40, 30, 3), dtype=np.uint8)
            pixels[..., colour] += 150  # the classes differ by colour
            Image.fromarray(pixels).save(tmp_path / cls / f"{i}.png")
    data = dataset_from_options({"name": "imagefolder", "root": str(tmp_path)})
    assert data.num_classes == 2 and data.train[0].shape[1:] == (3, 64, 64)
    assert sum(len(s[1]) for s in (data.train, data.val, data.test)) == 60


@pytest.mark.parametrize(("options", "fragment"), [
    ({"name": "imagefolder", "root": "/nonexistent"}, "data.root: imagefolder needs data.root=DIR"),
    ({"name": "digits", "limit": 10}, "data.limit: must be an integer >= 50"),
    ({"name": "digits", "val_fraction": 0.5, "test_fraction": 0.45}, "must leave at least 10% to train on"),
    ({"name": "digits", "sed": 1}, "unknown data option 'sed' (did you mean seed?)"),
])
def test_bad_data_options_name_the_field(options, fragment):
    with pytest.raises(ConfigError) as error:
        dataset_from_options(options)
    assert fragment in str(error.value)


def test_an_empty_imagefolder_is_an_error(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(ConfigError, match="no images|Found no valid file"):
        dataset_from_options({"name": "imagefolder", "root": str(tmp_path)})


def test_cifar10_without_files_or_network_says_where_to_put_them(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)  # never download, even where we could
    with pytest.raises(ConfigError) as error:
        dataset_from_options({"name": "cifar10", "root": str(tmp_path)})
    message = str(error.value)
    assert message.startswith("data.root: cifar10 is not in") and "'cifar-10-batches-py'" in message
    assert "\n" not in message


def test_a_network_trains_on_an_imagefolder(tmp_path):
    proxy = ProxyEvaluator(data=_colour_folder(tmp_path), epochs=3, batch_size=16)
    metrics = proxy("resnet@224_relu:stem_k3_s2_c16:basic_k3_c16:basic_k3_c32_s2:head_pool")
    assert proxy.num_classes == 2 and metrics["accuracy"] >= 75  # colour is easy to learn

def _colour_folder(root, per_class: int = 40, size=(24, 24), seed: int = 1):
    rng = np.random.default_rng(seed)
    for cls, colour in (("red", 0), ("blue", 2)):
        (root / cls).mkdir()
        for i in range(per_class):
            pixels = rng.integers(0, 60, (*size, 3), dtype=np.uint8)
            pixels[..., colour] += 150
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    return {"name": "imagefolder", "root": str(root)}


def test_streamed_and_in_memory_splits_hold_the_same_images(tmp_path):
    options = _colour_folder(tmp_path, size=(64, 64))  # stored size: both paths see the same pixels
    memory = dataset_from_options({**options, "storage": "memory"})
    stream = dataset_from_options({**options, "storage": "stream", "workers": 2})
    assert (memory.storage, stream.storage) == ("memory", "stream")
    for split in ("train", "val", "test"):
        assert torch.equal(memory.labels(split), stream.labels(split))
        assert memory.size(split) == stream.size(split)
    index = torch.tensor([0, 3, 5])
    x_mem, y_mem = memory.take("val", 32, index)
    x_str, y_str = stream.take("val", 32, index)
    assert x_str.shape == (3, 3, 32, 32) and torch.equal(y_mem, y_str)
    # streamed statistics come from a sample of training images (all of them here); a streamed
    # image is resized as uint8, an in-memory one as float: they differ by about a grey level
    assert (x_mem - x_str).abs().max() < 0.1 and (x_mem - x_str).abs().mean() < 0.01
    batches = list(stream.batches("val", 16, batch_size=5))
    assert sum(len(y) for _, y in batches) == stream.size("val") and batches[0][0].shape == (5, 3, 16, 16)


def test_auto_storage_streams_what_does_not_fit_in_memory(tmp_path):
    options = _colour_folder(tmp_path, per_class=10)
    assert dataset_from_options(options).storage == "memory"
    assert dataset_from_options({**options, "memory_limit_gb": 1e-6, "workers": 0}).storage == "stream"


def test_a_network_trains_on_a_streamed_imagefolder_reproducibly(tmp_path):
    options = {**_colour_folder(tmp_path, size=(40, 30)), "storage": "stream", "workers": 2}
    arch = "resnet@224_relu:stem_k3_s2_c16:basic_k3_c16:basic_k3_c32_s2:head_pool"
    first = ProxyEvaluator(data=options, epochs=3, batch_size=16)(arch)
    again = ProxyEvaluator(data={**options, "workers": 0}, epochs=3, batch_size=16)(arch)
    assert first["accuracy"] >= 75 and first["train_resolution"] == 24
    assert first["accuracy"] == again["accuracy"] and first["loss"] == again["loss"]  # workers change nothing


@pytest.mark.parametrize(("options", "fragment"), [
    ({"name": "digits", "storage": "stream"}, "data.storage: digits (1,797 images of 8x8) is always held in memory"),
    ({"name": "digits", "storage": "disk"}, "unknown data.storage 'disk'; allowed: auto, memory, stream"),
    ({"name": "digits", "workers": -1}, "data.workers: must be an integer >= 0"),
    ({"name": "digits", "memory_limit_gb": 0}, "data.memory_limit_gb: must be a number > 0"),
])
def test_bad_storage_options_name_the_field(options, fragment):
    with pytest.raises(NasError) as error:
        dataset_from_options(options)
    assert fragment in str(error.value)
