"""``SpenseLinear``: drop-in ``nn.Linear`` running a packed Spense weight.

Backends (``backend=``):

* ``reference`` - unpack to the dense-with-zeros weight, ``F.linear``; any device; the correctness oracle. On a
  GPU the weight is transient (never cached); on the CPU it is unpacked once and kept while the packed buffers are
  unchanged.
* ``cusparselt`` - sparse region through ``torch._cslt_compress`` / ``torch._cslt_sparse_mm``,
  dense region through cuBLAS (rows: outputs placed by ``index_copy_``; cols: gathered inputs, the
  dense GEMM accumulates onto the sparse result with ``addmm``).  No host sync: CUDA-graph safe.
* ``triton`` - the fused Triton decode kernel (one launch, M <= 64; larger M: cusparselt).
* ``mmasp`` - the fused CUDA ``mma.sp`` decode kernel (one launch, M <= 64; larger M: cusparselt).
  BF16 weights, or FP8 weights (e4m3 + per-channel scale) converted to bf16 in registers
  (weight-only FP8: bf16 activations, fp32 accumulation).
* ``auto`` - per call by M: the measured-fastest of {mmasp, triton, cusparselt, dense} for that
  shape and M bucket (``tune()`` measures; without it :mod:`spense.runtime.autotune` decides: the
  built-in table on the GPU it was measured on, a per-device cache elsewhere, else safe rules).
  ``dense`` = a transient unpack into the allocator's workspace + ``F.linear`` (no dense copy is
  ever kept); where it is chosen it is reported (``self.fallbacks`` + one warning).

Memory: a layer holds one copy of its weight.  :meth:`SpenseLinear.compact` (the engine calls it on
CUDA) replaces the packed buffers by the mma.sp kernel layout; then M <= 64 runs the kernel, larger
M (prefill) a transient unpack of the kernel layout (on CUDA two Triton launches,
:mod:`spense.runtime.unpack`; the exact reference :func:`spense.runtime.mmasp.unpack_kernel_layout`
in pure tensor ops) + one dense GEMM; the unpacked buffer is freed after the call.

``forward`` calls one opaque custom op, ``torch.ops.spense.linear_apply(x2, xf, handle)``, so that
``torch.compile`` traces a model with Spense layers without graph breaks (the op dispatches to the
layer's backend; its fake implementation gives the output shape).  ``xf`` is x in the mma.sp
kernel's fragment order for the decode sizes fixed by :meth:`SpenseLinear.plan` (built outside the op,
so that torch.compile fuses it into the op producing x), else empty.

No CUDA (CPU tensors): fast backends fall back to ``reference`` with a one-line warning.
A pre-sm80 GPU: :class:`~spense.errors.DeviceError` for ``cusparselt``/``triton``/``mmasp``/``auto``.
"""

from __future__ import annotations

import itertools
import warnings
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from spense.errors import DeviceError, FormatError, InputError
from spense.format import PackedSpense, SpenseLayout, pack, unpack
from spense.runtime.linear_plan import InputPlan
from spense.runtime.shapes import DECODE_MAX_M, bucket as _bucket
from spense.runtime.wgsp import (WGSD_MAX_M, sk_workspace, wgsd_min_m_for, wgsp_forward, wgsp_layer_applies,
                                 wgsp_min_m)
from spense.runtime.xops import F16_X_SCALE, f16_operand, x_perm

BACKENDS = ("reference", "cusparselt", "triton", "mmasp", "auto")
FAST = ("cusparselt", "triton", "mmasp", "auto")
_warned: set[str] = set()


def _warn_once(msg: str) -> None:
    if msg not in _warned:
        _warned.add(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


def _check_device(dev: torch.device, backend: str) -> bool:
    """True when the fast path can run on ``dev``; False -> reference (warned)."""
    if dev.type != "cuda":
        _warn_once(f"spense: {backend} backend needs a CUDA GPU; using the reference backend on {dev}")
        return False
    major, minor = torch.cuda.get_device_capability(dev)
    if major < 8:
        raise DeviceError(
            f"spense: the {backend} backend needs an sm80+ GPU (sparse tensor cores); "
            f"{torch.cuda.get_device_name(dev)} is sm{major}{minor}. Use backend='reference'."
        )
    return True


# -- the custom op: one opaque call per layer, so torch.compile traces without graph breaks --------
_LAYERS: "weakref.WeakValueDictionary[int, SpenseLinear]" = weakref.WeakValueDictionary()
_HANDLES = itertools.count(1)


def _out_dtype(x: torch.Tensor) -> torch.dtype:
    return x.dtype if x.dtype.is_floating_point else torch.bfloat16


@torch.library.custom_op("spense::linear_apply", mutates_args=())
def linear_apply(x2: torch.Tensor, xf: torch.Tensor, handle: int) -> torch.Tensor:
    """``x2 @ W.T`` of the registered layer ``handle`` (no bias), on the layer's backend.  ``xf``: x in
    the mma.sp kernel's fragment order, or x's f16 operand for the stream-K form (variant bit 2048), both
    built in :meth:`SpenseLinear.forward` so that torch.compile fuses them into the op producing x; or empty."""
    layer = _LAYERS.get(handle)
    if layer is None:
        raise InputError(f"spense: SpenseLinear handle {handle} is not alive")
    return layer._apply_backend(x2, xf)


@linear_apply.register_fake
def _linear_apply_fake(x2: torch.Tensor, xf: torch.Tensor, handle: int) -> torch.Tensor:
    layer = _LAYERS[handle]
    return x2.new_empty(x2.shape[0], layer.out_features, dtype=_out_dtype(x2))


class SpenseLinear(InputPlan, nn.Module):
    """``y = x @ W.T (+ bias)`` with ``W`` stored packed (see :mod:`spense.format`)."""

    def __init__(self, packed: PackedSpense, bias: torch.Tensor | None = None, backend: str = "auto",
                 name: str = ""):
        super().__init__()
        if backend not in BACKENDS:
            raise InputError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
        packed.validate()
        self.layout = packed.layout
        self.in_features = packed.shape[1]
        self.out_features = packed.shape[0]
        self.backend = backend
        self.name = name
        self.register_buffer("values", packed.values)
        self.register_buffer("meta", packed.meta)
        self.register_buffer("dense", packed.dense)
        self.register_buffer("scale", packed.scale)
        dev = packed.values.device
        self.register_buffer("sparse_idx", self.layout.sparse_idx.to(dev))
        self.register_buffer("dense_idx", self.layout.dense_idx.to(dev))
        self.bias = nn.Parameter(bias.detach().clone(), requires_grad=False) if bias is not None else None
        self._cache: dict = {}
        self._kernel = None  # KernelWeights once compact(): then the only copy of the weight
        self._fused = False  # a member of a fused projection (spense.runtime.fuse): it never compacts
        self._members: list = []  # the layers whose rows this one holds (a fused projection)
        self._frag_buckets: set[int] = set()  # M buckets whose x fragments forward() builds (plan())
        self._perm_buckets: set[int] = set()  # M buckets for which forward() passes x_perm of x (plan())
        self.register_buffer("_xperm", None, persistent=False)  # the kernel's column gather, once planned
        self.handle = next(_HANDLES)
        _LAYERS[self.handle] = self
        self.choice: dict[int, str] = {}  # M bucket -> backend (auto)
        self.fallbacks: dict[int, str] = {}  # M bucket -> reason (auto chose dense)
        self.mmasp_cfg: dict[int, tuple[int, ...]] = {}  # M bucket -> (RT, warps[, stages])

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_linear(cls, lin: nn.Linear, layout: SpenseLayout, backend: str = "auto", fp8: bool = False,
                    name: str = "") -> "SpenseLinear":
        w = lin.weight.detach()
        p = pack(w, layout, fp8=fp8)
        return cls(p, lin.bias, backend=backend, name=name)

    @property
    def packed(self) -> PackedSpense:
        if self._kernel is not None:  # compacted: rebuild the packed form from the kernel layout
            w = self.dense_weight(torch.float32 if self.scale is None else torch.bfloat16)
            return pack(w.to(self.values.dtype) if self.scale is None else w, self.layout, fp8=self.scale is not None)
        return PackedSpense(self.layout, self.values, self.meta, self.dense, self.scale)

    @property
    def weight_dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.scale is not None else self.values.dtype

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, axis={self.layout.axis}, "
                f"dense={self.layout.n_dense}, dtype={self.values.dtype}, backend={self.backend}"
                + (", compact" if self._kernel is not None else ""))

    def _apply(self, fn, recurse=True):
        if self._kernel is not None:
            raise InputError("a compacted SpenseLinear cannot be moved or cast; load it on its device")
        self._cache = {}
        return super()._apply(fn, recurse)

    def weight_bytes(self) -> int:
        """GPU bytes of the weight as held (kernel layout after :meth:`compact`, else packed)."""
        if self._kernel is not None:
            kw = self._kernel
            ts = [kw.sv, kw.sm, kw.dv, kw.sblk, kw.dblk, kw.out_row, kw.wscale]
            ts += [kw.xperm] if kw.xperm is not None else []
        else:
            ts = [self.values, self.meta, self.dense] + ([self.scale] if self.scale is not None else [])
        ts += [self.sparse_idx, self.dense_idx] + ([self.bias] if self.bias is not None else [])
        return sum(t.numel() * t.element_size() for t in ts)

    # -- one copy of the weight -------------------------------------------------------------------
    def compact(self) -> "SpenseLinear":
        """Keep only the mma.sp kernel layout (CUDA, bf16 or FP8 weights): the packed buffers are
        released.  No-op elsewhere (CPU / fp16 / fp32 weights keep the packed form)."""
        if self._kernel is not None or self._fused or self.values.device.type != "cuda":
            return self
        if self.scale is None and self.values.dtype != torch.bfloat16:
            return self
        self._kernel = self._kw()
        for mod in [self] + self._members:  # members hold row views of these buffers: released too
            for name in ("values", "meta", "dense"):
                buf = getattr(mod, name)
                setattr(mod, name, buf.new_empty(0))
        from spense.runtime.mmasp import layout_indices

        # prefill unpacks through these; built here so that no call copies from the host later
        self._cache = {"unpack_idx": layout_indices(self.layout, self._kernel.sv.device)}
        # stream-K's workspace made now if any M may take the warpgroup kernel (a compiled prefill of <= 64
        # tokens too, unplanned): cudagraph trees warm a graph up uncaptured but in the graph's memory pool,
        # where a workspace made then would be memory the pool does not track (the compiled prefill failed so)
        self._wgsd_serves(WGSD_MAX_M)
        w = self._unpack_kernel(check=True)  # compiled (and checked) here, outside any graph capture
        if self._kernel.fp8:  # the e4m3 prefill's unpack too (SPENSE_FP8_PREFILL=fp8), checked against w
            from spense.runtime.unpack import fp8_prefill_enabled, unpack_weight_e4m3

            if fp8_prefill_enabled():
                unpack_weight_e4m3(self._kernel, self.layout, ref=w)
        return self

    # -- per-backend state (built lazily, once per device) -----------------------------------
    def dense_weight(self, dtype=None) -> torch.Tensor:
        """The dense-with-zeros weight, built for this call only (never cached; the CPU's reference path keeps
        one: :meth:`_host_weight`)."""
        dtype = dtype or self.weight_dtype
        if self._kernel is None:
            return unpack(self.packed, dtype=dtype)
        return self._unpack_kernel().to(dtype)

    def _unpack_kernel(self, check: bool = False) -> torch.Tensor:
        """``W`` ``(N, K)`` bf16 from the kernel layout, a transient buffer
        (:func:`spense.runtime.unpack.unpack_weight`: Triton on CUDA, the tensor-op reference else)."""
        from spense.runtime.mmasp import layout_indices
        from spense.runtime.unpack import unpack_weight

        if "unpack_idx" not in self._cache:  # normally set by compact(), outside any graph capture
            self._cache["unpack_idx"] = layout_indices(self.layout, self._kernel.sv.device)
        return unpack_weight(self._kernel, self.layout, self._cache["unpack_idx"], check)

    def _cslt(self):
        if "cslt" not in self._cache:
            R, Ks = self.packed.sparse_shape
            if self.scale is not None:
                raise FormatError("cusparselt backend: FP8 weights are served by the triton backend")
            from spense.format import decompress_24

            s = decompress_24(self.values, self.meta, Ks).contiguous()
            st = {"n": R, "ok": False}
            if R and Ks:
                try:
                    st["packed"] = torch._cslt_compress(s)
                    st["ok"] = True
                except Exception as e:  # shape/dtype not supported by cuSPARSELt
                    _warn_once(f"spense: cuSPARSELt refused {self.name or 'layer'} {tuple(s.shape)}: {e}; "
                               f"dense GEMM for its sparse region")
                    st["s_dense"] = s
            self._cache["cslt"] = st
        return self._cache["cslt"]

    def _kw(self):
        if self._kernel is not None:
            return self._kernel
        if "kw" not in self._cache:
            from spense.runtime.mmasp import to_kernel_layout

            self._cache["kw"] = to_kernel_layout(self.packed, self.values.device)
        return self._cache["kw"]

    def _triton_state(self):
        if "tri" not in self._cache:
            dev = self.values.device
            lay = self.layout
            st = {
                "sidx": self.sparse_idx.to(device=dev, dtype=torch.int32).contiguous(),
                "didx": self.dense_idx.to(device=dev, dtype=torch.int32).contiguous(),
            }
            if lay.axis == "rows":
                st["orow_s"], st["orow_d"] = st["sidx"], st["didx"]
            else:
                st["orow_s"] = torch.arange(self.out_features, device=dev, dtype=torch.int32)
                st["orow_d"] = st["orow_s"]
            self._cache["tri"] = st
        return self._cache["tri"]

    # -- backends ------------------------------------------------------------------------------
    def _out(self, M: int, x2: torch.Tensor) -> torch.Tensor:
        dt = x2.dtype if x2.dtype in (torch.bfloat16, torch.float16, torch.float32) else torch.bfloat16
        return torch.empty(M, self.out_features, dtype=dt, device=x2.device)

    def forward_reference(self, x2: torch.Tensor) -> torch.Tensor:
        w = self._host_weight() if x2.device.type == "cpu" else self.dense_weight()
        return F.linear(x2.to(w.dtype), w)

    def _host_weight(self) -> torch.Tensor:
        """On the CPU, where only the reference runs: the dense-with-zeros weight unpacked once and kept while the
        packed buffers are unchanged (their in-place version counters), instead of unpacked at every call. A
        pruned SmolLM2-135M decodes 5.9x faster on 2 cores so (2.8 -> 16.4 tokens/s; its dense model: 19.3)."""
        bufs = [self.values, self.meta, self.dense] + ([self.scale] if self.scale is not None else [])
        key = tuple(b._version for b in bufs) + tuple(b.data_ptr() for b in bufs)
        hit = self._cache.get("host_w")
        if hit is None or hit[0] != key:
            hit = self._cache["host_w"] = (key, self.dense_weight())
        return hit[1]

    def forward_dense(self, x2: torch.Tensor) -> torch.Tensor:
        """Transient unpack (compacted: from the kernel layout) + one dense GEMM; nothing is cached.
        Compacted FP8 layers under ``SPENSE_FP8_PREFILL=fp8``: the e4m3 weights through the FP8 dense
        baseline's kernel (:func:`spense.runtime.unpack.fp8_prefill_enabled`).  Compacted bf16 layers
        from ``SPENSE_WGSP_MIN_M`` tokens: the kernel layout itself on sparse warpgroup MMA where it
        applies (:func:`spense.runtime.wgsp.wgsp_forward`; by default above M = 64)."""
        if self._kernel is not None and 0 < wgsp_min_m() <= x2.shape[0]:
            y = wgsp_forward(self._kernel, x2)  # the sparse warpgroup MMA GEMM where it applies, else None
            if y is not None:
                return y
        if self._kernel is not None and self._kernel.fp8 and x2.is_cuda:
            from spense.runtime.unpack import fp8_prefill_enabled, unpack_weight_e4m3

            w8 = unpack_weight_e4m3(self._kernel, self.layout) if fp8_prefill_enabled() else None
            if w8 is not None:
                from spense.runtime.fp8 import choose, run_kind

                kind = choose(self.out_features, self.in_features, x2.shape[0], x2.device)
                return run_kind(kind, x2, w8, self._kernel.wscale, torch.bfloat16)
        return F.linear(x2, self.dense_weight(x2.dtype))

    def forward_cusparselt(self, x2: torch.Tensor) -> torch.Tensor:
        st = self._cslt()
        lay = self.layout
        M = x2.shape[0]
        d = lay.n_dense
        xs = x2 if lay.axis == "rows" else x2.index_select(1, self.sparse_idx)
        if st["n"] and xs.shape[1]:
            Mp = (M + 15) // 16 * 16
            xin = xs if Mp == M else F.pad(xs, (0, 0, 0, Mp - M))
            if st["ok"]:  # (R, Mp): computing in the transposed space keeps cuSPARSELt on its fast path
                ysT = torch._cslt_sparse_mm(st["packed"], xin.t())[:, :M]
            else:
                ysT = F.linear(xin, st["s_dense"]).t()[:, :M]
        else:
            ysT = None
        if lay.axis == "rows":
            if d == 0:
                return ysT.t()
            y = self._out(M, x2)
            if ysT is not None:
                y.index_copy_(1, self.sparse_idx, ysT.t())
            y.index_copy_(1, self.dense_idx, F.linear(x2, self.dense))
            return y
        if d == 0:
            return ysT.t()
        xd = x2.index_select(1, self.dense_idx)
        if ysT is None:
            return F.linear(xd, self.dense)
        return torch.addmm(ysT, self.dense, xd.t()).t()

    def forward_triton(self, x2: torch.Tensor, x_scale: torch.Tensor | None = None,
                       out: torch.Tensor | None = None) -> torch.Tensor:
        """The Triton decode kernel (op ``spense::triton_decode``) on the packed buffers, M <= 64."""
        from spense.runtime.triton_kernels import triton_decode_packed

        M = x2.shape[0]
        if M > DECODE_MAX_M:
            raise InputError(f"the triton decode kernel handles M <= {DECODE_MAX_M}, got {M}")
        if self._kernel is not None:
            raise InputError("the triton backend needs the packed buffers; this layer is compacted")
        p = PackedSpense(self.layout, self.values, self.meta, self.dense, self.scale)
        y = triton_decode_packed(p, x2.contiguous(), x_scale, tables=self._triton_state())
        if out is not None:
            out.copy_(y)
            return out
        return y

    def forward_mmasp(self, x2: torch.Tensor, out: torch.Tensor | None = None,
                      xf: torch.Tensor | None = None, xperm: bool = False, xh: bool = False) -> torch.Tensor:
        """The mma.sp kernel on x2 (bf16; ``xh``: x2 is x's f16 operand, FP8 weights only, :meth:`_mmasp_f16`);
        ``xf``: x's fragments, or its f16 operand's; ``xperm``: x2 is :func:`~spense.runtime.xops.x_perm`'d."""
        from spense.runtime.mmasp import mmasp_forward

        M = x2.shape[0]
        if M > DECODE_MAX_M:
            raise InputError(f"the mmasp decode kernel handles M <= {DECODE_MAX_M}, got {M}")
        if self.scale is None and self.values.dtype != torch.bfloat16:
            raise FormatError("mmasp backend serves bf16 or FP8 (e4m3 + scale) weights")
        x2 = (x2 if xh and x2.dtype == torch.float16 else x2.to(torch.bfloat16)).contiguous()
        y = out if out is not None else torch.empty(M, self.out_features, dtype=torch.bfloat16, device=x2.device)
        cfg = self.mmasp_cfg.get(_bucket(M), (None, None))
        return mmasp_forward(self._kw(), x2, y, *cfg, xf=xf, xperm=xperm)

    # -- dispatch --------------------------------------------------------------------------------
    def _auto_choice(self, M: int) -> str:
        b = _bucket(M)
        if b in self.choice:
            return self.choice[b]
        from spense.runtime.autotune import default_choice

        c = default_choice(self, M)
        if self._kernel is not None:  # compacted: the kernel, or the transient path above 64
            c = "mmasp" if M <= DECODE_MAX_M else "dense"
        self.choice[b] = c
        if c == "mmasp" and b not in self.mmasp_cfg:
            from spense.runtime.autotune import default_mmasp_cfg

            cfg = default_mmasp_cfg(self, M)
            if cfg is not None:
                self.mmasp_cfg[b] = cfg
        if c == "dense" and self._kernel is None:  # (compacted: its prefill path by design, not a fallback)
            self.fallbacks[b] = "dense F.linear is faster than the sparse kernels for this shape/M"
            # once per shape and M, not per layer: a model's prefill would print a line for every linear
            _warn_once(f"spense: {self.out_features}x{self.in_features} layers at M~{b}: dense fallback (sparse "
                       f"kernels do not win here)")
        return c

    def run_backend(self, name: str, x2: torch.Tensor, xf: torch.Tensor | None = None) -> torch.Tensor:
        M = x2.shape[0]
        if name == "reference":
            return self.forward_reference(x2)
        if name == "dense":
            return self.forward_dense(x2)
        if self._kernel is not None:  # compacted: only the mma.sp kernel layout is held
            if M > DECODE_MAX_M:
                return self.forward_dense(x2)
            if not self._wgsd_serves(M):
                return self.forward_mmasp(x2, xf=xf)  # (xf: the fragments of x or of its f16 operand)
            xh = xf if xf is not None and xf.dtype == torch.float16 else None  # x's f16 operand (forward)
            y = wgsp_forward(self._kernel, x2.to(torch.bfloat16) if xh is None else xh, decode=True)
            if y is not None:
                return y
            # the kernel's refusal (never on a layer it was checked for): x back from its f16 operand where one
            # came, as x2 may then be a placeholder (attn_operand's FORM_F16); exact for |x| in [2^-6, 2^24)
            return self.forward_mmasp(x2 if xh is None else (xh.float() / F16_X_SCALE).to(torch.bfloat16),
                                      xf=xf if xh is None else None)
        if name in ("triton", "mmasp") and M > DECODE_MAX_M:
            name = "cusparselt"
        if name == "cusparselt" and self.scale is not None:
            name = "mmasp" if M <= DECODE_MAX_M else "dense"
            if name == "dense":
                return self.forward_dense(x2)
        if name == "mmasp" and self.scale is None and self.values.dtype != torch.bfloat16:
            name = "triton"
        if name == "cusparselt" and self.values.dtype == torch.float32:
            return self.forward_dense(x2)
        if name == "mmasp":
            return self.forward_mmasp(x2, xf=xf)
        return getattr(self, f"forward_{name}")(x2)

    def _wgsd_serves(self, M: int) -> bool:
        """Whether this compacted layer runs M tokens through the sparse warpgroup MMA kernel's decode form
        rather than the mma.sp kernel: M at least :func:`~spense.runtime.wgsp.wgsd_min_m_for` this layer's
        shape (``SPENSE_WGSD_MIN_M``, default 17; ``SPENSE_WGSD_MIN_M_LARGE``, default 9, for large layers) and
        the kernel applies to the weights (checked once)."""
        if self._kernel is None or not 0 < wgsd_min_m_for(self.out_features, self.in_features) <= M:
            return False
        if "wgsd" not in self._cache:
            self._cache["wgsd"] = wgsp_layer_applies(self._kernel, self.in_features, decode=True)
            if self._cache["wgsd"]:  # stream-K's workspace made here, before any CUDA graph is captured
                sk_workspace(self._kernel.sv.device)
        return self._cache["wgsd"]

    def _apply_backend(self, x2: torch.Tensor, xf: torch.Tensor | None = None) -> torch.Tensor:
        """The body of ``spense::linear_apply``: pick the backend for ``x2`` and run it."""
        backend = self.backend
        if backend != "reference" and not _check_device(x2.device, backend):
            backend = "reference"
        if x2.shape[0] == 0:
            return x2.new_zeros(0, self.out_features, dtype=_out_dtype(x2))
        if _bucket(x2.shape[0]) in self._perm_buckets and xf is not None and xf.dtype == torch.float16:
            # forward() passed x itself and x_perm of x's f16 operand (plan(), xops.f16_x)
            if backend in ("auto", "mmasp"):
                return self.forward_mmasp(xf, xperm=True, xh=True).to(_out_dtype(x2))
            xf = None
        elif _bucket(x2.shape[0]) in self._perm_buckets:  # forward() passed x_perm of x (plan())
            if backend in ("auto", "mmasp"):
                return self.forward_mmasp(x2, xperm=True).to(_out_dtype(x2))
            x2 = x_perm(x2)  # its own inverse
        if backend == "auto":
            backend = self._auto_choice(x2.shape[0])
        return self.run_backend(backend, x2, xf).to(_out_dtype(x2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise InputError(f"expected input with last dim {self.in_features}, got {tuple(x.shape)}")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        perm, f16, only = self.input_plan(x2.shape[0], x2.is_cuda)
        xin = x2.new_empty(x2.shape) if only else x2
        if perm and f16:
            y = torch.ops.spense.linear_apply(xin, x_perm(f16_operand(x2.to(torch.bfloat16))), self.handle)
        elif perm:  # plain tensor ops: torch.compile fuses them upstream
            y = torch.ops.spense.linear_apply(x_perm(x2), x2.new_empty(0, dtype=torch.bfloat16), self.handle)
        else:
            y = torch.ops.spense.linear_apply(xin, self._fragments(x2), self.handle)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)
        return y.reshape(*lead, self.out_features)

    # -- measurement -----------------------------------------------------------------------------
    def tune(self, ms=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048), candidates=None, reps: int = 20):
        """Measure candidates per M bucket (CUDA events, CUDA-graph replays) and fix ``auto``'s choice."""
        from spense.runtime.autotune import tune_layer

        return tune_layer(self, ms, candidates, reps)

