"""The files of a model folder that a pruned checkpoint keeps beside its weights and ``config.json``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from spense.errors import first_line

#: the files of a model folder a pruned checkpoint keeps beside its weights and config (tokenizer, chat template)
SIDE_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
              "tokenizer.model", "added_tokens.json", "generation_config.json", "chat_template.jinja",
              "chat_template.json")


def copy_side_files(source: Path, out: Path) -> None:
    """Copy ``source``'s :data:`SIDE_FILES` into ``out`` (those it does not hold yet), and give ``out``'s
    ``config.json`` the source's ``use_cache`` (true where it has none): :func:`spense.hf.load_model` turns the
    cache off for the pipeline's forward passes, and ``generate`` with transformers would otherwise run without
    one."""
    for name in SIDE_FILES:
        if (source / name).is_file() and not (out / name).exists():
            shutil.copyfile(source / name, out / name)
    try:
        want = json.loads((source / "config.json").read_text(encoding="utf-8")).get("use_cache", True)
    except (OSError, ValueError, AttributeError):
        want = True
    f = out / "config.json"
    cfg = json.loads(f.read_text(encoding="utf-8"))
    if cfg.get("use_cache") != want:
        cfg["use_cache"] = want
        f.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def json_problem(path: Path) -> str | None:
    """``"PATH is not valid JSON: <why>"`` for a file that is there but does not parse (or cannot be read as UTF-8);
    None where it parses or is absent."""
    try:
        json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return f"{path} is not valid JSON: {first_line(e)[:80]}"
    return None


def side_file_problems(folder: Path) -> list[str]:
    """:func:`json_problem` of each JSON side file of ``folder`` (:data:`SIDE_FILES` ending in ``.json``) that has
    one: the manifest does not cover them, so ``validate`` and ``pack`` say so rather than fail."""
    found = (json_problem(Path(folder) / n) for n in SIDE_FILES if n.endswith(".json"))
    return [p for p in found if p]
