"""A pytest plugin: no test hangs the suite. A test that runs past ``ADVAUDIT_TEST_LIMIT_S`` seconds (900 unless
set; 0 turns the limit off) -- its setup, including a session fixture it starts, its call and its teardown together
-- has its id, the failures reported so far and every thread's stack written to the real stderr, and the session
ends with exit code 70: CI shows where it hung instead of reaching its own timeout. A hang that holds the GIL (the
Python timer cannot run) is ended by faulthandler a minute later, with the bare stacks. The slowest test takes
about two minutes on a 2-core machine."""
from __future__ import annotations

import faulthandler
import os
import sys
import tempfile
import threading

import pytest

EXIT_HUNG = 70
NOISE = ("/_pytest/", "/pluggy/", "/threading.py")   # frames of the runner, not of the test


def limit_s() -> float:
    return float(os.environ.get("ADVAUDIT_TEST_LIMIT_S", "900"))


def stacks() -> str:
    """Every thread's stack, without pytest's and pluggy's frames."""
    with tempfile.TemporaryFile("w+") as f:
        faulthandler.dump_traceback(file=f, all_threads=True)
        f.seek(0)
        lines = f.read().splitlines()
    return "\n".join(line for line in lines if not any(n in line for n in NOISE))


def hung(item: pytest.Item, limit: float) -> None:
    config = item.config
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)   # as pdb does: the real stdout and stderr again
    reporter = config.pluginmanager.getplugin("terminalreporter")
    failed = reporter.stats.get("failed", []) if reporter is not None else []
    out = [f"\n{item.nodeid} ran past {limit:g} s (ADVAUDIT_TEST_LIMIT_S); the session ends here."]
    for report in failed:
        out.append(f"--- failed before it: {report.nodeid}\n{str(report.longrepr)[-4000:]}")
    out.append(f"--- the threads' stacks:\n{stacks()}\n")
    sys.stderr.write("\n".join(out))
    sys.stderr.flush()
    os._exit(EXIT_HUNG)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    limit = limit_s()
    timer = None
    if limit > 0:
        timer = threading.Timer(limit, hung, args=(item, limit))
        timer.daemon = True
        timer.start()
        faulthandler.dump_traceback_later(limit + 60, exit=True)
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
            faulthandler.cancel_dump_traceback_later()
