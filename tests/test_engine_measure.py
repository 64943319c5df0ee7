"""``spense.engine.measure`` on CPU: the benchmark stage's rows and variants, and the whole-layer variant."""

import pytest
import torch

from spense.engine.measure import set_speedups
from spense.engine.sparsify import block_linears
from spense.errors import InputError
from spense.runtime.linear import SpenseLinear

CPU = torch.device("cpu")


def test_measure_stage_cli_cpu(tmp_path):
    """The benchmark stage entry point (what benchmarks/run_e2e.sh runs) on CPU with a tiny shape:
    every variant kind gives rows with the issue's fields; FP8 dense linears are Fp8Linear."""
    import json

    from spense.engine import measure
    from spense.runtime.fp8 import Fp8Linear

    out = tmp_path / "rows.jsonl"
    assert measure.main(["--model", "qwen3-tiny", "--device", "cpu", "--variants", "dense,spense0.25-fp8,dense-fp8",
                         "--batches", "1", "--prompt-len", "16", "--gen", "6", "--check-tokens", "4",
                         "--out", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["variant"] for r in rows] == ["dense", "spense0.25-fp8", "dense-fp8"]
    for r in rows:
        for k in ("step_ms", "floor_ms", "weight_bytes", "linear_weight_bytes", "dense_linear_weight_bytes",
                  "peak_mem_bytes", "setup_peak_bytes", "held_mem_bytes", "dense_kinds", "decode_tok_s",
                  "tokens_identical", "host_ms"):
            assert k in r
    assert rows[1]["linear_weight_bytes"] < rows[0]["linear_weight_bytes"]
    for r in rows:  # gen 6: 3 timed steps, one a third; step_ms their mean
        assert len(r["step_ms_windows"]) == 3 and min(r["step_ms_windows"]) > 0
        assert r["step_ms"] == pytest.approx(sum(r["step_ms_windows"]) / 3)
    assert rows[0]["dense_kinds"] == {}  # the CPU keeps no kernel choice
    m, _ = measure.build_variant("qwen3-tiny", "dense-fp8", CPU, None, 0, "cols")
    assert all(isinstance(x, Fp8Linear) for x in block_linears(m).values())
    with pytest.raises(InputError):
        measure.parse_variant("sparse0.3")


def test_step_windows_weigh_their_steps(monkeypatch):
    """gen 7: four timed steps in thirds of 1, 1 and 2 steps; ``step_ms`` is the windows' ms a step weighed by their
    steps (the total over 4), and each window the mean of its own steps (here steps of 1, 2, 3 and 4 ms)."""
    from spense.engine import measure

    clock = iter([0.0, 0.0, 0.0, 0.001, 0.003, 0.010])  # the prefill's two, then marks at steps 3, 4, 5 and the end
    monkeypatch.setattr(measure.time, "perf_counter", lambda: next(clock, 1.0))

    class Eng:
        device = CPU
        model = type("M", (), {"args": type("A", (), {"vocab_size": 10})})()

        def prefill(self, prompts):
            return torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 10), 0, 4

        def step(self, nxt, t, start):
            return torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 10)

    r = measure._time_engine(Eng(), 1, 4, 7, 0)
    assert r["step_ms_windows"] == pytest.approx([1.0, 2.0, 3.5])
    assert r["step_ms"] == pytest.approx(10.0 / 4)
    assert r["host_ms"] == pytest.approx(10.0 / 4)  # on the CPU the host's clock is the step's


def test_whole_layer_variant_keeps_first_layers_dense_and_prunes_the_rest():
    """whole<share>: the first ⌊share·L⌋ decoder layers keep their dense nn.Linear (cuBLAS), every other
    block linear is a pure 2:4 SpenseLinear; the FP8 form puts the kept layers on the FP8 dense baseline."""
    from spense.engine import measure
    from spense.engine.sparsify import whole_layer_names
    from spense.runtime.fp8 import Fp8Linear

    assert measure.parse_variant("whole0.5") == (0.0, False)
    assert measure.whole_share("whole0.5-fp8") == 0.5 and measure.whole_share("spense0.25") is None
    m, _ = measure.build_variant("qwen3-tiny", "whole0.5", CPU, None, 0, "cols")
    lins = block_linears(m)
    keep = set(whole_layer_names(m, 0.5))
    n_layers = len(m.model.layers)
    assert keep and {int(n.split(".")[2]) for n in keep} == set(range(n_layers // 2))
    for name, mod in lins.items():
        if name in keep:
            assert type(mod) is torch.nn.Linear, name
        else:
            assert isinstance(mod, SpenseLinear) and mod.layout.n_dense == 0, name
    m8, _ = measure.build_variant("qwen3-tiny", "whole0.5-fp8", CPU, None, 0, "cols")
    assert all(isinstance(mod, Fp8Linear) == (n in keep) for n, mod in block_linears(m8).items())


def test_set_speedups_by_precision_and_batch():
    """``set_speedups`` (what ``run`` and the per-variant processes of ``spense.engine.isolate`` both use): a row's
    base is the dense row of its precision and batch; whole-layer variants are not dense; no base, None."""
    rows = [{"variant": "dense", "batch": 1, "step_ms": 4.0}, {"variant": "dense-fp8", "batch": 1, "step_ms": 3.0},
            {"variant": "spense0.25", "batch": 1, "step_ms": 2.0}, {"variant": "whole0.25-fp8", "batch": 1,
                                                                       "step_ms": 2.5},
            {"variant": "spense0.25", "batch": 8, "step_ms": 5.0}]
    got = [r["speedup_vs_dense"] for r in set_speedups(rows)]
    assert got == [1.0, 1.0, 2.0, 1.2, None]
