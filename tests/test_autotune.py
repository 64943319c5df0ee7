"""``spense.runtime.autotune``: the built-in table only on its device, lookups between measured M,
the table makers (benchmarks/make_auto_table.py, make_mmasp_cfg_table.py) and a packaged launch
table's use on the GPU it names."""

import json
from pathlib import Path

import pytest
import torch

from conftest import load_benchmark
from spense.format import pack
from spense.runtime import SpenseLinear
from test_runtime import make

HERE = Path(__file__).resolve().parent


def test_auto_table_only_on_its_device(tmp_path, monkeypatch, caplog):
    """The built-in table serves only the GPU it was measured on; elsewhere the per-device cache
    (written by save_device_table), else the safe rules; one log line says which."""
    import logging

    from spense.runtime import autotune as at

    full = at._full_table()
    assert full["device"] and len(full["capability"]) == 2
    assert at.table_source(full, full["device"], full["capability"]) == "builtin"
    assert at.table_source(full, full["device"], (8, 0)) == "other"
    assert at.table_source(full, "NVIDIA H200", full["capability"]) == "other"
    monkeypatch.setenv("SPENSE_CACHE", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Fake GPU 9000")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (8, 6))
    at._DEVICE_TABLES.clear()
    dev = torch.device("cuda", 0)
    with caplog.at_level(logging.WARNING, logger="spense"):
        src, table = at.table_for(dev)
        at.table_for(dev)
    assert (src, table) == ("safe", {})
    assert len([r for r in caplog.records if "no table for Fake GPU 9000" in r.getMessage()]) == 1
    # a layer measured on this device: its choices are cached per device and used next time
    w, lay = make(64, 128, "cols", 0.25, torch.bfloat16, block=64)
    m = SpenseLinear(pack(w, lay), backend="auto")
    m.choice = {1: "triton", 16: "mmasp"}
    m.mmasp_cfg = {16: (2, 4)}
    p = at.save_device_table([m], dev)
    assert p == tmp_path / "autotune" / "Fake_GPU_9000-sm86.json"
    src, table = at.table_for(dev)
    assert src == "cache" and table["device"] == "Fake GPU 9000"
    assert at.default_choice(m, 1, table) == "triton" and at.default_choice(m, 16, table) == "mmasp"
    assert at.default_mmasp_cfg(m, 16, table) == (2, 4)
    assert at.default_choice(m, 1, {}) == "mmasp" and at.default_choice(m, 32, {}) == "dense"
    at._DEVICE_TABLES.clear()


def test_auto_table_lookup():
    from spense.runtime.autotune import lookup

    t = {"bf16,cols,8,8,0.25,1": "mmasp", "bf16,cols,8,8,0.25,16": "dense", "bf16,rows,8,8,0.5,1": "triton"}
    assert lookup(t, "bf16", "cols", 8, 8, 0.3, 2) == "mmasp"
    assert lookup(t, "bf16", "cols", 8, 8, 0.25, 12) == "dense"
    assert lookup(t, "bf16", "rows", 8, 8, 0.25, 1) == "triton"
    assert lookup(t, "fp8", "rows", 8, 8, 0.25, 1) is None


def test_auto_table_m_between_measured_points_is_conservative():
    """M=8 shares the one-tile cost of M=4; M=32 (no measurement with 4 tiles) takes the larger
    neighbour's choice, never the smaller's; above 64 disagreeing neighbours give dense."""
    from spense.runtime.autotune import _measured_m, lookup

    ms = [1, 4, 16, 64, 256, 2048]
    assert _measured_m(ms, 4) == [4] and _measured_m(ms, 2) == [4] and _measured_m(ms, 8) == [4]
    assert _measured_m(ms, 12) == [16] and _measured_m(ms, 32) == [64] and _measured_m(ms, 3000) == [2048]
    assert _measured_m(ms, 512) == [256, 2048]
    t = {f"bf16,cols,8,8,0.25,{m}": c for m, c in
         ((1, "mmasp"), (4, "mmasp"), (16, "mmasp"), (64, "dense"), (256, "dense"), (2048, "cusparselt"))}
    assert lookup(t, "bf16", "cols", 8, 8, 0.25, 8) == "mmasp"
    assert lookup(t, "bf16", "cols", 8, 8, 0.25, 32) == "dense"  # was: the M=16 cell's mmasp
    assert lookup(t, "bf16", "cols", 8, 8, 0.25, 512) == "dense"
    assert lookup(t, "bf16", "cols", 8, 8, 0.25, 4096) == "cusparselt"
    # a shape measured only up to M=16: M=32 is unmeasured (default rule: dense), not M=16's mmasp
    assert _measured_m([1, 4, 8, 16], 32) == [] and _measured_m([1, 4, 8, 16], 12) == [16]
    t16 = {f"fp8,cols,8,8,0.0,{m}": "mmasp" for m in (1, 4, 8, 16)}
    assert lookup(t16, "fp8", "cols", 8, 8, 0.0, 32) is None


def test_make_auto_table():
    """benchmarks/make_auto_table.py: fastest of ours if > margin x the runtime's dense fallback
    (fp8: dense_bf16), ties/losses -> dense; mmasp launch configs kept; lookup reads the result."""
    from spense.runtime.autotune import lookup

    mat = load_benchmark("make_auto_table")

    def row(dt, M, backend, ms, cfg=None, d=0.25):
        return {"dtype": dt, "axis": "cols", "N": 64, "K": 128, "dense_ratio": d, "M": M, "backend": backend,
                "ms": ms, "config": cfg}

    rows = [row("bf16", 1, "dense", 10.0), row("bf16", 1, "mmasp", 7.0, [1, 8]), row("bf16", 1, "triton", 9.0),
            row("bf16", 16, "dense", 10.0), row("bf16", 16, "mmasp", 9.95, [2, 8]),  # tie -> dense
            row("bf16", 2048, "dense", 10.0), row("bf16", 2048, "cusparselt", 8.0),
            row("fp8", 1, "dense", 5.0), row("fp8", 1, "dense_bf16", 10.0), row("fp8", 1, "mmasp", 6.0, [2, 4])]
    choice, cfg, stats = mat.make_table(rows, margin=1.02)
    assert choice == {"bf16,cols,64,128,0.25,1": "mmasp", "bf16,cols,64,128,0.25,16": "dense",
                      "bf16,cols,64,128,0.25,2048": "cusparselt", "fp8,cols,64,128,0.25,1": "mmasp"}
    assert cfg["bf16,cols,64,128,0.25,16"] == [2, 8] and cfg["fp8,cols,64,128,0.25,1"] == [2, 4]
    assert stats == {"cells": 4, "dense": 1}
    assert lookup(choice, "bf16", "cols", 64, 128, 0.3, 2) == "mmasp"
    assert lookup(choice, "bf16", "cols", 64, 128, 0.25, 12) == "dense"
    # merging runs: a later run that measures a cell again replaces the whole cell (its dense baseline too)
    run2 = [dict(r, date="later", command="run2") for r in
            (row("bf16", 1, "dense", 10.0), row("bf16", 1, "mmasp", 9.95, [2, 4]),
             row("bf16", 8, "dense", 10.0), row("bf16", 8, "mmasp", 8.0, [1, 8]))]
    choice2, cfg2, stats2 = mat.make_table(rows + run2, margin=1.02)
    assert choice2["bf16,cols,64,128,0.25,1"] == "dense"  # run 1's triton/mmasp rows are gone
    assert cfg2["bf16,cols,64,128,0.25,1"] == [2, 4]
    assert choice2["bf16,cols,64,128,0.25,8"] == "mmasp" and stats2 == {"cells": 5, "dense": 2}
    assert lookup(choice2, "bf16", "cols", 64, 128, 0.25, 8) == "mmasp"
    # since linear_bench's bf16 `dense` row is the faster of cuBLAS and the streaming kernel, the fallback (cuBLAS)
    # is its `dense_bf16` row: mmasp at 9.0 beats cuBLAS's 10.0 though not the streaming kernel's 8.5
    run3 = [row("bf16", 4, "dense", 8.5), row("bf16", 4, "dense_bf16", 10.0), row("bf16", 4, "mmasp", 9.0, [1, 4])]
    assert mat.make_table(run3, margin=1.02)[0] == {"bf16,cols,64,128,0.25,4": "mmasp"}
    # the committed table has entries for both dtypes and axes and only known backends
    t = json.loads((HERE.parent / "src" / "spense" / "runtime" / "auto_table.json").read_text())
    assert {k.split(",")[0] for k in t["choice"]} == {"bf16", "fp8"}
    assert {k.split(",")[1] for k in t["choice"]} == {"cols", "rows"}
    assert set(t["choice"].values()) <= {"dense", "mmasp", "triton", "cusparselt"}
    assert all(t[k] for k in ("device", "commit", "date", "command"))


def test_make_mmasp_cfg_table_from_a_linear_bench_log():
    """A linear_bench log's ``cfg`` lines: per cell the fastest config of the column the engine runs (x_perm at
    M = 1, ``xhp`` for e4m3; the fragments above, ``xh`` for e4m3), the fragments where that column is missing, and
    every other column left out."""
    mk = load_benchmark("make_mmasp_cfg_table")

    def cfg(N, M, col, w, us, fp8=0):
        return f"cfg N={N} K=4096 d=0.25 axis=c fp8={fp8} M={M} {col} 1x{w} {us} us"

    log = "\n".join(["device NVIDIA H200  copy bandwidth 4235 GB/s", "# NVIDIA H200, 2026-12-04T18:00:00Z, commit ddd",
                     cfg(6144, 1, "xf", 4, 11.0), cfg(6144, 1, "xf", 5, 12.0),  # M = 1: x_perm decides
                     cfg(6144, 1, "xp", 4, 12.1), cfg(6144, 1, "xp", 5, 11.1),
                     cfg(6144, 8, "xp", 8, 1.0), cfg(6144, 8, "xf", 4, 12.4), cfg(6144, 8, "xf", 5, 11.7),
                     cfg(4096, 1, "xf", 8, 7.9), cfg(4096, 1, "xf", 6, 8.5),  # no x_perm timed: the fragments
                     cfg(4096, 8, "xf", 12, 6.0, fp8=1), cfg(4096, 8, "xh", 12, 7.0, fp8=1),
                     cfg(4096, 8, "xh", 8, 6.5, fp8=1), cfg(4096, 1, "xhp", 6, 6.6, fp8=1),
                     cfg(4096, 1, "xhp", 8, 6.0, fp8=1), cfg(4096, 1, "xh", 12, 5.0, fp8=1),
                     "8B.qkv       bf16 cols d=0.25  M=1     dense=   15.2us(1.00x)"])
    t = mk.make_table([("af/lbb.txt", log)], (9, 0))
    assert t["date"] == "2026-12-04T18:00:00Z" and t["sources"][0]["commit"] == "ddd"
    assert t["mmasp_cfg"] == {"bf16,cols,6144,4096,0.25,1": [1, 5], "bf16,cols,6144,4096,0.25,8": [1, 5],
                              "bf16,cols,4096,4096,0.25,1": [1, 8], "fp8,cols,4096,4096,0.25,8": [1, 8],
                              "fp8,cols,4096,4096,0.25,1": [1, 8]}
    # an engine table first is the base: its cells as they are, those the log measured replaced; --dtypes fp8
    # takes only the log's FP8 cells (the base keeps its BF16 one); another GPU's base is refused
    base = {"device": "NVIDIA H200", "date": "2026-11-24", "sources": [{"path": "older.txt", "cells": 3}],
            "mmasp_cfg": {"bf16,cols,6144,4096,0.25,1": [2, 8], "fp8,cols,4096,4096,0.25,1": [2, 8],
                          "fp8,cols,9999,4096,0.25,1": [1, 4]}}
    t = mk.make_table([("auto_table.json", json.dumps(base)), ("af/lbb.txt", log)], (9, 0), dtypes={"fp8"})
    assert t["mmasp_cfg"] == {"bf16,cols,6144,4096,0.25,1": [2, 8], "fp8,cols,4096,4096,0.25,1": [1, 8],
                              "fp8,cols,4096,4096,0.25,8": [1, 8], "fp8,cols,9999,4096,0.25,1": [1, 4]}
    assert [s["cells"] for s in t["sources"]] == [3, 2] and t["date"] == "2026-12-04T18:00:00Z"
    assert t["sources"][0]["sources"] == base["sources"]  # where the base came from, kept
    with pytest.raises(ValueError, match="measured on"):
        mk.make_table([("t.json", json.dumps(dict(base, device="NVIDIA H100 80GB HBM3"))), ("af/lbb.txt", log)],
                      (9, 0))


def test_make_mmasp_cfg_table_sets_cells_by_hand(tmp_path, monkeypatch, capsys):
    """``--set CELL=RTxWARPS`` on a packaged table: that cell changed (its key as the engine writes it), every other
    cell as it was, the change in ``sources``, and the file served as SPENSE_MMASP_CFG on the GPU it names; a
    malformed cell or a config the kernel does not take is one line on stderr, exit 2, no file."""
    from spense.runtime import autotune as at

    mk = load_benchmark("make_mmasp_cfg_table")
    base = Path(at.__file__).parent / "mmasp_cfg_h100.json"
    out = tmp_path / "cfg.json"
    assert mk.main([str(base), "--capability", "9.0", "--set", "fp8,cols,24576,4096,.25,8=1x16",
                    "--out", str(out)]) == 0
    monkeypatch.setenv("SPENSE_MMASP_CFG", str(out))
    got = at.packaged_cfg_table("NVIDIA H100 80GB HBM3", (9, 0))["mmasp_cfg"]
    want = dict(json.loads(base.read_text())["mmasp_cfg"], **{"fp8,cols,24576,4096,0.25,8": [1, 16]})
    assert got == want and json.loads(out.read_text())["sources"][-1] == {"set": "fp8,cols,24576,4096,0.25,8",
                                                                         "cfg": [1, 16]}
    capsys.readouterr()
    for bad in ("fp8,cols,24576,4096=1x16", "fp8,cols,24576,4096,0.25,8=4x8", "fp8,cols,24576,4096,0.25,8=1x17"):
        assert mk.main([str(base), "--capability", "9.0", "--set", bad, "--out", str(tmp_path / "bad.json")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("make_mmasp_cfg_table: --set") and err.count("\n") == 1
    assert not (tmp_path / "bad.json").exists()


def test_make_mmasp_cfg_table_and_its_use_on_that_gpu(tmp_path, monkeypatch):
    """benchmarks/make_mmasp_cfg_table.py: per cell the fastest reg_xf config when >= 2 were timed, a
    later file replacing a cell, pdl lines left out; table_for serves the packaged table on its GPU
    only (launch configs, no backend choices), after the per-device cache."""
    from types import SimpleNamespace

    from spense.runtime import autotune as at

    mk = load_benchmark("make_mmasp_cfg_table")

    def line(N, M, RT, w, us, fp8=0, pdl=""):
        return (f"N={N} K=4096 d=0.250 axis=c fp8={fp8} M={M} RT={RT} warps={w} stages=4 xfrag=1{pdl} | "
                f"rel_diff 0 nonfinite 0 | reg 99.0 us 1 GB/s | reg_xf {us} us 1 GB/s | bulk 1.0 us 1 GB/s")

    old = "\n".join(["# NVIDIA H200, 2026-11-30T16:00:00Z, commit aaa", line(6144, 1, 1, 4, 14.0),
                     line(6144, 1, 1, 8, 13.0), line(6144, 16, 1, 4, 17.0), line(6144, 16, 2, 4, 30.0),
                     line(6144, 16, 1, 8, 5.0, pdl=" pdl=1"), line(4096, 1, 1, 4, 9.0, fp8=1)])
    new = "\n".join(["# NVIDIA H200, 2026-11-30T20:00:00Z, commit bbb", line(6144, 1, 1, 4, 14.5),
                     line(6144, 1, 1, 8, 16.1)])
    t = mk.make_table([("old", old), ("new", new)], (9, 0))
    assert t["device"] == "NVIDIA H200" and t["date"] == "2026-11-30T20:00:00Z"
    assert t["mmasp_cfg"] == {"bf16,cols,6144,4096,0.25,1": [1, 4],  # the newer file's cell
                              "bf16,cols,6144,4096,0.25,16": [1, 4]}  # pdl left out; fp8: one config only
    with pytest.raises(ValueError):
        mk.make_table([("x", line(1, 1, 1, 4, 1.0))], (9, 0))  # no header
    # a linear_bench.json: per cell the config of the engine's column, mmasp_xh (FP8 on x's f16 operand) over
    # mmasp_xf, in either order; later than the harness file, it replaces the cell it measured again

    def row(backend, M, cfg, dt="fp8", N=4096):
        return {"backend": backend, "dtype": dt, "axis": "cols", "N": N, "K": 4096, "dense_ratio": 0.25, "M": M,
                "ms": 0.01, "config": cfg, "device": "NVIDIA H200", "date": "2026-12-01T23:00:00+00:00",
                "commit": "ccc"}
    bench = json.dumps([row("mmasp", 1, [2, 8, 0]), row("mmasp_xf", 1, [1, 8]), row("mmasp_xh", 1, [2, 4]),
                        row("mmasp_xh", 8, [1, 16]), row("mmasp_xf", 8, [1, 4]), row("dense", 8, None),
                        row("mmasp_xf", 1, [1, 8], dt="bf16", N=6144)])
    t = mk.make_table([("old", old), ("run/linear_bench.json", bench)], (9, 0))
    assert t["mmasp_cfg"] == {"bf16,cols,6144,4096,0.25,1": [1, 8], "bf16,cols,6144,4096,0.25,16": [1, 4],
                              "fp8,cols,4096,4096,0.25,1": [2, 4], "fp8,cols,4096,4096,0.25,8": [1, 16]}
    assert t["sources"][-1]["commit"] == "ccc" and t["sources"][-1]["cells"] == 3
    # the packaged H200 table, on a (faked) H200 only, and a cache measured on the GPU wins over it
    monkeypatch.setenv("SPENSE_CACHE", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA H200")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (9, 0))
    at._DEVICE_TABLES.clear()
    src, table = at.table_for(torch.device("cuda", 0))
    assert src == "cfg" and table["device"] == "NVIDIA H200" and "choice" not in table
    qkv = SimpleNamespace(scale=None, values=torch.empty(0, dtype=torch.bfloat16), out_features=6144,
                          in_features=4096, layout=SimpleNamespace(axis="cols", dense_ratio=0.25))
    assert at.default_mmasp_cfg(qkv, 32, table) == (1, 4)  # 8 warps ran 47 % slower there (quick_c54974e)
    assert at.default_choice(qkv, 1, table) == "mmasp" and at.default_choice(qkv, 32, table) == "dense"
    # the H100's packaged table: the built-in table's configs, the cells of the 8B shapes measured again at 25 %
    # dense columns (av: FP8 at M = 1, 8, 16; bk, bl: FP8 at M = 1, 8 with wider CTAs; bm: BF16 at M = 8), and five
    # BF16 cells whose RT = 2 configs lost to RT = 1 (co, cq: 8B.qkv, 32B.qkv, 32B.o and 32B.down at M = 4,
    # 32B.qkv at 16); then the 32B shapes' FP8 cells at M = 1, 4, 8, 16 and BF16 cells at M = 8 (cw, cy)
    h100_pkg = at.packaged_cfg_table("NVIDIA H100 80GB HBM3", (9, 0))
    builtin_cfg = at._full_table()["mmasp_cfg"]
    assert h100_pkg["device"] == at._full_table()["device"] == "NVIDIA H100 80GB HBM3"
    changed = {k for k, v in h100_pkg["mmasp_cfg"].items() if builtin_cfg.get(k) != v}
    eight_b = {"6144,4096", "4096,4096", "24576,4096", "4096,12288"}
    b32 = {"10240,5120", "5120,8192", "51200,5120", "5120,25600"}
    rt1 = {"bf16,cols,6144,4096,0.25,4": [1, 4], "bf16,cols,10240,5120,0.25,4": [1, 8],
           "bf16,cols,10240,5120,0.25,16": [1, 8], "bf16,cols,5120,8192,0.25,4": [1, 4],
           "bf16,cols,5120,25600,0.25,4": [1, 4]}
    assert {k: h100_pkg["mmasp_cfg"][k] for k in rt1} == rt1 and all(builtin_cfg[k][0] == 2 for k in rt1)
    assert changed and all(k.split(",")[1] == "cols" and k.split(",")[4] == "0.25"
                           and ",".join(k.split(",")[2:4]) in eight_b | b32 for k in changed - set(rt1))
    assert {k for k in changed - set(rt1) if k.startswith("bf16,")} == {f"bf16,cols,{s},0.25,8" for s in eight_b | b32}
    assert {k for k in changed if k.startswith("fp8,") and ",".join(k.split(",")[2:4]) in b32} == {
        f"fp8,cols,{s},0.25,{m}" for s in b32 for m in (1, 4, 8, 16)}
    assert h100_pkg["mmasp_cfg"]["fp8,cols,5120,25600,0.25,8"] == [1, 8]  # 32B.down: (2, 8) at M = 4 before (cw)
    assert h100_pkg["mmasp_cfg"]["fp8,cols,24576,4096,0.25,8"] == [1, 8]  # the built-in: none at M = 8; (2, 8) at 1
    assert h100_pkg["mmasp_cfg"]["fp8,cols,4096,12288,0.25,8"] == [1, 12]  # 8B.down: 12 warps (bk)
    at._DEVICE_TABLES.clear()
    # SPENSE_MMASP_CFG: another table in its place, on the GPU it names only; an unreadable one is refused
    other = dict(t, device="NVIDIA H200", mmasp_cfg={"fp8,cols,4096,4096,0.25,1": [2, 8]})
    (tmp_path / "cand.json").write_text(json.dumps(other))
    monkeypatch.setenv("SPENSE_MMASP_CFG", str(tmp_path / "cand.json"))
    assert at.packaged_cfg_table("NVIDIA H200", (9, 0))["mmasp_cfg"] == other["mmasp_cfg"]
    assert at.packaged_cfg_table("NVIDIA H100 80GB HBM3", (9, 0)) is None  # (an override naming the H200)
    # on the GPU of the built-in table (faked H100), the override's launch configs replace the built-in's, its
    # backend choices stay; with an override naming another GPU no packaged table is read: the built-in's serve
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA H100 80GB HBM3")
    at._DEVICE_TABLES.clear()
    src, table = at.table_for(torch.device("cuda", 0))
    assert src == "builtin" and table["mmasp_cfg"] == builtin_cfg != other["mmasp_cfg"]
    h100 = dict(other, device="NVIDIA H100 80GB HBM3")
    (tmp_path / "h100.json").write_text(json.dumps(h100))
    monkeypatch.setenv("SPENSE_MMASP_CFG", str(tmp_path / "h100.json"))
    at._DEVICE_TABLES.clear()
    src, table = at.table_for(torch.device("cuda", 0))
    assert src == "builtin" and table["mmasp_cfg"] == h100["mmasp_cfg"]
    assert table["choice"] == at._full_table()["choice"] and at._full_table()["mmasp_cfg"] != h100["mmasp_cfg"]
    # a packaged table of this GPU does the same without the switch; with none, the built-in configs serve
    monkeypatch.delenv("SPENSE_MMASP_CFG")
    packaged = at.packaged_cfg_table
    monkeypatch.setattr(at, "packaged_cfg_table", lambda n, c: h100 if n == h100["device"] else None)
    at._DEVICE_TABLES.clear()
    src, table = at.table_for(torch.device("cuda", 0))
    assert src == "builtin" and table["mmasp_cfg"] == h100["mmasp_cfg"]
    monkeypatch.setattr(at, "packaged_cfg_table", lambda n, c: None)
    at._DEVICE_TABLES.clear()
    assert at.table_for(torch.device("cuda", 0))[1]["mmasp_cfg"] == builtin_cfg
    monkeypatch.setattr(at, "packaged_cfg_table", packaged)
    at._DEVICE_TABLES.clear()
    for bad in ("missing.json", "list.json"):
        (tmp_path / "list.json").write_text("[1, 2]")
        monkeypatch.setenv("SPENSE_MMASP_CFG", str(tmp_path / bad))
        with pytest.raises(ValueError, match=f"SPENSE_MMASP_CFG=.*{bad}"):
            at.packaged_cfg_table("NVIDIA H200", (9, 0))


def test_fixed_cost_fit_recovers_a_line():
    """benchmarks/fixed_cost_fit.py: t = t0 + bytes / R fitted per (kernel, dtype, K, M, RT, warps, pdl)
    from the harness lines of a sweep over N (bytes = GB/s x µs), other dense ratios left out."""
    fc = load_benchmark("fixed_cost_fit")

    def line(N, us, gbps, d="0.250", pdl=0):
        return (f"N={N} K=4096 d={d} axis=c fp8=0 M=1 RT=1 warps=4 stages=4 xfrag=0 pdl={pdl} | rel_diff 0 "
                f"nonfinite 0 | reg_xf {us:.2f} us {gbps:.0f} GB/s | copy 4200 GB/s")

    rows = []
    for mb in (10.0, 20.0, 40.0, 80.0):  # t = 5 µs + bytes / 4 TB/s
        us = 5.0 + mb * 1e6 / 4e6
        rows.append(line(int(mb), us, mb * 1e6 / (us * 1e3)))
    rows.append(line(1, 100.0, 1.0, d="0.500"))  # another dense ratio: not in the fit
    head, groups = fc.parse("# NVIDIA H200, 2026-12-01T00:00:00Z, commit abc\n" + "\n".join(rows))
    assert head["commit"] == "abc"
    (key, pts), = groups.items()
    assert key == ("reg_xf", 0, 4096, 1, 1, 4, 0) and len(pts) == 4
    t0, rate, r2 = fc.fit(pts)
    assert abs(t0 - 5.0) < 0.05 and abs(rate - 4.0) < 0.05 and r2 > 0.999
