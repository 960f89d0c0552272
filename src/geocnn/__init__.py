"""geocnn: convolutional neural networks on gridded earth data, declared in YAML.

From Python (the command line's twin, see ``docs/python.md``)::

    import geocnn
    grid = geocnn.open("data_samples/seismic_noisy.sgy")          # lazy Grid; .to_xarray()
    geocnn.summarize("configs/denoise.yaml")                     # layers, totals, receptive field
    run = geocnn.train("configs/denoise.yaml", train={"epochs": 2})
    clean = geocnn.predict(run, grid.to_xarray())                 # a DataArray, same coordinates

The names are loaded on first use, so ``import geocnn`` (and the command line's startup) imports
neither torch nor matplotlib. The library never prints: it logs through :mod:`logging` (a
``NullHandler`` is installed here) and reports progress through :mod:`geocnn.progress`.
"""

from __future__ import annotations

import importlib
import logging
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from geocnn.api import Run, open, predict, summarize, train
    from geocnn.errors import GeocnnError
    from geocnn.grids.grid import Grid
    from geocnn.summary import Summary

# public name -> the module that defines it (imported on first use)
_PUBLIC = {
    "GeocnnError": "geocnn.errors", "Grid": "geocnn.grids.grid", "Run": "geocnn.api", "Summary": "geocnn.summary",
    "open": "geocnn.api", "predict": "geocnn.api", "summarize": "geocnn.api", "train": "geocnn.api",
}
__all__ = ["GeocnnError", "Grid", "Run", "Summary", "__version__", "open", "predict", "summarize", "train"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'geocnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """``geocnn.train`` and ``geocnn.predict`` are the API's functions, although modules of those names
    exist (``geocnn/train.py``, ``geocnn/predict/``): importing a submodule binds it on its package,
    which would hide the function; here that binding is skipped for the public names. The modules stay
    importable by name (``from geocnn.train import train``, ``sys.modules``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _PUBLIC and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
