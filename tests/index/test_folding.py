"""Folding Python functions out of the parse (`bodies`) is an optional pre-pass: over a corpus,
folded and whole extraction may differ only where `folding_differences.json` says, and why."""

from __future__ import annotations

import json
import sys
import sysconfig
from pathlib import Path

from osslsp.index.extract import FileSummary, extract

DIFFERENCES = Path(__file__).with_name("folding_differences.json")
REPOSITORY = Path(__file__).parents[2]
STDLIB = Path(sysconfig.get_paths()["stdlib"])
ALL_LOST = "(all: the whole parse found none)"


def _differences(folded: FileSummary, whole: FileSummary) -> dict[str, list[str]]:
    """Where two extractions of a file differ: per field, the definitions (scope.name) it differs
    in, or [""] for a field of the file's own (imports, identifiers), or ALL_LOST when the whole
    parse found no definition at all."""
    found: dict[str, list[str]] = {}
    if set(folded.imports) != set(whole.imports):
        found["imports"] = [""]
    if set(folded.identifiers.split()) != set(whole.identifiers.split()):
        found["identifiers"] = [""]
    if folded.definitions and not whole.definitions:
        found["definitions"] = [ALL_LOST]
        return found

    def by_key(summary: FileSummary) -> dict[tuple, tuple]:
        return {(d.scope, d.name, d.line): (d, set(tokens.split()))
                for d, tokens in zip(summary.definitions, summary.tokens)}

    folded_defs, whole_defs = by_key(folded), by_key(whole)
    for field, index in (("definitions", 0), ("tokens", 1)):
        names = {f"{scope}.{name}".lstrip(".") for key in folded_defs.keys() | whole_defs.keys()
                 for scope, name, _ in [key]
                 if (folded_defs.get(key) or (None, None))[index] !=
                 (whole_defs.get(key) or (None, None))[index]}
        if names:
            found[field] = sorted(names)
    return found


def _corpus(listed: dict) -> dict[str, Path]:
    """The corpus by name: the listed files of this Python's standard library, and every Python
    file of the osslsp package."""
    files = {f"stdlib/{name}": STDLIB / name for name in listed["stdlib"]}
    files.update({path.relative_to(REPOSITORY).as_posix(): path
                  for path in sorted((REPOSITORY / "osslsp").rglob("*.py"))})
    return files


def test_folded_and_whole_extraction_differ_only_as_listed() -> None:
    listed = json.loads(DIFFERENCES.read_text())
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert version == listed["python"], (
        f"the listed differences are those of Python {listed['python']}'s standard library: "
        f"list this Python's ({version})")
    corpus = _corpus(listed)
    missing = [name for name, path in corpus.items() if not path.is_file()]
    assert not missing, f"corpus files missing: {missing}"
    assert len(corpus) >= 100  # 40 of the standard library, the rest the package's own
    actual = {}
    for name, path in corpus.items():
        source = path.read_bytes()
        for field, definitions in _differences(extract("python", source, fold_python=True),
                                               extract("python", source, fold_python=False)
                                               ).items():
            actual[(name, field)] = definitions
    expected = {(entry["file"], entry["field"]): entry["definitions"]
                for entry in listed["differences"]}
    assert all(entry["reason"] for entry in listed["differences"])
    unlisted = [{"file": name, "field": field, "definitions": definitions, "reason": ""}
                for (name, field), definitions in actual.items()
                if expected.get((name, field)) != definitions]
    gone = [key for key in expected if key not in actual]
    assert not unlisted, "folding changed these (list each with its reason, or fix the fold):\n" \
        + json.dumps(unlisted, indent=1)
    assert not gone, f"listed differences that no longer occur (remove them): {gone}"
