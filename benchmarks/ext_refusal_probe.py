"""How the extension's refusals reach Python (device only): a call each check refuses, run in a child process
so that a crash shows as a signal, not as the end of this script.  Cases: a stream-K variant past 65535
(tests/test_wgsp_stream_k.py REFUSE_CODE), the same with TORCH_DISABLE_ADDR2LINE=1 (c10's backtrace symbolised by
dladdr), x in float32 (the first check), int64 block tables (the third), form 7 (the fourth).  Each child
runs with faulthandler on and unbuffered output, so a crash shows the Python line it came from (and whether
the refusal was printed before it).  Per case: its exit status, the child's last output line, and on a
crash the end of its stderr."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from test_wgsp_stream_k import REFUSE_CODE  # noqa: E402

env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(HERE, "..", "src"), os.path.join(HERE, "..", "tests")]))


def swap(code, *pairs):
    """code with each (old, new) replaced; a pair whose old text is gone from REFUSE_CODE stops the probe (a stale case
    would otherwise print REFUSED False for a refusal that worked)."""
    for old, new in pairs:
        if old not in code:
            sys.exit(f"ext_refusal_probe: {old!r} is no longer in REFUSE_CODE; update the cases")
        code = code.replace(old, new)
    return code


BAD_VARIANT, BOUND = "65539", "'must be 0..65535'"  # REFUSE_CODE's variant past the bound, and the bound's message
if BAD_VARIANT not in REFUSE_CODE or BOUND not in REFUSE_CODE:
    sys.exit(f"ext_refusal_probe: REFUSE_CODE no longer passes {BAD_VARIANT} or checks {BOUND}; update the cases")
cases = {
    f"variant_{BAD_VARIANT}": (REFUSE_CODE, {}),
    f"variant_{BAD_VARIANT}_dladdr": (REFUSE_CODE, {"TORCH_DISABLE_ADDR2LINE": "1"}),
    "x_float32": (swap(REFUSE_CODE, (BAD_VARIANT, "1"), (".to(torch.bfloat16)", ".float()"), (BOUND, "'bf16'")), {}),
    "sblk_int64": (swap(REFUSE_CODE, (BAD_VARIANT, "1"), ("kw.sblk,", "kw.sblk.long(),"), (BOUND, "'int32'")), {}),
    "form_7": (swap(REFUSE_CODE, (BAD_VARIANT, "1"), (" 3, ws,", " 7, ws,"), (BOUND, "'form must be'")), {}),
}
for name, (code, extra) in cases.items():
    r = subprocess.run([sys.executable, "-X", "faulthandler", "-u", "-c", code], capture_output=True, text=True,
                       timeout=300, env=dict(env, **extra))
    tail = (r.stdout.strip().splitlines() or r.stderr.strip().splitlines() or [""])[-1]
    print(f"{name}: rc={r.returncode} {tail[:200]}", flush=True)
    if r.returncode != 0:
        print("  " + "\n  ".join(r.stderr.strip().splitlines()[-12:]), flush=True)
