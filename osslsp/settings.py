"""Settings: typed, fully defaulted, read from the client's camelCase JSON.

A bad value never stops the server: it is reported as a warning and its default applies.
The same keys are used by `initializationOptions`, `workspace/configuration` (section "osslsp")
and `workspace/didChangeConfiguration`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

DTYPES = ("float16", "bfloat16", "float32")
DEVICES = ("auto", "cuda", "cpu")
EXPERTS = ("auto", "fp16", "mxfp4")  # how a released MXFP4 checkpoint's experts are held on the GPU
REASONING_EFFORTS = ("low", "medium", "high")
DEFAULT_MODEL = "auto"  # gpt-oss-20b when on disk and it fits, else SmolLM2 (osslsp.models)


@dataclass(frozen=True)
class Settings:
    """Everything a user can set. Field names are the snake_case form of the JSON keys."""

    model: str = DEFAULT_MODEL
    dtype: str = "float16"
    device: str = "auto"
    # Cap GPU memory per card (GiB), e.g. to share a card or split across two 24 GB cards.
    max_gpu_memory_gib: float = 0.0
    # auto: FP16 experts when the GPU holds them with the KV cache, else MXFP4 (packed, ~13 GiB in all).
    experts: str = "auto"
    enabled: bool = True
    # Languages to complete in; empty means every language.
    languages: tuple[str, ...] = ()
    max_new_tokens: int = 64
    # The whole prompt's token budget; the code nearest the cursor is kept first.
    context_tokens: int = 2048
    temperature: float = 0.0
    # How long typing must pause before a completion starts, in milliseconds.
    debounce_ms: int = 0
    reasoning_effort_generate: str = "low"
    reasoning_effort_explain: str = "medium"
    style_guide: str = ""  # a bundled guide name or a TOML file; empty: what the workspace says
    index_enabled: bool = True
    log_level: str = "info"
    # "local" (model in this process), "shared" (one engine for all windows) or an http(s) URL.
    engine: str = "local"
    engine_token: str = ""
    # The audit log of every generation request: true (under the cache directory), false, or a path.
    audit_log: bool | str = True


_LIMITS: dict[str, tuple[float, float]] = {
    "max_gpu_memory_gib": (0, 4096),
    "max_new_tokens": (1, 4096),
    "context_tokens": (256, 131072),
    "temperature": (0.0, 2.0),
    "debounce_ms": (0, 5000),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "dtype": DTYPES,
    "device": DEVICES,
    "experts": EXPERTS,
    "reasoning_effort_generate": REASONING_EFFORTS,
    "reasoning_effort_explain": REASONING_EFFORTS,
    "log_level": ("debug", "info", "warning", "error"),
}


def snake_case(key: str) -> str:
    """`maxNewTokens` -> `max_new_tokens`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def camel_case(name: str) -> str:
    """`max_new_tokens` -> `maxNewTokens`."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _coerce(name: str, default: Any, value: Any) -> Any:
    """`value` as the type of `default`, or raise ValueError saying what was wrong."""
    kind = type(default)
    if name == "audit_log" and isinstance(value, str) and value.strip():
        return value  # a path, as well as true or false
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValueError("expected true or false")
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("expected a number")
        if kind is int and value != int(value):
            raise ValueError("expected a whole number")
        low, high = _LIMITS.get(name, (float("-inf"), float("inf")))
        if not low <= value <= high:
            raise ValueError(f"expected a value from {low:g} to {high:g}")
        return kind(value)
    if kind is tuple:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError("expected a list of strings")
        return tuple(value)
    if not isinstance(value, str):
        raise ValueError("expected a string")
    choices = _CHOICES.get(name)
    if choices and value not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}")
    return value


def read_settings(raw: Any, base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Settings from the client's JSON object, on top of `base`, and a warning per bad value.

    Accepts the object itself or one wrapped in an "osslsp" key (as `didChangeConfiguration`
    sends it). Unknown keys and bad values are reported and ignored.
    """
    base = base or Settings()
    if raw is None:
        return base, []
    if isinstance(raw, dict) and isinstance(raw.get("osslsp"), dict):
        raw = raw["osslsp"]
    if not isinstance(raw, dict):
        return base, [f"osslsp settings must be an object, got {type(raw).__name__}; using defaults"]
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    changes: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in raw.items():
        name = snake_case(key)
        if name not in defaults:
            warnings.append(f"unknown osslsp setting {key!r} ignored")
            continue
        if value is None:
            continue
        try:
            changes[name] = _coerce(name, defaults[name], value)
        except ValueError as error:
            warnings.append(
                f"osslsp setting {camel_case(name)}={value!r}: {error}; "
                f"using {getattr(base, name)!r}"
            )
    return dataclasses.replace(base, **changes), warnings
