"""Errors a user can act on: each names the file, key or value at fault and what was expected."""
from __future__ import annotations

import sys
from typing import Callable


class ScenebiasError(Exception):
    """Base class for user-facing errors (bad input, bad config, unknown names)."""


class ConfigError(ScenebiasError):
    """A config key or value is invalid."""


class DataError(ScenebiasError):
    """A dataset file (video, split list, annotation) is missing or malformed."""


class UnknownNameError(ScenebiasError, KeyError):
    """A registry lookup (backbone, method, dataset flavour) failed."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class PluginError(ScenebiasError):
    """A method plugin (a file in methods/ or an entry point) failed to import."""


def exit_status(run: Callable[[], int], prefix: str = "error") -> int:
    """`run()`'s exit status; a user-facing error is printed as one line on stderr and exits 2 (a command-line
    entry point's convention here)."""
    try:
        return run()
    except ScenebiasError as exc:
        print(f"{prefix}: {exc}", file=sys.stderr)
        return 2
