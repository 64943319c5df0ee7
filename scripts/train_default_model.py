#!/usr/bin/env python3
"""Train the built-in default model of spense: a small Llama-architecture causal LM.

Everything comes from WikiText-2 *valid* (never test): a byte-level BPE tokenizer is trained with
`tokenizers`, then a ~18M-parameter Llama (hidden 512, 6 blocks, 8 heads / 4 KV heads, MLP 1024,
vocab 8192, tied embeddings) is trained on random windows of the first 95 % of the valid tokens.
The last 5 % is held out for model selection (best held-out loss is kept).  The result is written
as a normal Hugging Face model directory in bfloat16 (safetensors, < 40 MB) with the tokenizer and
`training.json` (hyper-parameters, loss curve, device, wall time).

All dimensions are multiples of 256 so that a 25 % dense region is a whole number of 64-blocks.

Run on a GPU (it also runs on CPU, slowly):

    python scripts/train_default_model.py --text ../shared/data/wikitext-2/valid.txt --out models/default
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def train_tokenizer(text: str, vocab_size: int, out_dir: Path):
    """Byte-level BPE (GPT-2 style pre-tokenisation) trained on ``text``; saved as a fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=1024,
    )
    fast.save_pretrained(out_dir)
    return fast


def build_config(vocab_size: int):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=512,
        intermediate_size=1024,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to 10 % of ``peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def held_out_loss(model, ids: torch.Tensor, seqlen: int, device) -> float:
    n = ids.numel() // seqlen
    x = ids[: n * seqlen].view(n, seqlen).to(device)
    total = 0.0
    for i in range(0, n, 16):
        b = x[i : i + 16]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(b).logits
        total += F.cross_entropy(
            logits[:, :-1].float().reshape(-1, logits.shape[-1]), b[:, 1:].reshape(-1), reduction="sum"
        ).item()
    return total / (n * (seqlen - 1))


def git_commit() -> str:
    try:
        return subprocess.check_output(
            ["git", "rev-parse", "--short", "HEAD"], text=True, stderr=subprocess.DEVNULL
        ).strip()
    except Exception:
        return os.environ.get("SPENSE_COMMIT", "unknown")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", required=True, help="WikiText-2 valid.txt (never the test split)")
    ap.add_argument("--out", required=True, help="output model directory (must not exist)")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--patience", type=int, default=6, help="evals without improvement before stopping")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"error: {out} exists; refusing to overwrite")
    text_path = Path(args.text)
    if "test" in text_path.name:
        raise SystemExit("error: the default model must never be trained on the test split")
    text = text_path.read_text(encoding="utf-8")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)
    t0 = time.time()

    tmp = Path(tempfile.mkdtemp(prefix=".train-", dir=out.parent if out.parent.exists() else None))
    tokenizer = train_tokenizer(text, args.vocab, tmp)
    ids = torch.tensor(tokenizer(text)["input_ids"], dtype=torch.long)
    split = int(ids.numel() * 0.95)
    train_ids, held_ids = ids[:split], ids[split:]
    print(f"tokens: {ids.numel()} (train {train_ids.numel()}, held-out {held_ids.numel()})", flush=True)

    from transformers import LlamaForCausalLM

    config = build_config(len(tokenizer))
    model = LlamaForCausalLM(config).to(device)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"parameters: {nparams / 1e6:.2f}M", flush=True)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
        fused=device.type == "cuda",
    )
    gen = torch.Generator().manual_seed(args.seed)
    best = (float("inf"), -1, None)
    curve, bad_evals = [], 0
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, warmup=max(1, args.steps // 20))
        starts = torch.randint(0, train_ids.numel() - args.seqlen - 1, (args.batch,), generator=gen)
        batch = torch.stack([train_ids[s : s + args.seqlen] for s in starts.tolist()]).to(device)
        model.train()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(batch).logits
        loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            model.eval()
            hl = held_out_loss(model, held_ids, args.seqlen, device)
            curve.append({"step": step + 1, "train_loss": loss.item(), "held_out_loss": hl})
            print(f"step {step + 1:5d}  train {loss.item():.3f}  held-out {hl:.3f} (ppl {math.exp(hl):.1f})", flush=True)
            if hl < best[0]:
                best = (hl, step + 1, {k: v.detach().to("cpu", torch.bfloat16).clone() for k, v in model.state_dict().items()})
                bad_evals = 0
            else:
                bad_evals += 1
                if bad_evals >= args.patience:
                    print(f"stopping: no held-out improvement for {bad_evals} evals", flush=True)
                    break

    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.load_state_dict(best[2])
    model.config.dtype = torch.bfloat16
    model.save_pretrained(tmp, safe_serialization=True)
    info = {
        "description": "spense built-in default model: small Llama trained on WikiText-2 valid (95 %), "
        "model selection on the held-out last 5 % of valid; test split never used",
        "parameters": nparams,
        "best_step": best[1],
        "best_held_out_loss": best[0],
        "best_held_out_ppl": math.exp(best[0]),
        "tokens_train": int(train_ids.numel()),
        "tokens_held_out": int(held_ids.numel()),
        "args": vars(args),
        "curve": curve,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor(),
        "torch": torch.__version__,
        "commit": git_commit(),
        "date": time.strftime("%Y-%m-%d"),
        "wall_seconds": round(time.time() - t0, 1),
    }
    (tmp / "training.json").write_text(json.dumps(info, indent=2))
    tmp.chmod(0o755)
    for f in tmp.iterdir():
        f.chmod(0o644)
    shutil.move(str(tmp), str(out))
    print(f"wrote {out} (best step {best[1]}, held-out ppl {math.exp(best[0]):.1f}, {info['wall_seconds']} s)")


if __name__ == "__main__":
    main()
