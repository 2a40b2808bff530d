"""Priorities in the engine (tiny model, CPU): inline completions go before long jobs, which pause
for them between two steps and resume where they were; a looping answer ends early; a cancelled
explanation stops at once and the server serves on."""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from osslsp.engine.requests import Request
from osslsp.engine.generation import repeats_itself
from osslsp.sampling import Sampling
from tests.conftest import SERVE_TINY
from tests.test_engine import engine  # noqa: F401  (the engine fixture, one per module)
from tests.test_server import inline_params, open_document

PROMPT = list(range(10, 60))
OTHER_PROMPT = list(range(200, 230))
EXPLANATIONS: list = []  # the osslsp/explanation notifications, as they come


def long_job(max_new_tokens: int = 100_000) -> Request:
    return Request(PROMPT, Sampling(max_new_tokens=max_new_tokens), stop_ids=frozenset())


def completion() -> Request:
    return Request(OTHER_PROMPT, Sampling(max_new_tokens=8), stop_ids=frozenset(), interactive=True)


def test_a_completion_is_served_while_a_long_job_runs(engine):
    job = engine.submit(long_job())
    tokens = iter(job)
    next(tokens)  # the long job is running
    urgent = engine.submit(completion())
    answer = list(urgent)
    assert len(answer) == 8 and urgent.finish_reason == "length"
    assert job.finish_reason == ""  # still running: the completion did not wait for its end
    job.cancel()
    list(tokens)
    assert job.finish_reason == "cancelled"


def test_a_paused_job_resumes_with_the_tokens_it_would_have_written(engine):
    alone = list(engine.submit(long_job(40)))
    job = engine.submit(long_job(40))
    tokens = iter(job)
    interrupted = [next(tokens) for _ in range(10)]
    list(engine.submit(completion()))  # served at the job's next step boundary
    interrupted += list(tokens)
    assert interrupted == alone and job.finish_reason == "length"


def test_a_completion_queued_behind_long_jobs_goes_first(engine):
    running = engine.submit(long_job())
    next(iter(running))
    waiting = engine.submit(long_job(4))
    urgent = engine.submit(completion())
    assert len(list(urgent)) == 8 and waiting.finish_reason == ""
    running.cancel()
    assert len(list(waiting)) == 4


def test_repetition_is_the_same_run_of_tokens_back_to_back():
    assert repeats_itself([1, 2, 3] + [4, 5, 6, 7] * 12)
    assert repeats_itself([9] * 48)
    assert not repeats_itself([4, 5, 6, 7] * 2)  # too short to call it a loop
    assert not repeats_itself(list(range(100)))


def test_a_looping_answer_ends_early_with_its_reason(engine):
    # Held to one token, the model can only loop.
    looping = Request(PROMPT, Sampling(max_new_tokens=1000), stop_ids=frozenset(), stop_on_repetition=True,
                      constraint=lambda produced: [7])
    generation = engine.submit(looping)
    assert len(list(generation)) < 100 and generation.finish_reason == "repetition"


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVE_TINY))
async def client(lsp_client: LanguageClient, tiny_dir):
    @lsp_client.feature("osslsp/explanation")
    def explanation(params) -> None:
        EXPLANATIONS.append(params)

    # The tiny model writes until its budget: explanations of 16 x 400 tokens run for many seconds.
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        initialization_options={"maxNewTokens": 400, "contextTokens": 1024, "reasoningEffortExplain": "low",
                                "explanationNotifications": True}))
    while (await lsp_client.wait_for_notification("osslsp/status")).state not in ("ready", "error"):
        pass
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_completion_is_answered_while_an_explanation_runs_and_a_cancel_stops_it(client: LanguageClient):
    explained = open_document(client, "explained.py", "def add(a, b):\n    return a + b\n")
    typed = open_document(client, "typed.py", 'def add(a, b):\n    """Return the sum."""\n    return a\n')
    selected = types.Range(start=types.Position(line=1, character=4), end=types.Position(line=1, character=16))
    explanation = asyncio.create_task(client.protocol.send_request_async(
        types.WORKSPACE_EXECUTE_COMMAND, types.ExecuteCommandParams(command="osslsp.explain",
                                                                    arguments=[explained, selected]),
        msg_id="explain-me"))
    while not EXPLANATIONS:
        await asyncio.sleep(0.05)  # the explanation is being written
    answer = await asyncio.wait_for(client.text_document_inline_completion_async(inline_params(typed, 2, 12)), 60)
    assert answer.items and not explanation.done()
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="explain-me"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(explanation, 30)
    again = await asyncio.wait_for(client.text_document_inline_completion_async(inline_params(typed, 2, 12)), 60)
    assert again.items == answer.items  # the engine is free again and greedy answers repeat



@pytest.mark.asyncio(loop_scope="module")
async def test_an_explanation_cancelled_from_its_progress_stops_and_frees_the_engine(client: LanguageClient):
    explained = open_document(client, "explained_progress.py", "def twice(x):\n    return 2 * x\n")
    typed = open_document(client, "typed_progress.py", 'def add(a, b):\n    """Return the sum."""\n    return a\n')
    selected = types.Range(start=types.Position(line=1, character=4), end=types.Position(line=1, character=16))
    known = set(client.progress_reports)
    explanation = asyncio.create_task(client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.explain", arguments=[explained, selected])))

    def this_explanation() -> list:  # the previous test's explanation may still send its last one
        return [params for params in EXPLANATIONS if params.uri == explained]

    while not this_explanation():
        await asyncio.sleep(0.05)  # the explanation is being written (16 x 400 tokens: many seconds)
    [token] = set(client.progress_reports) - known
    client.protocol.notify(types.WINDOW_WORK_DONE_PROGRESS_CANCEL, types.WorkDoneProgressCancelParams(token=token))
    assert await asyncio.wait_for(explanation, 30) is None
    assert client.progress_reports[token][-1].message == "cancelled" and this_explanation()[-1].done
    answer = await asyncio.wait_for(client.text_document_inline_completion_async(inline_params(typed, 2, 12)), 60)
    assert answer.items
