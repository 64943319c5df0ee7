"""The decode engine: a Llama-family model written for decoding, static KV cache, compiled and
CUDA-graphed steps, sampling and generation (``spense generate``, ``spense bench``).

* :mod:`~spense.engine.args` - what the model is, read from a transformers config (Llama, Mistral, Qwen2, Qwen3,
  Gemma 3), and its RoPE tables;
* :mod:`~spense.engine.model` - the model (HF names), static KV cache, attention over the filled part;
* :mod:`~spense.engine.load` - built-in shapes, HF folders, Spense checkpoints (packed or not);
* :mod:`~spense.engine.sparsify` - fast magnitude Spense conversion (benchmarks);
* :mod:`~spense.engine.generate` - prefill, decode step, sampling, :class:`Engine`;
* :mod:`~spense.engine.hf_generate` - transformers' ``generate`` for an architecture the engine does not compute
  (``spense generate``'s fallback);
* :mod:`~spense.engine.measure` - the end-to-end measurement (rows; reports live in
  :mod:`spense.report`, which nothing here imports).
"""

from spense.engine.generate import Engine, Generation, sample
from spense.engine.load import BUILTIN_SHAPES, Loaded, load
from spense.engine.model import ModelArgs, Transformer

__all__ = ["BUILTIN_SHAPES", "Engine", "Generation", "Loaded", "ModelArgs", "Transformer", "load", "sample"]
