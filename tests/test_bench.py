"""``spense bench`` with the engine on CPU: rows, byte accounting, token checks, report files."""

import json
import warnings

import pytest

from spense.engine import measure
from spense.errors import InputError


def test_measure_rows_cpu(tmp_path):
    from spense import report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = measure.run("qwen3-tiny", batches=(1, 2), ratios=(0.0, 0.25), prompt_len=8, gen=6,
                           device="cpu", check_tokens=5, log=lambda m: None)
    assert [(r["variant"], r["batch"]) for r in rows] == [(v, b) for v in ("dense", "spense0", "spense0.25")
                                                          for b in (1, 2)]
    need = {"weight_bytes", "floor_ms", "peak_mem_bytes", "linear_weight_bytes", "dense_linear_weight_bytes",
            "step_ms", "decode_tok_s", "speedup_vs_dense", "device", "date", "commit"}
    for r in rows:
        assert need <= set(r), need - set(r)
        assert r["step_ms"] > 0 and r["weight_bytes"] > r["linear_weight_bytes"] > 0
    lin = {r["variant"]: r["linear_bytes_ratio"] for r in rows}
    assert lin["dense"] == 1.0 and lin["spense0"] < lin["spense0.25"] < 1.0
    checked = [r for r in rows if "tokens_identical" in r]
    assert len(checked) == 3 and all(r["tokens_identical"] for r in checked)
    paths = report.write(rows, tmp_path, "t")
    assert len(json.loads(paths["json"].read_text())) == 6
    assert paths["md"].read_text().startswith("# End-to-end decode")


def test_bad_shape_name():
    with pytest.raises(InputError):
        measure.run("qwen3-tiny[:9]", batches=(1,), device="cpu", log=lambda m: None)
