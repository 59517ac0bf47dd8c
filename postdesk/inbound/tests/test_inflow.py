"""Flow control in the listener (InflowGate): a new message's MAIL FROM waits while the spool backlog is over the
limit, never longer than max_hold, and not at all while the workers make no progress."""

import asyncio
import threading

from postdesk.inbound.smtpd import InflowGate


class Backlog:
    def __init__(self, values):
        self.values = list(values)

    def __call__(self):
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


def run(make_coroutine):
    """asyncio.run in a thread of its own (another test may leave an event loop set in this one)."""
    result = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(make_coroutine())))
    thread.start()
    thread.join(30)
    return result[0]


def held(gate):
    return run(gate.wait)


def test_no_hold_at_or_under_the_limit():
    assert held(InflowGate(Backlog([10]), limit=48, poll=0.001)) < 0.05


def test_holds_until_the_backlog_drains():
    backlog = Backlog([60, 58, 55, 50, 40])  # workers take messages: the gate opens at 40
    gate = InflowGate(backlog, limit=48, max_hold=5, stall=5, poll=0.001)
    assert held(gate) < 1
    assert backlog.values == [40]


def test_never_holds_longer_than_max_hold():
    shrinking = Backlog(list(range(10_000, 100, -1)))  # progress, but slower than the hold allows
    seconds = held(InflowGate(shrinking, limit=48, max_hold=0.05, stall=5, poll=0.001))
    assert 0.05 <= seconds < 1


def test_stalled_workers_open_the_gate():
    async def scenario():
        gate = InflowGate(Backlog([30, 500]), limit=48, max_hold=5, stall=0.05, poll=0.001)
        await gate.wait()  # under the limit: progress noted
        await asyncio.sleep(0.01)  # the next count is due
        return await gate.wait()  # 500 and not shrinking: held only until the stall rule opens the gate

    assert 0.02 <= run(scenario) < 1  # 0.05 s after the last progress, not after this call began


def test_a_failing_count_holds_nobody():
    def broken():
        raise OSError("spool unavailable")

    assert held(InflowGate(broken, limit=1, poll=0.001)) < 0.05
