"""WeightedRandomSampler (frequencies, replacement, generators, errors, PyTorch's checks) and
DataLoader(pin_memory=True) (accepted, says it does not pin)."""

import warnings

import numpy as np
import pytest

import gradflow as gf
from gradflow.utils.data import DataLoader, Generator, TensorDataset, WeightedRandomSampler


def test_frequencies_follow_the_weights():
    weights = [1.0, 0.0, 2.0, 5.0, 2.0]
    n = 40000
    draws = list(WeightedRandomSampler(weights, n, generator=Generator().manual_seed(0)))
    assert len(draws) == n and all(isinstance(i, int) for i in draws)
    freq = np.bincount(draws, minlength=5) / n
    expected = np.array(weights) / sum(weights)
    # binomial standard deviation <= 0.0025 at this n: 5 sigma
    np.testing.assert_allclose(freq, expected, atol=0.0125)
    assert freq[1] == 0


def test_without_replacement_draws_each_index_at_most_once():
    weights = np.array([0.1, 5.0, 0.0, 1.0, 1.0, 3.0])
    for seed in range(20):
        draws = list(WeightedRandomSampler(weights, 5, replacement=False,
                                           generator=Generator().manual_seed(seed)))
        assert sorted(draws) == [0, 1, 3, 4, 5]
    # the first draw follows the weights; later ones the renormalised remaining weights
    firsts = [next(iter(WeightedRandomSampler(weights, 2, replacement=False,
                                              generator=Generator().manual_seed(s))))
              for s in range(4000)]
    np.testing.assert_allclose(np.bincount(firsts, minlength=6) / 4000, weights / weights.sum(),
                               atol=0.04)
    seconds = [list(WeightedRandomSampler([1.0, 1.0, 98.0], 2, replacement=False,
                                          generator=Generator().manual_seed(s)))[1]
               for s in range(500)]
    assert np.mean(np.array(seconds) == 2) < 0.1  # index 2 is almost always drawn first


def test_generators_and_manual_seed_make_draws_reproducible():
    w = gf.tensor([0.3, 0.2, 0.5])
    a = list(WeightedRandomSampler(w, 50, generator=Generator().manual_seed(3)))
    b = list(WeightedRandomSampler(w, 50, generator=Generator().manual_seed(3)))
    assert a == b
    gf.manual_seed(7)
    s = WeightedRandomSampler(w, 50)
    first, second = list(s), list(s)
    assert first != second  # a new draw each epoch
    gf.manual_seed(7)
    assert list(s) == first
    assert s.weights.dtype == gf.float64 and len(s) == 50


def test_matches_torch_attributes_and_checks():
    torch = pytest.importorskip("torch")
    from torch.utils.data import WeightedRandomSampler as TorchWRS

    ours, theirs = WeightedRandomSampler([1, 2, 3], 4, False), TorchWRS([1, 2, 3], 4, False)
    assert ours.num_samples == theirs.num_samples and ours.replacement == theirs.replacement
    np.testing.assert_array_equal(ours.weights.numpy(), theirs.weights.numpy())
    for args in (([1.0, 2.0], 0), ([1.0, 2.0], 2.5), ([1.0, 2.0], True)):
        with pytest.raises(ValueError, match="num_samples should be a positive integer"):
            WeightedRandomSampler(*args)
        with pytest.raises(ValueError, match="num_samples should be a positive integer"):
            TorchWRS(*args)
    with pytest.raises(ValueError, match="weights should be a 1d sequence"):
        WeightedRandomSampler([[1.0, 2.0]], 1)
    with pytest.raises(ValueError, match="weights should be a 1d sequence"):
        TorchWRS(torch.ones(1, 2), 1)
    with pytest.raises(ValueError, match="replacement should be a boolean"):
        WeightedRandomSampler([1.0], 1, replacement=1)


@pytest.mark.parametrize("weights,n,replacement,match", [
    ([1.0, -1.0], 1, True, "finite and >= 0"),
    ([1.0, float("nan")], 1, True, "finite and >= 0"),
    ([1.0, float("inf")], 1, True, "finite and >= 0"),
    ([0.0, 0.0], 1, True, "sum to 0.0"),
    ([1.0, 0.0, 1.0], 3, False, "without replacement from 2 nonzero weights"),
])
def test_bad_distributions_raise(weights, n, replacement, match):
    sampler = WeightedRandomSampler(weights, n, replacement)  # checked when drawing, as torch
    with pytest.raises(RuntimeError, match="WeightedRandomSampler: .*" + match):
        list(sampler)


def test_bad_weight_types_raise():
    with pytest.raises(TypeError, match="WeightedRandomSampler: weights must be a sequence"):
        WeightedRandomSampler(["a", "b"], 1)


def test_with_dataloader():
    data = TensorDataset(gf.arange(6).float())
    sampler = WeightedRandomSampler([0, 0, 1, 0, 0, 1], 10,
                                    generator=Generator().manual_seed(0))
    seen = gf.cat([x for (x,) in DataLoader(data, batch_size=4, sampler=sampler)])
    assert seen.shape == (10,) and set(seen.tolist()) <= {2.0, 5.0}


def test_pin_memory_is_accepted_and_says_it_does_not_pin():
    data = TensorDataset(gf.arange(6).float(), gf.arange(6))
    with pytest.warns(UserWarning, match="pin_memory.*cannot pin host memory yet") as rec:
        loader = DataLoader(data, batch_size=4, pin_memory=True)
    assert rec[0].filename == __file__  # points at the caller's line
    assert loader.pin_memory is True
    batches = list(loader)
    assert [b[0].tolist() for b in batches] == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0]]
    assert batches[0][0].device == gf.device("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DataLoader(data, batch_size=4)  # no warning without pin_memory
    with pytest.warns(UserWarning, match="pin_memory_device is deprecated"):
        DataLoader(data, pin_memory_device="cuda")
