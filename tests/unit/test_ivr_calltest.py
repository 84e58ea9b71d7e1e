"""The call-test tool's plan: what an operator may print or log without leaking the AMI secret."""

from __future__ import annotations

from commands.secret import Secret
from ivr import calltest


def test_printing_a_plan_never_shows_the_ami_secret() -> None:
    plan = calltest.Plan(caller="0912345678", keys=("8",), secret=Secret("s3cret-ami"))
    assert "s3cret-ami" not in repr(plan) and "s3cret-ami" not in str(plan)
    assert plan.secret.reveal() == "s3cret-ami"
