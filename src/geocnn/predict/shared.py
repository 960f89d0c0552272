"""One output written by every process (torchrun): rank 0 prepares, every rank writes its rows, rank 0 commits.

Rank 0 creates the temporary output (:func:`geocnn.grids.writer.open_output`) and sends its
temporary path to the others as bytes (nothing pickled); they describe the same file with
``attach``. Each process writes the first-axis rows it owns (:func:`geocnn.predict.plan.rank_rows`,
in multiples of the output's :attr:`~geocnn.grids.pending.PendingOutput.row_block`). At the end the
processes agree whether every one succeeded; rank 0 commits (or aborts) and all leave together,
after the rename. A single process does the same without the messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from geocnn import device
from geocnn.grids.pending import OutputSpec, PendingOutput
from geocnn.grids.writer import open_output


@contextmanager
def shared_output(spec: OutputSpec, rt: device.Runtime) -> Iterator[PendingOutput]:
    """The pending output of ``spec`` on every process; committed on leaving if every process got
    through the block, aborted (and the error raised) otherwise."""
    pending = prepare_shared(spec, rt)
    ok = False
    try:
        yield pending
        ok = True
    finally:
        finish(pending, rt, ok)


def prepare_shared(spec: OutputSpec, rt: device.Runtime) -> PendingOutput:
    """Rank 0 creates the temporary output; the others attach to the same file."""
    pending = open_output(spec) if rt.main else None
    tmp = _share_tmp(pending, rt)
    return pending if pending is not None else open_output(spec, attach=tmp)


def finish(pending: PendingOutput, rt: device.Runtime, ok: bool) -> None:
    """Commit when every process succeeded (else abort), on rank 0; every process leaves after the rename."""
    if rt.distributed:
        flag = torch.tensor([int(ok)])
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        ok = bool(flag.item())
    if rt.main:
        pending.finish(ok)
    device.barrier(rt)


def _share_tmp(pending: PendingOutput | None, rt: device.Runtime) -> str | None:
    """Rank 0's temporary output path on every process (sent as bytes, nothing pickled)."""
    if not rt.distributed:
        return None
    path = (pending.tmp if pending is not None else "").encode()
    length = torch.tensor([len(path)], dtype=torch.int64)
    dist.broadcast(length, 0)
    buf = torch.zeros(int(length), dtype=torch.uint8)
    if rt.main:
        buf[:] = torch.frombuffer(bytearray(path), dtype=torch.uint8)
    dist.broadcast(buf, 0)
    return bytes(buf.tolist()).decode()
