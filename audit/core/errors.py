"""Errors that map to the CLI's exit codes."""


class UsageError(Exception):
    """Bad configuration or input: exit code 2 with a one-line message and no traceback."""

    exit_code = 2
