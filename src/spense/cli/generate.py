"""``spense generate MODEL_OR_CHECKPOINT --prompt ...``: text generation with the engine."""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer

from spense.cli.app import app, handle_errors
from spense.cli.common import check_min, load_any
from spense.errors import InputError, UnsupportedModel


def _prompts(prompt: Optional[str], prompts_file: Optional[Path]) -> list[str]:
    if (prompt is None) == (prompts_file is None):
        raise InputError("give exactly one of --prompt or --prompts-file")
    if prompt is not None:
        if not prompt.strip():
            raise InputError("empty prompt (--prompt is blank)")
        try:
            prompt.encode("utf-8")  # bytes that are not UTF-8 reach argv as lone surrogates
        except UnicodeEncodeError as e:
            raise InputError(f"--prompt is not UTF-8 text ({e.reason} at character {e.start})") from None
        return [prompt]
    if prompts_file.is_dir():
        raise InputError(f"prompts file {prompts_file} is a directory")
    if not prompts_file.exists():
        raise InputError(f"prompts file {prompts_file} does not exist")
    from spense.data import read_text_file

    lines = [ln for ln in read_text_file(prompts_file).splitlines() if ln.strip()]
    if not lines:
        raise InputError(f"prompts file {prompts_file} holds no prompt (one per line)")
    return lines


def _chat_ids(tok, text: str, model: str) -> list[int]:
    """``text`` as one user turn of ``tok``'s chat template, up to the assistant's turn (``--chat``)."""
    if not getattr(tok, "chat_template", None):
        raise InputError(f"--chat: {model} has no chat template (chat_template.jinja, or chat_template in "
                         "tokenizer_config.json); drop --chat to continue the prompt as plain text")
    out = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def _eos_ids(model_dir: Path, tok) -> list[int]:
    """The tokenizer's EOS and those of the model's ``generation_config.json`` (Llama 3 instruct ends a turn with
    ``<|eot_id|>``, which is not the tokenizer's EOS)."""
    import json

    ids = {tok.eos_token_id} if tok.eos_token_id is not None else set()
    path = Path(model_dir) / "generation_config.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        cfg = {}
    except (OSError, ValueError) as e:  # unreadable or not JSON: said, since a turn's end may be missed
        warnings.warn(f"{path} is not readable JSON ({str(e)[:80]}); its eos_token_id is ignored, so generation "
                      "may run past the end of a turn")
        cfg = {}
    more = cfg.get("eos_token_id") if isinstance(cfg, dict) else None
    ids |= {more} if isinstance(more, int) else {i for i in (more or []) if isinstance(i, int)}
    return sorted(ids)


def _fit(ids: list[list[int]], max_new: int, max_len: Optional[int], limit: int, block: int = 1,
         kv_block: int = 1, bos: Optional[int] = None) -> tuple[list[list[int]], int]:
    """``(ids, cache length)``: prompts that fit ``limit`` positions with ``max_new`` new tokens (the oldest prompt
    tokens dropped with a warning where they do not; a leading ``bos`` is kept), and the cache they need;
    ``--max-len`` (``max_len``) is the user's cache, never truncated into.  ``block``: prompts are left-padded to a
    multiple of it; ``kv_block``: the cache is a multiple of it (the engine's; 1 and 1 for transformers).  The
    warnings come after every refusal."""
    from spense.engine.generate import round_up

    longest = max(len(i) for i in ids)
    padded = round_up(longest, block)
    blk = f" (a cache block of {padded})" if block > 1 else ""
    notes = []
    if max_len is not None:
        want = max_len
        if want > limit:
            notes.append(f"--max-len {max_len} exceeds the model's {limit} positions: using {limit}")
            want = limit
        if longest + max_new > want or padded + max_new > round_up(want, kv_block):
            raise InputError(f"prompt of {longest} tokens{blk} + {max_new} new tokens do not fit --max-len {want}")
    else:
        want = padded + max_new
    if want > limit:
        keep = (limit - max_new) // block * block
        if keep < 1:
            raise InputError(f"{max_new} new tokens do not fit the model's {limit} positions: at most "
                             f"{limit - block} fit after a prompt" +
                             (f" (prompts take {block}-slot blocks)" if block > 1 else ""))
        head = bos is not None and keep > 1 and all(i[0] == bos for i in ids if len(i) > keep)
        notes.append(f"prompt of {longest} tokens{blk} + {max_new} new exceeds the model's {limit} positions: "
                     + (f"keeping its BOS and the last {keep - 1} prompt tokens" if head
                        else f"keeping the last {keep} prompt tokens"))
        ids = [i if len(i) <= keep else [bos] + i[len(i) - keep + 1:] if head else i[-keep:] for i in ids]
        want = limit
    for n in notes:
        warnings.warn(n, RuntimeWarning)
    return ids, want


@app.command("generate")
def generate_command(
    model: str = typer.Argument(..., help="HF model dir, Spense checkpoint (packed or not), .gguf or built-in name"),
    prompt: Optional[str] = typer.Option(None, "--prompt", "-p", help="the prompt"),
    prompts_file: Optional[Path] = typer.Option(None, "--prompts-file", help="one prompt per line: one batch"),
    max_new: int = typer.Option(128, "--max-new-tokens", "-n", help="tokens to generate"),
    temperature: float = typer.Option(0.0, "--temperature", "-t", help="0 = greedy"),
    top_p: float = typer.Option(1.0, "--top-p", help="nucleus sampling mass (with --temperature > 0)"),
    max_len: Optional[int] = typer.Option(None, "--max-len", help="KV cache length, >= prompt + new tokens "
                                          "(default: what they need)"),
    device: str = typer.Option("auto", "--device", help="auto, cuda, cpu"),
    dtype: str = typer.Option("bf16", "--dtype", help="bf16 / fp16 / fp32 (CPU: fp32)"),
    compile: bool = typer.Option(True, "--compile/--no-compile", help="torch.compile the steps (CUDA)"),
    seed: int = typer.Option(0, "--seed"),
    chat: bool = typer.Option(False, "--chat", help="each prompt as a user turn of the model's chat template "
                              "(instruct models); prints the answer alone"),
) -> None:
    """Generate text, streaming tokens to the terminal; tokens/s at the end. Llama, Mistral, Qwen2, Qwen3 and Gemma 3
    run on the engine (compiled, CUDA-graphed on a GPU); another architecture (Gemma 2, say) runs through
    transformers."""

    @handle_errors
    def _run() -> None:
        import torch

        from spense.data import bos_id, check_token_ids, load_tokenizer
        from spense.engine import Engine, load
        from spense.engine.generate import PROMPT_BLOCK
        from spense.engine.hf_generate import HFGenerator
        from spense.engine.load import parse_shape
        from spense.engine.model import KV_BLOCK
        from spense.hf import check_finite_weights, max_positions, parse_dtype, resolve_device
        from spense.methods import check_seed
        from spense.models import resolve_model

        check_min(max_new_tokens=(max_new, 1), max_len=(max_len, 1))
        check_seed(seed, "--seed")
        if not (math.isfinite(temperature) and temperature >= 0):
            raise InputError(f"--temperature must be a finite number >= 0 (0: greedy), got {temperature:g}")
        if not 0.0 < top_p <= 1.0:
            raise InputError(f"--top-p must be in (0, 1], got {top_p:g}")
        if top_p != 1.0 and temperature == 0:
            raise InputError("--top-p applies only when sampling: give --temperature > 0 with it (0 is greedy)")
        if not model.strip() or (not Path(model).expanduser().exists() and parse_shape(model) is not None):
            # a built-in shape would be built whole (32B on the CPU) before this could be said
            raise InputError(f"{model!r} is no model with a tokenizer (a built-in shape has random weights and no "
                             "tokenizer: `spense bench` times it); give a model folder, a Spense checkpoint, a .gguf "
                             "file or a built-in model")
        texts = _prompts(prompt, prompts_file)
        dev = resolve_device(device)
        dt = parse_dtype(dtype) or torch.bfloat16
        if dev.type != "cuda":
            dt = torch.float32
        torch.manual_seed(seed)
        src = model
        if not (Path(model).expanduser() / "spense.json").is_file():
            src = str(resolve_model(model))  # a .gguf (hashed) or built-in name: resolved once for either loader
        try:
            loaded, lacks = load(src, dev, dt, backend="auto" if dev.type == "cuda" else "reference"), None
        except UnsupportedModel as e:  # an architecture (or RoPE scaling) the engine does not compute
            loaded, lacks = None, e.what
        if loaded is not None:
            if loaded.model_dir is None:
                raise InputError(f"{model} has random weights and no tokenizer: use `spense bench` for it")
            net, model_dir, vocab = loaded.model, loaded.model_dir, loaded.model.args.vocab_size
            limit, blocks = loaded.model.args.max_positions, (PROMPT_BLOCK, KV_BLOCK)
        else:
            net, model_dir = load_any(src, dev, dt)
            cfg = net.config.get_text_config() if hasattr(net.config, "get_text_config") else net.config
            vocab, limit, blocks = cfg.vocab_size, max_positions(cfg) or 1 << 62, (1, 1)
        check_finite_weights(net)  # NaN/Inf weights: one line naming the tensor, not NaN tokens/s
        tok = load_tokenizer(model_dir)
        ids = [_chat_ids(tok, t, model) for t in texts] if chat else [tok.encode(t) for t in texts]
        check_token_ids(ids, vocab)
        ids, want = _fit(ids, max_new, max_len, limit, *blocks, bos=bos_id(tok))
        eos = _eos_ids(model_dir, tok)
        # warnings after every refusal: a warning before an error reads as two problems
        if loaded is None:
            warnings.warn(f"the engine does not run {lacks}: generating through transformers (eager"
                          f"{', on CPU' if dev.type != 'cuda' else ''}; slower than the engine)", RuntimeWarning)
            eng = HFGenerator(net, tok.pad_token_id if tok.pad_token_id is not None else (eos or [0])[0])
        else:
            if dev.type != "cuda":
                warnings.warn("no GPU: generating on CPU through the reference backend (slow)", RuntimeWarning)
            eng = Engine(net, len(ids), want, compile=compile)
        single = len(ids) == 1
        shown = [""]
        gen_ids: list[int] = []

        def on_tokens(toks: list[int]) -> None:
            if single:
                gen_ids.append(toks[0])
                text = tok.decode(gen_ids, skip_special_tokens=True)
                sys.stdout.write(text[len(shown[0]):])
                sys.stdout.flush()
                shown[0] = text

        if single and not chat:
            sys.stdout.write(texts[0])
        g = eng.generate(ids, max_new, temperature, top_p, eos, on_tokens)
        if single:
            sys.stdout.write("\n")
        else:
            for t, out in zip(texts, g.tokens):
                sys.stdout.write(f"--- {t}\n{'' if chat else t}{tok.decode(out, skip_special_tokens=True)}\n")
        n = sum(len(t) for t in g.tokens)
        rate = g.tokens_per_s
        decode = f"{rate:.1f} tokens/s decode" if math.isfinite(rate) else "no decode step to time"
        msg = f"{n} tokens, {decode}, prefill {g.prefill_s * 1e3:.0f} ms"
        if g.stopped == "interrupted":
            msg = "interrupted; " + msg
        print(msg, file=sys.stderr)
        if g.stopped == "interrupted":
            raise typer.Exit(130)

    _run()
