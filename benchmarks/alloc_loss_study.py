"""Which loss should the dense-budget allocator use?  18M models/default, WikiText-2, CPU.

Measures curves in every unit in one pass (keeping the pruned weights of every candidate), then
assembles models (each linear pruned alone on the dense model's Hessian, i.e. not true-sequential)
for several allocation policies at the same dense budget and reports held-out perplexity.
"""
import json, math, sys, time, warnings
import torch
warnings.simplefilter("ignore")
torch.set_num_threads(1)
from spense import data
from spense.hf import load_model, find_blocks, find_linears
from spense.methods import PruneConfig
from spense.allocate import (choices_for_axes, allocate, whole_layers, budget_from_share,
                             Choice, SPARSE, DENSE, allowed_for)
from spense.sensitivity import measure_units, UNITS

NS, SL, NEVAL = int(sys.argv[1]) if len(sys.argv) > 1 else 16, 256, 32
t0 = time.time()
mdir = "/work/main/models/default"
tok = data.load_tokenizer(mdir)
model = load_model(mdir)
calib = data.calibration_windows(data.tokenize(tok, data.read_text("/work/shared/data/wikitext-2/valid.txt")), NS, SL, 0)
test = data.eval_windows(data.tokenize(tok, data.read_text("/work/shared/data/wikitext-2/test.txt")), SL, NEVAL)
cfg = PruneConfig()
choices = choices_for_axes("mixed")
weights = {}
def keep(name, c, W, loss):
    weights[(name, c)] = W.detach().to(torch.bfloat16).cpu() if False else W.detach().cpu().clone()
curves = measure_units(model, calib, cfg, choices, "cpu", UNITS, on_result=keep)
t_measure = time.time() - t0
mods = {}
prefix, blocks = find_blocks(model)
for i, b in enumerate(blocks):
    for n, m in find_linears(b, cfg.block, cfg.m, prefix=f"{prefix}.{i}").items():
        mods[f"{prefix}.{i}.{n}"] = m
orig = {n: m.weight.data.clone() for n, m in mods.items()}

@torch.no_grad()
def _eval():
    """(perplexity, mean token KL(dense || model), per-window logprobs)"""
    nll = kl = 0.0
    lps = []
    for j in range(0, test.shape[0], 8):
        b = test[j:j + 8]
        lp = torch.log_softmax(model(b).logits.float(), -1)
        nll -= float(lp[:, :-1].gather(-1, b[:, 1:, None]).sum())
        if REF:
            ref = REF[j // 8]
            kl += float((ref.exp() * (ref - lp)).sum())
        else:
            lps.append(lp)
    ntok = test.shape[0] * (test.shape[1] - 1)
    return math.exp(nll / ntok), kl / (test.shape[0] * test.shape[1]), lps

REF = []
_, _, REF = _eval()

def ppl(assign):
    for n, m in mods.items():
        c = assign[n]
        m.weight.data.copy_(orig[n] if c == DENSE else weights[(n, c)].to(m.weight.dtype))
    p, k, _ = _eval()
    for n, m in mods.items():
        m.weight.data.copy_(orig[n])
    return p, k

names = list(mods)
any_curves = curves["obs"].values()
total = sum(c.numel for c in any_curves)
rows = []
def row(label, assign, budget_share=None):
    cost = sum(curves["obs"][n].at(assign[n])[1] for n in names)
    p, k = ppl(assign)
    rows.append({"policy": label, "budget": budget_share, "share": cost / total, "ppl": p, "kl": k})
    print(f"{label:36s} budget {budget_share} share {cost/total:.3f} ppl {p:.3f} KL {k:.5f}", flush=True)

row("dense", {n: DENSE for n in names})
row("2:4 everywhere (sparsegpt)", {n: SPARSE for n in names})
for s in (0.1, 0.25, 0.5):
    for ax in ("cols", "rows"):
        row(f"uniform {ax} {s}", {n: Choice(s, ax) for n in names}, s)
    for u in UNITS:
        row(f"uniform, axis per linear by {u}",
            allocate([curves[u][n] for n in names], math.inf, (Choice(s, "rows"), Choice(s, "cols"))).choice, s)
    B = budget_from_share(any_curves, s)
    for u in UNITS:
        cv = list(curves[u].values())
        row(f"greedy mixed by {u}", allocate(cv, B, allowed_for("mixed", whole=True)).choice, s)
        row(f"greedy regions-only by {u}", allocate(cv, B, allowed_for("mixed", whole=False)).choice, s)
        row(f"whole linears by {u}", whole_layers(cv, B).choice, s)
    # first-k whole layers
    acc, assign = 0, {}
    for n in names:
        take = acc + curves["obs"][n].numel <= B
        assign[n] = DENSE if take else SPARSE
        acc += curves["obs"][n].numel if take else 0
    row("first linears dense", assign, s)
print(json.dumps({"measure_seconds": t_measure, "total_seconds": time.time() - t0, "nsamples": NS,
                  "seqlen": SL, "eval_windows": NEVAL, "rows": rows}, indent=1))
