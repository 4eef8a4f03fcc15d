"""The one exception type for problems a user can cause and fix."""

__all__ = ["EmuError"]


class EmuError(Exception):
    """Bad input or configuration: the message names the problem and, where possible, the fix.

    The command line prints it without a traceback and exits with status 2.
    """
