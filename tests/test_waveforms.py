"""Earthquake records through ObsPy: files written by ObsPy itself read back bit for bit, in real time.

Values encode their place (station k, component c, sample i → 10000·k + 1000·c + i mod 1000), so a
misplaced trace or a one-sample shift shows in the assertion.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

obspy = pytest.importorskip("obspy")
from obspy import Stream, Trace, UTCDateTime  # noqa: E402

from geocnn.errors import DataError  # noqa: E402
from geocnn.grids.grid import open_grid  # noqa: E402
from geocnn.grids.spec import InputSpec  # noqa: E402
from tests.test_bad_files import one_line_naming  # noqa: E402

T0 = UTCDateTime("2024-03-01T10:00:00")
RATE = 100.0


def coded(k: int, c: int, n: int, first: int = 0) -> np.ndarray:
    return (10000 * k + 1000 * c + (np.arange(first, first + n) % 1000)).astype(np.int32)


def trace(data: np.ndarray, station: str, channel: str, start: UTCDateTime = T0, rate: float = RATE) -> Trace:
    return Trace(data, header={"network": "XX", "station": station, "location": "00", "channel": channel,
                               "starttime": start, "sampling_rate": rate})


def whole(grid) -> np.ndarray:
    return grid.read(tuple(slice(0, n) for n in grid.shape))


def test_miniseed_written_by_obspy_reads_bit_for_bit_in_real_time(tmp_path):
    # station B starts 3 samples later than A: its first value lands at sample 3, zeros before
    st = Stream([trace(coded(k, c, 500), sta, "HH" + comp, T0 + 3 * k / RATE)
                 for k, sta in enumerate(("STA", "STB")) for c, comp in enumerate("ZNE")])
    st.write(str(tmp_path / "day.mseed"), format="MSEED", reclen=512, encoding="STEIM2")
    g = open_grid(tmp_path / "day.mseed")
    src = g.inputs[0]
    assert (g.axes, g.shape, g.channel_names) == (("station", "sample"), (2, 503), ("Z", "N", "E"))
    assert src.stations == ("XX.STA.00", "XX.STB.00") and src.starttime == "2024-03-01T10:00:00Z"
    assert g.spacing() == {"sample": (10.0, "ms")}
    x = whole(g)
    back = obspy.read(str(tmp_path / "day.mseed"))
    for k in range(2):
        for c in range(3):
            tr = back.select(station=("STA", "STB")[k], channel="HH" + "ZNE"[c])[0]
            np.testing.assert_array_equal(x[c, k, 3 * k:3 * k + 500], tr.data.astype(np.float32))
            assert x[c, k, 3 * k] == 10000 * k + 1000 * c
    assert not x[:, 1, :3].any() and not src.coverage((slice(1, 2), slice(0, 3), slice(0, 3))).any()
    # a window in the middle reads the same values as the whole
    np.testing.assert_array_equal(g.read((slice(1, 2), slice(200, 260))), x[:, 1:2, 200:260])


def test_float_sac_folder_and_glob_and_numbered_horizontals(tmp_path, caplog):
    values = np.random.default_rng(1).standard_normal((3, 400)).astype(np.float32)
    for c, comp in enumerate("Z12"):
        trace(values[c], "SAC", "BH" + comp).write(str(tmp_path / f"XX.SAC.BH{comp}.sac"), format="SAC")
    with caplog.at_level(logging.INFO, logger="geocnn.grids.waveforms"):
        folder = open_grid(tmp_path)
    assert "1 → N, 2 → E" in caplog.text and folder.inputs[0].channel_codes == {"XX.SAC.00": ("BHZ", "BH1", "BH2")}
    np.testing.assert_array_equal(whole(folder)[:, 0], values)  # SAC floats, bit for bit; 1 → N, 2 → E
    globbed = open_grid(str(tmp_path / "XX.SAC.BH[Z1].sac"))
    np.testing.assert_array_equal(whole(globbed)[:2, 0], values[:2])
    assert not whole(globbed)[2].any() and globbed.inputs[0].live((slice(None), slice(None))).tolist() == [[True, True, False]]


def test_gaps_read_as_zeros_and_are_not_covered(tmp_path):
    first, second = coded(0, 0, 1000), coded(0, 0, 1000, first=1000)
    st = Stream([trace(first[:300], "GAP", "HHZ"), trace(second[:500], "GAP", "HHZ", T0 + 4.0)])
    st.write(str(tmp_path / "gap.mseed"), format="MSEED", reclen=512)
    g = open_grid(tmp_path / "gap.mseed")
    assert g.shape == (1, 900)  # 4 s + 500 samples at 100 Hz
    x = whole(g)[0, 0]
    np.testing.assert_array_equal(x[:300], first[:300])
    np.testing.assert_array_equal(x[400:], second[:500])
    assert not x[300:400].any()
    covered = g.inputs[0].coverage((slice(0, 1), slice(0, 3), slice(0, 900)))[0, 0]
    assert covered.sum() == 800 and not covered[300:400].any() and covered[:300].all()


def test_two_rates_are_refused_naming_both_unless_sampling_rate_resamples(tmp_path):
    t = np.arange(2000) / RATE
    sig = np.sin(2 * np.pi * 2.0 * t) * 1000.0
    Stream([trace(sig.astype(np.float32), "FST", "HHZ"),
            trace(sig[::2].astype(np.float32), "SLW", "HHZ", rate=50.0)]).write(str(tmp_path / "mix.mseed"), format="MSEED")
    with pytest.raises(DataError, match=r"two sampling rates: 100 Hz \(XX.FST.00.HHZ.*50 Hz \(XX.SLW.00.HHZ"):
        open_grid(tmp_path / "mix.mseed")
    g = open_grid(InputSpec(str(tmp_path / "mix.mseed"), sampling_rate=100.0))
    assert g.shape == (2, 2000) and g.inputs[0].resampled
    x = whole(g)[0]
    np.testing.assert_array_equal(x[0], sig.astype(np.float32))  # already at 100 Hz: untouched
    # ObsPy's own resample of the whole 50 Hz trace, away from the ends where window edges differ
    ref = trace(sig[::2].astype(np.float64), "SLW", "HHZ", rate=50.0)
    ref.resample(100.0, no_filter=True)
    np.testing.assert_allclose(x[1, 300:1700], ref.data[300:1700], atol=2.0)  # 2 of 1000 amplitude
    # a window reads with a margin, so its values match the whole read's
    np.testing.assert_allclose(g.read((slice(1, 2), slice(800, 900)))[0, 0], x[1, 800:900], atol=2.0)


def test_long_record_window_read_is_bounded_by_the_window(tmp_path):
    n = int(RATE * 3600 * 2)  # two hours at 100 Hz: 720 000 samples
    trace(coded(0, 0, n), "LNG", "HHZ").write(str(tmp_path / "long.mseed"), format="MSEED", reclen=512,
                                              encoding="STEIM2")
    g = open_grid(tmp_path / "long.mseed")
    tracemalloc.start()
    try:
        x = g.read((slice(0, 1), slice(360_000, 361_000)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(x[0, 0], coded(0, 0, 1000, first=360_000))
    assert peak < 4 * n * 0.5, peak  # decoding the whole trace would take 4 bytes × 720 000 for its int32s alone


def test_damaged_files_unknown_channels_and_conflicts_are_one_error(tmp_path, cli):
    (tmp_path / "junk.mseed").write_bytes(b"garbage, not a record")
    one_line_naming(cli("inspect", tmp_path / "junk.mseed"), "junk.mseed")
    trace(coded(0, 0, 10), "HYD", "HDH").write(str(tmp_path / "hyd.mseed"), format="MSEED")
    with pytest.raises(DataError, match="no channel with a Z, N, E, 1 or 2 component"):
        open_grid(tmp_path / "hyd.mseed")
    Stream([trace(coded(0, 0, 10), "TWO", "HHZ"), trace(coded(0, 0, 10), "TWO", "BHZ")]).write(
        str(tmp_path / "two.mseed"), format="MSEED")
    with pytest.raises(DataError, match="station XX.TWO.00 has two channels for component Z: HHZ and BHZ"):
        open_grid(tmp_path / "two.mseed")
    with pytest.raises(DataError, match="no record files found"):
        open_grid(InputSpec(str(tmp_path / "none*.mseed")))


def test_grids_do_not_import_obspy_and_a_missing_extra_is_one_line(tmp_path):
    code = "import sys, geocnn.grids.grid, geocnn.grids.inspect; print('obspy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
    trace(coded(0, 0, 10), "MIS", "HHZ").write(str(tmp_path / "m.mseed"), format="MSEED")
    code = ("import sys; sys.modules['obspy'] = None; from geocnn.cli import main; "
            f"sys.argv = ['geocnn', 'inspect', '{tmp_path / 'm.mseed'}']; main()")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 2 and "geocnn[seismo]" in run.stderr and run.stderr.count("\n") == 1, run.stderr
