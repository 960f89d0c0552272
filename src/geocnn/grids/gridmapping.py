"""The CRS of a CF grid-mapping variable: the WKT or EPSG code it carries, else its projection parameters.

A netCDF variable names its grid mapping (``grid_mapping: crs``); that variable holds the CRS as WKT
(``crs_wkt``, GDAL's ``spatial_ref``), an ``epsg_code``, or — as many models, NCO and older GDAL write
it — only ``grid_mapping_name`` and the parameters of CF's Appendix F (``transverse_mercator`` with
``scale_factor_at_central_meridian``, ``longitude_of_central_meridian``, ...; ``semi_major_axis`` and
``inverse_flattening`` or a ``horizontal_datum_name`` for the earth). pyproj's ``CRS.from_cf`` turns the
parameters into a CRS, which is carried on as WKT like the others.

The CRS is georeferencing of the output, never needed to read values: a grid mapping that cannot give
one (pyproj not installed, an unknown mapping name, a required parameter missing, a parameter that is
not a number, WKT pyproj cannot parse) is one warning naming the file, the variable and the attribute,
and the CRS is left out, as for a file without a grid mapping. pyproj is in the extra ``geocnn[xarray]``
and imported only when a grid mapping is read.
"""

from __future__ import annotations

import importlib
import logging
import math
from typing import Any

import numpy as np

from geocnn import schema

log = logging.getLogger(__name__)

EXTRA = "pip install 'geocnn[xarray]'"
CRS_ATTRIBUTES = ("crs_wkt", "spatial_ref", "epsg_code")  # where a CF grid mapping holds its CRS, first found

# CF Appendix F: each grid mapping's name -> the parameters it requires. A requirement is a tuple of
# alternatives (one of them is enough). pyproj would put 0 or 1 in place of a missing one and give a
# CRS somewhere else on the earth, so a missing one leaves the CRS out instead.
GRID_MAPPINGS: dict[str, tuple[tuple[str, ...], ...]] = {
    "albers_conical_equal_area": (("standard_parallel",), ("longitude_of_central_meridian",),
                                  ("latitude_of_projection_origin",)),
    "azimuthal_equidistant": (("longitude_of_projection_origin",), ("latitude_of_projection_origin",)),
    "geostationary": (("perspective_point_height",), ("longitude_of_projection_origin",),
                      ("sweep_angle_axis", "fixed_angle_axis")),
    "lambert_azimuthal_equal_area": (("longitude_of_projection_origin",), ("latitude_of_projection_origin",)),
    "lambert_conformal_conic": (("standard_parallel",), ("longitude_of_central_meridian",),
                                ("latitude_of_projection_origin",)),
    "lambert_cylindrical_equal_area": (("longitude_of_central_meridian",),
                                       ("standard_parallel", "scale_factor_at_projection_origin")),
    "latitude_longitude": (),
    "mercator": (("longitude_of_projection_origin",), ("standard_parallel", "scale_factor_at_projection_origin")),
    "oblique_mercator": (("azimuth_of_central_line",), ("latitude_of_projection_origin",),
                         ("longitude_of_projection_origin",), ("scale_factor_at_projection_origin",)),
    "orthographic": (("longitude_of_projection_origin",), ("latitude_of_projection_origin",)),
    "polar_stereographic": (("straight_vertical_longitude_from_pole",), ("latitude_of_projection_origin",),
                            ("standard_parallel", "scale_factor_at_projection_origin")),
    "rotated_latitude_longitude": (("grid_north_pole_latitude",), ("grid_north_pole_longitude",)),
    "sinusoidal": (("longitude_of_projection_origin",),),
    "stereographic": (("longitude_of_projection_origin",), ("latitude_of_projection_origin",),
                      ("scale_factor_at_projection_origin",)),
    "transverse_mercator": (("scale_factor_at_central_meridian",), ("longitude_of_central_meridian",),
                            ("latitude_of_projection_origin",)),
    "vertical_perspective": (("latitude_of_projection_origin",), ("longitude_of_projection_origin",),
                             ("perspective_point_height",)),
}
# CF's numeric grid-mapping parameters -> how many numbers each holds (others are one number).
NUMERIC_PARAMETERS = {name: (1,) for name in (
    "azimuth_of_central_line", "earth_radius", "false_easting", "false_northing", "grid_north_pole_latitude",
    "grid_north_pole_longitude", "inverse_flattening", "latitude_of_projection_origin",
    "longitude_of_central_meridian", "longitude_of_prime_meridian", "longitude_of_projection_origin",
    "north_pole_grid_longitude", "perspective_point_height", "scale_factor_at_central_meridian",
    "scale_factor_at_projection_origin", "semi_major_axis", "semi_minor_axis",
    "straight_vertical_longitude_from_pole")} | {"standard_parallel": (1, 2), "towgs84": (3, 7)}


class Unusable(Exception):
    """A grid mapping that gives no CRS: the attribute at fault (None: its parameters together) and why."""

    def __init__(self, attribute: str | None, problem: str) -> None:
        super().__init__(problem)
        self.attribute, self.problem = attribute, problem


def crs_of(ds: Any, mapping: str | None, where: str) -> str | None:
    """The CRS that the grid-mapping variable ``mapping`` of ``ds`` holds (WKT or ``EPSG:n``); None without
    one, or — after one warning naming ``where``, the variable and the attribute — when it gives none."""
    if not mapping or mapping not in ds.variables:
        return None
    try:
        return crs_of_attributes(plain(dict(ds.variables[mapping].attrs)))
    except Unusable as exc:
        at = f"attribute '{exc.attribute}'" if exc.attribute else "its parameters"
        log.warning("%s: grid mapping variable '%s', %s: %s; the CRS is left out", where, mapping, at, exc.problem)
        return None


def crs_of_attributes(attrs: dict) -> str | None:
    """The CRS of a grid mapping's attributes: its WKT or EPSG code as given, else the WKT of its CF
    parameters; None when it has neither. :class:`Unusable` when it names a CRS that cannot be built.

    Examples
    --------
    >>> crs_of_attributes({"epsg_code": "32631"})
    'EPSG:32631'
    >>> utm31 = {"grid_mapping_name": "transverse_mercator", "scale_factor_at_central_meridian": 0.9996,
    ...          "longitude_of_central_meridian": 3.0, "latitude_of_projection_origin": 0.0,
    ...          "false_easting": 500000.0, "false_northing": 0.0, "horizontal_datum_name": "WGS84"}
    >>> import pyproj
    >>> pyproj.CRS(crs_of_attributes(utm31)).to_epsg()
    32631
    """
    key = next((k for k in CRS_ATTRIBUTES if str(attrs.get(k, "")).strip()), None)
    if key is not None:
        text = str(attrs[key]).strip()
        text = f"EPSG:{text}" if text.isdigit() else text  # a bare EPSG code
        check_text(text, key)
        return text
    if "grid_mapping_name" not in attrs:
        return None
    check_parameters(attrs)
    pyproj = _pyproj(attrs["grid_mapping_name"])
    try:
        return pyproj.CRS.from_cf(attrs).to_wkt()
    except KeyError as exc:  # a parameter pyproj requires that GRID_MAPPINGS does not list
        raise Unusable(str(exc.args[0]), f"missing ({attrs['grid_mapping_name']} requires it)") from None
    except (pyproj.exceptions.CRSError, ValueError, TypeError) as exc:
        raise Unusable(None, f"pyproj builds no CRS from them ({_reason(exc)})") from None


def check_parameters(attrs: dict) -> None:
    """Refuse (:class:`Unusable`) an unknown ``grid_mapping_name``, a missing required parameter, or a
    numeric parameter that is not a finite number (or not as many as it holds)."""
    name = attrs["grid_mapping_name"]
    if name not in GRID_MAPPINGS:
        raise Unusable("grid_mapping_name", f"'{name}' is not one of CF's grid mappings "
                       f"({schema.suggest(str(name), list(GRID_MAPPINGS))})")
    for alternatives in GRID_MAPPINGS[name]:
        if not any(a in attrs for a in alternatives):
            raise Unusable(" or ".join(alternatives), f"missing ({name} requires it)")
    for key, counts in NUMERIC_PARAMETERS.items():
        if key in attrs and not _numbers(attrs[key], counts):
            raise Unusable(key, f"{attrs[key]!r} is not {' or '.join(map(str, counts))} finite number(s)")


def check_text(text: str, key: str) -> None:
    """Refuse (:class:`Unusable`) WKT or an EPSG code that pyproj cannot read, when pyproj is installed
    (without it the text is carried as given)."""
    try:
        pyproj = importlib.import_module("pyproj")
    except ImportError:
        return
    try:
        pyproj.CRS.from_user_input(text)
    except pyproj.exceptions.CRSError as exc:
        raise Unusable(key, f"not a CRS pyproj reads ({_reason(exc)})") from None


def _pyproj(name: str) -> Any:
    """pyproj, or :class:`Unusable` saying the CF parameters need it and naming the extra."""
    try:
        return importlib.import_module("pyproj")
    except ImportError:
        raise Unusable("grid_mapping_name", f"a CRS given as CF parameters ({name}) needs the Python package "
                       f"'pyproj', which is not installed ({EXTRA})") from None


def _numbers(value: Any, counts: tuple[int, ...]) -> bool:
    """Whether ``value`` is ``counts`` finite numbers (one: a number or a one-element list)."""
    values = value if isinstance(value, list) else [value]
    return len(values) in counts and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def plain(attrs: dict) -> dict:
    """Attributes with NumPy numbers and arrays as Python numbers and lists (what pyproj expects)."""
    return {str(k): v.tolist() if isinstance(v, (np.ndarray, np.generic)) else v for k, v in attrs.items()}


def _reason(exc: BaseException) -> str:
    """pyproj's reason in a few words: PROJ's own message when pyproj quotes it after the JSON it built."""
    text = str(exc).strip() or type(exc).__name__
    if "Internal Proj Error:" in text:
        text = text.rsplit("Internal Proj Error:", 1)[1].strip().rstrip(")")
    return (text.splitlines() or [text])[0][:160]
