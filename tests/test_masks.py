import pytest
import torch

from spense.errors import FormatError, InputError
from spense.format import is_nm
from spense.masks import (
    global_prune_mask,
    magnitude_scores,
    nm_prune_mask,
    unstructured_prune_mask,
    wanda_scores,
)


def test_nm_known_answer():
    s = torch.tensor([[4.0, 1.0, 3.0, 2.0, 0.0, 5.0, 6.0, 7.0]])
    expect = torch.tensor([[False, True, False, True, True, True, False, False]])
    assert torch.equal(nm_prune_mask(s, 2, 4), expect)


def test_nm_ties_prune_earlier_positions():
    s = torch.ones(1, 8)
    expect = torch.tensor([[True, True, False, False] * 2])
    assert torch.equal(nm_prune_mask(s), expect)


def test_nm_random_keeps_largest_in_every_group():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(16, 64, generator=g)
    mask = nm_prune_mask(s, 2, 4)
    groups_mask = mask.reshape(16, 16, 4)
    assert bool((groups_mask.sum(-1) == 2).all())
    gs = s.reshape(16, 16, 4)
    pruned_max = gs.masked_fill(~groups_mask, -1).amax(-1)
    kept_min = gs.masked_fill(groups_mask, 2).amin(-1)
    assert bool((pruned_max <= kept_min).all())
    assert is_nm(s.masked_fill(mask, 0), 2, 4)


def test_nm_other_pattern_and_bad_width():
    s = torch.arange(16.0).flip(0).reshape(1, 16)
    mask = nm_prune_mask(s, 1, 8)
    assert int(mask.sum()) == 14 and not mask[0, 0] and not mask[0, 8]
    with pytest.raises(FormatError):
        nm_prune_mask(torch.rand(2, 10))


def test_unstructured_per_row():
    g = torch.Generator().manual_seed(1)
    s = torch.rand(8, 100, generator=g)
    mask = unstructured_prune_mask(s, 0.3)
    assert (mask.sum(1) == 30).all()
    for i in range(8):
        assert s[i][mask[i]].max() <= s[i][~mask[i]].min()
    assert not unstructured_prune_mask(s, 0.0).any() and unstructured_prune_mask(s, 1.0).all()
    with pytest.raises(InputError):
        unstructured_prune_mask(s, 1.5)


def test_global_mask_uses_one_threshold():
    s = torch.tensor([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]])
    mask = global_prune_mask(s, 0.5)
    assert torch.equal(mask, torch.tensor([[True, True, True], [False, False, False]]))
    # per-row selection would have pruned differently
    assert not torch.equal(mask, unstructured_prune_mask(s, 0.5))


def test_magnitude_and_wanda_scores():
    g = torch.Generator().manual_seed(2)
    W = torch.randn(4, 8, generator=g)
    assert torch.equal(magnitude_scores(W), W.abs())
    X = torch.randn(50, 8, generator=g, dtype=torch.float64)
    X[:, 3] *= 100.0
    H = (2 * X.T @ X / X.shape[0]).float()
    norms = X.norm(dim=0).float()
    expect = W.abs() * norms * (2.0 / X.shape[0]) ** 0.5
    torch.testing.assert_close(wanda_scores(W, H), expect, rtol=1e-5, atol=1e-6)
    # the outlier channel is kept by Wanda in every row, unlike magnitude on a small weight there
    W[:, 3] = 0.1
    assert not nm_prune_mask(wanda_scores(W, H))[:, 3].any()
    assert nm_prune_mask(magnitude_scores(W))[:, 3].all()
