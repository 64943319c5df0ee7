import pytest
import torch

from spense.errors import InputError
from spense.format import dense_count
from spense.hessian import HessianAccumulator
from spense.hessian import prepare_hessian
from spense.selection import act_salience, obs_col_salience, restore_rows, select_layout, trial_prune
from spense.solver import obs_prune


def outliers(seed=0, N=128, K=256, T=2048, big_rows=True):
    """X with 8 of 256 input channels ×20 and (optionally) 4 output rows with ×10 weights."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(T, K, generator=g)
    X[:, torch.randperm(K, generator=g)[:8]] *= 20.0
    W = torch.randn(N, K, generator=g)
    if big_rows:
        W[torch.randperm(N, generator=g)[:4]] *= 10.0
    acc = HessianAccumulator(K)
    acc.add(X)
    return W, acc.H


def small(seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(256, 64, generator=g)
    return torch.randn(64, 64, generator=g), 2 * X.T @ X / 256


@pytest.mark.parametrize("strategy,axis", [("loss-rows", "rows"), ("salience-cols", "cols"),
                                           ("random", "cols"), ("first", "cols")])
def test_sizes_axes_sorted(strategy, axis):
    W, H = outliers(1)
    lay, _ = select_layout(W, H, strategy, 0.25, block=32, seed=3)
    assert lay.axis == axis
    dim = W.shape[0] if axis == "rows" else W.shape[1]
    assert lay.n_dense == dense_count(dim, 0.25, 32) > 0
    idx = lay.dense_idx
    assert bool((idx[1:] > idx[:-1]).all())
    lay.validate()


def test_axis_for_ablations_and_conflicts():
    W, H = small()
    assert select_layout(W, H, "random", 0.5, axis="rows", block=32)[0].axis == "rows"
    assert torch.equal(select_layout(W, H, "first", 0.5, axis="rows", block=32)[0].dense_idx, torch.arange(32))
    with pytest.raises(InputError, match="rows"):
        select_layout(W, H, "loss-rows", 0.5, axis="cols")
    with pytest.raises(InputError, match="salience-cols"):
        select_layout(W, H, "best", 0.5)
    with pytest.raises(InputError, match="act"):
        select_layout(W, H, "salience-cols", 0.5, salience="grad")


def test_ratio_zero_and_one():
    W, H = small()
    assert select_layout(W, H, "salience-cols", 0.0)[0].n_dense == 0
    lay, trial = select_layout(W, H, "loss-rows", 1.0)
    assert lay.n_dense == 64 and trial is None  # no trial pass wasted


def test_loss_rows_picks_highest_trial_loss_and_shortcut_is_exact():
    W, H = outliers(2)
    lay, trial = select_layout(W, H, "loss-rows", 0.25, block=32)
    top = torch.sort(torch.topk(trial.row_loss, 32).indices).values
    assert torch.equal(lay.dense_idx, top)
    fast = restore_rows(trial, W, H, lay)
    slow = obs_prune(W, H, layout=lay)
    torch.testing.assert_close(fast.weight, slow.weight, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.col_loss, slow.col_loss, rtol=1e-3, atol=1e-3)
    assert fast.loss == pytest.approx(slow.loss, rel=1e-4)


def test_salience_rankings():
    W, H = outliers(3, big_rows=False)
    lay_obs, trial = select_layout(W, H, "salience-cols", 0.25, block=32, salience="obs")
    assert torch.equal(lay_obs.dense_idx, torch.sort(torch.topk(trial.col_loss, 64).indices).values)
    s = act_salience(W, H)
    torch.testing.assert_close(s, torch.diagonal(H) * (W**2).sum(0))
    lay_act, t2 = select_layout(W, H, "salience-cols", 0.25, block=32, salience="act")
    assert t2 is None
    assert torch.equal(lay_act.dense_idx, torch.sort(torch.topk(s, 64).indices).values)
    outlier_cols = torch.topk(torch.diagonal(H), 8).indices
    assert set(outlier_cols.tolist()) <= set(lay_act.dense_idx.tolist())


def test_obs_col_salience_known_answers():
    W, H = small(5)
    Hd, _, _ = prepare_hessian(H, W, 0.01)
    want = (W**2).sum(0) / torch.diagonal(torch.linalg.inv(Hd.double())).float()
    torch.testing.assert_close(obs_col_salience(W, H), want, rtol=1e-4, atol=1e-6)
    # diagonal H: [H⁻¹]_jj = 1 / H_jj, so obs-col = act (up to damping); a dead input scores 0
    d = torch.rand(64, generator=torch.Generator().manual_seed(0)) + 0.5
    d[3] = 0.0
    s = obs_col_salience(W, torch.diag(d), percdamp=0.0)
    assert s[3] == 0
    keep = torch.arange(64) != 3
    torch.testing.assert_close(s[keep], act_salience(W, torch.diag(d))[keep])
    lay, trial = select_layout(W, H, "salience-cols", 0.25, block=16, salience="obs-col")
    assert trial is None and torch.equal(lay.dense_idx, torch.sort(torch.topk(want, 16).indices).values)


def test_col_blocks_select_whole_aligned_blocks():
    from spense.selection import obs_col_salience

    W, H = outliers(6, big_rows=False)  # K = 256: 8 blocks of 32, 25 % -> 2 blocks
    s = obs_col_salience(W, H)
    lay, _ = select_layout(W, H, "salience-cols", 0.25, block=32, col_blocks=True)
    best = torch.topk(s.reshape(8, 32).sum(1), 2).indices.sort().values
    assert torch.equal(lay.dense_idx, (best[:, None] * 32 + torch.arange(32)).reshape(-1))
    a = select_layout(W, H, "random", 0.25, block=32, col_blocks=True, seed=1)[0].dense_idx
    b = select_layout(W, H, "random", 0.25, block=32, col_blocks=True, seed=2)[0].dense_idx
    for idx in (a, b):
        starts = idx[::32]
        assert bool((starts % 32 == 0).all()) and torch.equal(idx, (starts[:, None] + torch.arange(32)).reshape(-1))
    assert not torch.equal(a, b)
    # rows ignore it; the pruner refuses it where it cannot apply
    assert select_layout(W, H, "loss-rows", 0.25, block=32, col_blocks=True)[0].axis == "rows"
    from spense.methods import PruneConfig

    with pytest.raises(InputError, match="col_blocks"):
        PruneConfig(strategy="loss-rows", col_blocks=True).validate()
    with pytest.raises(InputError, match="col_blocks"):
        PruneConfig(method="sparsegpt", dense_ratio=0.0, col_blocks=True).validate()


def test_random_is_seeded_and_ignores_global_rng():
    W, H = small()
    a = select_layout(W, H, "random", 0.5, block=16, seed=7)[0].dense_idx
    torch.manual_seed(123)
    torch.rand(10)
    b = select_layout(W, H, "random", 0.5, block=16, seed=7)[0].dense_idx
    c = select_layout(W, H, "random", 0.5, block=16, seed=8)[0].dense_idx
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_outlier_aware_strategies_beat_random(seed):
    W, H = outliers(seed)
    none = obs_prune(W, H).loss

    def loss(strategy, **kw):
        lay, _ = select_layout(W, H, strategy, 0.25, block=32, seed=seed, **kw)
        return obs_prune(W, H, layout=lay).loss

    rand_cols = loss("random", axis="cols")
    for sal in ("act", "obs-col"):
        cols = loss("salience-cols", salience=sal)
        assert cols < rand_cols
        assert cols < 0.7 * none
    assert loss("loss-rows") < loss("random", axis="rows")


def test_trial_prune_has_entry_losses():
    W, H = small(4)
    t = trial_prune(W, H)
    assert t.entry_loss.shape == W.shape
    torch.testing.assert_close(t.entry_loss.sum(0), t.col_loss)
    assert not bool(((t.entry_loss > 0) & (t.weight != 0)).any())  # only pruned entries carry loss
    assert int((t.entry_loss > 0).sum()) > 0.4 * W.numel()
