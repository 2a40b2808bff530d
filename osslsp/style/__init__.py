"""Team style guides: bundled and team-defined rules, in prompts and enforced on generated code.

Pure domain code (tree-sitter and the standard library only). The server calls `resolve_guide` once
per language and workspace, puts `guide.prompt_text()` into prompts, and passes every candidate
through `enforce_completion` (or `enforce_body` for a generated function) before showing it.
"""

from osslsp.style.check import Finding, check_text
from osslsp.style.cli import list_main, style_main
from osslsp.style.enforce import Enforced, enforce_body, enforce_completion, retry_instruction
from osslsp.style.guide import StyleGuide
from osslsp.style.resolve import bundled_names, resolve_guide

__all__ = ["Enforced", "Finding", "StyleGuide", "bundled_names", "check_text", "enforce_body",
           "enforce_completion", "list_main", "resolve_guide", "retry_instruction", "style_main"]
