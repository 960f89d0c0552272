"""Ctrl-C during training: stop at a step boundary, and never save half a step.

The first Ctrl-C only sets a flag, read between steps (:meth:`CtrlC.agreed`): the step under way
finishes, then training saves ``last.pt`` and stops. A second Ctrl-C raises ``KeyboardInterrupt``
at once; if it lands inside a forward pass, :meth:`CtrlC.rewind` puts back the buffers (BatchNorm
statistics) and the random state from before the step, so the checkpoint holds a whole state and a
resumed run counts no batch twice. Inside the optimizer update (:attr:`CtrlC.whole` is False)
nothing whole is left to save. DataLoader workers ignore Ctrl-C (:func:`ignore_in_worker`): a
terminal sends it to the whole process group, and the main process still needs them for the step
it finishes. Only the main thread can hold a signal handler; elsewhere nothing changes.
"""

from __future__ import annotations

import logging
import signal
import threading

import torch

from geocnn import device
from geocnn.runs.resume import rng_state, set_rng_state

log = logging.getLogger(__name__)


def ignore_in_worker(worker_id: int) -> None:
    """``worker_init_fn`` of the DataLoaders: workers leave Ctrl-C to the main process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class CtrlC:
    """The SIGINT handler of a training run (a context manager), and where the loop is inside a step.

    ``buffers`` are the model's buffers (what a forward pass changes besides the random state).
    """

    def __init__(self, buffers: list[torch.Tensor]) -> None:
        self.requested = False
        self.phase = "between"  # between steps | forward (undoable) | updating (not)
        self._buffers = buffers
        self._saved: list[torch.Tensor] = []
        self._rng: dict = {}
        self._previous = None

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _note(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("Ctrl-C: stopping after this step and saving a checkpoint (Ctrl-C again stops at once)")

    def agreed(self, rt: device.Runtime) -> bool:
        """Whether any process was interrupted (all processes must stop at the same step)."""
        if not rt.distributed:
            return self.requested
        flag = torch.tensor([float(self.requested)], device=rt.device)  # NCCL reduces device tensors only
        device.all_reduce_(flag, rt)
        return bool(flag[0] > 0)

    # --- the phases of a step
    def begin(self) -> None:
        """A step starts: remember what its forward pass may change."""
        self._saved = [b.detach().clone() for b in self._buffers]
        self._rng = rng_state()
        self.phase = "forward"

    def updating(self) -> None:
        """The optimizer starts changing the weights: from here the step cannot be undone."""
        self.phase = "updating"

    def end(self) -> None:
        self.phase = "between"

    @property
    def whole(self) -> bool:
        """Whether the state is whole, or can be made whole by :meth:`rewind` (not inside an update)."""
        return self.phase != "updating"

    def rewind(self) -> None:
        """Undo a forward pass under way (buffers and random state as before the step)."""
        if self.phase == "forward":
            with torch.no_grad():
                for b, s in zip(self._buffers, self._saved):
                    b.copy_(s)
            set_rng_state(self._rng)
        self.phase = "between"
