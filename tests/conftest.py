"""Shared test set-up: one cache directory for the whole run, so the tiny model is built once."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

# Set before any server process starts: every process of this run shares the cache.
os.environ.setdefault("OSSLSP_CACHE_DIR", tempfile.mkdtemp(prefix="osslsp-test-cache-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SERVE_TINY = [sys.executable, "-m", "osslsp", "serve", "--model", "tiny"]


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    """The tiny checkpoint, built once per test run."""
    from osslsp.engine.tiny import ensure_tiny
    from osslsp.models import tiny_dir as where

    return ensure_tiny(where())


@pytest.fixture(scope="session")
def tiny_text(tiny_dir):
    from osslsp.prompts.modeltext import ModelText

    return ModelText(tiny_dir)
