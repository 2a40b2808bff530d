"""`osslsp doctor`: what this machine has, what is missing, and how to fix each problem."""

from __future__ import annotations

import platform
import sys

from osslsp.languages import available_grammars
from osslsp.models import ModelNotFound, resolve_model

GPT_OSS_FP16_GB = 41.8


def _line(ok: bool, what: str, fix: str = "") -> bool:
    print(f"[{'ok' if ok else '!!'}] {what}")
    if not ok and fix:
        print(f"     fix: {fix}")
    return ok


def _check_torch() -> bool:
    try:
        import torch
    except ImportError as error:
        return _line(False, f"torch: {error}", "pip install torch")
    ok = _line(True, f"torch {torch.__version__}")
    if not torch.cuda.is_available():
        _line(True, "CUDA: no GPU visible: models run on the CPU (fine for `--model smollm2` or `tiny`)")
        return ok
    total = 0.0
    for index in range(torch.cuda.device_count()):
        free, size = torch.cuda.mem_get_info(index)
        total += size / 1e9
        _line(True, f"cuda:{index} {torch.cuda.get_device_name(index)}: "
                    f"{free / 2**30:.1f} GiB free of {size / 2**30:.1f} GiB")
    return ok and _line(
        total >= GPT_OSS_FP16_GB + 4, f"GPU memory for gpt-oss-20b in FP16: {total:.0f} GB in all",
        f"gpt-oss-20b needs {GPT_OSS_FP16_GB} GB of weights plus cache: one 48 GB+ GPU or two 24 GB GPUs",
    )


def _check_model(spec: str) -> bool:
    try:
        source = resolve_model(spec)
    except ModelNotFound as error:
        places = "; ".join(error.looked_in)
        return _line(False, f"model {spec!r} not found (looked in: {places})", error.fix)
    note = " (random weights: meaningless text)" if source.meaningless else ""
    _line(True, f"model {spec!r}: {source.weights}{note}")
    from osslsp.engine.loading import experts_report

    fits, report = experts_report(source)
    return _line(fits, f"experts: {report}", "see the message; maxGpuMemoryGib and contextTokens change it")


def run_doctor(model: str) -> int:
    """Print the checks; exit status 1 when something needs fixing."""
    results = [_line(sys.version_info >= (3, 11), f"Python {platform.python_version()}", "use Python 3.11+")]
    results.append(_check_torch())
    results.append(_check_model(model))
    for language, problem in available_grammars().items():
        results.append(_line(problem is None, f"tree-sitter grammar {language}" + (f": {problem}" if problem else ""),
                             "pip install --force-reinstall osslsp (the grammar wheels ship with it)"))
    return 0 if all(results) else 1
