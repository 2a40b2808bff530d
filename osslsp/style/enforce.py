"""Holding model output to the guide before anyone sees it.

A candidate is judged in place: the document with the candidate inserted is checked on the lines
the candidate touches, and only what the candidate introduces counts (a finding already on the
cursor line before the insertion does not). Safe fixes are applied; whatever still breaks a rule
is cut away, and when nothing is left the candidate is withheld.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from osslsp.style.check import Finding, Issue, collect_issues, rows_inside_literals
from osslsp.style.guide import StyleGuide

_MAX_CUTS = 8


@dataclass(frozen=True)
class Enforced:
    """What may be shown (None: nothing complies), the fixes made, and the findings that cut or withheld it.

    Findings are positioned in the whole document (1-based), as the log should name them.
    """

    text: str | None
    fixed: list[str] = field(default_factory=list)
    rejected: list[Finding] = field(default_factory=list)


def _rows(prefix: str, candidate: str) -> tuple[int, int]:
    first = prefix.count("\n")
    return first, first + candidate.count("\n")


def _introduced(prefix: str, candidate: str, suffix: str, language: str, guide: StyleGuide) -> list[Issue]:
    """The issues the candidate introduces: those about text it wrote.

    A finding about text that was there before (the user's own `def badName(` on the cursor line, a
    long line elsewhere) does not count. A line made too long counts unless the cursor line was
    already too long without the candidate.
    """
    rows = _rows(prefix, candidate)
    begin, end = len(prefix), len(prefix) + len(candidate)
    cursor_line = prefix.rsplit("\n", 1)[-1] + suffix.split("\n", 1)[0]
    was_long = len(cursor_line.expandtabs(guide.indent_width)) > guide.max_line_length
    return [issue for issue in collect_issues(prefix + candidate + suffix, language, guide, rows)
            if (issue.finding.rule == "line-length" and not was_long)
            or (issue.finding.rule != "line-length" and issue.start < end and issue.end > begin)]


def _apply_fixes(prefix: str, candidate: str, issues: list[Issue]) -> tuple[str, list[str]]:
    """The candidate with every safe fix that lies inside it applied, and what was fixed."""
    start, end = len(prefix), len(prefix) + len(candidate)
    edits = sorted((issue for issue in issues if issue.fix is not None
                    and start <= issue.fix.start <= issue.fix.end <= end), key=lambda issue: -issue.fix.start)
    fixed = []
    for issue in edits:
        edit = issue.fix
        candidate = candidate[:edit.start - start] + edit.text + candidate[edit.end - start:]
        fixed.append(f"{issue.finding.rule}: {issue.finding.message} (line {issue.finding.line})")
    return candidate, fixed[::-1]


def _leading(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _reindent(prefix: str, candidate: str, suffix: str, language: str, width: int) -> str | None:
    """The candidate re-indented from its own unit to `width` spaces; None when that is not safe.

    Lines after the first are measured from the cursor line's indentation; when their offsets
    share a unit of 2, 3, 4 or 8 other than `width`, every offset is scaled to `width`. A line
    that starts inside a multi-line string keeps the candidate as it is: its spaces are text.
    """
    first_row, last_row = _rows(prefix, candidate)
    in_literals = rows_inside_literals(prefix + candidate + suffix, language)
    if "\t" in candidate or any(row in in_literals for row in range(first_row + 1, last_row + 1)):
        return None
    lines = candidate.split("\n")
    anchor = _leading(prefix.rsplit("\n", 1)[-1] + lines[0])
    offsets = [_leading(line) - anchor for line in lines[1:] if line.strip()]
    unit = math.gcd(*offsets) if offsets else 0
    if unit not in (2, 3, 4, 8) or unit == width:
        return None
    rebuilt = [lines[0]]
    for line in lines[1:]:
        if not line.strip():
            rebuilt.append(line)
            continue
        indent = anchor + (_leading(line) - anchor) // unit * width
        if indent < 0:
            return None
        rebuilt.append(" " * indent + line.lstrip(" "))
    return "\n".join(rebuilt)


def _fix(prefix: str, candidate: str, suffix: str, language: str,
         guide: StyleGuide) -> tuple[str, list[str], list[Issue]]:
    """The candidate after safe fixes, the fixes made, and the issues that remain."""
    issues = _introduced(prefix, candidate, suffix, language, guide)
    candidate, fixed = _apply_fixes(prefix, candidate, issues)
    if fixed:
        issues = _introduced(prefix, candidate, suffix, language, guide)
    if guide.indent == "spaces" and any(issue.finding.rule == "indent-width" for issue in issues):
        reindented = _reindent(prefix, candidate, suffix, language, guide.indent_width)
        if reindented is not None:
            remaining = _introduced(prefix, reindented, suffix, language, guide)
            if not any(issue.finding.rule == "indent-width" for issue in remaining):
                candidate, issues = reindented, remaining
                fixed.append(f"indent-width: re-indented with {guide.indent_width} spaces")
    return candidate, fixed, issues


def _cut(prefix: str, candidate: str, finding: Finding, guide: StyleGuide) -> str:
    """The candidate up to the line that breaks a rule; for an over-long first line, up to the limit."""
    first_row = prefix.count("\n")
    lines = candidate.split("\n")
    relative = finding.line - 1 - first_row
    if relative > 0:
        return "\n".join(lines[:relative]).rstrip()
    if finding.rule != "line-length":
        return ""  # a partial name or statement would be worse than nothing
    room = guide.max_line_length - len(prefix.rsplit("\n", 1)[-1].expandtabs(guide.indent_width))
    head = lines[0][:max(room, 0) + 1]
    # Break between words, never inside one.
    return head[:head.rfind(" ")].rstrip() if " " in head else ""


def enforce_completion(prefix: str, candidate: str, suffix: str, language: str, guide: StyleGuide) -> Enforced:
    """A completion candidate held to the guide: as is, fixed, cut back, or withheld (text None).

    `candidate` is the text inserted between `prefix` and `suffix`. Only what it introduces counts.
    """
    candidate, fixed, issues = _fix(prefix, candidate, suffix, language, guide)
    rejected: list[Finding] = []
    for _ in range(_MAX_CUTS):
        if not issues:
            return Enforced(candidate, fixed, rejected)
        first = min(issue.finding for issue in issues)
        rejected.extend(issue.finding for issue in issues if issue.finding.line == first.line)
        candidate = _cut(prefix, candidate, first, guide)
        if not candidate.strip():
            break
        issues = _introduced(prefix, candidate, suffix, language, guide)
    return Enforced(None, fixed, rejected)


def enforce_body(prefix: str, body: str, suffix: str, language: str, guide: StyleGuide) -> Enforced:
    """A generated function (or body) held to the guide: fixed, or withheld with the reasons.

    Cutting a generated function short would leave it broken, so anything that still breaks a rule
    after the safe fixes withholds it; `retry_instruction(result.rejected)` tells the model why.
    """
    body, fixed, issues = _fix(prefix, body, suffix, language, guide)
    if issues:
        return Enforced(None, fixed, [issue.finding for issue in issues])
    return Enforced(body, fixed, [])


def retry_instruction(rejected: list[Finding]) -> str:
    """A sentence for a retry prompt: which rules the last answer broke."""
    problems = "; ".join(dict.fromkeys(f"{finding.rule}: {finding.message}" for finding in rejected))
    return f"Your last answer broke the team's style guide ({problems}). Write it again following the guide."
