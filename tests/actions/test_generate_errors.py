"""When a generated body is refused: the function is named, the reason says the model's answer did
not parse (with its own line numbers), and the rejected text reaches the log."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from osslsp.actions.generate import generate_body
from osslsp.actions.stubs import find_stub
from osslsp.actions.validate import check_body
from osslsp.assistant import Assistant
from osslsp.settings import Settings
from osslsp.style import resolve_guide
from tests.actions.samples import STUBS


def test_a_body_that_does_not_parse_is_named_by_the_line_of_the_answer():
    _, text = STUBS["python"]
    text = "\n" * 80 + text  # the stub far down the file: file lines and answer lines differ
    stub = find_stub(text, "python", text.index("MARK"))
    checked = check_body(text, stub, "total = a\nreturn (a +", resolve_guide("python", None, "")[0])
    assert checked.new_text is None and checked.why == "the model's answer did not parse"
    assert any("(line 2 of the generated body)" in problem for problem in checked.problems), checked.problems


def test_a_refused_generation_names_the_function_and_logs_the_rejected_answers(tmp_path, tiny_dir, caplog):
    _, text = STUBS["python"]
    path = Path(tmp_path / "sums.py")
    path.write_text(text)
    assistant = Assistant(Settings(model="tiny", max_new_tokens=8, index_enabled=False))
    stub = find_stub(text, "python", text.index("MARK"))
    with caplog.at_level(logging.INFO, logger="osslsp.actions.generate"):
        generated = asyncio.run(generate_body(assistant, path, text, stub))
    assistant.close()
    # The tiny model writes random text: no body passes (test_cli.py relies on it too).
    assert generated.new_text is None and len(generated.answers) == 2
    assert generated.message.startswith("osslsp could not generate a body for add in 2 attempts: the model's answer")
    assert "rejected answers are in the log" in generated.message
    logged = [record.getMessage() for record in caplog.records if "rejected" in record.getMessage()]
    assert len(logged) == 2 and all(answer in line for answer, line in zip(generated.answers, logged))
