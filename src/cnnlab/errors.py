"""The errors cnnlab raises for bad input.

Every one carries a message that names the problem and the fix; the CLI prints it as one line
and exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations


class CnnlabError(Exception):
    """Base class: a problem with what the user asked for, explained in the message."""


class UnknownModelError(CnnlabError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class InputShapeError(CnnlabError, ValueError):
    """An input a network cannot take (too small, too large, wrong channel count or rank)."""


class ModelConfigError(CnnlabError, ValueError):
    """An invalid option for a model builder (unknown activation, bad width, ...)."""
