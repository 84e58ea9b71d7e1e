"""Fixtures for the SMS stages' adapter tests: a hand-driven worker pool and a Clock."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from tests.support.sms_stages import Jobs


@pytest.fixture
def jobs() -> Jobs:
    """Database work the stages hand to the worker pool, run when the test says."""
    return Jobs()


@pytest.fixture
def reactor() -> Clock:
    return Clock()
