"""Issue 18 §6: an MDIO prediction carries its SEG-Y input's coordinates and trace headers, as MDIO v1
datasets made from SEG-Y hold them, so ``geocnn convert p.mdio p.sgy`` needs no template and gives the
SEG-Y that ``predict --out p.sgy`` gives; a headerless input's convert error names it and says what to do."""

from __future__ import annotations

import numpy as np
import pytest
import segyio

from tests import segyfactory

zarr = pytest.importorskip("zarr")
mdio = pytest.importorskip("mdio")

FIELDS = (segyio.TraceField.INLINE_3D, segyio.TraceField.CROSSLINE_3D, segyio.TraceField.CDP_X,
          segyio.TraceField.CDP_Y, segyio.TraceField.SourceGroupScalar, segyio.TraceField.TRACE_SAMPLE_COUNT,
          segyio.TraceField.TRACE_SAMPLE_INTERVAL)


def headers_and_samples(path) -> tuple[list[tuple[int, ...]], np.ndarray]:
    with segyio.open(path, ignore_geometry=True) as f:
        return [tuple(f.header[i][k] for k in FIELDS) for i in range(f.tracecount)], f.trace.raw[:]


def test_an_mdio_prediction_converts_back_to_the_segy_predict_writes(tmp_path, cli, identity_run, monkeypatch):
    monkeypatch.setenv("MDIO__EXPORT__CPU_COUNT", "1")
    survey = segyfactory.write_segy(tmp_path / "in.sgy", ilines=range(1, 9), xlines=range(20, 32), n_samples=40,
                                    missing=[(3, 22)])
    run = identity_run(tmp_path)
    for out in ("p.sgy", "p.mdio"):
        assert cli("predict", run, survey.path, "--out", tmp_path / out).exit_code == 0
    ds = mdio.open_mdio(tmp_path / "p.mdio")  # what MDIO tools see: the layout of mdio's own SEG-Y import
    # coordinates in metres, the scalar (-100) applied: inline i at x = 1000 + 25 i, crossline j at y = 5000 + 12.5 j
    assert ds["cdp_x"].values[:, 0].tolist() == [1000 + 25 * i for i in range(8)]
    assert ds["cdp_y"].values[0, :3].tolist() == [5000.0, 5012.5, 5025.0]
    assert np.isnan(ds["cdp_x"].values[2, 2]) and not ds["trace_mask"].values[2, 2]  # (3, 22) has no trace
    assert ds["headers"].values["inline"][:, 0].tolist() == list(range(1, 9))
    assert ds["crossline"].values.tolist() == list(range(20, 32))
    assert ds["segy_file_header"].attrs["binaryHeader"]["data_sample_format"] == 5  # IEEE, as predict's SEG-Y

    result = cli("convert", tmp_path / "p.mdio", tmp_path / "back.sgy")  # no --template
    assert result.exit_code == 0, result.output
    want, got = headers_and_samples(tmp_path / "p.sgy"), headers_and_samples(tmp_path / "back.sgy")
    assert got[0] == want[0] and len(got[0]) == 8 * 12 - 1
    assert got[0][13] == (2, 21, 102500, 501250, -100, 40, 4000)  # inline 2, crossline 21, centimetres
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("suffix", [".npy", ".zarr"])
def test_a_headerless_input_names_itself_and_the_template_option(tmp_path, cli, suffix):
    src = tmp_path / f"p{suffix}"
    values = np.zeros((3, 4, 8), np.float32)
    if suffix == ".npy":
        np.save(src, values)
    else:
        zarr.create_array(src, data=values)
    result = cli("convert", src, tmp_path / "p.sgy")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    kind = {".npy": "a NumPy array", ".zarr": "a Zarr array"}[suffix]
    assert lines[0] == (f"error: {src}: {kind} holds no SEG-Y trace headers, so a SEG-Y output takes them from a "
                        "template — pass --template SOURCE.sgy (the SEG-Y survey it was computed from)")
    assert not (tmp_path / "p.sgy").exists()
