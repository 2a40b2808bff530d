"""The engine's audit records are written off the event loop, in order, and none is lost at close."""

from __future__ import annotations

from osslsp.audit import read_records
from osslsp.prompts.gpt_oss_tokenizer import gpt_oss_text
from osslsp.remote.audit_writer import AuditWriter


def test_records_are_written_in_order_and_closing_writes_those_queued(tmp_path):
    text = gpt_oss_text()
    log = tmp_path / "engine.jsonl"
    writer = AuditWriter(log, text.decode)
    prompts = [f"def f{index}(x):\n    return x + {index}\n" for index in range(50)]
    for index, prompt in enumerate(prompts):
        writer.record(text.encode(prompt), kind="completions", client=f"c{index}", answer=str(index))
    writer.close()  # returns once every queued record is written
    records = read_records(log, 100)
    assert [record["client"] for record in records] == [f"c{index}" for index in range(50)]
    assert [record["prompt"] for record in records] == prompts


def test_no_log_no_thread(tmp_path):
    writer = AuditWriter(None, lambda ids: "")
    writer.record([1, 2, 3], kind="completions")
    writer.close()
    assert list(tmp_path.iterdir()) == []
