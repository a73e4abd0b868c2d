"""The soak's bookkeeping: a failed request is charged to the step running when it began."""

from __future__ import annotations

from testkit.soak.run import GRACE, Taken, _owner
from testkit.soak.steps import Done


def test_a_request_belongs_to_the_step_running_when_it_began() -> None:
    stop = Taken(19, "SIGSTOP worker", 100.0, 102.2, Done())
    kill = Taken(20, "kill -9 worker", 102.3, 103.0, Done(bound=2))
    steps = [stop, kill]
    assert _owner(steps, 101.0) is stop
    assert _owner(steps, 102.25) is stop  # in its grace, before the next step began
    assert _owner(steps, 102.9) is kill  # in the first one's grace, but the kill had begun
    assert _owner(steps, 103.0 + GRACE / 2) is kill
    assert _owner(steps, 103.0 + GRACE * 2) is None  # between steps
    assert _owner(steps, 99.0) is None  # before the first
