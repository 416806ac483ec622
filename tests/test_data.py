"""gradflow.utils.data: datasets, samplers, collation and the DataLoader (with workers)."""

from __future__ import annotations

import collections
import os
import time

import numpy as np
import pytest

import gradflow
from gradflow.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    Generator,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    default_collate,
    get_worker_info,
    random_split,
)


class Squares(Dataset):
    """Sample i is (i as a float32 array of shape (2,), i*i)."""

    def __init__(self, n: int = 10) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return np.array([i, -i], dtype=np.float32), i * i


class Stream(IterableDataset):
    """0..n-1, split between workers by id (the documented sharding recipe)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))

    def __len__(self) -> int:
        return self.n


def _ids(batches) -> list:
    return [b[1].numpy().tolist() for b in batches]


# ---------------------------------------------------------------------------- datasets
def test_tensor_dataset_and_errors():
    x = gradflow.tensor(np.arange(12.0).reshape(6, 2))
    y = gradflow.tensor(np.arange(6))
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    a, b = ds[4]
    np.testing.assert_array_equal(a.numpy(), [8.0, 9.0])
    assert b.item() == 4
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(x, gradflow.tensor(np.arange(5)))


def test_concat_and_subset():
    ds = ConcatDataset([Squares(3), Squares(4)])
    assert len(ds) == 7
    assert [ds[i][1] for i in range(7)] == [0, 1, 4, 0, 1, 4, 9]
    assert ds[-1][1] == 9
    with pytest.raises(IndexError, match="out of range"):
        ds[7]
    assert len(Squares(2) + Squares(3)) == 5
    sub = Subset(Squares(10), [7, 2])
    assert len(sub) == 2 and sub[0][1] == 49 and sub[1][1] == 4


def test_random_split_lengths_and_fractions():
    parts = random_split(Squares(10), [3, 7], generator=Generator().manual_seed(1))
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(parts[0].indices + parts[1].indices) == list(range(10))
    again = random_split(Squares(10), [3, 7], generator=Generator().manual_seed(1))
    assert again[0].indices == parts[0].indices
    # floor(10 * f) = 3, 3, 3; the remaining 1 goes to the first split
    assert [len(p) for p in random_split(Squares(10), [0.3, 0.3, 0.4])] == [3, 3, 4]
    assert [len(p) for p in random_split(Squares(10), [1 / 3] * 3)] == [4, 3, 3]
    with pytest.raises(ValueError, match="does not equal the length"):
        random_split(Squares(10), [3, 3])
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(Squares(10), [0.5, 0.6])


def test_random_split_follows_manual_seed():
    gradflow.manual_seed(3)
    a = random_split(Squares(20), [10, 10])[0].indices
    gradflow.manual_seed(3)
    b = random_split(Squares(20), [10, 10])[0].indices
    assert a == b


# ---------------------------------------------------------------------------- samplers
def test_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    g = Generator().manual_seed(0)
    perm = list(RandomSampler(range(50), generator=g))
    assert sorted(perm) == list(range(50)) and perm != list(range(50))
    rep = list(RandomSampler(range(3), replacement=True, num_samples=20, generator=g))
    assert len(rep) == 20 and set(rep) <= {0, 1, 2}
    more = list(RandomSampler(range(4), num_samples=10, generator=g))
    assert len(more) == 10 and sorted(more[:8]) == [0, 0, 1, 1, 2, 2, 3, 3]
    sub = list(SubsetRandomSampler([10, 20, 30], generator=g))
    assert sorted(sub) == [10, 20, 30]
    assert list(BatchSampler(range(7), 3, False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(range(7), 3, True)) == [[0, 1, 2], [3, 4, 5]]
    assert len(BatchSampler(range(7), 3, False)) == 3
    assert len(BatchSampler(range(7), 3, True)) == 2
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(range(7), 0, False)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(range(3), num_samples=0)


# ---------------------------------------------------------------------------- collation
def test_default_collate_rules():
    out = default_collate([(np.zeros((2, 3), np.float32), 1, 0.5, True, "a"),
                           (np.ones((2, 3), np.float32), 2, 1.5, False, "b")])
    x, i, f, b, s = out
    assert isinstance(out, list)
    assert tuple(x.shape) == (2, 2, 3) and x.dtype == gradflow.float32
    assert i.dtype == gradflow.int64 and i.numpy().tolist() == [1, 2]
    assert f.dtype == gradflow.float64 and f.numpy().tolist() == [0.5, 1.5]
    assert b.dtype == gradflow.bool_ and b.numpy().tolist() == [True, False]
    assert list(s) == ["a", "b"]
    d = default_collate([{"x": gradflow.tensor([1.0, 2.0]), "y": 3},
                         {"x": gradflow.tensor([3.0, 4.0]), "y": 4}])
    np.testing.assert_array_equal(d["x"].numpy(), [[1, 2], [3, 4]])
    assert d["y"].numpy().tolist() == [3, 4]
    Point = collections.namedtuple("Point", "x y")
    p = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(p, Point) and p.x.numpy().tolist() == [1, 3]
    u8 = default_collate([np.array([1, 2], np.uint8)] * 2)
    assert u8.dtype == gradflow.uint8  # as PyTorch's default_collate
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [1]])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([object(), object()])


def test_default_collate_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    batch = [{"img": np.full((2, 2), k, np.float64), "label": k, "w": k / 2, "pair": (k, k + 1)}
             for k in range(3)]
    ours, ref = default_collate(batch), torch_collate(batch)
    for key in ("img", "label", "w"):
        np.testing.assert_array_equal(ours[key].numpy(), ref[key].numpy())
        assert str(ours[key].dtype).split(".")[-1] == str(ref[key].dtype).split(".")[-1]
    assert [p.numpy().tolist() for p in ours["pair"]] == [p.tolist() for p in ref["pair"]]
    assert isinstance(ref["pair"], list) and isinstance(ours["pair"], list)
    assert torch is not None


# ---------------------------------------------------------------------------- DataLoader
def test_loader_order_len_and_drop_last():
    loader = DataLoader(Squares(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and len(batches) == 3
    assert _ids(batches) == [[0, 1, 4, 9], [16, 25, 36, 49], [64, 81]]
    assert tuple(batches[0][0].shape) == (4, 2) and batches[0][0].dtype == gradflow.float32
    loader = DataLoader(Squares(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and len(list(loader)) == 2
    single = list(DataLoader(Squares(3), batch_size=None))
    assert tuple(single[0][0].shape) == (2,) and single[2][1] == 4


def test_loader_argument_errors():
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(Squares(), sampler=SequentialSampler(range(10)), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(Squares(), batch_sampler=BatchSampler(range(10), 2, False), batch_size=3)
    with pytest.raises(ValueError, match="num_workers option should be non-negative"):
        DataLoader(Squares(), num_workers=-1)
    with pytest.raises(ValueError, match="persistent_workers option needs num_workers > 0"):
        DataLoader(Squares(), persistent_workers=True)
    with pytest.raises(ValueError, match="prefetch_factor option could only be specified"):
        DataLoader(Squares(), prefetch_factor=2)
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(Stream(4), shuffle=True)


def test_shuffle_reproducible_with_manual_seed_and_generator():
    gradflow.manual_seed(0)
    a = _ids(DataLoader(Squares(20), batch_size=5, shuffle=True))
    gradflow.manual_seed(0)
    b = _ids(DataLoader(Squares(20), batch_size=5, shuffle=True))
    assert a == b and sorted(sum(a, [])) == sorted(i * i for i in range(20))
    assert a != _ids(DataLoader(Squares(20), batch_size=5))
    loader = DataLoader(Squares(20), batch_size=5, shuffle=True,
                        generator=Generator().manual_seed(7))
    e1, e2 = _ids(loader), _ids(loader)
    assert e1 != e2  # a new permutation every epoch
    loader2 = DataLoader(Squares(20), batch_size=5, shuffle=True,
                         generator=Generator().manual_seed(7))
    assert _ids(loader2) == e1


def test_batch_sampler_and_iterable_dataset():
    loader = DataLoader(Squares(6), batch_sampler=[[5, 0], [2]])
    assert _ids(loader) == [[25, 0], [4]] and len(loader) == 2
    stream = DataLoader(Stream(7), batch_size=3)
    assert [b.numpy().tolist() for b in stream] == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(stream) == 3
    assert len(DataLoader(Stream(7), batch_size=3, drop_last=True)) == 2
    assert [b.numpy().tolist() for b in DataLoader(Stream(7), batch_size=3, drop_last=True)] == [
        [0, 1, 2], [3, 4, 5]]


# ---------------------------------------------------------------------------- workers
def test_workers_give_the_same_batches_in_order():
    ref = _ids(DataLoader(Squares(23), batch_size=3))
    loader = DataLoader(Squares(23), batch_size=3, num_workers=2)
    assert _ids(loader) == ref
    gradflow.manual_seed(5)
    shuffled = _ids(DataLoader(Squares(23), batch_size=3, shuffle=True, num_workers=2))
    gradflow.manual_seed(5)
    assert shuffled == _ids(DataLoader(Squares(23), batch_size=3, shuffle=True))


def test_tensor_dataset_through_workers():
    x = gradflow.tensor(np.arange(20, dtype=np.float32).reshape(10, 2))
    y = gradflow.tensor(np.arange(10))
    for workers in (0, 2):
        batches = list(DataLoader(TensorDataset(x, y), batch_size=4, num_workers=workers))
        xb, yb = batches[0]
        assert tuple(xb.shape) == (4, 2) and xb.dtype == gradflow.float32
        assert yb.dtype == gradflow.int64 and yb.numpy().tolist() == [0, 1, 2, 3]
        np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in batches]), x.numpy())
    assert list(DataLoader(Squares(0), shuffle=True)) == []


class Slow(Dataset):
    """Even samples are slow, so the workers finish out of order."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> int:
        if i % 4 == 0:
            time.sleep(0.05)
        return i


def test_workers_results_reordered():
    loader = DataLoader(Slow(), batch_size=2, num_workers=2, prefetch_factor=4)
    assert [b.numpy().tolist() for b in loader] == [[0, 1], [2, 3], [4, 5], [6, 7]]


class Failing(Dataset):
    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int) -> int:
        if i == 3:
            raise ZeroDivisionError("sample three is broken")
        return i


def test_worker_exception_is_reraised_with_traceback():
    loader = DataLoader(Failing(), batch_size=2, num_workers=2)
    it = iter(loader)
    assert next(it).numpy().tolist() == [0, 1]
    with pytest.raises(ZeroDivisionError) as info:
        next(it)
    msg = str(info.value)
    assert "DataLoader worker process 1" in msg
    assert "sample three is broken" in msg and "__getitem__" in msg  # the worker's traceback
    assert next(it).numpy().tolist() == [4, 5]  # the loader goes on, as PyTorch's does


class KeyFailing(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int):
        return {}["missing"]


def test_worker_key_error_keeps_its_type():
    with pytest.raises(KeyError, match="missing"):
        list(DataLoader(KeyFailing(), num_workers=1))


class Dying(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> int:
        if i == 2:
            os._exit(3)
        return i


def test_dead_worker_raises_instead_of_hanging():
    loader = DataLoader(Dying(), batch_size=1, num_workers=1)
    with pytest.raises(RuntimeError, match="exited unexpectedly"):
        list(loader)


class Sleepy(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> int:
        time.sleep(30)
        return i


def test_timeout():
    loader = DataLoader(Sleepy(), num_workers=1, timeout=0.2)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="timed out after 0.2 seconds"):
        next(iter(loader))
    assert time.monotonic() - start < 10


class Info(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        info = get_worker_info()
        marker = os.environ.get("GRADFLOW_TEST_WORKER", "")
        return info.id, info.num_workers, info.seed, float(np.random.rand()), marker


def _init(worker_id: int) -> None:
    os.environ["GRADFLOW_TEST_WORKER"] = str(worker_id)


def test_worker_info_seeds_and_init_fn():
    assert get_worker_info() is None
    loader = DataLoader(Info(), batch_size=None, num_workers=2, worker_init_fn=_init,
                        generator=Generator().manual_seed(11))
    rows = [tuple(v.item() if hasattr(v, "item") else v for v in row) for row in loader]
    ids = [r[0] for r in rows]
    assert ids == [0, 1, 0, 1] and all(r[1] == 2 for r in rows)
    assert [r[4] for r in rows] == ["0", "1", "0", "1"]  # worker_init_fn ran in each worker
    assert rows[1][2] == rows[0][2] + 1  # worker i is seeded base_seed + i
    assert rows[0][3] != rows[1][3]  # NumPy's global generator differs between workers
    again = DataLoader(Info(), batch_size=None, num_workers=2,
                       generator=Generator().manual_seed(11))
    assert [r[3] for r in again] == [r[3] for r in rows]


def test_iterable_dataset_sharded_between_workers():
    loader = DataLoader(Stream(10), batch_size=2, num_workers=2)
    values = sorted(sum((b.numpy().tolist() for b in loader), []))
    assert values == list(range(10))


def test_persistent_workers_and_early_break():
    loader = DataLoader(Squares(12), batch_size=2, num_workers=2, persistent_workers=True)
    first = _ids(loader)
    it = iter(loader)
    next(it)  # stop early: the stale batches of this epoch must not leak into the next
    pids = [w.pid for w in loader._iterator._workers]
    assert _ids(loader) == first
    assert [w.pid for w in loader._iterator._workers] == pids
    workers = loader._iterator._workers
    del loader, it
    import gc

    gc.collect()
    for w in workers:
        w.join(timeout=10)
        assert not w.is_alive()


def test_non_persistent_workers_shut_down():
    loader = DataLoader(Squares(12), batch_size=2, num_workers=2)
    it = iter(loader)
    next(it)
    workers = it._workers
    it._shutdown()
    assert all(not w.is_alive() for w in workers)
    it2 = iter(loader)
    list(it2)
    assert all(not w.is_alive() for w in it2._workers)


class NativeOps(Dataset):
    """Each sample runs native kernels (OpenMP code) inside the worker."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        from gradflow import _C

        a = gradflow.tensor(np.full((64, 64), 1.0 / 64, np.float32))
        erf = _C.erf(np.zeros(100_000, np.float32))
        return (a @ a).numpy()[0, 0] + float(erf[0]), _C.get_num_threads()


def test_native_ops_in_forked_workers_after_openmp_in_parent():
    from gradflow import _C

    # Start the parent's OpenMP thread pool, then fork workers that run OpenMP regions.
    _C.erf(np.zeros(1_000_000, np.float32))
    gradflow.tensor(np.ones((128, 128), np.float32)) @ gradflow.tensor(
        np.ones((128, 128), np.float32))
    loader = DataLoader(NativeOps(), batch_size=2, num_workers=2, timeout=60,
                        multiprocessing_context="fork")
    batches = list(loader)
    values = np.concatenate([b[0].numpy() for b in batches])
    np.testing.assert_allclose(values, 1.0 / 64, rtol=1e-5)
    threads = np.concatenate([b[1].numpy() for b in batches])
    assert (threads == 1).all()  # the fork handler put OpenMP on one thread in the child


class Augmented(Dataset):
    """Random crops drawn in the workers from gradflow's (per-worker seeded) generator."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int):
        import gradflow.transforms as T

        return T.RandomCrop(3)(np.arange(100, dtype=np.float32).reshape(10, 10))


def test_random_transforms_in_workers_are_reproducible():
    def run():
        gradflow.manual_seed(42)
        return np.concatenate([b.numpy() for b in DataLoader(Augmented(), batch_size=2,
                                                              num_workers=2)])

    a, b = run(), run()
    np.testing.assert_array_equal(a, b)
    assert len({float(x[0, 0]) for x in a}) > 1


def test_spawn_context():
    loader = DataLoader(Squares(5), batch_size=2, num_workers=1, multiprocessing_context="spawn")
    assert _ids(loader) == [[0, 1], [4, 9], [16]]
