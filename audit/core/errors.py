"""Errors that map to the CLI's exit codes."""


class UsageError(Exception):
    """Bad configuration or input: exit code 2 with a one-line message and no traceback."""

    exit_code = 2


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (its type name when it has none), shortened."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:limit]
