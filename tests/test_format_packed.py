"""Packed storage: lossless pack/unpack round trips and metadata validation (CPU)."""

import pytest
import torch

from spense.errors import FormatError
from spense.format import PackedSpense, SpenseLayout, dense_count, pack, unpack


def make(N, K, axis, ratio, dtype, seed=0, block=16, zero_groups=True):
    g = torch.Generator().manual_seed(seed)
    dim = N if axis == "rows" else K
    idx = torch.randperm(dim, generator=g)[: dense_count(dim, ratio, block)].sort().values
    lay = SpenseLayout((N, K), axis, idx, block=block)
    w = torch.randn(N, K, generator=g)
    s, d = lay.split(w)
    if s.numel():
        grp = s.reshape(s.shape[0], -1, 4)
        # keep 0, 1 or 2 entries per group (groups with < 2 nonzeros exercise the padding rule)
        nkeep = torch.randint(0 if zero_groups else 2, 3, grp.shape[:2], generator=g)
        rank = torch.rand(grp.shape, generator=g).argsort(-1).argsort(-1)
        s = (grp * (rank < nkeep.unsqueeze(-1))).reshape(s.shape)
    return lay.merge(s, d).to(dtype), lay


@pytest.mark.parametrize("axis", ["rows", "cols"])
@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 1.0])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_roundtrip(axis, ratio, dtype):
    w, lay = make(64, 96, axis, ratio, dtype)
    p = pack(w, lay)
    p.validate()
    R, Ks = p.sparse_shape
    assert p.values.shape == (R, Ks // 2) and p.values.dtype == dtype
    assert p.meta.dtype == torch.uint8 and p.meta.shape == (R, (Ks // 4 + 1) // 2)
    assert p.dense.shape == p.dense_shape
    u = unpack(p)
    assert u.dtype == dtype and torch.equal(u, w)


def test_odd_group_count_and_padding_rule():
    # K=20 -> 5 groups: the last meta byte has a padding high nibble 0x4
    lay = SpenseLayout((2, 20), "cols", [])
    w = torch.zeros(2, 20)
    w[0, 1] = 3.0  # one nonzero at position 1 -> (0, 1) stored
    w[0, 7] = 5.0  # position 3 of group 1 -> (0, 3)
    w[1, 10] = 2.0  # group 2 positions 2 and 3
    w[1, 11] = -1.0
    p = pack(w, lay)
    assert p.meta.shape == (2, 3)
    assert int(p.meta[0, 0]) & 0xF == (0 | 1 << 2)  # group 0: i0=0, i1=1
    assert int(p.meta[0, 0]) >> 4 == (0 | 3 << 2)  # group 1: i0=0, i1=3
    assert int(p.meta[1, 1]) & 0xF == (2 | 3 << 2)
    assert int(p.meta[0, 2]) >> 4 == 0x4
    assert p.values[0, :4].tolist() == [0.0, 3.0, 0.0, 5.0]
    assert torch.equal(unpack(p), w)
    # deterministic: packing twice gives identical bytes
    q = pack(w.clone(), lay)
    assert torch.equal(p.meta, q.meta) and torch.equal(p.values, q.values)


def test_rejects_non_24():
    lay = SpenseLayout((4, 8), "cols", [])
    w = torch.ones(4, 8)
    with pytest.raises(FormatError):
        pack(w, lay)


def _tamper(p, **kw):
    d = dict(layout=p.layout, values=p.values, meta=p.meta, dense=p.dense, scale=p.scale)
    d.update(kw)
    return PackedSpense(**d)


def test_tampered_metadata_refused():
    w, lay = make(32, 64, "cols", 0.25, torch.bfloat16, zero_groups=False)
    p = pack(w, lay)
    m = p.meta.clone()
    m[3, 2] = (m[3, 2] & 0xF0) | (2 | 1 << 2)  # i0 > i1
    with pytest.raises(FormatError, match="out of order or equal"):
        _tamper(p, meta=m).validate()
    m = p.meta.clone()
    m[0, 0] = (m[0, 0] & 0x0F) | ((3 | 3 << 2) << 4)  # i0 == i1
    with pytest.raises(FormatError, match="out of order or equal"):
        _tamper(p, meta=m).validate()
    with pytest.raises(FormatError, match="metadata shape"):
        _tamper(p, meta=p.meta[:, :-1]).validate()
    with pytest.raises(FormatError, match="dtype"):
        _tamper(p, meta=p.meta.to(torch.int16)).validate()
    with pytest.raises(FormatError, match="values shape"):
        _tamper(p, values=p.values[:-1]).validate()
    with pytest.raises(FormatError, match="dense shape"):
        _tamper(p, dense=p.dense[:, :-1]).validate()


def test_padding_nibble_checked():
    lay = SpenseLayout((2, 12), "cols", [])  # 3 groups -> padding nibble
    p = pack(torch.zeros(2, 12), lay)
    m = p.meta.clone()
    m[1, 1] = m[1, 1] & 0x0F | (1 | 2 << 2) << 4
    with pytest.raises(FormatError, match="padding"):
        _tamper(p, meta=m).validate()


def test_fp8_pack_close():
    w, lay = make(32, 64, "rows", 0.25, torch.float32)
    p = pack(w, lay, fp8=True)
    p.validate()
    assert p.values.dtype == torch.float8_e4m3fn and p.scale.shape == (32,)
    u = unpack(p, dtype=torch.float32)
    assert ((u == 0) == (w == 0)).all()  # structure kept
    assert (u - w).norm() / w.norm() < 0.05


# -- where every value and metadata bit goes (element by element, no sorting) -----------------------
def _expected_group(vals4: list[float]) -> tuple[list[float], int, int]:
    """The documented rule for one group of 4: kept positions = the nonzero ones, padded with the
    lowest unused positions, in increasing order; values stored in that order."""
    nz = [i for i, v in enumerate(vals4) if v != 0]
    pos = sorted(nz + [i for i in range(4) if i not in nz][: 2 - len(nz)])
    return [vals4[pos[0]], vals4[pos[1]]], pos[0], pos[1]


@pytest.mark.parametrize("axis,ratio", [("cols", 0.0), ("cols", 0.25), ("rows", 0.5)])
def test_pack_puts_every_value_and_meta_bit_in_place(axis, ratio):
    w, lay = make(24, 72, axis, ratio, torch.float32, seed=3, block=8)  # Ks/4 odd for cols 0.0 (18 groups)
    p = pack(w, lay)
    s, _ = lay.split(w)
    R, Ks = s.shape
    G = Ks // 4
    assert p.values.shape == (R, Ks // 2) and p.meta.shape == (R, (G + 1) // 2)
    for r in range(R):
        for g in range(G):
            vals, i0, i1 = _expected_group(s[r, 4 * g:4 * g + 4].tolist())
            assert p.values[r, 2 * g].item() == vals[0] and p.values[r, 2 * g + 1].item() == vals[1], (r, g)
            byte = int(p.meta[r, g // 2])
            nib = (byte >> 4) if g % 2 else (byte & 0xF)  # group 2j low nibble, 2j+1 high nibble
            assert nib & 0b11 == i0 and (nib >> 2) & 0b11 == i1, (r, g, hex(byte))
        if G % 2:
            assert int(p.meta[r, -1]) >> 4 == 0x4  # padding nibble
    # the dense region is the plain matrix of the dense rows / columns
    idx = lay.dense_idx
    assert torch.equal(p.dense, w[:, idx] if axis == "cols" else w[idx, :])


def test_mmasp_kernel_layout_positions():
    """runtime/mmasp.to_kernel_layout: lane ``l = 4g + t`` of row tile ``T``, K step ``s``, mma ``j`` holds
    the m16n8k16 A fragment (elements ``k = 4q + 2h + e`` = row ``16T + g + 8h``, compressed column
    ``32s + 16j + 8q + 2t + e``) and the metadata word of mma ``t >> 1``: bits ``16·(t & 1)`` .. of
    row ``g``'s 32-bit word (low half) and of row ``g + 8``'s (high half), nibble ``q`` of a row word =
    group ``8·(2s + j) + q``."""
    from spense.runtime.mmasp import to_kernel_layout

    w, lay = make(32, 128, "cols", 0.0, torch.bfloat16, seed=5, block=16)
    p = pack(w, lay)
    kw = to_kernel_layout(p, "cpu")
    R, Ks = p.sparse_shape
    Ss = Ks // 64
    sv = kw.sv.view(torch.bfloat16).reshape(-1) if kw.sv.dtype != torch.bfloat16 else kw.sv.reshape(-1)
    sm = kw.sm.reshape(-1).to(torch.int64) & 0xFFFFFFFF
    G = Ks // 4
    nib = [[(int(p.meta[r, g // 2]) >> (4 * (g % 2))) & 0xF for g in range(G)] for r in range(R)]

    def row_word(r: int, s: int, j: int) -> int:
        return sum(nib[r][8 * (2 * s + j) + q] << (4 * q) for q in range(8))

    for T in range(R // 16):
        for s in range(Ss):
            for lane in range(32):
                g, t = lane // 4, lane % 4
                for j in range(2):
                    for k in range(8):
                        q, h, e = k // 4, (k // 2) % 2, k % 2
                        want = p.values[16 * T + g + 8 * h, 32 * s + 16 * j + 8 * q + 2 * t + e]
                        got = sv[((((T * Ss + s) * 2 + j) * 32 + lane) * 8) + k]
                        assert got.item() == want.item(), (T, s, j, lane, k)
                j, half = t >> 1, t & 1
                want = ((row_word(16 * T + g, s, j) >> (16 * half)) & 0xFFFF) | \
                    (((row_word(16 * T + g + 8, s, j) >> (16 * half)) & 0xFFFF) << 16)
                assert int(sm[(T * Ss + s) * 32 + lane]) == want, (T, s, lane)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -1.0])
def test_fp8_checkpoint_with_bad_or_missing_scales_is_refused(bad):
    from spense.format import PackedSpense, SpenseLayout, pack

    lay = SpenseLayout((8, 16), axis="cols", dense_idx=torch.arange(4), block=4)
    w = lay.merge(torch.tensor([[1.0, 0, 2.0, 0]]).repeat(8, 3), torch.randn(8, 4))
    p = pack(w, lay, fp8=True)
    tensors = {"w.values": p.values, "w.meta": p.meta, "w.dense": p.dense, "w.scale": p.scale.clone()}
    assert PackedSpense.from_tensors(lay, dict(tensors), "w").scale is not None  # intact: accepted
    tensors["w.scale"][3] = bad
    with pytest.raises(FormatError, match="non-finite or not positive"):
        PackedSpense.from_tensors(lay, tensors, "w")
    del tensors["w.scale"]
    with pytest.raises(FormatError, match="scales"):
        PackedSpense.from_tensors(lay, tensors, "w")
