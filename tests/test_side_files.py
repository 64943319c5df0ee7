"""The side files a pruned checkpoint keeps (``spense.side_files``)."""

import json

from spense.side_files import copy_side_files, side_file_problems


def test_copy_side_files_keeps_the_chat_template_and_use_cache(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir(), out.mkdir()
    (src / "config.json").write_text(json.dumps({"use_cache": True, "model_type": "llama"}))
    (src / "chat_template.jinja").write_text("{{ messages }}")
    (src / "tokenizer.json").write_text("{}")
    (src / "notes.txt").write_text("not a side file")
    (out / "config.json").write_text(json.dumps({"use_cache": False, "model_type": "llama"}))
    (out / "tokenizer.json").write_text('{"written": 1}')  # what the output holds already stays
    copy_side_files(src, out)
    assert (out / "chat_template.jinja").read_text() == "{{ messages }}"
    assert (out / "tokenizer.json").read_text() == '{"written": 1}' and not (out / "notes.txt").exists()
    assert json.loads((out / "config.json").read_text()) == {"use_cache": True, "model_type": "llama"}
    (src / "config.json").write_text(json.dumps({"use_cache": False}))
    copy_side_files(src, out)
    assert json.loads((out / "config.json").read_text())["use_cache"] is False


def test_side_file_problems_name_each_json_side_file_that_is_not_json(tmp_path):
    assert side_file_problems(tmp_path) == []
    (tmp_path / "tokenizer.json").write_text('{"model": {')
    (tmp_path / "generation_config.json").write_text('{"eos_token_id": 2}')
    (tmp_path / "merges.txt").write_text("not json, not a JSON side file")
    (tmp_path / "tokenizer_config.json").write_bytes(b"\xff\xfe")
    got = side_file_problems(tmp_path)
    assert [g.split(" is not valid JSON")[0] for g in got] == [str(tmp_path / "tokenizer.json"),
                                                              str(tmp_path / "tokenizer_config.json")]

