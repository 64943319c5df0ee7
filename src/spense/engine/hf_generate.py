"""Generation through transformers, for a model the engine does not compute (Gemma 2, a RoPE scaling it lacks).

``spense generate``'s fallback: the model's own ``generate`` (eager, its own cache), left-padded prompts, greedy
(``argmax``) or sampling from ``softmax(l / T)`` restricted to the nucleus of mass ``top_p``: the same
:class:`~spense.engine.generate.Generation` as :class:`~spense.engine.generate.Engine` gives, streamed step by step
through ``on_tokens``.  Sampling draws differ from the engine's (another random stream); greedy tokens are the
model's.  None of the model's ``generation_config.json`` sampling defaults (top-k, repetition penalty) applies:
only what the caller asks.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import torch
from torch import nn

from spense.engine.generate import Collector, Generation


class HFGenerator:
    """:meth:`generate` with a transformers causal LM (any architecture it loads)."""

    def __init__(self, model: nn.Module, pad_id: int):
        self.model = model
        self.pad_id = int(pad_id)
        self.device = next(model.parameters()).device

    def _config(self, max_new: int, temperature: float, top_p: float, eos: Sequence[int]):
        from transformers import GenerationConfig

        sampling = dict(do_sample=True, temperature=float(temperature), top_p=float(top_p), top_k=0) \
            if temperature > 0 else dict(do_sample=False)
        return GenerationConfig(max_new_tokens=max_new, min_new_tokens=0, num_beams=1, repetition_penalty=1.0,
                                eos_token_id=list(eos) or None, pad_token_id=self.pad_id, **sampling)

    @torch.inference_mode()
    def generate(self, prompts: list[list[int]], max_new: int, temperature: float = 0.0, top_p: float = 1.0,
                 eos: int | Sequence[int] | None = None, on_tokens: Callable[[list[int]], None] | None = None
                 ) -> Generation:
        """Generate ``max_new`` tokens per prompt, or until each hit a stop id in ``eos`` (Ctrl-C:
        ``stopped="interrupted"``, tokens so far kept). ``prefill_s``: to the first new token; ``decode_s``: from
        it to the last."""
        from transformers import GenerationConfig
        from transformers.generation.streamers import BaseStreamer

        got = Collector(len(prompts), eos, on_tokens)
        T = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), T), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(prompts):
            ids[i, T - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[i, T - len(p):] = 1
        marks = [time.perf_counter()]  # the start, then each step's arrival
        prompt_echo = [True]

        class _Streamer(BaseStreamer):
            def put(self, value: torch.Tensor) -> None:
                if prompt_echo[0]:  # transformers hands the prompt over first
                    prompt_echo[0] = False
                    return
                marks.append(time.perf_counter())
                got.add(value.reshape(-1).tolist())

            def end(self) -> None:
                pass

        # transformers fills what a call leaves unset (or, before 5.0, at its default) from the model's own
        # generation_config.json (do_sample, top_k, no_repeat_ngram_size, its eos, ...): a blank one while it runs
        own = self.model.generation_config
        self.model.generation_config = GenerationConfig()
        try:
            self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                generation_config=self._config(max_new, temperature, top_p, sorted(got.stops)),
                                streamer=_Streamer())
        except KeyboardInterrupt:
            got.stopped = "interrupted"
        finally:
            self.model.generation_config = own
        first = marks[1] if len(marks) > 1 else marks[0]
        return got.result(first - marks[0], marks[-1] - first, max(len(marks) - 2, 0))
