"""``spense.engine.measure`` on CPU: the benchmark stage's rows and variants, the whole-layer variant, and the
profile's op classes."""

import pytest
import torch

from spense.engine.sparsify import block_linears
from spense.errors import InputError
from spense.runtime.linear import SpenseLinear

CPU = torch.device("cpu")


def test_measure_stage_cli_cpu(tmp_path):
    """The benchmark stage entry point (what benchmarks/run_e2e.sh runs) on CPU with a tiny shape:
    every variant kind gives rows with the issue's fields; FP8 dense linears are Fp8Linear."""
    import json

    from spense.engine import measure
    from spense.runtime.fp8 import Fp8Linear

    out = tmp_path / "rows.jsonl"
    assert measure.main(["--model", "qwen3-tiny", "--device", "cpu", "--variants", "dense,spense0.25-fp8,dense-fp8",
                         "--batches", "1", "--prompt-len", "16", "--gen", "6", "--check-tokens", "4",
                         "--out", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["variant"] for r in rows] == ["dense", "spense0.25-fp8", "dense-fp8"]
    for r in rows:
        for k in ("step_ms", "floor_ms", "weight_bytes", "linear_weight_bytes", "dense_linear_weight_bytes",
                  "peak_mem_bytes", "decode_tok_s", "tokens_identical"):
            assert k in r
    assert rows[1]["linear_weight_bytes"] < rows[0]["linear_weight_bytes"]
    m, _ = measure.build_variant("qwen3-tiny", "dense-fp8", CPU, None, 0, "cols")
    assert all(isinstance(x, Fp8Linear) for x in block_linears(m).values())
    with pytest.raises(InputError):
        measure.parse_variant("sparse0.3")


def test_whole_layer_variant_keeps_first_layers_dense_and_prunes_the_rest():
    """whole<share>: the first ⌊share·L⌋ decoder layers keep their dense nn.Linear (cuBLAS), every other
    block linear is a pure 2:4 SpenseLinear; the FP8 form puts the kept layers on the FP8 dense baseline."""
    from spense.engine import measure
    from spense.engine.sparsify import whole_layer_names
    from spense.runtime.fp8 import Fp8Linear

    assert measure.parse_variant("whole0.5") == (0.0, False)
    assert measure.whole_share("whole0.5-fp8") == 0.5 and measure.whole_share("spense0.25") is None
    m, _ = measure.build_variant("qwen3-tiny", "whole0.5", CPU, None, 0, "cols")
    lins = block_linears(m)
    keep = set(whole_layer_names(m, 0.5))
    n_layers = len(m.model.layers)
    assert keep and {int(n.split(".")[2]) for n in keep} == set(range(n_layers // 2))
    for name, mod in lins.items():
        if name in keep:
            assert type(mod) is torch.nn.Linear, name
        else:
            assert isinstance(mod, SpenseLinear) and mod.layout.n_dense == 0, name
    m8, _ = measure.build_variant("qwen3-tiny", "whole0.5-fp8", CPU, None, 0, "cols")
    assert all(isinstance(mod, Fp8Linear) == (n in keep) for n, mod in block_linears(m8).items())


def test_profile_op_classes_of_compiled_and_eager_kernels():
    """Kernel names seen in the H200 profiles (e2e v8, v9) land in the intended op class."""
    from spense.engine.measure import op_class

    cases = {
        "void spense_mmasp_kernel<1, 1, false, 4, 1>(uint4 const*, unsigned int const*": "sparse kernel",
        "nvjet_sm90_tst_192x8_64x8_2x1_v_bz_TNT": "dense gemm",
        "triton_red_fused__unsafe_view_mm_mul_silu_split_t_view_11": "dense gemm",
        "cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7_64x128x128_4x": "attention",
        "void gemmSN_NN_kernel<float, 128, 2, 4, 8, 4, 4, false, cublasGemvTensorStridedB": "attention",
        "triton_per_fused__safe_softmax_add_arange_bitwise_and_bitwise_not": "attention",
        "_decode_attn_merge": "attention",  # spense::decode_attention's two Triton kernels
        "_decode_attn_split": "attention",
        "void spense_mmasp_xs_kernel<4, false>(uint4 const*, unsigned int const*": "sparse kernel",
        # the warpgroup forms and the FP8 dense split-K sum (H200 profile, twenty-third stop: both were "other")
        "void spense_wgsd_sk_kernel<18, 1, true, 32>(std::conditional<((1)&(512))!=(0), W": "sparse kernel",
        "void spense_wgsp_ws_kernel<8, 1, 1, 64, 2>(CUtensorMap, CUtensorMap": "sparse kernel",
        "sum_splits_kernel": "stream gemm",
        "void at::native::index_elementwise_kernel<128, 4, at::native::index_copy_kernel_": "unpack/copy",
        "triton_poi_fused__to_copy_add_cat_clamp_min_cos_mean_mul_neg_pow_rsqrt_sin_split": "other",
        # norms that read a custom op's output carry its name (H200 profile, thirty-second stop: "dense gemm" and
        # "stream gemm" before); the streaming kernel itself stays a stream gemm
        "triton_red_fused__to_copy_add_dense_stream_mm_mean_mul_pow_rsqrt_view_10": "other",
        "triton_poi_fused_dense_stream_mm_mul_silu_split_view_4": "other",
        "triton_red_fused__to_copy_add_fp8_w8a16_mm_mean_mul_pow_rsqrt_view_9": "other",
        "triton_poi_fused__to_copy_fp8_w8a16_mm_mul_silu_split_view_4": "other",
        "triton_red_fused__to_copy_add_clone_linear_apply_mean_mul_permute_pow_rsqrt_view": "other",
        "w8a16_kernel": "stream gemm",
    }
    assert {n: op_class(n) for n in cases} == cases
