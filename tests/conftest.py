"""Shared fixtures: external tools (dtc, iasl) that CI requires and a developer may lack."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """Path of an external tool; skipped locally when missing, a failure under CI."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("COSIM_REQUIRE_TOOLS"):
            pytest.fail(f"{name} is required (COSIM_REQUIRE_TOOLS is set) but not installed")
        pytest.skip(f"{name} not installed")
    return path


@pytest.fixture
def dtc() -> str:
    return require_tool("dtc")


@pytest.fixture
def iasl() -> str:
    return require_tool("iasl")
