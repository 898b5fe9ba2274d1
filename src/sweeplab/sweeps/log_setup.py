"""Where a sweep's log lines go: the terminal and ``<sweep dir>/sweep.log``, tagged by worker."""

from __future__ import annotations

import logging
from pathlib import Path

import optuna

from sweeplab.redact import redact_log_handler

LOG_FILE = "sweep.log"
LIBRARIES_WITH_OWN_HANDLERS = ("lightning", "lightning.pytorch", "lightning.fabric")
FORMAT = "[%(asctime)s][{who}][%(name)s][%(levelname)s] - %(message)s"


class NoInterruptTraceback(logging.Filter):
    """Log a trial stopped by Ctrl-C or SIGTERM, or that failed or stood back in a known way, in one line,
    without the traceback Optuna attaches.

    The traceback of a stop only shows where the signal happened to land; the trial's
    ``error.txt`` keeps it when the stop reached the training loop, and a failed trial's.
    Exceptions say so with a true ``one_line_in_logs`` class attribute.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, KeyboardInterrupt) or getattr(error, "one_line_in_logs", False):
            record.exc_info, record.exc_text = None, None
        return True


def configure_sweep_logging(log_file: Path, worker: int | None = None) -> None:
    """Log INFO and up to stderr and ``log_file`` (appended to, shared by all workers).

    Call it after Lightning is imported: Lightning gives its loggers handlers of
    their own at import, which this removes.
    """
    who = "main" if worker is None else f"worker {worker}"
    formatter = logging.Formatter(FORMAT.format(who=who))
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.StreamHandler(), logging.FileHandler(log_file)]
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_sweeplab", False):
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(NoInterruptTraceback())
        redact_log_handler(handler)
        handler._sweeplab = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in LIBRARIES_WITH_OWN_HANDLERS:  # their lines would show twice: once theirs, once ours
        logging.getLogger(name).handlers.clear()
    optuna.logging.disable_default_handler()  # Optuna's lines go through the handlers above
    optuna.logging.enable_propagation()
