"""``spense.engine.isolate``: the end-to-end benchmark with each variant in a process of its own (on the CPU here:
the processes, the rows, the speed-ups across them, a failing process, and where ``spense bench`` sends a run)."""

import math

import pytest

from spense.engine import isolate
from spense.errors import DeviceError


def test_run_isolated_rows_from_one_process_per_variant():
    """Dense and Spense 25 % at B = 1 and 2, each variant in a fresh ``python -m spense.engine.measure``: the rows
    of both, in order, against one copy bandwidth (none on the CPU), the token check at the first batch, and each
    row's ``speedup_vs_dense`` the dense row's step over its own across the processes."""
    logged: list[str] = []
    rows = isolate.run_isolated("qwen3-tiny", ["dense", "spense0.25"], (1, 2), prompt_len=8, gen=6, device="cpu",
                                compile=False, check_tokens=4, axis="cols", log=logged.append)
    assert [(r["variant"], r["batch"]) for r in rows] == [("dense", 1), ("dense", 2), ("spense0.25", 1),
                                                          ("spense0.25", 2)]
    assert all(math.isnan(r["copy_tbps"]) for r in rows)
    step = {(r["variant"], r["batch"]): r["step_ms"] for r in rows}
    for r in rows:
        assert r["speedup_vs_dense"] == pytest.approx(step[("dense", r["batch"])] / r["step_ms"])
    assert [r.get("tokens_identical") for r in rows] == [True, None, True, None]
    assert sum("qwen3-tiny spense0.25 B=" in m for m in logged) == 2  # the processes' own lines, passed on
    assert len({r["date"] for r in rows}) == 1  # one header for the report, as one process's rows


def test_merge_rounds_keeps_the_median_step_and_the_first_rounds_check():
    """Three rounds of one row: the median step (and prefill, host-waited step and host's time) with every round's step,
    thirds, dense kinds, host-waited step and host's queueing time in order and the steps' spread, the most peak
    memory of any round, the tokens per second and the floor's multiple following the median, the rest (the token
    check, round 1's thirds) from the first round; one round comes back unchanged."""
    def row(step, k, variant="spense0.25"):
        return {"variant": variant, "batch": 2, "step_ms": step, "step_sync_ms": step + 1, "prefill_ms": 10 * k,
                "floor_ms": 0.5, "decode_tok_s": 0.0, "x_floor": 0.0, "tokens_identical": True if k == 0 else None,
                "step_ms_windows": [step] * 3, "dense_kinds": {"8,4": {k: "cublas"}}, "peak_mem_bytes": 100 + k,
                "setup_peak_bytes": 300 - k, "host_ms": step / 2, "held_mem_bytes": 50 + k}

    rounds = [[row(0.8, 0)], [row(0.6, 1)], [row(0.7, 2)]]
    (m,) = isolate.merge_rounds(rounds)
    assert m["step_ms"] == 0.7 and m["step_sync_ms"] == 1.7 and m["prefill_ms"] == 10
    assert m["step_ms_runs"] == [0.8, 0.6, 0.7] and m["step_ms_windows"] == [0.8] * 3
    assert m["step_ms_windows_runs"] == [[0.8] * 3, [0.6] * 3, [0.7] * 3]
    assert m["dense_kinds_runs"] == [{"8,4": {k: "cublas"}} for k in range(3)]
    assert m["step_sync_ms_runs"] == [1.8, 1.6, 1.7] and m["host_ms_runs"] == [0.4, 0.3, 0.35]
    assert m["peak_mem_bytes"] == 102 and m["setup_peak_bytes"] == 300 and m["held_mem_bytes"] == 52
    assert m["host_ms"] == 0.35
    assert m["step_ms_spread"] == pytest.approx(0.2 / 0.7)
    assert m["decode_tok_s"] == pytest.approx(2e3 / 0.7) and m["x_floor"] == pytest.approx(1.4)
    assert m["tokens_identical"] is True
    assert isolate.merge_rounds(rounds[:1]) == rounds[0]
    # a row that a round lacks is merged from the rounds that have it, in the order first met
    two = isolate.merge_rounds([[row(0.8, 0)], [row(0.6, 1), row(1.0, 1, "dense")], [row(1.2, 2, "dense")]])
    assert [(r["variant"], r["step_ms_runs"]) for r in two] == [("spense0.25", [0.8, 0.6]), ("dense", [1.0, 1.2])]


def test_run_isolated_repeats_each_variant_in_rounds(monkeypatch):
    """``repeat`` = 2: the copy bandwidth once, then every variant in order twice (dense, Spense, dense, Spense), the
    token check in the first round only, and one merged row per variant and batch."""
    calls = []
    real = isolate._child

    def spy(args, what, log):
        calls.append((what, args[args.index("--check-tokens") + 1] if "--check-tokens" in args else None))
        real(args, what, log)

    monkeypatch.setattr(isolate, "_child", spy)
    rows = isolate.run_isolated("qwen3-tiny", ["dense", "spense0.25"], (1,), prompt_len=8, gen=6, device="cpu",
                                compile=False, check_tokens=4, axis="cols", log=lambda m: None, repeat=2)
    assert calls == [("the copy bandwidth", None), ("variant 'dense' (round 1 of 2)", "4"),
                     ("variant 'spense0.25' (round 1 of 2)", "4"), ("variant 'dense' (round 2 of 2)", "0"),
                     ("variant 'spense0.25' (round 2 of 2)", "0")]
    assert [(r["variant"], len(r["step_ms_runs"])) for r in rows] == [("dense", 2), ("spense0.25", 2)]
    assert [r["tokens_identical"] for r in rows] == [True, True]
    assert rows[1]["speedup_vs_dense"] == pytest.approx(rows[0]["step_ms"] / rows[1]["step_ms"])


def test_a_failing_process_is_one_error_naming_the_variant():
    """A process that fails is one error with its last line: an input error stays one (a bad variant), any other
    failure a DeviceError (a model that is not there, past the CLI's checks)."""
    from spense.errors import InputError

    with pytest.raises(InputError, match=r"process for variant 'spense9x' failed \(exit 1\): .*unknown variant"):
        isolate.run_isolated("qwen3-tiny", ["spense9x"], (1,), prompt_len=8, gen=6, device="cpu", compile=False,
                             check_tokens=0, axis="cols", log=lambda m: None)
    with pytest.raises(DeviceError, match=r"process for the copy bandwidth failed"):
        isolate._child(["--bw-only", "--device", "nodevice"], "the copy bandwidth", lambda m: None)


def test_an_interrupted_bench_stops_its_process(monkeypatch):
    """Ctrl-C or SIGTERM while a variant's process runs (here: the log raises at its first line) stops that process
    rather than leaving it to run on."""
    import signal
    import subprocess

    made = []

    class Spy(subprocess.Popen):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    class Stop(KeyboardInterrupt):
        pass

    def log(line):
        raise Stop

    monkeypatch.setattr(isolate.subprocess, "Popen", Spy)
    args = ["--model", "qwen3-tiny", "--device", "cpu", "--variants", "dense,spense0.25,spense0.5,spense0",
            "--batches", "1,2", "--gen", "6", "--prompt-len", "8", "--check-tokens", "0"]
    with pytest.raises(Stop):
        isolate._child(args, "variant 'dense'", log)
    assert made[0].returncode == -signal.SIGTERM


@pytest.mark.parametrize("flag,isolated", [(None, False), ("--isolate", True), ("--same-process", False),
                                          ("--repeat=2", True)])
def test_bench_runs_isolated_where_asked(tmp_path, monkeypatch, flag, isolated):
    """``spense bench``: each variant in its own process with ``--isolate`` (the default on a CUDA GPU) or
    ``--repeat`` above 1, in this one with ``--same-process`` or on the CPU by default."""
    from typer.testing import CliRunner

    from spense.cli import app
    from spense.engine import measure

    calls = []
    row = {"model": "qwen3-tiny", "variant": "dense", "batch": 1, "step_ms": 1.0, "speedup_vs_dense": 1.0}
    monkeypatch.setattr(isolate, "run_isolated", lambda *a, **k: calls.append(("isolated", k["repeat"])) or
                        [dict(row)])
    monkeypatch.setattr(measure, "run", lambda *a, **k: calls.append("same") or [dict(row)])
    monkeypatch.setattr("spense.cli.bench.check_host_memory", lambda model: None)
    args = ["bench", "qwen3-tiny", "--device", "cpu", "--dense-ratio", "0.25"] + ([flag] if flag else [])
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert calls == [("isolated", 2 if flag == "--repeat=2" else 1) if isolated else "same"]


@pytest.mark.parametrize("args,msg", [(["--repeat", "0"], "--repeat must be >= 1, got 0"),
                                      (["--repeat", "3", "--same-process"], "cannot go with --same-process")])
def test_bench_refuses_a_repeat_it_cannot_run(args, msg):
    """A repeat below 1, or repeated runs asked of one process: one line, nothing measured."""
    from typer.testing import CliRunner

    from spense.cli import app

    res = CliRunner().invoke(app, ["bench", "qwen3-tiny", "--device", "cpu", *args])
    assert res.exit_code != 0 and msg in res.output and "Traceback" not in res.output
