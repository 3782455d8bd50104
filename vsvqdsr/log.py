"""The package logger, ``logging.getLogger("vsvqdsr")``: every message of the package goes through it
(modules log to ``vsvqdsr.<module>`` children) and one handler writes it to stderr as a line
``vsvqdsr: message`` (``vsvqdsr: warning: message`` from WARNING up). Nothing is ever written to
stdout, where vspipe writes video. The handler is installed once, when this module is imported; the
level starts at INFO and :func:`set_verbosity` (the CLI's ``-v`` / ``-q``) changes it.
"""
from __future__ import annotations

import logging
import sys

__all__ = ["LOGGER_NAME", "get_logger", "set_verbosity", "progress_enabled"]

LOGGER_NAME = "vsvqdsr"
_HANDLER = "vsvqdsr-stderr"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the call (it may be replaced after import)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = f"{record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
        return f"{LOGGER_NAME}: {level}{record.getMessage()}"


def _install() -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    if not any(h.get_name() == _HANDLER for h in logger.handlers):  # by name: survives a module reload
        handler = _StderrHandler()
        handler.set_name(_HANDLER)
        handler.setFormatter(_Formatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # an application's root handler would print every line twice
    return logger


_install()


def get_logger(name: str) -> logging.Logger:
    """The logger of a package module (pass ``__name__``): a child of ``vsvqdsr``."""
    return logging.getLogger(name if name == LOGGER_NAME or name.startswith(LOGGER_NAME + ".")
                             else f"{LOGGER_NAME}.{name}")


def set_verbosity(verbose: int = 0, quiet: int = 0) -> None:
    """``-v``: DEBUG; ``-q``: WARNING (errors and warnings only, no progress bars); ``-qq``: ERROR."""
    level = logging.INFO - 10 * verbose + 10 * quiet
    logging.getLogger(LOGGER_NAME).setLevel(min(max(level, logging.DEBUG), logging.ERROR))


def progress_enabled() -> bool:
    """Whether progress bars are shown: at the INFO level and below (not under ``-q``)."""
    return logging.getLogger(LOGGER_NAME).isEnabledFor(logging.INFO)
