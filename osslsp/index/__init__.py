"""The workspace index: definitions and imports of every source file, for prompts' context.

`WorkspaceIndex` builds and keeps it (SQLite under the user's cache), `context_for` turns a cursor
into labelled snippets within a token budget, secrets never included.
"""

from osslsp.index.cli import index_main
from osslsp.index.extract import Definition, FileSummary, Import, extract
from osslsp.index.retrieval import Snippet
from osslsp.index.secrets import is_secret_path, redact_secrets
from osslsp.index.workspace import IndexStats, WorkspaceIndex

__all__ = ["Definition", "FileSummary", "Import", "IndexStats", "Snippet", "WorkspaceIndex",
           "extract", "index_main", "is_secret_path", "redact_secrets"]
