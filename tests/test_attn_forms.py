"""``spense.runtime.attn_forms`` on CPU: the output forms' shapes, dtypes and refusals, and ``as_form`` as the xops
it stands for (the kernels' stores are checked against it in tests/test_attention.py)."""

import pytest
import torch

from spense.runtime.attn_forms import FORM_F16, FORM_FRAG, FORM_PERM, as_form, check_form, form_dtype, form_shape
from spense.runtime.xops import f16_operand, x_fragments, x_perm


def test_form_shape_and_dtype():
    shape = (8, 2, 4, 32)  # B, H, G, D: rows of K = 256
    assert form_shape(0, shape) == form_shape(FORM_PERM, shape) == form_shape(FORM_F16, shape) == shape
    assert form_shape(FORM_FRAG, shape) == form_shape(FORM_FRAG | FORM_F16, shape) == (8, 1, 8, 4, 4, 2)
    assert form_dtype(0, torch.bfloat16) == form_dtype(FORM_PERM, torch.bfloat16) == torch.bfloat16
    assert form_dtype(FORM_F16, torch.bfloat16) == form_dtype(FORM_PERM | FORM_F16, torch.bfloat16) == torch.float16


def test_check_form_refusals():
    for form in (0, 1, 2, 4, 5, 6):
        check_form(form, 8, 256)
    for form, B, K, dtype, msg in ((3, 8, 256, torch.bfloat16, "unknown output form"),
                                   (7, 8, 256, torch.bfloat16, "unknown output form"),
                                   (1, 1, 256, torch.float16, "made from bf16"),
                                   (5, 1, 96, torch.bfloat16, "multiple of 64"),
                                   (2, 4, 256, torch.bfloat16, "for 8 tokens")):
        with pytest.raises(ValueError, match=msg):
            check_form(form, B, K, dtype)
    check_form(4, 1, 96)  # the f16 operand in y's layout has no 32-column chunks


def test_as_form_is_the_xops_it_stands_for():
    y = torch.randn(8, 2, 4, 32, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    x2 = y.reshape(8, -1)
    assert as_form(y, 0) is y
    assert torch.equal(as_form(y, FORM_PERM), x_perm(x2).view(y.shape))
    assert torch.equal(as_form(y, FORM_F16), f16_operand(x2).view(y.shape))
    assert torch.equal(as_form(y, FORM_PERM | FORM_F16), x_perm(f16_operand(x2)).view(y.shape))
    assert torch.equal(as_form(y, FORM_FRAG), x_fragments(x2))
    assert torch.equal(as_form(y, FORM_FRAG | FORM_F16), x_fragments(f16_operand(x2)))
