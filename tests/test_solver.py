import pytest
import torch

from spense.errors import FormatError, NumericalError
from spense.format import SpenseLayout, is_nm
from spense.masks import nm_prune_mask
from spense.solver import obs_prune, reconstruction_row_loss


def make(N=64, K=128, T=512, seed=0, corr=0.8):
    """Correlated inputs X (T, K) so that OBS updates matter; H = 2 XᵀX / T."""
    g = torch.Generator().manual_seed(seed)
    Z = torch.randn(T, K, generator=g, dtype=torch.float64)
    mix = torch.eye(K, dtype=torch.float64) + corr * torch.randn(K, K, generator=g, dtype=torch.float64) / K**0.5
    X = Z @ mix
    W = torch.randn(N, K, generator=g)
    return W, (2 * X.T @ X / T).float(), X


def direct_loss(W, W_hat, X):
    return float(((W.double() - W_hat.double()) @ X.T).pow(2).sum() / X.shape[0])


def reference_obs(W, H, percdamp, n=2, m=4):
    """Unbatched OBS from the definitions, float64, no Cholesky: at column j the free columns are
    F = {j, ..., K-1} and G = (H_F)^-1; the saliency of column c is w_c^2 / [(H_{c:})^-1]_cc."""
    W = W.double().clone()
    H = H.double()
    K = H.shape[0]
    H = H + percdamp * torch.diagonal(H).mean() * torch.eye(K, dtype=torch.float64)
    Ginv = [torch.linalg.inv(H[c:, c:]) for c in range(K)]
    mask = torch.zeros_like(W, dtype=torch.bool)
    for j in range(K):
        if j % m == 0:
            d = torch.tensor([Ginv[c][0, 0] for c in range(j, j + m)], dtype=torch.float64)
            mask[:, j:j + m] = nm_prune_mask(W[:, j:j + m] ** 2 / d, n, m)
        G = Ginv[j]
        w = W[:, j].clone()
        q = w.masked_fill(mask[:, j], 0.0)
        W[:, j:] -= ((w - q) / G[0, 0]).unsqueeze(1) * G[0].unsqueeze(0)
        W[:, j] = q
    return W


def test_matches_unbatched_reference_obs():
    W, H, _ = make(N=16, K=32, T=256, seed=5)
    ref = reference_obs(W, H, 0.01)
    got = obs_prune(W, H, blocksize=8, percdamp=0.01)
    assert torch.equal(got.weight == 0, ref == 0)
    torch.testing.assert_close(got.weight.double(), ref, rtol=1e-3, atol=1e-4)


def test_identity_hessian_equals_magnitude():
    """H = I: U = I/sqrt(1+λ) is diagonal, so every OBS update W[:, j:] -= e ⊗ U[j, j:] touches only
    column j itself and the saliency w²/U_jj² ranks like |w|: SparseGPT = magnitude 2:4."""
    W, _, _ = make(seed=1)
    res = obs_prune(W, torch.eye(W.shape[1]))
    mag = W.masked_fill(nm_prune_mask(W.abs()), 0.0)
    assert torch.equal(res.weight == 0, mag == 0)
    torch.testing.assert_close(res.weight, mag)


def test_loss_is_exact_reconstruction_error():
    W, H, X = make(seed=2)
    res = obs_prune(W, H)
    assert is_nm(res.weight)
    assert res.loss == pytest.approx(direct_loss(W, res.weight, X), rel=1e-4)
    per_row = ((W.double() - res.weight.double()) @ X.T).pow(2).sum(1) / X.shape[0]
    torch.testing.assert_close(res.row_loss.double(), per_row, rtol=1e-3, atol=1e-3)


def test_row_loss_never_below_zero_on_a_one_token_hessian():
    """H = 2 x xᵀ (one calibration token) and each row of Δ orthogonal to x: ‖Δ_i x‖² is 0 up to rounding, which
    the quadratic form Δ H Δᵀ puts on either side of 0; the loss is clamped, not reported negative."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, generator=g)
    D = torch.randn(512, 256, generator=g)
    D -= (D @ x)[:, None] * x / (x @ x)
    H = 2 * torch.outer(x, x)
    raw = ((D @ H) * D).sum(dim=1) / 2
    assert (raw < 0).any()  # the case the clamp is for
    loss = reconstruction_row_loss(D, torch.zeros_like(D), H)
    scale = ((D.abs() @ H.abs()) * D.abs()).sum(dim=1).max() / 2  # the form's terms: rounding is ~1e-7 of it
    assert (loss >= 0).all() and loss.max() < 1e-5 * scale


def test_obs_updates_beat_mask_alone_and_col_loss_sums_to_loss():
    W, H, X = make(seed=3)
    res = obs_prune(W, H, percdamp=0.0)
    same_mask = W.masked_fill(res.weight == 0, 0.0)
    assert res.loss < 0.9 * direct_loss(W, same_mask, X)
    # without damping the sequential OBS losses add up to the exact loss
    assert float(res.col_loss.sum()) == pytest.approx(res.loss, rel=2e-3)


def test_lazy_batch_size_does_not_change_result():
    W, H, _ = make(seed=4)
    a = obs_prune(W, H, blocksize=4)
    b = obs_prune(W, H, blocksize=128)
    c = obs_prune(W, H, blocksize=6)  # rounded up to whole 4-groups
    assert torch.equal(a.weight == 0, b.weight == 0) and torch.equal(b.weight == 0, c.weight == 0)
    torch.testing.assert_close(a.weight, b.weight, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(c.weight, b.weight, rtol=1e-4, atol=1e-4)


def test_dense_rows_untouched_and_rows_independent():
    W, H, X = make(seed=6)
    lay = SpenseLayout(W.shape, axis="rows", dense_idx=torch.arange(8, 40), block=32)
    res = obs_prune(W, H, layout=lay)
    full = obs_prune(W, H)
    dense, sparse = lay.dense_idx, lay.sparse_idx
    assert torch.equal(res.weight[dense], W[dense])
    torch.testing.assert_close(res.weight[sparse], full.weight[sparse], rtol=1e-4, atol=1e-5)
    lay.check_weight(res.weight)
    assert not is_nm(res.weight)  # the dense rows really are dense
    assert torch.equal(res.row_loss[dense], torch.zeros(32))
    assert res.loss == pytest.approx(direct_loss(W, res.weight, X), rel=1e-4)


def test_dense_cols_receive_updates_and_unpermute():
    W, H, X = make(seed=7)
    K = W.shape[1]
    didx = torch.cat([torch.arange(0, 16), torch.arange(64, 80)])
    lay = SpenseLayout(W.shape, axis="cols", dense_idx=didx, block=32)
    res = obs_prune(W, H, layout=lay)
    lay.check_weight(res.weight)
    S, D = lay.split(res.weight)
    assert is_nm(S) and (D != 0).all()  # dense columns never pruned...
    assert not torch.allclose(D, W[:, didx])  # ...but compensated
    assert torch.equal(res.col_loss[didx], torch.zeros(32)) and (res.col_loss[lay.sparse_idx] > 0).any()
    assert res.loss == pytest.approx(direct_loss(W, res.weight, X), rel=1e-4)
    assert res.loss < obs_prune(W, H).loss
    # same problem with the dense columns physically moved to the end: same answer, permuted
    perm = torch.cat([lay.sparse_idx, didx])
    lay2 = SpenseLayout(W.shape, axis="cols", dense_idx=torch.arange(K - 32, K), block=32)
    res2 = obs_prune(W[:, perm], H[perm][:, perm], layout=lay2)
    torch.testing.assert_close(res2.weight, res.weight[:, perm])


@pytest.mark.parametrize("axis", ["rows", "cols"])
def test_dense_ratio_one_leaves_weight_unchanged(axis):
    W, H, _ = make(seed=8)
    dim = W.shape[0] if axis == "rows" else W.shape[1]
    lay = SpenseLayout(W.shape, axis=axis, dense_idx=torch.arange(dim))
    res = obs_prune(W, H, layout=lay)
    assert torch.equal(res.weight, W) and res.loss == 0.0


def test_unstructured_block_sparsity():
    W, H, X = make(seed=9)
    res = obs_prune(W, H, sparsity=0.375, blocksize=32)
    zeros_per_block = (res.weight == 0).reshape(64, 4, 32).sum(dim=(0, 2))
    assert zeros_per_block.tolist() == [768] * 4  # round(0.375 * 64 * 32)
    assert not is_nm(res.weight)
    assert res.loss == pytest.approx(direct_loss(W, res.weight, X), rel=1e-4)


def test_custom_mask_fn():
    W, H, _ = make(seed=10)
    res = obs_prune(W, H, prune_mask_fn=lambda s: torch.zeros_like(s, dtype=torch.bool))
    torch.testing.assert_close(res.weight, W)


def test_nan_weight_or_hessian_names_layer():
    W, H, _ = make(seed=11)
    Wn = W.clone()
    Wn[3, 5] = float("nan")
    with pytest.raises(NumericalError, match="layers.0.self_attn.o_proj"):
        obs_prune(Wn, H, name="layers.0.self_attn.o_proj")
    Hn = H.clone()
    Hn[1, 1] = float("inf")
    with pytest.raises(NumericalError, match="layers.0.mlp"):
        obs_prune(W, Hn, name="layers.0.mlp")


def test_in_features_not_multiple_of_four():
    with pytest.raises(FormatError):
        obs_prune(torch.randn(8, 130), torch.eye(130))


def test_singular_hessian_dead_inputs_and_rank_deficiency():
    g = torch.Generator().manual_seed(12)
    X = torch.randn(40, 128, generator=g, dtype=torch.float64)  # 40 tokens < 128 inputs: rank 40
    X[:, [3, 50, 51]] = 0.0  # dead inputs
    H = (2 * X.T @ X / 40).float()
    W = torch.randn(32, 128, generator=g)
    res = obs_prune(W, H, name="dead")
    assert bool(torch.isfinite(res.weight).all()) and is_nm(res.weight)
    assert (res.weight[:, [3, 50, 51]] == 0).all()
    assert res.loss == pytest.approx(direct_loss(W, res.weight, X), rel=1e-3, abs=1e-3)
    # a dead *dense* column keeps its weight
    lay = SpenseLayout(W.shape, axis="cols", dense_idx=torch.arange(32), block=32)
    res = obs_prune(W, H, layout=lay)
    assert torch.equal(res.weight[:, 3], W[:, 3])


def test_non_pd_hessian_raises_naming_layer():
    H = torch.eye(16)
    H[0, 1] = H[1, 0] = 100.0
    with pytest.raises(NumericalError, match="bad_layer"):
        obs_prune(torch.randn(4, 16), H, name="bad_layer")


def test_graphs_are_never_used_off_cuda():
    from spense import sweep_graphs

    W = torch.zeros(8, 128)
    assert sweep_graphs.batch_runner(lambda W1, U1: W1, W, ("nm", 2, 4)) is None
    assert sweep_graphs.batch_runner(lambda W1, U1: W1, W, None) is None
    assert sweep_graphs.batch_runner(lambda W1, U1: W1, W, ("nm", 2, 4), create=False) is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kw", [dict(),
                                dict(layout=SpenseLayout((96, 1280), axis="cols",
                                                         dense_idx=torch.arange(0, 1280, 4)[:64]))])
def test_cuda_graph_sweep_is_bit_identical_to_eager(monkeypatch, kw):
    """Full lazy batches replay a captured CUDA graph (spense.sweep_graphs): same kernels, same bits,
    also when the graph captured for one linear is replayed for the next (a second matrix)."""
    from spense import sweep_graphs

    sweep_graphs.clear()
    runs = {}
    for mode in ("1", "0"):
        monkeypatch.setenv("SPENSE_SWEEP_GRAPHS", mode)
        runs[mode] = []
        for seed in (0, 1):
            W, H, _ = make(N=96, K=1280, T=2048, seed=seed)  # 10 (9 with dense cols) full batches
            r = obs_prune(W.cuda(), H.cuda(), **kw)
            runs[mode].append((r.weight.cpu(), r.col_loss.cpu()))
    assert any(g is not None for g in sweep_graphs._GRAPHS.values())
    for (wg, lg), (we, le) in zip(runs["1"], runs["0"]):
        assert torch.equal(wg, we) and torch.equal(lg, le)
