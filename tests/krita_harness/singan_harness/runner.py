"""Runs generator-based scenarios from a Qt timer, so Krita's event loop (and the plugin's own
timer) keeps running while a scenario waits. A scenario yields :class:`Wait` objects; the runner
resumes it when the condition holds, or throws ``TimeoutError`` into it at the deadline."""

import time
import traceback
from functools import partial

from PyQt5.QtCore import QTimer


class Wait:
    def __init__(self, condition, timeout, what):
        self.condition, self.what = condition, what
        self.timeout, self.deadline = timeout, time.monotonic() + timeout


def until(condition, timeout, what):
    """Resume when ``condition()`` is true; TimeoutError after ``timeout`` s."""
    return Wait(condition, timeout, what)


def sleep(seconds):
    end = time.monotonic() + seconds
    return Wait(lambda: time.monotonic() >= end, seconds + 5, f"{seconds} s")


def guarded(results, name, scenario):
    """Run ``scenario(entry)`` (a generator function filling the dict ``entry``); record its
    traceback instead of stopping the others, and its duration."""
    entry = results.setdefault(name, {})
    started = time.monotonic()
    try:
        yield from scenario(entry)
    except Exception:
        entry["error"] = traceback.format_exc()
    entry["seconds"] = round(time.monotonic() - started, 2)


class Runner:
    """Drive ``steps`` (a generator of :class:`Wait`) from a 20 ms timer; ``on_end()`` at the end."""

    def __init__(self, steps, on_end):
        self._steps, self._on_end = steps, on_end
        self._timer = QTimer()
        self._timer.setInterval(20)
        self._timer.timeout.connect(self._tick)
        self._current = None
        self._resume(partial(next, self._steps))
        self._timer.start()

    def _resume(self, step):
        try:
            self._current = step()
        except StopIteration:
            self._timer.stop()
            self._on_end()

    def _tick(self):
        wait = self._current
        if wait is None:
            return
        try:
            ready = wait.condition()
        except Exception as error:
            self._resume(partial(self._steps.throw, error))
            return
        if ready:
            self._resume(partial(self._steps.send, None))
        elif time.monotonic() > wait.deadline:
            error = TimeoutError(f"timed out after {wait.timeout} s waiting for {wait.what}")
            self._resume(partial(self._steps.throw, error))
