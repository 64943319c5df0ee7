"""``spense.engine.profile`` on CPU: the op class of a kernel's name, and the step's wall time partitioned among
the classes."""

import pytest

from spense.engine.profile import exclusive_ms, op_class


def test_profile_op_classes_of_compiled_and_eager_kernels():
    """Kernel names seen in the H200 profiles (e2e v8, v9) land in the intended op class."""
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


def test_exclusive_ms_gives_each_kernel_what_it_adds_after_the_ones_before():
    """Spans in µs: b starts inside a (dependent launch) and is given only its end past a's; c is wholly inside b
    (nothing); the gap before d is idle; the classes add up to the wall time, 0..60 µs."""
    spans = [(10.0, 30.0, "b"), (0.0, 20.0, "a"), (12.0, 25.0, "c"), (40.0, 60.0, "b")]
    out = exclusive_ms(spans)
    assert out == pytest.approx({"a": 0.020, "b": 0.010 + 0.020, "c": 0.0, "idle": 0.010})
    assert sum(out.values()) == pytest.approx(0.060)


def test_exclusive_ms_of_no_kernels_and_of_one():
    assert exclusive_ms([]) == {}
    assert exclusive_ms([(5.0, 7.5, "x")]) == pytest.approx({"x": 0.0025})
