"""`osslsp doctor`: what this machine has, what is missing, and how to fix each problem."""

from __future__ import annotations

import platform
import sys

from osslsp.languages import available_grammars
from osslsp.models import AUTO, GPT_OSS_20B, GPT_OSS_FP16_GB, GPT_OSS_GPU_GB, GPT_OSS_MXFP4_GB, ModelNotFound, \
    resolve_model

GPT_OSS_NEEDS = (
    f"{GPT_OSS_20B} needs its checkpoint in the Hugging Face cache (on a machine with network: "
    f"`hf download {GPT_OSS_20B}`, or pass --model /path/to/checkpoint) and a GPU of {GPT_OSS_GPU_GB:.0f} GB "
    f"or more: its released MXFP4 experts kept packed take {GPT_OSS_MXFP4_GB} GB; with 48 GB+ (or two 24 GB "
    f"GPUs and --max-gpu-memory 22) its experts run in FP16 ({GPT_OSS_FP16_GB} GB)"
)


def _line(ok: bool, what: str, fix: str = "") -> bool:
    print(f"[{'ok' if ok else '!!'}] {what}")
    if not ok and fix:
        print(f"     fix: {fix}")
    return ok


def _note(what: str) -> None:
    """A fact that needs no fixing for the chosen model."""
    print(f"[--] {what}")


def _check_torch(model: str) -> bool:
    """torch imports; GPUs and their memory. Too little GPU memory fails only when gpt-oss-20b was asked for."""
    try:
        from osslsp.engine.devices import gpus, torch_version
    except ImportError as error:
        return _line(False, f"torch: {error}", "make setup (or: pip install torch==2.13.0 on a CPU-only machine)")
    ok = _line(True, f"torch {torch_version()}")
    found = gpus()
    if not found:
        _note("CUDA: no GPU visible: models run on the CPU (fine for smollm2 and tiny)")
        return ok
    for gpu in found:
        _line(True, f"cuda:{gpu.index} {gpu.name}: "
                    f"{gpu.free_bytes / 2**30:.1f} GiB free of {gpu.total_bytes / 2**30:.1f} GiB")
    total = sum(gpu.total_bytes for gpu in found) / 1e9
    enough = total >= GPT_OSS_GPU_GB
    what = f"GPU memory for {GPT_OSS_20B}: {total:.0f} GB in all"
    if model == AUTO and not enough:
        _note(what + f" (needs {GPT_OSS_GPU_GB:.0f} GB: the demo model serves instead)")
        return ok
    return ok and _line(enough, what, GPT_OSS_NEEDS)


def _check_model(spec: str) -> bool:
    """The model resolves; for `auto`, which one and why, and what gpt-oss-20b would need."""
    try:
        source = resolve_model(spec)
    except ModelNotFound as error:
        places = "; ".join(error.looked_in)
        return _line(False, f"model {spec!r} not found (looked in: {places})", error.fix)
    note = " (random weights: meaningless text)" if source.meaningless else ""
    _line(True, f"model {spec!r}: {source.spec} from {source.weights}{note}")
    if source.note:
        _note(source.note.removesuffix(", see osslsp doctor"))
        _note(f"for real use, {GPT_OSS_NEEDS}")
        return True
    from osslsp.engine.loading import experts_report

    fits, report = experts_report(source)
    return _line(fits, f"experts: {report}", "see the message; maxGpuMemoryGib and contextTokens change it")


def run_doctor(model: str) -> int:
    """Print the checks; exit status 1 when something needs fixing."""
    results = [_line(sys.version_info >= (3, 11), f"Python {platform.python_version()}", "use Python 3.11+")]
    results.append(_check_torch(model))
    results.append(_check_model(model))
    for language, problem in available_grammars().items():
        results.append(_line(problem is None, f"tree-sitter grammar {language}" + (f": {problem}" if problem else ""),
                             "pip install --force-reinstall osslsp (the grammar wheels ship with it)"))
    return 0 if all(results) else 1
