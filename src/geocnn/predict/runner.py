"""The model over windows: a reader thread, batches, device placement (:class:`Runner`).

Windows come from ``read(key)`` as (C, *window) blocks in model order, not normalised: float32,
or the stored SEG-Y words when ``raw`` = (format, byte order) is given (decoded on the device,
:mod:`geocnn.gpu_decode`). On the CPU they are normalised in the reading thread, straight into the
batch; elsewhere on the device, after a non-blocking copy from pinned memory. The thread reads up
to ``ahead`` batches ahead of the model on every device. Whatever ``read`` hands along with a
block (the input as read, for trace filling) travels with its batch.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from geocnn import device, gpu_decode
from geocnn.grids.grid import Grid
from geocnn.model.network import build
from geocnn.predict import engines
from geocnn.predict.trained import Trained

log = logging.getLogger(__name__)

Read = Callable[[Any], tuple[np.ndarray, Any]]  # key → (block for the model, what travels with it)


@dataclass
class Batch:
    """One batch through the model: the windows' keys, their scores on the device (B, K, ...) or
    (B, K), and what ``read`` handed along with each block."""

    keys: list
    scores: torch.Tensor
    carried: list


class Runner:
    """Batches windows through the model (mixed precision on CUDA), reading ahead in a thread.

    ``model`` is the engine's call (:mod:`geocnn.predict.engines`: PyTorch in either memory layout,
    or ONNX Runtime), chosen once the batch size is known; ``place`` lays batches out for it."""

    def __init__(self, trained: Trained, rt: device.Runtime, window: tuple[int, ...], batch: int | None,
                 raw: tuple[int, str] | None = None, engine: str = "torch") -> None:
        spec = trained.cfg.model
        network, _ = build(spec, window)
        network.load_state_dict(trained.state)
        network.eval()
        self.place = device.placement(rt, spec.dims, trained.cfg.train.channels_last)
        self.model: engines.Forward = self.place.model(network)
        self.rt, self.trained, self.raw = rt, trained, raw
        self.norm_on_device = raw is not None or rt.device.type == "cuda"
        self.batch = batch or self._auto_batch(window)
        chosen = engines.choose(engine, engines.Context(trained, rt, tuple(window), self.batch, self.model))
        self.engine, self.model, self.place = chosen.name, chosen.forward, chosen.place

    def _auto_batch(self, window: tuple[int, ...]) -> int:
        """The configured batch size, or on CUDA as many windows as half the free memory holds."""
        fallback = self.trained.cfg.train.batch_size
        free = device.free_memory(self.rt)
        if free is None:
            return fallback
        batch = device.batch_for_memory(free, self._window_bytes(window), fallback)
        log.info("batch size %d (from %.1f GiB free on %s)", batch, free / 2**30, self.rt.device)
        return batch

    def _window_bytes(self, window: tuple[int, ...]) -> int:
        """Peak CUDA bytes of one window's forward pass, measured on a batch of two."""
        dev = self.rt.device
        torch.cuda.synchronize(dev)
        before = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        x = torch.zeros((2, self.trained.cfg.model.in_channels, *window), device=dev)
        self.scores(self.place.batch(x))
        torch.cuda.synchronize(dev)
        return max(1, (torch.cuda.max_memory_allocated(dev) - before) // 2)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *window) normalised input on the device → (B, K, *window) or (B, K) there:
        probabilities or values."""
        with torch.no_grad(), self.rt.autocast():
            out = self.model(x).float()
        return self.trained.cfg.task.scores(out)

    def _stage(self, blocks: list[np.ndarray]) -> torch.Tensor:
        """Host batch of the blocks (pinned on CUDA), normalised here unless the device does it."""
        shape = (len(blocks), *blocks[0].shape)
        if self.raw is not None:  # the stored bytes, block after block
            staged = device.host_buffer((sum(b.nbytes for b in blocks),), torch.uint8, self.rt)
            np.concatenate([b.view(np.uint8).reshape(-1) for b in blocks], out=staged.numpy())
            return staged
        staged = device.host_buffer(shape, torch.float32, self.rt)
        out = staged.numpy()
        if self.norm_on_device:
            np.stack(blocks, out=out)
            return staged
        center = np.asarray(self.trained.norm.center, np.float32).reshape(-1, *[1] * (len(shape) - 2))
        scale = np.asarray(self.trained.norm.scale, np.float32).reshape(center.shape)
        for i, block in enumerate(blocks):  # (x - center) / scale, as Normalization.apply, in place
            np.subtract(block, center, out=out[i])
            np.divide(out[i], scale, out=out[i])
        return staged

    def _upload(self, staged: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """The staged batch on the device: decoded, normalised and laid out for the model."""
        x = staged.to(self.rt.device, non_blocking=True)
        if self.raw is not None:
            x = gpu_decode.decode(x, *self.raw, shape)
        if self.norm_on_device:
            x = self.trained.norm.apply(x, channel_axis=1)
        return self.place.batch(x)

    def _read_batch(self, keys: list, read: Read) -> tuple:
        """What the reader queues for one batch: keys, block shape, staged batch, carried values."""
        pairs = [read(k) for k in keys]
        blocks = [b for b, _ in pairs]
        return keys, blocks[0].shape, self._stage(blocks), [c for _, c in pairs]

    def stream(self, items: Iterator, read: Read, ahead: int = 2) -> Iterator[Batch]:
        """Yield one :class:`Batch` per ``batch`` keys; a thread reads up to ``ahead`` batches ahead of
        the model. An error in the reader is raised here, as it was raised there."""
        q: queue.Queue = queue.Queue(maxsize=max(1, ahead))
        stop = threading.Event()
        thread = threading.Thread(target=self._produce, args=(items, read, q, stop), daemon=True,
                                  name="geocnn-predict-reader")
        thread.start()
        try:
            while (item := q.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                keys, shape, staged, carried = item
                yield Batch(keys, self.scores(self._upload(staged, (len(keys), *shape))), carried)
        finally:
            stop.set()  # a consumer that stops early (an error) releases the reader
            thread.join()

    def _produce(self, items: Iterator, read: Read, q: queue.Queue, stop: threading.Event) -> None:
        """The reader thread: batches of blocks into ``q``, then None (or the error that stopped it)."""
        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            keys: list = []
            for key in items:
                keys.append(key)
                if len(keys) == self.batch:
                    if not put(self._read_batch(keys, read)):
                        return
                    keys = []
            if keys:
                put(self._read_batch(keys, read))
        except BaseException as exc:  # surfaced in the consumer
            put(exc)
        put(None)


def device_decoding(rt: device.Runtime, grid: Grid) -> tuple[int, str] | None:
    """(format, byte order) when the grid's samples are best decoded on the device: on a GPU, for
    IBM and integer SEG-Y (raw words up, floats never built on the host)."""
    raw = grid.raw_format()
    if rt.device.type != "cuda" or raw is None or not gpu_decode.supported(raw[0]):
        return None
    return raw
