"""Earthquake records for tests, written by ObsPy itself (import after ``pytest.importorskip("obspy")``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from obspy import Stream, Trace, UTCDateTime


def write_silent_records(folder: Path, n: int, t0: UTCDateTime, stations=("AAA", "BBB")) -> Path:
    """One miniSEED file per station of network XX: HHZ, HHN, HHE, ``n`` zero counts at 100 Hz from ``t0``."""
    for sta in stations:
        Stream([Trace(np.zeros(n, np.int32), header={"network": "XX", "station": sta, "channel": "HH" + c,
                                                      "starttime": t0, "sampling_rate": 100.0})
                for c in "ZNE"]).write(str(folder / f"{sta}.mseed"), format="MSEED")
    return folder
