import pytest
import torch

from spense.errors import FormatError, NumericalError
from spense.hessian import HessianAccumulator, accumulate_hessian, inverse_cholesky, prepare_hessian


def test_streaming_equals_batch_uneven_chunks():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(3, 37, 24, generator=g)  # (batch, seq, K)
    flat = X.reshape(-1, 24).double()
    ref = 2 * flat.T @ flat / flat.shape[0]
    acc = HessianAccumulator(24, name="l0")
    acc.add(X[0, :5])
    acc.add(X[0, 5:])
    acc.add(X[1:2, :30])
    acc.add(X[1:2, 30:])
    acc.add(X[2:, 0:0])  # empty chunk is a no-op
    acc.add(X[2:])
    assert acc.n == 111 and acc.H.dtype == torch.float32
    torch.testing.assert_close(acc.H.double(), ref, rtol=1e-5, atol=1e-5)


def test_accumulate_is_pure_and_equation():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(10, 6, generator=g), torch.randn(4, 6, generator=g)
    H1, n1 = accumulate_hessian(None, 0, a)
    H1_copy = H1.clone()
    H2, n2 = accumulate_hessian(H1, n1, b)
    assert torch.equal(H1, H1_copy) and (n1, n2) == (10, 14)
    expect = H1 * 10 / 14 + 2 / 14 * b.T @ b
    torch.testing.assert_close(H2, expect)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_activations_name_layer(bad):
    acc = HessianAccumulator(8, name="model.layers.3.mlp.up_proj")
    x = torch.randn(5, 8)
    x[2, 1] = bad
    with pytest.raises(NumericalError, match="model.layers.3.mlp.up_proj"):
        acc.add(x)
    assert acc.n == 0


def test_width_mismatch():
    with pytest.raises(FormatError):
        HessianAccumulator(8, name="x").add(torch.randn(3, 9))


def test_prepare_hessian_dead_inputs_and_damping():
    g = torch.Generator().manual_seed(2)
    X = torch.randn(40, 6, generator=g)
    X[:, 2] = 0.0
    H = 2 * X.T @ X / 40
    W = torch.randn(3, 6, generator=g)
    Hd, W2, dead = prepare_hessian(H, W, 0.1)
    assert dead.tolist() == [False, False, True, False, False, False]
    assert torch.equal(W2[:, 2], torch.zeros(3)) and torch.equal(W2[:, [0, 1, 3, 4, 5]], W[:, [0, 1, 3, 4, 5]])
    assert H[2, 2] == 0 and W[0, 2] != 0  # inputs untouched
    Hund = H.clone()
    Hund[2, 2] = 1.0
    lam = 0.1 * torch.diagonal(Hund).mean()
    torch.testing.assert_close(Hd, Hund + lam * torch.eye(6))


def test_inverse_cholesky_is_upper_factor_of_inverse():
    g = torch.Generator().manual_seed(3)
    X = torch.randn(100, 16, generator=g, dtype=torch.float64)
    H = 2 * X.T @ X / 100
    U = inverse_cholesky(H.float(), "l")
    assert torch.equal(U, torch.triu(U))
    torch.testing.assert_close((U.T @ U).double(), torch.linalg.inv(H), rtol=1e-4, atol=1e-5)


def test_inverse_cholesky_retries_with_more_damping():
    H = torch.eye(8)
    H[0, 1] = H[1, 0] = 1.05  # eigenvalue -0.05: not PD, fixed by damping 0.1 (first retry)
    with pytest.raises(Exception):
        torch.linalg.cholesky(H)
    U = inverse_cholesky(H, "l", percdamp=0.01)
    assert bool(torch.isfinite(U).all())
    expect = torch.linalg.inv(H.double() + 0.1 * torch.eye(8, dtype=torch.float64))
    torch.testing.assert_close((U.T @ U).double(), expect, rtol=1e-4, atol=1e-4)


def test_inverse_cholesky_gives_up_naming_layer():
    H = torch.eye(8)
    H[0, 1] = H[1, 0] = 100.0  # eigenvalue -99: no damping up to 10 * mean(diag) fixes it
    with pytest.raises(NumericalError, match=r"blk\.0\.q_proj.*percdamp"):
        inverse_cholesky(H, "blk.0.q_proj", percdamp=0.01)
    Hn = torch.eye(4)
    Hn[1, 1] = float("nan")
    with pytest.raises(NumericalError, match="q"):
        inverse_cholesky(Hn, "q")
