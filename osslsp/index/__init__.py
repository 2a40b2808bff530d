"""The workspace index: definitions and imports of every source file, for prompts' context.

As aider's repo map, in four steps: `extract` (a file's tags), `store` (SQLite under the user's
cache), `rank` (which files and definitions matter), `fit` (what a prompt's token budget holds).
`WorkspaceIndex` runs them (`refresh`, `context_for`), secrets never included; the caller's
`IndexPolicy` says what it may do with the process (workers, threads, the collector).
"""

from osslsp.index.cli import index_main
from osslsp.index.extract import Definition, FileSummary, Import, extract
from osslsp.index.fit import Snippet
from osslsp.index.policy import IndexPolicy
from osslsp.index.secrets import is_secret_path, redact_secrets
from osslsp.index.workspace import IndexStats, WorkspaceIndex

__all__ = ["Definition", "FileSummary", "Import", "IndexPolicy", "IndexStats", "Snippet",
           "WorkspaceIndex", "extract", "index_main", "is_secret_path", "redact_secrets"]
