"""Ctrl-C while training: stop after the step in hand, checkpoint, say how to continue.

The first SIGINT only sets a flag that the training loop reads between steps, so the model, the
optimizer and the step count always agree when the checkpoint is written, and ``--resume``
continues from it bit for bit. A second SIGINT interrupts at once (a KeyboardInterrupt), for a
step that will not end. Loader workers ignore SIGINT (:mod:`pretrain.data`): the training process
ends them when it stops.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from corpus.errors import ExitCode, ImageProgramsError


class TrainingInterrupted(ImageProgramsError):
    """Training stopped on Ctrl-C after writing a checkpoint at ``step``: exit code 130, as a
    shell gives a command ended by SIGINT."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, out: Path, step: int, steps: int) -> None:
        self.checkpoint = out / "ckpt.pt"
        self.step = step
        self.resume_command = f"pretrain train --out {shlex.quote(str(out))} --resume"
        super().__init__(
            f"interrupted at step {step} of {steps}; checkpoint saved: {self.checkpoint}",
            hint=f"continue with: {self.resume_command}",
        )


class StopRequest:
    """Whether Ctrl-C asked the training loop to stop (``requested``)."""

    def __init__(self) -> None:
        self.requested = False

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        # os.write, not print: a handler may run in the middle of another write to stderr
        os.write(2, b"stopping after this step to save a checkpoint (Ctrl-C again: stop now, without one)\n")

    @contextlib.contextmanager
    def listening(self, enabled: bool = True) -> Iterator[StopRequest]:
        """Catch SIGINT for the duration (only where Python allows it: the main thread)."""
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield self
            return
        before = signal.signal(signal.SIGINT, self._handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, before)
