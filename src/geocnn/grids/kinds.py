"""Which :class:`~geocnn.grids.sources.Source` reads each format: one record per source kind.

:data:`SOURCE_KINDS` is keyed by the :data:`~geocnn.grids.formats.FORMATS` names (the formats'
suffixes live there); :func:`open_source` asks it, so a new store is one record here and one there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from geocnn import atomic
from geocnn.errors import DataError
from geocnn.grids.geotiff import GeoTiffSource
from geocnn.grids.netcdf import NetcdfSource
from geocnn.grids.sources import ArraySource, SegySource, Source
from geocnn.grids.spec import InputSpec
from geocnn.grids.stores import StoreSource
from geocnn.grids.tiff import family
from geocnn.grids.tiffstack import TiffStackSource
from geocnn.grids.waveforms import WaveformSource

# The two TIFF families (geocnn.grids.tiff.family decides which a file is).
TIFF_SOURCES: dict[str, Callable[[InputSpec], Source]] = {"geotiff": GeoTiffSource, "stack": TiffStackSource}


@dataclass(frozen=True)
class SourceKind:
    """How one format is opened; ``open(spec, random_access)`` returns its source."""

    name: str
    open: Callable[[InputSpec, bool], Source]


SOURCE_KINDS: dict[str, SourceKind] = {k.name: k for k in (
    SourceKind("segy", lambda spec, random_access: SegySource(spec, random_access)),
    SourceKind("npy", lambda spec, random_access: ArraySource(spec, "npy")),
    SourceKind("npz", lambda spec, random_access: ArraySource(spec, "npz")),
    SourceKind("mdio", lambda spec, random_access: StoreSource(spec, "mdio")),
    SourceKind("zarr", lambda spec, random_access: StoreSource(spec, "zarr")),
    SourceKind("tiff", lambda spec, random_access: TIFF_SOURCES[family(spec.path)](spec)),
    SourceKind("netcdf", lambda spec, random_access: NetcdfSource(spec)),
    SourceKind("seismo", lambda spec, random_access: WaveformSource(spec)),
)}


def open_source(spec: InputSpec, random_access: bool = False) -> Source:
    """One file or store, as a :class:`Source`, with errors naming it.

    ``random_access`` (training) lets ``cache: auto`` decode IBM/integer SEG-Y once into a cache.
    A temporary output of geocnn (a file or store being written, or left by a killed run) is refused,
    whatever its kind: its name marks it incomplete.
    """
    if atomic.is_temp(spec.path):
        raise DataError("the output is incomplete: a temporary one that a geocnn run is writing, or that a killed "
                        "run left", where=spec.path, fix="read the finished output, or write it again")
    return SOURCE_KINDS[spec.resolved_format].open(spec, random_access)
