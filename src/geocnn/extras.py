"""Optional packages (extras): imported when a feature first needs them, with one error naming the extra.

``import geocnn`` and the command line's startup never import them; a feature that needs one calls
:func:`require`, which imports it or raises :class:`MissingExtra` saying what to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from geocnn.errors import GeocnnError


class MissingExtra(GeocnnError):
    """A feature needs an optional package that is not installed."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """``module`` imported, or :class:`MissingExtra` naming ``extra`` (``pip install 'geocnn[EXTRA]'``).

    Examples
    --------
    >>> require("json", "xarray", "xarray grids").__name__
    'json'
    >>> require("no_such_module_x", "xarray", "xarray grids")
    Traceback (most recent call last):
    ...
    geocnn.extras.MissingExtra: xarray grids need the Python package 'no_such_module_x', which is not installed — pip install 'geocnn[xarray]'
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{feature} need the Python package '{module}', which is not installed",
                           fix=f"pip install 'geocnn[{extra}]'") from None
