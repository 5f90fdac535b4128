"""The dataset registry and ``data=fashion_mnist``: Debian's files, torchvision's layout, the
official test split kept out of the search, and one line when the data is absent."""
from __future__ import annotations

import gzip
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluators.data import load_dataset, split_indices
from evaluators.datasets import DATASETS, fashion_mnist, register
from nas.cli.commands import main
from search_spaces.errors import ConfigError, NasError, UnknownNameError

needs_debian = pytest.mark.skipif(
    fashion_mnist._idx_files(fashion_mnist.DEBIAN_DIR) is None,
    reason=f"Debian's dataset-fashion-mnist is not installed ({fashion_mnist.DEBIAN_DIR}); "
           "apt-get install dataset-fashion-mnist",
)
TRAIN, TEST = 300, 100  # images in the fake dataset


def _write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    """``array`` as an IDX file of unsigned bytes (magic 0x0000080N, big-endian dimensions)."""
    data = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(np.uint8).tobytes()
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def _fake(folder: Path, gz: bool) -> dict[str, np.ndarray]:
    """The four Fashion-MNIST files in ``folder``: each image is one flat grey level, dark (0..99)
    in the training files and bright (150..255) in the test files, so a test image is
    recognisable after normalising; labels cycle 0..9. Returns the test labels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    labels = {}
    for split, count, (low, high) in (("train", TRAIN, (0, 100)), ("test", TEST, (150, 256))):
        images = np.broadcast_to(rng.integers(low, high, count)[:, None, None], (count, 28, 28))
        labels[split] = np.arange(count) % 10
        image_file, label_file = fashion_mnist.FILES[split]
        _write_idx(folder / image_file, images, gz)
        _write_idx(folder / label_file, labels[split], gz)
    return labels


@pytest.fixture
def no_debian(tmp_path, monkeypatch):
    """As on a machine without the package, and without ``./data/FashionMNIST``."""
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-package")
    monkeypatch.chdir(tmp_path)


def _assert_test_split_is_the_official_one(data, test_labels: np.ndarray) -> None:
    assert torch.equal(data.test[1], torch.from_numpy(test_labels))  # whole and in order
    marker = {split: getattr(data, split)[0][:, 0, 0, 0] for split in ("train", "val", "test")}
    assert max(marker["train"].max(), marker["val"].max()) < marker["test"].min()  # no test image in the search


def test_the_registry_has_one_record_per_dataset():
    assert DATASETS.names()[:5] == ("digits", "cifar10", "cifar100", "imagefolder", "fashion_mnist")
    spec = DATASETS["fashion_mnist"]
    assert (spec.shape, spec.num_classes, spec.images, spec.official_test) == ((3, 28, 28), 10, 70_000, True)
    assert spec.options == {"root": None, "download": False} and "apt-get install" in spec.how_to_get
    assert DATASETS["digits"].storages == ("memory",) and DATASETS["digits"].summary == "1,797 images of 8x8"
    with pytest.raises(ValueError, match="registered already"):
        register(DATASETS["digits"])
    with pytest.raises(UnknownNameError) as error:
        DATASETS["fashion_mnst"]
    message = str(error.value)
    assert "(did you mean fashion_mnist?)" in message and "allowed: digits, cifar10" in message
    assert "\n" not in message


def test_torchvision_layout_under_data_root_is_read_by_torchvision(tmp_path, no_debian, monkeypatch):
    test_labels = _fake(tmp_path / "fm" / "FashionMNIST" / "raw", gz=False)["test"]

    def no_reader(path):
        raise AssertionError(f"read {path} with our reader, not torchvision's")

    monkeypatch.setattr(fashion_mnist, "read_idx", no_reader)
    data = load_dataset("fashion_mnist", root=str(tmp_path / "fm"))
    assert data.num_classes == 10 and data.train[0].shape[1:] == (3, 28, 28)
    assert (len(data.train[1]), len(data.val[1]), len(data.test[1])) == (240, 60, TEST)
    _assert_test_split_is_the_official_one(data, test_labels)


def test_gzipped_idx_files_where_debian_puts_them(tmp_path, monkeypatch):
    test_labels = _fake(tmp_path / "debian", gz=True)["test"]
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.chdir(tmp_path)
    data = load_dataset("fashion_mnist", limit=100, val_fraction=0.3)
    # limit and val_fraction count training images; the test split stays whole
    assert (len(data.train[1]), len(data.val[1]), len(data.test[1])) == (70, 30, TEST)
    assert torch.bincount(data.val[1]).tolist() == [3] * 10  # stratified
    _assert_test_split_is_the_official_one(data, test_labels)
    # the same folder as data.root (a flat folder of IDX files) gives the same splits
    again = load_dataset("fashion_mnist", root=str(tmp_path / "debian"), limit=100, val_fraction=0.3)
    assert torch.equal(again.val[0], data.val[0])


def test_streamed_fashion_mnist_holds_the_same_images(tmp_path, no_debian):
    _fake(tmp_path / "fm", gz=True)
    options = {"name": "fashion_mnist", "root": str(tmp_path / "fm")}
    memory = load_dataset(**options, storage="memory")
    stream = load_dataset(**options, storage="stream", workers=0)
    assert stream.storage == "stream" and (stream.indices["test"] == np.arange(TRAIN, TRAIN + TEST)).all()
    assert max(stream.indices["train"].max(), stream.indices["val"].max()) < TRAIN
    for split in ("train", "val", "test"):
        assert torch.equal(memory.labels(split), stream.labels(split))
    index = torch.tensor([0, 7, 42])
    x_mem, y_mem = memory.take("test", 28, index)
    x_str, y_str = stream.take("test", 28, index)
    assert x_str.shape == (3, 3, 28, 28) and torch.equal(y_mem, y_str)
    assert (x_mem - x_str).abs().max() < 1e-3  # grey -> RGB and normalised alike


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("limit", [None, 120])
def test_split_indices_never_put_a_test_position_in_train_or_val(seed, limit):
    labels = np.arange(TRAIN + TEST) % 10
    parts = split_indices(labels, seed, 0.2, None, limit, test_from=TRAIN)
    assert (parts["test"] == np.arange(TRAIN, TRAIN + TEST)).all()
    search = np.concatenate([parts["train"], parts["val"]])
    assert search.max() < TRAIN and len(set(search)) == len(search) == (limit or TRAIN)


@needs_debian
def test_debian_package_gives_the_official_splits():
    data = load_dataset("fashion_mnist", limit=1000)
    assert data.num_classes == 10 and data.train[0].shape[1:] == (3, 28, 28)
    assert (len(data.train[1]), len(data.val[1]), len(data.test[1])) == (800, 200, 10_000)
    assert torch.bincount(data.test[1]).tolist() == [1000] * 10  # the official test split, whole
    raw = fashion_mnist.read_idx(fashion_mnist._idx_files(fashion_mnist.DEBIAN_DIR)["test"][1])
    assert torch.equal(data.test[1], torch.from_numpy(raw.astype(np.int64)))


def test_absent_data_is_one_line_exit_2_through_the_cli(capsys, tmp_path):
    out = tmp_path / "out"
    code = main(["run", "space=mbconv", "data=fashion_mnist", "data.root=/nonexistent", "budget=1",
                 f"out={out}", "progress=false"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: data.root: fashion_mnist is not in /nonexistent")
    assert "apt-get install dataset-fashion-mnist" in err and "data.download=true" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists() and not Path("/nonexistent").exists()


def test_absent_without_a_root_names_the_package_folder(no_debian):
    with pytest.raises(ConfigError) as error:
        load_dataset("fashion_mnist")
    message = str(error.value)
    assert "fashion_mnist is not installed" in message and str(fashion_mnist.DEBIAN_DIR) in message
    assert "apt-get install dataset-fashion-mnist" in message and "\n" not in message


def test_download_is_tried_only_when_asked(tmp_path, no_debian, monkeypatch):
    calls = []

    def offline(*args, **kwargs):
        calls.append(args)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)  # never download, even where we could
    with pytest.raises(ConfigError, match="is not in"):
        load_dataset("fashion_mnist", root=str(tmp_path / "d"))
    assert not calls
    with pytest.raises(ConfigError, match=r"could not be downloaded \(RuntimeError\); apt-get install"):
        load_dataset("fashion_mnist", root=str(tmp_path / "d"), download=True)
    assert calls


@pytest.mark.parametrize(("options", "fragment"), [
    ({"name": "fashion_mnist", "test_fraction": 0.2},
     "data.test_fraction: fashion_mnist keeps its official test split"),
    ({"name": "fashion_mnist", "download": "yes"}, "data.download: must be true or false"),
    ({"name": "digits", "download": True}, "data.download: digits has no download option; it is for cifar10"),
    ({"name": "fashion_mnist", "storage": "disk"}, "unknown data.storage 'disk'"),
])
def test_bad_fashion_mnist_options_name_the_field(options, fragment, no_debian):
    with pytest.raises(NasError) as error:
        load_dataset(**options)
    assert fragment in str(error.value)


def test_a_file_that_is_not_idx_is_one_line(tmp_path, no_debian):
    _fake(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(ConfigError) as error:
        load_dataset("fashion_mnist", root=str(tmp_path))
    assert "is not an IDX file of bytes" in str(error.value) and "\n" not in str(error.value)
