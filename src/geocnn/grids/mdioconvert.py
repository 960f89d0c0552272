"""SEG-Y <-> MDIO through the ``mdio`` package's own converters (the ``geocnn[mdio]`` extra).

``mdio.segy_to_mdio`` keeps every trace header and the textual/binary headers, so the dataset
converts back to SEG-Y (``mdio.mdio_to_segy``) and reads in any MDIO tool. geocnn picks the MDIO
template from the survey's geometry and tells the SEG-Y spec where the inline, crossline (and
offset) numbers are, as ``--iline/--xline/--offset`` say. Both directions are atomic: MDIO is
written as a temporary sibling folder renamed into place (named like every temporary output, so a
killed conversion leaves a folder readers refuse and the next write cleans), SEG-Y as a temporary
file. What mdio raises on a file it cannot take is one DataError naming the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from geocnn import atomic
from geocnn.errors import DataError, GeocnnError
from geocnn.grids.grid import Grid
from geocnn.grids.mdioheaders import ascii_text, segy_spec
from geocnn.grids.spec import InputSpec
from geocnn.grids.storeout import move_into_place, new_file_mode
from geocnn.grids.stores import open_store, require

log = logging.getLogger(__name__)

# geocnn geometry kind -> MDIO template (SEG-Y are time-domain unless said otherwise)
TEMPLATES = {"post-stack": "PostStack3DTime", "pre-stack": "CdpOffsetGathers3DTime"}
KEEP_FILE_HEADERS = "MDIO__IMPORT__SAVE_SEGY_FILE_HEADER"  # mdio_to_segy needs them back


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """mdio reads its settings from the environment (also in its worker processes)."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def segy_to_mdio(grid: Grid, spec: InputSpec, dst: str | os.PathLike, force: bool) -> Path:
    """Convert the SEG-Y ``spec`` names (opened as ``grid``) to the MDIO dataset ``dst``."""
    mdio = require("mdio")
    from mdio.builder.template_registry import get_template

    template = TEMPLATES.get(grid.meta.kind)
    if template is None:
        raise DataError(f"MDIO templates cover 3D post- and pre-stack surveys, not a {grid.meta.kind} file",
                        where=spec.path, fix="convert it to .zarr or .npy instead")
    final = atomic.check_new(dst, force)
    with atomic.writing(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        atomic.clean_stale(final.parent)
    tmp = atomic.temp_name(final)
    reading_spec = segy_spec(spec, grid.meta.endian, grid.meta.offsets is not None, reading=True)
    try:
        with atomic.writing(final), _environment(KEEP_FILE_HEADERS, "true"), _mdio_errors(spec.path):
            mdio.segy_to_mdio(reading_spec, get_template(template), spec.path, tmp, overwrite=False)
        _clean_text_header(tmp)
        with atomic.writing(final):
            return move_into_place(tmp, final, force)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def _mdio_errors(path: str) -> Iterator[None]:
    """What mdio raises on a file it cannot take (a header value out of its rules...) as one DataError.

    mdio is a boundary like a file format: its exceptions are about the input, never geocnn's state.
    Operating-system errors pass on (the caller names the output they concern).
    """
    try:
        yield
    except (OSError, GeocnnError):
        raise
    except Exception as exc:  # noqa: BLE001 - any failure inside mdio's converter is about this file
        raise DataError(f"mdio cannot convert it ({type(exc).__name__}: {exc})", where=path,
                        fix="check the header bytes (--iline/--xline/--offset) or convert to .zarr instead") from None


def _clean_text_header(path: Path) -> None:
    """Undecodable bytes of the textual header as spaces: mdio_to_segy can only write ASCII back."""
    header = open_store(str(path), mode="r+")["segy_file_header"]
    text = header.attrs.get("textHeader", "")
    clean = ascii_text(text)
    if clean != text:
        log.warning("%s: %d character(s) of the SEG-Y textual header were not ASCII; stored as spaces", path,
                    sum(not c.isascii() for c in text))
        header.attrs["textHeader"] = clean


def has_segy_headers(path: str) -> bool:
    """Was the dataset made from SEG-Y by mdio (it keeps the file headers mdio_to_segy needs)?"""
    root = open_store(path)
    return "segy_file_header" in root and "headers" in root


def mdio_to_segy(src: str, dst: str | os.PathLike, force: bool, spec: InputSpec) -> Path:
    """Write the SEG-Y an MDIO dataset was made from (headers as stored, samples as IEEE/IBM as stored)."""
    mdio = require("mdio")
    root = open_store(src)
    code = root["segy_file_header"].attrs["binaryHeader"].get("data_sample_format")
    export_spec = segy_spec(spec, "big", "offset" in root.array_keys(), code)
    with atomic.replacing(dst, force=force, suffix=".sgy") as tmp:
        mdio.mdio_to_segy(export_spec, src, tmp)
        os.chmod(tmp, new_file_mode())  # the temporary file was private; the output follows the umask
    return Path(dst)


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
