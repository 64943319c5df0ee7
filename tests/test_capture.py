"""spense.capture: what enters each decoder block, and running a block on it.

Gemma-3 passes its sliding-window layers and its full-attention layers different rotary embeddings (RoPE base 10^4
against 10^6) and masks; every block must get its own, or the full-attention layers are calibrated on wrong
activations (they were, before: 3-13 % off transformers' own forward on Gemma-3-270M)."""

from __future__ import annotations

import torch

from spense.capture import BlockInputs, capture_inputs, run_block
from spense.hf import find_blocks


def _chain(model, inputs: BlockInputs) -> list[torch.Tensor]:
    """Each block's output, running the captured inputs through the blocks one after another."""
    _, blocks = find_blocks(model)
    outs, h = [], inputs.hidden
    for b in blocks:
        h = run_block(b, BlockInputs(h, inputs.args, inputs.kwargs, inputs.per_block), torch.device("cpu"))
        outs.append(h)
    return outs


def test_gemma3_blocks_get_their_own_rope_and_mask():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    cfg = Gemma3TextConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=4,
                           layer_types=["sliding_attention", "full_attention"] * 2, max_position_embeddings=64)
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(cfg).eval()
    windows = torch.randint(0, 300, (2, 16))  # longer than the sliding window: the masks differ too
    inputs = capture_inputs(model, windows, torch.device("cpu"))
    _, blocks = find_blocks(model)
    assert set(inputs.per_block) == {id(blocks[1]), id(blocks[3])}  # the full-attention layers
    with torch.no_grad():
        want = model.model(windows, output_hidden_states=True).hidden_states  # embeddings, blocks 0..2, final norm
    got = _chain(model, inputs)
    for i in range(3):
        torch.testing.assert_close(got[i], want[i + 1], rtol=0, atol=1e-5)
    assert all("forward" not in b.__dict__ for b in blocks)  # the identity used while recording is gone


def test_llama_blocks_share_block_zeros_arguments(tiny_llama):
    model, _ = tiny_llama
    windows = torch.randint(0, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    inputs = capture_inputs(model, windows, torch.device("cpu"))
    assert inputs.per_block == {}
    with torch.no_grad():
        want = model.model(windows, output_hidden_states=True).hidden_states
    got = _chain(model, inputs)
    for i in range(len(got) - 1):
        torch.testing.assert_close(got[i], want[i + 1], rtol=0, atol=1e-5)
