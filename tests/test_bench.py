"""``spense bench`` with the engine on CPU: rows, byte accounting, token checks, report files."""

import json
import os
import warnings

import pytest
import torch

from conftest import load_benchmark
from spense.engine import measure
from spense.errors import InputError


def test_measure_rows_cpu(tmp_path):
    from spense import report

    logged: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = measure.run("qwen3-tiny", batches=(1, 2), ratios=(0.0, 0.25), prompt_len=8, gen=6,
                           device="cpu", check_tokens=5, log=logged.append)
    assert len(logged) == 6 and all("(floor n/a)" in m and "nan" not in m for m in logged)  # no copy bandwidth
    assert [(r["variant"], r["batch"]) for r in rows] == [(v, b) for v in ("dense", "spense0", "spense0.25")
                                                          for b in (1, 2)]
    need = {"weight_bytes", "floor_ms", "peak_mem_bytes", "linear_weight_bytes", "dense_linear_weight_bytes",
            "step_ms", "decode_tok_s", "speedup_vs_dense", "device", "date", "commit", "launch_cfg", "switches",
            "attention_fused"}
    for r in rows:
        assert need <= set(r), need - set(r)
        assert r["attention_fused"] == (r["attention"] == "split")  # CPU: "auto" (SDPA), never fused
        assert r["step_ms"] > 0 and r["weight_bytes"] > r["linear_weight_bytes"] > 0
    lin = {r["variant"]: r["linear_bytes_ratio"] for r in rows}
    assert lin["dense"] == 1.0 and lin["spense0"] < lin["spense0.25"] < 1.0
    checked = [r for r in rows if "tokens_identical" in r]
    assert len(checked) == 3 and all(r["tokens_identical"] for r in checked)
    # the backends' spread on the same input was measured (prefill and first step), and agreeing tokens lie within it
    assert all(0 <= r["noise_ulps"] < 64 and r["tie_within_noise"] is True for r in checked)
    paths = report.write(rows, tmp_path, "t")
    assert len(json.loads(paths["json"].read_text())) == 6
    assert paths["md"].read_text().startswith("# End-to-end decode")
    assert "nan" not in paths["md"].read_text() and "| n/a |" in paths["md"].read_text()  # CPU: no floor


def test_report_names_the_rows_slower_than_dense():
    """The table is followed by the rows that a user should serve dense instead (speedup_vs_dense < 1), and by
    nothing when Spense wins everywhere."""
    from spense import report

    rows = [{"model": "m", "variant": v, "batch": b, "speedup_vs_dense": s} for v, b, s in
            (("dense-fp8", 32, 1.0), ("spense0.25-fp8", 1, 1.225), ("spense0.25-fp8", 32, 0.97),
             ("whole0.25", 8, None))]
    assert [(r["variant"], r["batch"]) for r in report.slower_than_dense(rows)] == [("spense0.25-fp8", 32)]
    md = report.markdown(rows)
    assert "* m spense0.25-fp8 at batch 32: 0.970x of dense" in md and "batch 1:" not in md
    rows[2]["speedup_vs_dense"] = 1.01
    assert "faster choice" not in report.markdown(rows)


def test_report_says_a_repeated_step_is_a_median_and_its_spread():
    """Rows merged from repeated processes (``spense bench --repeat``) get one line saying so, with the spread of
    their rounds; rows of single processes get none."""
    from spense import report

    rows = [{"model": "m", "variant": v, "batch": 1, "step_ms_runs": [1.0, 1.1, 1.2], "step_ms_spread": s}
            for v, s in (("dense", 0.02), ("spense0.25", 0.215))]
    assert "* step_ms: the median of 3 processes a variant; their spread (max - min) / median 2.0-21.5 %" in \
        report.markdown(rows)
    assert "median of" not in report.markdown([{k: v for k, v in r.items() if k != "step_ms_runs"} for r in rows])
    rows[0]["step_ms_runs"] = [1.0, 1.1]  # rounds that differ in number, a spread not given
    rows[1]["step_ms_spread"] = None
    assert "* step_ms: the median of 2-3 processes a variant; their spread (max - min) / median 2.0-2.0 %" in \
        report.markdown(rows)


def test_report_write_is_atomic(tmp_path, monkeypatch):
    """An interrupted report leaves the earlier files whole and no temp file behind."""
    from spense import report

    rows = [{"model": "m", "variant": "dense", "batch": 1, "step_ms": 1.0, "floor_ms": 0.5, "speedup_vs_dense": 1.0}]
    paths = report.write(rows, tmp_path, "r")
    before = {k: p.read_bytes() for k, p in paths.items()}

    def broken(rows):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "markdown", broken)
    with pytest.raises(KeyboardInterrupt):
        report.write(rows * 2, tmp_path, "r")
    assert paths["md"].read_bytes() == before["md"] and not list(tmp_path.glob("*.tmp"))
    assert len(json.loads(paths["json"].read_text())) == 2  # written whole before the interruption


def test_switches_recorded(monkeypatch):
    """Every SPENSE_ATTN_*, SPENSE_MMASP_* and SPENSE_WGS* switch and TORCHINDUCTOR_* setting lands in a row's
    ``switches`` (any name, not a fixed list), the extension's path not."""
    for k in list(os.environ):
        if k.startswith(("SPENSE_", "TORCHINDUCTOR_")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("SPENSE_MMASP_PF", "1")
    monkeypatch.setenv("SPENSE_ATTENTION", "split")
    monkeypatch.setenv("SPENSE_WGSD_MIN_M", "17")
    monkeypatch.setenv("SPENSE_WGSP_CLUSTER", "1")
    monkeypatch.setenv("SPENSE_MMASP_SO", "/tmp/x.so")
    monkeypatch.setenv("SPENSE_COMMIT", "abc")
    monkeypatch.setenv("TORCHINDUCTOR_ENABLE_PDL", "1")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/tmp/ti")
    monkeypatch.setenv("SPENSE_OPERAND_ONLY", "1")
    monkeypatch.setenv("SPENSE_ATTN_FUSED", "0")
    monkeypatch.setenv("SPENSE_NORM_PARTS", "1")
    assert measure.switches() == {"SPENSE_ATTENTION": "split", "SPENSE_ATTN_FUSED": "0", "SPENSE_MMASP_PF": "1",
                                  "SPENSE_NORM_PARTS": "1", "SPENSE_OPERAND_ONLY": "1",
                                  "SPENSE_WGSD_MIN_M": "17", "SPENSE_WGSP_CLUSTER": "1",
                                  "TORCHINDUCTOR_ENABLE_PDL": "1"}


@pytest.mark.parametrize("args, says", [
    (["qwen3-tiny", "--whole", "5"], "--whole: 5 is not in (0, 1]"),
    (["qwen3-tiny", "--whole", "-1"], "--whole: -1 is not in (0, 1]"),
    (["qwen3-tiny", "--whole", "0"], "--whole: 0 is not in (0, 1]"),
    (["qwen3-tiny", "--dense-ratio", "2"], "--dense-ratio: 2 is not in [0, 1]"),
    (["qwen3-tiny", "--dense-ratio", "1e-6"], "--dense-ratio: 1e-06 is too small"),
    (["qwen3-tiny", "--axis", "diag"], "--axis: 'diag' is not cols or rows"),
    (["qwen3-tiny", "--batch", "1,0"], "--batch: batch sizes must be >= 1"),
    (["qwen3-tiny", "--batch", "1,,8"], "--batch: empty item in '1,,8'"),
    (["qwen3-tiny", "--batch", "8,1,8"], "--batch: 8 listed twice"),
    (["qwen3-tiny", "--dense-ratio", "0.25,0.25"], "--dense-ratio: 0.25 listed twice"),
    (["qwen3-tiny", "--check-tokens", "-1"], "--check-tokens must be >= 0"),
    (["qwen3-tiny", "--gen", "4"], "--gen must be >= 5 (the step is timed over the tokens after the first few), got 4"),
    (["qwen3-tiny", "--prompt-len", "0"], "--prompt-len must be >= 1, got 0"),
    (["qwen3-tiny[:9]"], "qwen3-tiny has 2 layers"),
    (["qwen3-tiny:2"], "qwen3-tiny:2: write the layer count as qwen3-tiny[:L], L a whole number from 1 to 2"),
    (["qwen3-tiny[:-1]"], "write the layer count as qwen3-tiny[:L]"),
    (["smollm2-135m[:2]"], "[:L] takes the first layers of a built-in shape (qwen3-8b"),
    (["nomodel"], "built-in shape (qwen3-8b, qwen3-32b, qwen3-32b[:16], qwen3-tiny"),
    (["CKPT"], "is a Spense checkpoint; spense bench prunes a dense model itself"),
    (["qwen3-tiny", "--out", "/proc/x"], "cannot write --out /proc/x"),
    (["qwen3-tiny", "--prompt-len", "100000"], "need a cache of 100120 tokens; qwen3-tiny has 1024 positions"),
    (["qwen3-tiny", "--out", "FILE"], "cannot write --out FILE: it exists and is not a directory"),
    (["qwen3-tiny", "--out", "FILE/sub"], "cannot write --out FILE/sub: FILE is not a directory"),
])
def test_bench_refuses_bad_options_before_any_model(tmp_path, monkeypatch, args, says):
    """``spense bench``: every bad option (and a Spense checkpoint, which bench does not take) is a one-line
    error naming it, exit 2, before any model is built."""
    from typer.testing import CliRunner

    from spense.cli import app

    def no_model(*a, **k):
        raise AssertionError("a model was built before the options were checked")

    monkeypatch.setattr(measure, "run", no_model)
    monkeypatch.setattr(measure, "build_variant", no_model)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "spense.json").write_text("{}")
    (tmp_path / "file").write_text("")
    subs = {"CKPT": str(tmp_path / "ckpt"), "FILE": str(tmp_path / "file")}
    for k, v in subs.items():
        args = [a.replace(k, v) for a in args]
        says = says.replace(k, v)
    res = CliRunner().invoke(app, ["bench", *args, "--device", "cpu"])
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert says in res.stderr and res.stderr.strip().count("\n") == 0, res.stderr
    assert "Traceback" not in res.output


def test_bench_out_check_accepts_a_new_folder_and_leaves_nothing(tmp_path):
    """A new ``--out`` under a writable folder (or an existing folder) passes, and the probe leaves no folder."""
    from spense.io import check_writable

    check_writable(tmp_path / "a" / "b", "--out", inside=True)
    check_writable(tmp_path, "--out", inside=True)
    assert list(tmp_path.iterdir()) == []


def test_bench_out_never_replaces_a_file_of_the_users(tmp_path):
    """``--out`` may hold an earlier ``spense bench`` report of ``--name`` (replaced), never another file of that
    name (refused, naming it, and left as it was)."""
    from spense.cli.bench import check_report_files

    check_report_files(tmp_path, "e2e_engine")  # nothing there yet
    (tmp_path / "e2e_engine.json").write_text(json.dumps([{"variant": "dense", "step_ms": 1.0, "batch": 1}]))
    (tmp_path / "e2e_engine.md").write_text("| earlier |")
    check_report_files(tmp_path, "e2e_engine")  # an earlier report: its files are replaced
    for name, text in (("mine", '{"my": "data"}'), ("rows", '[{"variant": "dense"}]'), ("bad", "{")):
        (tmp_path / f"{name}.json").write_text(text)
        with pytest.raises(InputError, match=f"{name}.json exists and is not an earlier `spense bench` report's"):
            check_report_files(tmp_path, name)
        assert (tmp_path / f"{name}.json").read_text() == text
    (tmp_path / "plot.png").write_bytes(b"mine")
    with pytest.raises(InputError, match="plot.png exists and is not an earlier"):
        check_report_files(tmp_path, "plot")


def test_bad_shape_name():
    with pytest.raises(InputError):
        measure.run("qwen3-tiny[:9]", batches=(1,), device="cpu", log=lambda m: None)


def test_e2e_summary_best_rows_ratios_and_anchor(tmp_path, monkeypatch):
    """benchmarks/e2e_summary.py: the fastest comparable row per (model, variant, batch) across run
    folders, Spense over the best dense of its dtype and over the fastest gpt-fast anchor; rows timed
    one step at a time, not compiled, or profiled are left out."""
    import matplotlib.axes

    mod = load_benchmark("e2e_summary")
    real_bar = matplotlib.axes.Axes.bar
    m = "qwen3-8b[:12]"

    def row(variant, ms, **kw):
        return {"model": m, "variant": variant, "batch": 1, "step_ms": ms, "x_floor": ms / 1.4, "compiled": True,
                "step_sync_ms": ms + 0.3, **kw}

    runs = {"a": [row("dense", 2.2), row("spense0.25", 2.0),
                  row("spense0.25", 1.5, switches={"SPENSE_MMASP_PF": "1"})],  # another setup: its own row
            "b": [row("dense", 2.1), row("spense0.25", 1.0, profile_ms={}),  # profiled: left out
                  {k: v for k, v in row("spense0.25", 0.5).items() if k != "step_sync_ms"},  # old timing
                  row("spense0.25", 0.9, compiled=False)]}  # not compiled
    for name, rs in runs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rs) + "\n")
    (tmp_path / "a" / "anchor.txt").write_text(json.dumps({"n_layer": 12, "B1": {"step_ms": 1.9}}) + "\n")
    (tmp_path / "b" / "anchor.txt").write_text(json.dumps({"n_layer": 12, "B1": {"step_ms": 1.8}}) + "\n")
    rows, anchor = mod.load([tmp_path / "a", tmp_path / "b"])
    assert anchor == {(m, 1): 1.8}
    (tmp_path / "c").mkdir()  # all 36 layers: the rows call the model plain "qwen3-8b"
    (tmp_path / "c" / "anchor.txt").write_text(json.dumps({"n_layer": 36, "B8": {"step_ms": 6.4}}) + "\n")
    assert mod.load([tmp_path / "c"])[1] == {("qwen3-8b", 8): 6.4}
    t = mod.table(rows, anchor)
    line = next(s for s in t.splitlines() if "| spense0.25 |" in s)
    assert "| 2.000 |" in line and f"| {2.1 / 2.0:.3f}× |" in line and f"| {1.8 / 2.0:.2f}× |" in line
    assert "| 2.100 |" in next(s for s in t.splitlines() if "| dense |" in s)
    assert f"| spense0.25 [MMASP_PF=1] | 1 | 1.500 | 1.07 | {2.1 / 1.5:.3f}× |" in t
    both = [row(v, ms, switches={"SPENSE_ATTN_X": "1"}, _run="g") for v, ms in (("dense", 2.05), ("spense0.25", 1.6))]
    # a switch run on both models: Spense against the dense row under the same switch
    assert f"| spense0.25 [ATTN_X=1] | 1 | 1.600 | 1.14 | {2.05 / 1.6:.3f}× |" in mod.table(rows + both, anchor)
    every = mod.table(rows, anchor, all_rows=True)  # the old-timing 0.5 ms row wins there; profiled rows never
    assert "| 0.500 |" in next(s for s in every.splitlines() if "| spense0.25 |" in s)
    fp8 = [row(v, ms, _run="f") for v, ms in (("dense-fp8", 1.6), ("spense0.25-fp8", 1.28), ("whole0.25-fp8", 1.4))]
    assert f"| {1.6 / 1.28:.3f}× |" in mod.table(rows + fp8, anchor)
    # two GPUs: each model label names its device, each folder's anchor its rows' device; nothing merged across
    for name, dev, ms in (("h1", "GPU-A", 2.0), ("h2", "GPU-B", 1.5)):
        (tmp_path / name).mkdir()
        rs = [row("dense", ms * 1.3, device=dev), row("spense0.25", ms, device=dev)]
        (tmp_path / name / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rs) + "\n")
        (tmp_path / name / "anchor.txt").write_text(json.dumps({"n_layer": 12, "B1": {"step_ms": ms * 1.2}}) + "\n")
    rows2, anchor2 = mod.load([tmp_path / "h1", tmp_path / "h2"])
    assert anchor2 == pytest.approx({(f"{m} @ GPU-A", 1): 2.4, (f"{m} @ GPU-B", 1): 1.8})
    t2 = mod.table(rows2, anchor2)
    assert f"| {m} @ GPU-A | spense0.25 | 1 | 2.000 |" in t2 and f"| {m} @ GPU-B | spense0.25 | 1 | 1.500 |" in t2
    assert t2.count(f"| {1.3:.3f}× | {1.2:.2f}× |") == 2  # each against its own GPU's dense row and anchor
    mod.plot(rows + fp8, str(tmp_path / "up.png"))  # the speed-ups as bars
    # the switched row against the default
    assert f"| dense [ATTN_X=1] | 1 | 2.050 | 1.46 | {2.1 / 2.05:.3f}× |" in mod.table(rows + both, anchor)
    (tmp_path / "run9" / "e2e").mkdir(parents=True)  # run_e2e.sh's own subfolder: rows named by the run's folder
    (tmp_path / "run9" / "e2e" / "rows.jsonl").write_text(json.dumps(row("dense", 2.0)) + "\n")
    assert mod.load([tmp_path / "run9" / "e2e"])[0][0]["_run"] == "run9"
    with pytest.raises(SystemExit):
        mod.main([str(tmp_path / "a"), "--plot", str(tmp_path / "p.png"), "--prefer", "ATTN_X"])
    drawn = []
    monkeypatch.setattr("matplotlib.axes.Axes.bar", lambda self, xs, ys, *a, **k: drawn.append(list(ys)) or
                        real_bar(self, xs, ys, *a, **k))
    mod.plot(rows + both, str(tmp_path / "up2.png"), prefer={"SPENSE_ATTN_X": "1"})  # the switched row, own dense
    assert drawn == [[2.05 / 1.6]]
    assert (tmp_path / "up.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_launch_configs_lists_running_spense_shapes():
    """launch_configs: one entry per Spense shape that runs, fused projections in, their members out."""
    import torch

    from spense.runtime.linear import SpenseLinear

    def lin(n, k, cfg, fused=False):
        m = SpenseLinear.__new__(SpenseLinear)
        torch.nn.Module.__init__(m)
        m.out_features, m.in_features, m.mmasp_cfg, m._fused = n, k, cfg, fused
        return m

    model = torch.nn.ModuleList([lin(6144, 4096, {1: (1, 4), 32: (1, 4)}), lin(4096, 4096, {1: (1, 8)}, fused=True),
                                 lin(4096, 12288, {})])
    assert measure.launch_configs(model) == {"6144,4096": {1: [1, 4], 32: [1, 4]}}


def test_launch_cfg_from_names_the_buckets_a_cell_of_another_m_serves(monkeypatch):
    """launch_cfg_from: the M buckets whose launch config is the table cell of another M (the table has none at
    theirs), with that M; not the buckets measured at their own M, nor a config that is not the cell's (tuned)."""
    from types import SimpleNamespace

    from spense.runtime import autotune as at
    from spense.runtime.linear import SpenseLinear

    table = {"mmasp_cfg": {"bf16,cols,6144,4096,0.25,1": [1, 4], "bf16,cols,6144,4096,0.25,4": [2, 8],
                           "bf16,cols,6144,4096,0.25,16": [1, 5]}}
    monkeypatch.setattr(at, "_layer_table", lambda layer: table)
    m = SpenseLinear.__new__(SpenseLinear)
    torch.nn.Module.__init__(m)
    m.out_features, m.in_features, m._fused, m.scale = 6144, 4096, False, None
    m.values, m.layout = torch.empty(0, dtype=torch.bfloat16), SimpleNamespace(axis="cols", dense_ratio=0.25)
    m.mmasp_cfg = {1: (1, 4), 8: (2, 8), 16: (1, 5), 2: (1, 16)}  # M = 2: M = 4's cell gives (2, 8); (1, 16) tuned
    assert at.cfg_cell(m, 8) == "bf16,cols,6144,4096,0.25,4" and at.cfg_cell(m, 16) == "bf16,cols,6144,4096,0.25,16"
    assert at.default_mmasp_cfg(m, 8) == (2, 8) and at.default_mmasp_cfg(m, 2) == (2, 8)
    assert measure.launch_cfg_from(torch.nn.ModuleList([m])) == {"6144,4096": {8: 4}}
    m.scale = torch.ones(1)  # as FP8, the table has no cell of this shape: nothing to name
    assert at.cfg_cell(m, 8) is None and measure.launch_cfg_from(torch.nn.ModuleList([m])) == {}


def test_sass_round_loads_counts_branches_between_a_loops_weight_loads(tmp_path, capsys):
    """benchmarks/sass_round_loads.py on a made-up cuobjdump listing: a loop whose four weight loads
    (LDG.E.NA.128) sit behind branches counts them, a predicated one counts none, a straight run is no loop;
    --fail-on exits 1 only for a kernel with branches; an unreadable file exits 2 with one line."""
    mod = load_benchmark("sass_round_loads")

    def kernel(name, body):
        lines = [f"\t\tFunction : {name}"]
        lines += [f"        /*{16 * i:04x}*/                   {ins} ;" for i, ins in enumerate(body)]
        return "\n".join(lines)

    ld = "@!P1 LDG.E.NA.128.CONSTANT R12, desc[UR8][R80.64]"
    branchy = ["S2R R0, SR_TID.X", ld, "@P2 BRA 0x40", ld, "@P3 BRA 0x60", ld, ld, "HMMA.SP.16832.F32.BF16 R4, R12",
               "@!P0 BRA 0x10", "EXIT"]
    flat = ["S2R R0, SR_TID.X", ld, ld, ld, ld, "HMMA.SP.16832.F32.BF16 R4, R12", "@!P0 BRA 0x10", "EXIT"]
    straight = ["S2R R0, SR_TID.X", ld, ld, ld, ld, "EXIT"]
    text = "\n".join([kernel("k_branchy", branchy), kernel("k_flat", flat), kernel("k_straight", straight)])
    fns = mod.functions(text)
    assert set(fns) == {"k_branchy", "k_flat", "k_straight"}
    assert mod.round_load_branches(fns["k_branchy"]) == [(4, 2)]
    assert mod.round_load_branches(fns["k_flat"]) == [(4, 0)]
    assert mod.round_load_branches(fns["k_straight"]) == []
    f = tmp_path / "sass.txt"
    f.write_text(text)
    assert mod.main([str(f), "--fail-on", "k_flat"]) == 0
    assert mod.main([str(f), "--fail-on", "k_branchy"]) == 1
    out = capsys.readouterr().out
    assert "k_branchy" in out and "4 loads, 2 branches" in out and "k_straight" not in out
    assert mod.main([str(tmp_path / "none.txt")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert mod.is_branch("@P0 BRA.U 0x10") and mod.is_branch("BRX R2 -0x20") and not mod.is_branch("BSYNC B0")
    (tmp_path / "bin").write_bytes(b"\x7fELF\xff\xfe")
    assert mod.main([str(tmp_path / "bin")]) == 2 and "not text" in capsys.readouterr().err


def test_attn_regs_occupancy_rule_and_a_compiled_kernel(capsys, monkeypatch):
    """benchmarks/attn_regs.py: CTAs a SM from registers (allocated 256 a warp), shared memory and the 32-CTA limit;
    the split kernel's launch recorded from the launcher on the engine's layout (the module's kernels restored after);
    then that kernel compiled for sm_90a here (no GPU) at the 8B shape's B = 8 split, specialized as a launch is:
    the key and value loads in Triton's pipeline (3 stages: key, value and mask row, 3 each), 2 stages fewer copies;
    uncapped and capped at 128 registers, the cap holding; 8 warps a program counted as 8; the module's settings as they
    were."""
    from spense.runtime import attention

    mod = load_benchmark("attn_regs")
    assert [mod.ctas_per_sm(r, 4, 13312) for r in (208, 181, 168, 128)] == [2, 2, 3, 4]
    assert mod.ctas_per_sm(32, 4, 100_000) == 2  # shared memory bound: 228 KiB / (100,000 + 1 KiB)
    assert mod.ctas_per_sm(16, 1, 0) == 32  # the CTA limit
    pytest.importorskip("triton")
    split_fn = attention._decode_attn_split
    monkeypatch.setattr(attention, "SPLIT_MAXNREG", 128)  # the defaults, whatever the environment sets
    monkeypatch.setattr(attention, "SPLIT_STAGES", 2)
    grid, args, kwargs = mod.launch_call(8)
    assert attention._decode_attn_split is split_fn and grid == (64, 5)  # 8 rows x 8 heads, 5 splits of 128 keys
    assert kwargs["PDL"] and kwargs["FUSED"] and kwargs["SPLIT"] == 128 and args[split_fn.arg_names.index("skl")] == 128
    assert kwargs["maxnreg"] == 128 and kwargs["num_stages"] == 2  # the module's settings reach the launch
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with pytest.raises(SystemExit, match="unset TRITON_INTERPRET"):
        mod.launch_call(8)
    monkeypatch.delenv("TRITON_INTERPRET")
    if not os.path.exists(mod._cuobjdump()):
        pytest.skip("no cuobjdump beside this Triton")
    before = [getattr(attention, k) for k in mod.SETTINGS]
    rows = mod.main(["--batches", "8", "--early", "1", "--caps", "0,128", "--stages", "0,2"])
    assert [getattr(attention, k) for k in mod.SETTINGS] == before
    assert [(r["split"], r["programs"], r["maxnreg"], r["stages"]) for r in rows] == [
        (128, 320, 0, 0), (128, 320, 0, 2), (128, 320, 128, 0), (128, 320, 128, 2)]
    assert rows[0]["pipelined_loads"] == 9 and rows[1]["pipelined_loads"] == 6 and rows[1]["smem"] < rows[0]["smem"]
    assert rows[2]["regs"] <= 128 < rows[0]["regs"] and rows[2]["ctas_per_sm"] >= rows[0]["ctas_per_sm"]
    assert rows[0]["waves"] == round(320 / (rows[0]["ctas_per_sm"] * 132), 2)
    assert "320 programs" in capsys.readouterr().out
    (w8,) = mod.main(["--batches", "8", "--early", "1", "--caps", "0", "--stages", "2", "--warps", "8"])
    assert w8["warps"] == 8 and w8["ctas_per_sm"] == mod.ctas_per_sm(w8["regs"], 8, w8["smem"])
    assert attention.SPLIT_WARPS == 4


def test_fp8_lm_head_switch_on_cpu(monkeypatch):
    """SPENSE_FP8_LM_HEAD=1: the FP8 variants (dense and Spense) take their lm_head in e4m3, BF16 variants keep
    theirs; the logits stay near the unquantized head's, the weight bytes drop by the head's saving, the switch is
    recorded, and a bad value is a one-line InputError."""
    from spense.runtime.fp8 import Fp8Linear

    dev = torch.device("cpu")
    for k in list(os.environ):
        if k.startswith("SPENSE_"):
            monkeypatch.delenv(k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain, _ = measure.build_variant("qwen3-tiny", "dense-fp8", dev, None, 0, "cols")
        monkeypatch.setenv("SPENSE_FP8_LM_HEAD", "1")
        built = {v: measure.build_variant("qwen3-tiny", v, dev, None, 0, "cols")[0]
                 for v in ("dense-fp8", "spense0.25-fp8", "dense")}
    assert isinstance(built["dense-fp8"].lm_head, Fp8Linear) and isinstance(built["spense0.25-fp8"].lm_head, Fp8Linear)
    assert not isinstance(built["dense"].lm_head, Fp8Linear) and not isinstance(plain.lm_head, Fp8Linear)
    x = torch.randn(3, plain.lm_head.in_features, generator=torch.Generator().manual_seed(0))
    want = plain.lm_head(x).float()
    got = built["dense-fp8"].lm_head(x).float()
    assert not torch.equal(got, want) and (got - want).abs().max() < 0.08 * want.abs().max()
    head = plain.lm_head.weight
    saved = head.numel() * head.element_size() - measure._bytes([built["dense-fp8"].lm_head])
    assert saved > 0 and measure.weight_bytes(plain)[0] - measure.weight_bytes(built["dense-fp8"])[0] == saved
    assert measure.switches()["SPENSE_FP8_LM_HEAD"] == "1"
    monkeypatch.setenv("SPENSE_FP8_PDL", "1")  # every SPENSE_FP8_* switch is recorded
    assert measure.switches()["SPENSE_FP8_PDL"] == "1"
    monkeypatch.setenv("SPENSE_DENSE_STREAM", "0")  # and the dense BF16 kernel's switch (runtime.dense)
    assert measure.switches()["SPENSE_DENSE_STREAM"] == "0"
    monkeypatch.setenv("SPENSE_FP8_LM_HEAD", "yes")
    for v in ("dense-fp8", "dense"):  # checked for every variant, BF16 too
        with pytest.raises(InputError, match="SPENSE_FP8_LM_HEAD"):
            measure.build_variant("qwen3-tiny", v, dev, None, 0, "cols")


def test_sk_timeline_quantiles_and_refusal_off_the_gpu(monkeypatch):
    """benchmarks/sk_timeline.py's quantiles over the CTAs, and its one-line refusal without an sm_90 GPU."""
    mod = load_benchmark("sk_timeline")
    assert mod.quantiles([3.0, 1.0, 2.0]) == {"p50": 2.0, "max": 3.0}
    if not torch.cuda.is_available():
        for argv in (["sk_timeline.py"], ["sk_timeline.py", "--splits", "-1,0,2"]):  # a list from -1 parses
            monkeypatch.setattr("sys.argv", argv)
            with pytest.raises(SystemExit, match="needs an sm_90 GPU"):
                mod.main()


def test_logit_diff_ulps_counts_bf16_spacings_of_the_largest_logit():
    ref = torch.tensor([8.0, -3.0, 0.5])
    assert measure.logit_diff_ulps(ref, ref) == 0.0
    assert measure.logit_diff_ulps(ref, ref + torch.tensor([0.0, 0.1875, 0.0])) == 3.0  # ulp at 8: 2^-4
    assert measure.logit_diff_ulps(-ref, -ref + torch.tensor([0.0625, 0.0, 0.0])) == 1.0  # by magnitude


def test_prefill_bench_takes_its_timings_in_turn(monkeypatch):
    """prefill_bench's timings go round by round after one untimed round, in reverse order every other round, each
    under its own switches (restored after), and each name's time is the median of its rounds: under a sustained GEMM
    the GPU slows at its power cap, so back-to-back timings would favour whichever went first.  No rounds: refused."""
    monkeypatch.syspath_prepend(os.path.join(os.path.dirname(__file__), "..", "benchmarks"))  # its bench_common
    pb = load_benchmark("prefill_bench")
    monkeypatch.delenv("SPENSE_WGSP_MIN_M", raising=False)
    calls = []

    def fake_time_graph(fns):
        calls.append((fns[0], os.environ.get("SPENSE_WGSP_MIN_M")))
        return {1: 99.0, 2: 99.0, 3: 3.0, 4: 1.0, 5: 2.0, 6: 9.0, 7: 4.0, 8: 5.0}[len(calls)]

    monkeypatch.setattr(pb, "time_graph", fake_time_graph)
    res, rounds = pb.interleaved([("dense", {}, ["d"]), ("wgsp", {"SPENSE_WGSP_MIN_M": "65"}, ["w"])], 3)
    assert calls == [("d", None), ("w", "65")] * 2 + [("w", "65"), ("d", None), ("d", None), ("w", "65")]
    assert rounds == {"dense": [3.0, 9.0, 4.0], "wgsp": [1.0, 2.0, 5.0]}
    assert res == {"dense": 4.0, "wgsp": 2.0}
    assert "SPENSE_WGSP_MIN_M" not in os.environ
    with pytest.raises(ValueError, match="at least 1"):
        pb.interleaved([("dense", {}, ["d"])], 0)


def test_prefill_bench_table_names_each_forms_ratio_and_bits(monkeypatch, tmp_path):
    """prefill_bench's table gives the persistent, tail-split and 256-token forms' times with their ratios, "other
    bits" where a form did not give the plain form's bits, and a dash where a form was not timed."""
    monkeypatch.syspath_prepend(os.path.join(os.path.dirname(__file__), "..", "benchmarks"))  # its bench_common
    pb = load_benchmark("prefill_bench")
    row = {"shape": "32B.down", "dtype": "bf16", "M": 2048, "dense_ms": 0.74, "spense_ms": 0.63,
           "speedup_vs_dense": 1.17, "unpack_ms": 0.19, "unpack_gbps": 2250.0, "unpack_exact": True,
           "spense_wgsp_ms": 0.71, "speedup_wgsp_vs_dense": 1.04, "spense_wgsp_ps1_ms": 0.80,
           "speedup_wgsp_ps1_vs_dense": 0.92, "wgsp_ps1_same_bits": False, "spense_wgsp_tail_ms": 0.63,
           "speedup_wgsp_tail_vs_dense": 1.17, "wgsp_tail_same_bits": True, "spense_wgsp_nt256_ms": 0.60,
           "speedup_wgsp_nt256_vs_dense": 1.23, "wgsp_nt256_same_bits": True}
    path = tmp_path / "p.md"
    pb.write_md([row], str(path), {"device": "GPU", "date": "d", "commit": "c", "cmd": "x", "copy_gbps": 3000.0})
    cells = [c.strip() for c in path.read_text().splitlines()[-1].strip("|").split("|")]
    assert cells[-4:] == ["0.800 (0.92×, other bits)", "–", "0.630 (1.17×)", "0.600 (1.23×)"]
    assert cells[11] == "0.710 (1.04×)" and cells[12] == "–"


def test_clock_plot_draws_a_run_and_refuses_an_empty_one(tmp_path):
    """clock_plot reads nvidia-smi's CSV (rows that do not parse left out) and the diag log's phases, and draws
    clocks.png; a folder with no phases is refused in one line."""
    cp = load_benchmark("clock_plot")
    with pytest.raises(SystemExit, match="has no clocks.csv"):
        cp.main(str(tmp_path))
    (tmp_path / "clocks.csv").write_text("timestamp, temperature.gpu\n")
    with pytest.raises(SystemExit, match="no clocks.current.sm and power.draw"):
        cp.read_clocks(str(tmp_path / "clocks.csv"))
    (tmp_path / "clocks.csv").write_text(
        "timestamp, clocks.current.sm [MHz], power.draw [W], temperature.gpu\n"
        "2026/12/06 08:17:25.000, 1980 MHz, 120.0 W, 42\n"
        "2026/12/06 08:17:25.100, [N/A], 125.0 W, 42\n"
        "2026/12/06 08:17:25.200, 1530 MHz, 580.5 W, 57\n"
        "2026/12/06 08:17:25.300, 1470 MHz, 600.0 W, 58\n")
    ts, mhz, watts = cp.read_clocks(str(tmp_path / "clocks.csv"))
    assert mhz == [1980.0, 1530.0, 1470.0] and watts == [120.0, 580.5, 600.0] and ts[1] - ts[0] == pytest.approx(0.2)
    t = ts[0] + 0.1
    (tmp_path / "diag.txt").write_text(
        f"round 0 32B.gate_up wgsp: eager 1201.2 us, graph4 1210.8 us (t={t:.1f})\n"
        f"round 0 32B.gate_up cublas: eager 1401.3 us, graph4 1536.1 us (t={t + 0.1:.1f})\nnoise\n")
    assert [p[0] for p in cp.read_phases(str(tmp_path / "diag.txt"))] == ["32B.gate_up wgsp", "32B.gate_up cublas"]
    cp.main(str(tmp_path))
    assert (tmp_path / "clocks.png").stat().st_size > 1000
    (tmp_path / "diag.txt").write_text("nothing timed\n")
    with pytest.raises(SystemExit, match="no timed phases"):
        cp.main(str(tmp_path))


def test_prefill_smem_model_counts_and_reads(tmp_path, capsys):
    """benchmarks/prefill_smem_model.py: a sparse 64-K step of 256 rows x 128 tokens moves 116 KB through shared memory
    (928 cycles at 128 B for 512 of MMA), a dense one and cuBLAS's 144 KB (1,152 for 1,024); at 25 % dense columns the
    model's ratio over cuBLAS is 1.17x without waves (1.23x on CTAs of 128 rows and 256 tokens); the count of bytes
    into the SMs gives the 256-token form 1.14x the plain form's; the measured times at M = 2048 are read from a
    harness (both forms) and a cuBLAS file, and the rates into the SMs printed from them."""
    mod = load_benchmark("prefill_smem_model")
    sp, de, cb = mod.spense_step(True), mod.spense_step(False), mod.cublas_step()
    assert (sp["bytes"], sp["smem_cycles"], sp["mma_cycles"]) == (118784, 928, 512)
    assert (de["bytes"], de["smem_cycles"], de["mma_cycles"]) == (cb["bytes"], cb["smem_cycles"], cb["mma_cycles"])
    assert (cb["bytes"], cb["smem_cycles"], cb["mma_cycles"]) == (147456, 1152, 1024)
    p = mod.predict(24576, 4096)  # 64 steps, 16 dense; 1,536 CTAs: 12 waves on 132 SMs against 11.6 for cuBLAS
    assert abs(p["ideal"] - 64 * 1152 / (48 * 928 + 16 * 1152)) < 1e-12
    assert abs(p["ratio"] - p["ideal"] * (1536 / 132) / 12) < 1e-12
    w = mod.spense_step(True, 128, 256), mod.spense_step(False, 128, 256)  # the 256-token CTAs: 912 and 1,024
    assert [(b["bytes"], b["smem_cycles"], b["mma_cycles"]) for b in w] == [(116736, 912, 512), (131072, 1024, 1024)]
    assert abs(mod.predict(24576, 4096, rows=128, tokens=256)["ideal"] - 64 * 1152 / (48 * 912 + 16 * 1024)) < 1e-12
    h, c = tmp_path / "h.txt", tmp_path / "c.txt"
    h.write_text("N=24576 K=4096 d=0.250 axis=c M=2048 | rel_diff 1e-4 nonfinite 0 | wgsp 9.0 us 1 TFLOP/s | "
                 "wgsp_ws 460.0 us 2 TFLOP/s | wgsp_ws1 1.0 us\nN=24576 K=4096 d=0.250 axis=c M=2048 | x | wgsp 1 us | "
                 "wgsp_ws 470.0 us 1 TFLOP/s\nag N=24576 K=4096 | wgsp_wsg 600.0 us\n"
                 "N=24576 K=4096 d=0.250 axis=c M=300 | x | wgsp 1 us | wgsp_ws 126.0 us 1 TFLOP/s\n"
                 "nt256 N=24576 K=4096 d=0.250 axis=c M=2048 | wgsp_ws256 550.6 us 7 TFLOP/s | wgsp_ws again 1 us\n"
                 "nt256 N=24576 K=4096 d=0.250 axis=c M=300 | wgsp_ws256 234.0 us 2 TFLOP/s | wgsp_ws again 1 us\n")
    c.write_text("24576 4096 cublas F.linear us 524.0\n")
    assert mod.measured(str(h), str(c)) == {(24576, 4096): {"ours": 465.0, "nt256": 550.6, "cublas": 524.0}}
    # weights 1,536 tiles x (48 x 1152 + 16 x 2048) B read once per token tile, x (16 MiB) once per row block, y once
    plain, wide, cub = (mod.ingress_bytes(24576, 4096), mod.ingress_bytes(24576, 4096, rows=128, tokens=256),
                        mod.ingress_bytes(24576, 4096, sparse=False))
    assert (plain, wide, cub) == (135266304 * 16 + 16777216 * 96 + 100663296, 135266304 * 8 + 16777216 * 192 +
                                  100663296, 201326592 * 16 + 16777216 * 96 + 100663296)
    mod.main(["--harness", str(h), "--cublas", str(c)])
    out = capsys.readouterr().out
    assert "| 8B.gate_up | 536 | 472 | 1.135× | 1.171× | 524 | 465 |" in out
    rates = f"465 µs, {plain / 465e6:.2f} | 551 µs, {wide / 550.6e6:.2f} |"
    assert f"| 8B.gate_up | 3.88 / 4.40 / 4.93 | 1.136× | {rates}" in out
