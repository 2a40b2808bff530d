"""An API request turned into the engine's `Request`: its checks against the engine's context and
vocabulary, its stop strings and stop ids, and whether it is interactive."""

from __future__ import annotations

from collections.abc import Callable

from osslsp.engine.requests import Request
from osslsp.prompts.modeltext import ModelText
from osslsp.remote.protocol import BadRequest, SamplingParams, StopText
from osslsp.sampling import Sampling

# Requests for at most this many tokens are inline completions (they ask for ~64): the engine
# admits them to its batch before longer ones.
INTERACTIVE_MAX_TOKENS = 128


def build_request(text: ModelText, special_ids: frozenset[int], max_context: int, prompt_ids: list[int],
                  params: SamplingParams, views: Callable[[], Callable[[list[int]], str]], stop: StopText,
                  client: str) -> Request:
    """The engine's request (BadRequest when the prompt cannot be served). A stop string that is one
    special token becomes a stop id: exact, and it works when special tokens are skipped in the
    text. `views` makes the answer's text from its ids (for the other stop strings)."""
    if not prompt_ids:
        raise BadRequest("prompt: it is empty")
    room = max_context - len(prompt_ids)
    if room < 1:
        raise BadRequest(f"prompt: {len(prompt_ids)} tokens leave no room in the engine's context of "
                         f"{max_context} (osslsp engine --max-context)")
    vocabulary = text.tokenizer.get_vocab_size(with_added_tokens=True)
    if max(prompt_ids) >= vocabulary:
        raise BadRequest(f"prompt: token id {max(prompt_ids)} is outside the vocabulary ({vocabulary})")
    special = {string: token for string in params.stop
               if (token := text.token_id(string)) is not None and token in special_ids}
    stop.stops = tuple(string for string in params.stop if string not in special)
    return Request(
        prompt_ids=prompt_ids,
        sampling=Sampling(max_new_tokens=min(params.max_tokens, room), temperature=params.temperature,
                          top_p=params.top_p, seed=params.seed),
        stop_ids=frozenset(params.stop_token_ids) | frozenset(special.values()),
        stop_when=_stop_when(stop, views()) if stop.stops else None,
        interactive=params.max_tokens <= INTERACTIVE_MAX_TOKENS,
        cache_key=client,  # a client's next request (a keystroke later) reuses its cached prefix
        ignore_eos=params.ignore_eos,
    )


def _stop_when(stop: StopText, view: Callable[[list[int]], str]) -> Callable[[list[int]], bool]:
    """The engine's test after each token: a stop string occurs in the answer's text (`view`,
    used on the engine thread only)."""
    return lambda ids: stop.find_stop(view(ids)) is not None
