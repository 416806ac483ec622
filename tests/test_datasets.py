"""gradflow.datasets (IDX and CIFAR-10 readers on files written here, bundled Digits) and
gradflow.transforms against NumPy references (and PyTorch where installed)."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest

import gradflow
import gradflow.transforms as T
from gradflow.datasets import CIFAR10, MNIST, Digits, FashionMNIST
from gradflow.datasets.mnist import read_idx
from gradflow.utils.data import DataLoader


def write_idx(path: str, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)


def make_mnist(root: str, n: int, prefix: str, gz: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    ext = ".gz" if gz else ""
    write_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte{ext}"), images)
    write_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte{ext}"), labels)
    return images, labels


# ---------------------------------------------------------------------------- MNIST
@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_idx(tmp_path, gz):
    images, labels = make_mnist(str(tmp_path), 5, "train", gz)
    test_images, test_labels = make_mnist(str(tmp_path), 3, "t10k", gz, seed=1)
    ds = MNIST(str(tmp_path), train=True)
    assert len(ds) == 5
    np.testing.assert_array_equal(ds.data, images)
    np.testing.assert_array_equal(ds.targets, labels.astype(np.int64))
    img, y = ds[2]
    assert img.shape == (28, 28) and img.dtype == np.uint8 and y == int(labels[2])
    test = MNIST(str(tmp_path), train=False)
    assert len(test) == 3
    np.testing.assert_array_equal(test.data, test_images)
    np.testing.assert_array_equal(test.targets, test_labels)


def test_mnist_transforms_torchvision_layout_and_loader(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    images, labels = make_mnist(str(raw), 4, "train", gz=True)
    ds = FashionMNIST(str(tmp_path), transform=T.ToTensor(), target_transform=lambda y: y + 100)
    x, y = ds[1]
    assert tuple(x.shape) == (1, 28, 28) and x.dtype == gradflow.float32
    np.testing.assert_allclose(x.numpy()[0], images[1] / 255.0, rtol=1e-6)
    assert y == int(labels[1]) + 100
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert tuple(xb.shape) == (4, 1, 28, 28) and yb.numpy().tolist() == (labels + 100).tolist()


def test_mnist_missing_files_message(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        MNIST(str(tmp_path), train=False)
    msg = str(info.value)
    assert "'t10k-images-idx3-ubyte'" in msg and "'t10k-labels-idx1-ubyte'" in msg
    assert str(tmp_path) in msg and os.path.join(str(tmp_path), "MNIST", "raw") in msg
    with pytest.raises(FileNotFoundError, match="never downloads"):
        MNIST(str(tmp_path), download=True)


def test_idx_bad_files(tmp_path):
    good = tmp_path / "x-idx1-ubyte"
    write_idx(str(good), np.arange(10, dtype=np.uint8))
    data = good.read_bytes()
    (tmp_path / "trunc").write_bytes(data[:-3])
    with pytest.raises(ValueError, match="needs 10 data bytes, the file has 7"):
        read_idx(str(tmp_path / "trunc"), 1)
    (tmp_path / "magic").write_bytes(b"\x01\x02" + data[2:])
    with pytest.raises(ValueError, match="bad magic number"):
        read_idx(str(tmp_path / "magic"), 1)
    with pytest.raises(ValueError, match="expected 3 dimensions"):
        read_idx(str(good), 3)
    (tmp_path / "bad.gz").write_bytes(gzip.compress(data)[:-10])
    with pytest.raises(ValueError, match="cannot read IDX file"):
        read_idx(str(tmp_path / "bad.gz"), 1)


# ---------------------------------------------------------------------------- CIFAR-10
def write_cifar(path: str, images: np.ndarray, labels: np.ndarray) -> None:
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    records = np.concatenate([labels.astype(np.uint8)[:, None], planes], axis=1)
    with open(path, "wb") as f:
        f.write(records.astype(np.uint8).tobytes())


def test_cifar10_binary(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    all_images, all_labels = [], []
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        images = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, 2)
        write_cifar(str(folder / name), images, labels)
        all_images.append(images)
        all_labels.append(labels)
    train = CIFAR10(str(tmp_path), train=True)
    assert len(train) == 10 and train.data.shape == (10, 32, 32, 3)
    np.testing.assert_array_equal(train.data, np.concatenate(all_images[:5]))
    np.testing.assert_array_equal(train.targets, np.concatenate(all_labels[:5]))
    test = CIFAR10(str(tmp_path), train=False, transform=T.ToTensor())
    x, y = test[1]
    assert tuple(x.shape) == (3, 32, 32) and y == int(all_labels[5][1])
    # channel c of the tensor is the c-th 1024-byte plane of the record
    np.testing.assert_allclose(x.numpy(), all_images[5][1].transpose(2, 0, 1) / 255.0,
                               rtol=1e-6)


def test_cifar10_errors(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        CIFAR10(str(tmp_path), train=False)
    msg = str(info.value)
    assert "'test_batch.bin'" in msg and os.path.join(str(tmp_path), "cifar-10-batches-bin") in msg
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(b"\x00" * 3000)
    with pytest.raises(ValueError, match="not a positive multiple of the 3073-byte record"):
        CIFAR10(str(tmp_path), train=False)


# ---------------------------------------------------------------------------- Digits
def test_digits_bundled():
    train, test = Digits(train=True), Digits(train=False)
    assert len(train) == 1438 and len(test) == 359
    assert train.data.shape == (1438, 8, 8) and train.data.dtype == np.uint8
    images, labels = gradflow.datasets.digits.load_digits()
    np.testing.assert_array_equal(test.data, images[4::5])  # every 5th: all writers in both
    np.testing.assert_array_equal(train.targets[:4], labels[:4])
    assert int(train.data.max()) == 16 and int(train.data.min()) == 0
    labels = np.concatenate([train.targets, test.targets])
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [
        178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    img, y = train[0]
    assert img.shape == (8, 8) and img.dtype == np.float32 and y == 0
    np.testing.assert_allclose(img, train.data[0] / 16.0)
    lenet = Digits(train=False, transform=T.Compose([T.ToTensor(), T.Resize(32)]))
    x, _ = lenet[0]
    assert tuple(x.shape) == (1, 32, 32) and x.dtype == gradflow.float32


def test_digits_file_has_no_pickle():
    path = os.path.join(os.path.dirname(gradflow.datasets.digits.__file__), "digits.npz")
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == ["images", "labels"]


# ---------------------------------------------------------------------------- transforms
def test_to_tensor_and_normalize():
    hwc = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    t = T.ToTensor()(hwc)
    assert tuple(t.shape) == (3, 2, 4) and t.dtype == gradflow.float32
    np.testing.assert_allclose(t.numpy(), hwc.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    f64 = T.ToTensor()(np.ones((2, 2), np.float64) * 3)
    assert tuple(f64.shape) == (1, 2, 2) and f64.dtype == gradflow.float64
    assert f64.numpy().max() == 3.0  # float arrays are not rescaled
    with pytest.raises(TypeError, match="pic should be a NumPy array"):
        T.ToTensor()(t)
    mean, std = [0.5, 0.25, 0.0], [0.5, 2.0, 1.0]
    out = T.Normalize(mean, std)(t)
    ref = (hwc.transpose(2, 0, 1) / 255.0 - np.array(mean)[:, None, None]) / np.array(std)[
        :, None, None]
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="std evaluated to zero"):
        T.Normalize([0.0], [0.0])(t)
    with pytest.raises(ValueError, match=r"expected a tensor image of size \(..., C, H, W\)"):
        T.Normalize([0.0], [1.0])(gradflow.tensor(np.ones((2, 2), np.float32)))


def test_pad_modes_match_numpy():
    img = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = T.Pad((1, 2, 3, 0), fill=-1)(img)  # left, top, right, bottom
    np.testing.assert_array_equal(out, np.pad(img, ((2, 0), (1, 3)), constant_values=-1))
    for mode in ("edge", "reflect", "symmetric"):
        np.testing.assert_array_equal(T.Pad(2, padding_mode=mode)(img), np.pad(img, 2, mode=mode))
    hwc = np.zeros((3, 4, 2), np.uint8)
    assert T.Pad((1, 2))(hwc).shape == (7, 6, 2)
    chw = gradflow.tensor(np.ones((2, 3, 4), np.float32))
    assert tuple(T.Pad(1)(chw).shape) == (2, 5, 6)
    with pytest.raises(ValueError, match="padding_mode should be one of"):
        T.Pad(1, padding_mode="wrap")


def test_random_crop_and_flip_are_seeded():
    img = np.arange(36, dtype=np.float32).reshape(6, 6)
    crop = T.RandomCrop(4, padding=1)
    gradflow.manual_seed(0)
    a = [crop(img) for _ in range(5)]
    gradflow.manual_seed(0)
    b = [crop(img) for _ in range(5)]
    assert all((x == y).all() for x, y in zip(a, b))
    padded = np.pad(img, 1)
    for out in a:  # every crop is a 4x4 window of the padded image
        assert out.shape == (4, 4)
        assert any((padded[i:i + 4, j:j + 4] == out).all() for i in range(5) for j in range(5))
    chw = gradflow.tensor(np.arange(2 * 5 * 5, dtype=np.float32).reshape(2, 5, 5))
    assert tuple(T.RandomCrop((3, 2))(chw).shape) == (2, 3, 2)
    assert T.RandomCrop(8, pad_if_needed=True)(img).shape == (8, 8)
    with pytest.raises(ValueError, match=r"required crop size \(8, 8\) is larger"):
        T.RandomCrop(8)(img)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(img), img[:, ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0.0)(img), img)
    flipped = T.RandomHorizontalFlip(p=1.0)(chw)
    np.testing.assert_array_equal(flipped.numpy(), chw.numpy()[:, :, ::-1])
    gradflow.manual_seed(1)
    flips = [T.RandomHorizontalFlip()(img)[0, 0] == 5 for _ in range(200)]
    assert 60 < sum(flips) < 140


def _bilinear_reference(img: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """Direct formula, one output pixel at a time (half-pixel centres)."""
    h, w = img.shape
    out = np.empty((oh, ow))
    for i in range(oh):
        for j in range(ow):
            y = max((i + 0.5) * h / oh - 0.5, 0.0)
            x = max((j + 0.5) * w / ow - 0.5, 0.0)
            y0, x0 = int(y), int(x)
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            dy, dx = y - y0, x - x0
            out[i, j] = ((1 - dy) * ((1 - dx) * img[y0, x0] + dx * img[y0, x1])
                         + dy * ((1 - dx) * img[y1, x0] + dx * img[y1, x1]))
    return out


@pytest.mark.parametrize("shape,size", [((8, 8), (32, 32)), ((5, 7), (3, 9)), ((4, 6), (4, 6))])
def test_resize_bilinear_and_nearest(shape, size):
    rng = np.random.default_rng(0)
    img = rng.standard_normal(shape)
    out = T.Resize(size)(img)
    np.testing.assert_allclose(out, _bilinear_reference(img, *size), rtol=1e-12, atol=1e-12)
    near = T.Resize(size, interpolation="nearest")(img)
    rows = (np.arange(size[0]) * shape[0]) // size[0]
    cols = (np.arange(size[1]) * shape[1]) // size[1]
    np.testing.assert_array_equal(near, img[rows][:, cols])


def test_resize_shorter_side_dtypes_and_tensors():
    assert T.Resize(16)(np.zeros((8, 12), np.float32)).shape == (16, 24)
    assert T.Resize(10)(np.zeros((30, 20, 3), np.uint8)).shape == (15, 10, 3)
    u8 = T.Resize((3, 3))(np.full((2, 2), 200, np.uint8))
    assert u8.dtype == np.uint8 and (u8 == 200).all()
    chw = gradflow.tensor(np.ones((3, 8, 8), np.float32))
    out = T.Resize(32)(chw)
    assert tuple(out.shape) == (3, 32, 32) and out.dtype == gradflow.float32
    with pytest.raises(ValueError, match="interpolation should be"):
        T.Resize(4, interpolation="bicubic")


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_resize_matches_torch(mode):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    img = rng.standard_normal((2, 7, 5)).astype(np.float32)
    for size in [(32, 32), (3, 4), (7, 11)]:
        ours = T.Resize(size, interpolation=mode)(gradflow.tensor(img)).numpy()
        kwargs = {"align_corners": False} if mode == "bilinear" else {}
        ref = torch.nn.functional.interpolate(torch.from_numpy(img)[None], size=size, mode=mode,
                                              **kwargs)[0].numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


def test_compose_and_lambda():
    pipeline = T.Compose([T.Lambda(lambda a: a * 2), T.ToTensor()])
    out = pipeline(np.ones((2, 2), np.float32))
    assert out.numpy().tolist() == [[[2.0, 2.0], [2.0, 2.0]]]
    assert "Lambda" in repr(pipeline)
    with pytest.raises(TypeError, match="should be callable"):
        T.Lambda(3)
