"""Progress bars and per-layer logging (spense.log)."""

import logging

import torch

from spense import log


def test_progress_is_disabled_off_a_terminal(capsys):
    with log.progress(True) as bar:  # pytest's stderr is no terminal
        t = bar.add_task("x", total=3)
        bar.advance(t)
    assert bar.disable
    assert capsys.readouterr().err == ""


def test_cli_logging_handler_only_off_a_terminal(monkeypatch):
    monkeypatch.setattr(log, "stderr_is_terminal", lambda: False)
    log.setup_cli_logging(quiet=False)
    names = [h.get_name() for h in log.logger.handlers]
    assert names.count("spense-cli") == 1
    log.setup_cli_logging(quiet=False)  # idempotent
    assert [h.get_name() for h in log.logger.handlers].count("spense-cli") == 1
    log.setup_cli_logging(quiet=True)
    assert "spense-cli" not in [h.get_name() for h in log.logger.handlers]
    monkeypatch.setattr(log, "stderr_is_terminal", lambda: True)
    log.setup_cli_logging(quiet=False)
    assert "spense-cli" not in [h.get_name() for h in log.logger.handlers]


def test_prune_logs_loss_and_time_per_layer(tiny_llama, tiny_llama_dir, tiny_text_file, caplog):
    from spense import data
    from spense.methods import PruneConfig
    from spense.pipeline import prune_loaded

    model, tok = tiny_llama
    ids = data.tokenize(tok, data.read_text(tiny_text_file))
    w = data.calibration_windows(ids, 2, 32, 0)
    with caplog.at_level(logging.INFO, logger="spense"):
        recs = prune_loaded(model, w, PruneConfig(method="sparsegpt", dense_ratio=0.0, block=16), "cpu",
                            progress=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "spense"]
    for name, rec in recs.items():
        line = next(x for x in lines if x.startswith(f"{name}: loss "))
        assert f"loss {rec['loss']:.6g}" in line and line.endswith(" s")


def test_eval_logs_progress(caplog):
    from spense.evaluate import perplexity

    class Const(torch.nn.Module):
        def forward(self, ids, use_cache=False):
            return type("O", (), {"logits": torch.zeros(*ids.shape, 5)})()

    with caplog.at_level(logging.INFO, logger="spense"):
        perplexity(Const(), torch.zeros(3, 4, dtype=torch.long), "cpu", progress=False)
    assert sum("perplexity: window" in r.getMessage() for r in caplog.records) == 3
