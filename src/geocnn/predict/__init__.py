"""``geocnn predict``: a trained model over whole grids, in bounded memory, written as it goes.

Shaped like MONAI's inferers: a request record holds every option and is checked once
(:mod:`~geocnn.predict.request`); a planner gives the windows (:mod:`~geocnn.predict.plan`, all from
:func:`geocnn.patches.plan_windows`); a runner feeds them to the model (:mod:`~geocnn.predict.runner`);
a merger blends dense windows (:mod:`~geocnn.predict.blend`); a pending output writes the rows
(:mod:`geocnn.grids.pending`, shared by torchrun processes in :mod:`~geocnn.predict.shared`). What is
written — values, probabilities or labels — is an :class:`~geocnn.outputs.Output` record.

Data flows one way: files → grid → windows → model → blended rows → output values → writer.

- Dense models (regression, segmentation, denoising): windows tile the grid with the requested
  overlap and are blended with Gaussian or linear weights (:mod:`~geocnn.predict.dense`). A ring
  buffer holds only the rows still open, so memory is one slab of window height, whatever the
  survey size.
- Patch/trace models (classification, scalar): one score per window position, on a regular map
  whose spacing is ``--stride`` × the input's (:mod:`~geocnn.predict.maps`).
- Class probabilities of more than two classes go to one file per class on request
  (``split_classes``: ``NAME.class-K.sgy``), committed together or not at all.
- Trace reconstruction fills the missing traces only (:mod:`~geocnn.predict.fill`).

On a GPU the ring buffer, the blending and the output conversion live on the device (only
finished rows come back, through a pinned buffer), batches go up from pinned host memory without
blocking, IBM and integer SEG-Y samples travel as stored and are decoded there
(:mod:`geocnn.gpu_decode`), and the batch size is chosen from the device's free memory.

Under ``torchrun`` each process takes a contiguous range of first-axis rows, computes every window
that touches it (a few windows are computed by both neighbours) and writes its rows into the
shared output, so the result equals a single process's.

Example
-------
>>> from geocnn.predict import PredictRequest, apply
>>> report = apply(PredictRequest("runs/denoise", ("noisy.sgy",), "clean.sgy"))   # doctest: +SKIP
"""

from geocnn.predict.api import apply, predict
from geocnn.predict.job import Report
from geocnn.predict.request import PredictRequest
from geocnn.predict.trained import Trained, load_trained

__all__ = ["PredictRequest", "Report", "Trained", "apply", "load_trained", "predict"]
