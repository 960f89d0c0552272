"""``geocnn predict``: exact identity through blending, coverage, SEG-Y headers, maps, memory, torchrun."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import segyio
import torch

from geocnn.config import load_config
from geocnn.errors import ConfigError, DataError, OutputExistsError
from geocnn.predict import blend, predict, runner
from geocnn.runs.checkpoint import load_checkpoint, save_checkpoint
from geocnn.train import train
from tests import segyfactory, trainkit
from tests.test_distributed import free_port

IDENTITY_2D = """
dims: 2
in_channels: 1
layers: [{conv: {out: 1, kernel: 1}}]
"""

IDENTITY_3D = """
dims: 3
in_channels: 1
layers: [{conv: {out: 1, kernel: 1}}]
"""


def identity_run(tmp_path, model=IDENTITY_2D, patch=(8, 16), section="inline", inputs=None, name="id"):
    """A trained run whose model is a 1×1 conv with weight 1 and bias 0 (output = input)."""
    data = trainkit.write_regression(tmp_path)
    if inputs is not None:
        data = {"inputs": inputs, "target": inputs[0]}
    extra = {"section": section} if section else {}
    path = trainkit.write_config(tmp_path, "regression", data, model, {"max_steps": 1}, name=f"{name}.yaml",
                                 patch=list(patch), **extra)
    run = train(load_config(path), tmp_path / name)
    for which in ("best", "last"):
        ckpt = load_checkpoint(run / "checkpoints" / f"{which}.pt")
        for key, value in ckpt.model_state.items():
            ckpt.model_state[key] = torch.ones_like(value) if key.endswith("weight") else torch.zeros_like(value)
        save_checkpoint(run / "checkpoints" / f"{which}.pt", ckpt)
    return run


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
@pytest.mark.parametrize("blend", ["gaussian", "linear", "none"])
def test_identity_model_reproduces_the_input_exactly(tmp_path, overlap, blend):
    run = identity_run(tmp_path)
    volume = trainkit.layered_volume((7, 13, 37), seed=5)  # no size is a multiple of the 8×16 window
    np.save(tmp_path / "vol.npy", volume)
    report = predict(run, [tmp_path / "vol.npy"], tmp_path / "out.npy", overlap=overlap, blend=blend,
                     pictures=False)
    out = np.load(report.output)
    assert out.shape == volume.shape
    np.testing.assert_allclose(out, volume, rtol=1e-5, atol=1e-5)


def test_3d_identity_with_a_grid_smaller_than_the_window(tmp_path):
    run = identity_run(tmp_path, IDENTITY_3D, patch=(4, 8, 16), section=None)
    volume = trainkit.layered_volume((3, 20, 30), seed=6)  # 3 inlines < window of 4: reflect-padded
    np.save(tmp_path / "vol.npy", volume)
    report = predict(run, [tmp_path / "vol.npy"], tmp_path / "out.npy", overlap=0.3, pictures=False)
    np.testing.assert_allclose(np.load(report.output), volume, rtol=1e-5, atol=1e-5)


def test_segy_output_keeps_headers_and_values(tmp_path):
    src = segyfactory.write_segy(tmp_path / "in.sgy", ilines=range(1, 10), xlines=range(20, 31), n_samples=40,
                                 format=1, missing=[(3, 22), (9, 30)]).path  # IBM floats, two dead traces
    run = identity_run(tmp_path, inputs=[str(src)])
    report = predict(run, [src], tmp_path / "out.sgy", overlap=0.25)
    with segyio.open(src, ignore_geometry=True) as a, segyio.open(report.output, ignore_geometry=True) as b:
        assert a.tracecount == b.tracecount
        assert a.text[0] == b.text[0]
        for i in range(a.tracecount):
            assert dict(a.header[i]) == dict(b.header[i])
        assert b.bin[segyio.BinField.Format] == 5  # IEEE floats
        np.testing.assert_allclose(b.trace.raw[:], a.trace.raw[:], rtol=1e-5, atol=1e-5)
    with open(src, "rb") as fa, open(report.output, "rb") as fb:
        ha, hb = fa.read(3600), fb.read(3600)
    assert ha[:3224] == hb[:3224] and ha[3226:] == hb[3226:]  # all but the format code (IBM → IEEE)
    assert (tmp_path / "out.preview.png").is_file()


def test_wrong_channel_count_names_both(tmp_path, cli):
    three = segyfactory.write_segy(tmp_path / "three.sgy", range(1, 9), range(1, 13), 32, offsets=[5, 15, 25])
    two = segyfactory.write_segy(tmp_path / "two.sgy", range(1, 9), range(1, 13), 32, offsets=[5, 15])
    model = IDENTITY_2D.replace("in_channels: 1", "in_channels: 3").replace("out: 1", "out: 3")
    run = identity_run(tmp_path, model, inputs=[{"path": str(three.path), "channels_from": "offset"}])
    with pytest.raises(DataError, match=r"the input gives 2 channel\(s\) \(offset 5, offset 15\) but the model "
                                        r"was trained on 3"):
        predict(run, [two.path], tmp_path / "o.npy", pictures=False)
    result = cli("predict", run, three.path, two.path, "--out", tmp_path / "o.npy")
    assert result.exit_code == 2 and "trained on 1 input file(s)" in result.stderr and "but 2 were given" in result.stderr


def test_existing_output_needs_force(tmp_path, cli):
    run = identity_run(tmp_path)
    first = cli("predict", run, tmp_path / "noisy.npy", "--out", tmp_path / "o.npy")
    assert first.exit_code == 0, first.stderr
    again = cli("predict", run, tmp_path / "noisy.npy", "--out", tmp_path / "o.npy")
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert cli("predict", run, tmp_path / "noisy.npy", "--out", tmp_path / "o.npy", "--force").exit_code == 0


def test_memory_is_bounded_by_the_slab(tmp_path):
    run = identity_run(tmp_path)
    sizes = {}
    for n in (12, 60):
        np.save(tmp_path / f"v{n}.npy", trainkit.layered_volume((n, 12, 40)))
        sizes[n] = predict(run, [tmp_path / f"v{n}.npy"], tmp_path / f"o{n}.npy", pictures=False).buffer_bytes
    assert sizes[12] == sizes[60] == 1 * 1 * 1 * 12 * 40 * 4  # plans × channels × window rows × rest × float32


def test_segmentation_labels_are_uint8(tmp_path):
    data = trainkit.write_segmentation(tmp_path, classes=3)
    path = trainkit.write_config(tmp_path, "segmentation", data, trainkit.SMALL_2D % {"out": 3}, patch=[8, 16],
                                 section="inline")
    run = train(load_config(path), tmp_path / "seg")
    report = predict(run, [tmp_path / "seis.npy"], tmp_path / "pred_labels.npy", output="labels", pictures=False)
    out = np.load(report.output)
    assert out.dtype == np.uint8 and out.shape == (16, 12, 48) and out.max() <= 2
    probs = predict(run, [tmp_path / "seis.npy"], tmp_path / "probs.npy", output="probabilities", pictures=False)
    p = np.load(probs.output)
    assert p.shape == (3, 16, 12, 48)
    np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(p.argmax(axis=0), out)
    with pytest.raises(ConfigError, match="--output values does not fit a segmentation model"):
        predict(run, [tmp_path / "seis.npy"], tmp_path / "v.npy", output="values")


def test_trace_classifier_writes_one_probability_per_trace(tmp_path):
    data = trainkit.write_traces(tmp_path)
    path = trainkit.write_config(tmp_path, "classification", data, trainkit.SMALL_1D_CLASSIFIER, patch=[64],
                                 split={"axis": "trace", "fraction": 0.25})
    run = train(load_config(path), tmp_path / "cls")
    report = predict(run, [tmp_path / "traces.npy"], tmp_path / "events.npy", pictures=True)
    p = np.load(report.output)
    assert p.shape == (64, 1) and ((p >= 0) & (p <= 1)).all()
    assert report.windows == 64 and (tmp_path / "events.preview.png").is_file()


def test_torchrun_prediction_equals_single_process(tmp_path):
    path = trainkit.regression_config(tmp_path, epochs=1)
    run = train(load_config(path), tmp_path / "run")
    np.save(tmp_path / "big.npy", trainkit.layered_volume((23, 12, 48), seed=9))
    single = predict(run, [tmp_path / "big.npy"], tmp_path / "single.npy", pictures=False)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "geocnn", "predict", str(run), str(tmp_path / "big.npy"),
           "--out", str(tmp_path / "multi.npy")]
    done = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "multi.npy"), np.load(single.output), rtol=1e-5, atol=1e-6)


def test_output_exists_error_type(tmp_path):
    run = identity_run(tmp_path)
    (tmp_path / "taken.npy").write_bytes(b"x")
    with pytest.raises(OutputExistsError):
        predict(run, [tmp_path / "noisy.npy"], tmp_path / "taken.npy", pictures=False)


# ----------------------------------------------------------------------------- the device path, run on the CPU

def _tensor_merger(monkeypatch) -> None:
    """Blend in tensors on the run's device (the CPU here), as on a GPU."""
    monkeypatch.setattr(blend, "merger_for", lambda dev, *args: blend.TorchMerger(*args, device=dev))


@pytest.mark.parametrize("fmt", [1, 3])
def test_samples_decoded_on_the_device_give_the_same_bits(tmp_path, monkeypatch, fmt):
    run = identity_run(tmp_path)
    vol = np.round(trainkit.layered_volume((9, 12, 37), seed=4) * (1000 if fmt == 3 else 1))
    s = segyfactory.write_segy(tmp_path / "in.sgy", range(1, 10), range(1, 13), 37, format=fmt,
                               missing=[(2, 3), (5, 7)], values=vol.astype(np.float32))
    host = np.load(predict(run, [s.path], tmp_path / "host.npy", pictures=False).output)
    seen = []

    def on_device(rt, grid):  # what a GPU gets: raw words up, decoded and normalised there
        seen.append(grid.raw_format())
        return grid.raw_format()

    monkeypatch.setattr(runner, "device_decoding", on_device)
    _tensor_merger(monkeypatch)  # the ring buffer as a tensor
    dev = np.load(predict(run, [s.path], tmp_path / "dev.npy", pictures=False).output)
    assert seen == [(fmt, ">")]
    np.testing.assert_array_equal(dev.view(np.uint32), host.view(np.uint32))
    np.testing.assert_allclose(dev, s.values, rtol=1e-5, atol=1e-5 * np.abs(s.values).max())
    assert not dev[1, 2].any()  # the dead trace (2, 3) stays zero


def test_an_error_in_the_reading_thread_arrives_as_itself(tmp_path, monkeypatch):
    from geocnn.grids.grid import Grid

    run = identity_run(tmp_path)
    np.save(tmp_path / "vol.npy", trainkit.layered_volume((20, 12, 37)))
    calls = {"n": 0}
    read = Grid.read

    def failing(self, window):
        calls["n"] += 1
        if calls["n"] == 7:
            raise DataError("the disk went away", where="vol.npy", fix="reconnect it")
        return read(self, window)

    monkeypatch.setattr(Grid, "read", failing)
    with pytest.raises(DataError, match="the disk went away") as err:
        predict(run, [tmp_path / "vol.npy"], tmp_path / "out.npy", pictures=False)
    assert err.value.fix == "reconnect it"
    assert not (tmp_path / "out.npy").exists() and not list(tmp_path.glob("out*.npy"))  # aborted


def test_the_reader_stops_when_the_consumer_stops(tmp_path):
    import threading

    from geocnn import device
    from geocnn.predict import load_trained

    trained = load_trained(identity_run(tmp_path))
    model = runner.Runner(trained, device.setup("cpu"), (8, 16), 2)
    read = []
    blocks = model.stream(iter(range(1000)), lambda k: (read.append(k) or np.full((1, 8, 16), k, np.float32), -k),
                          ahead=2)
    batch = next(blocks)
    scores = batch.scores
    assert batch.keys == [0, 1] and scores.shape == (2, 1, 8, 16)
    assert batch.carried == [0, -1]  # what the reader handed along travels with its window
    # normalised on the host, straight into the batch: (k - center) / scale, then the identity model
    norm = trained.norm
    assert float(scores[1, 0, 0, 0]) == pytest.approx((1 - norm.center[0]) / norm.scale[0], rel=1e-6)
    blocks.close()  # the consumer gives up: the thread must end, not block on a full queue
    assert not any(t.name == "geocnn-predict-reader" for t in threading.enumerate())
    assert len(read) <= 2 * (2 + 2)  # a bounded read-ahead: queue of 2 batches, one in hand, one staged


@pytest.mark.parametrize("output", ["labels", "probabilities"])
def test_blending_in_tensors_gives_numpys_bits(tmp_path, monkeypatch, output):
    data = trainkit.write_segmentation(tmp_path, classes=3)
    path = trainkit.write_config(tmp_path, "segmentation", data, trainkit.SMALL_2D % {"out": 3}, patch=[8, 16],
                                 section="inline")
    run = train(load_config(path), tmp_path / "seg")
    kw = {"output": output, "pictures": False, "overlap": 0.5, "both_orientations": True}
    host = np.load(predict(run, [tmp_path / "seis.npy"], tmp_path / "host.npy", **kw).output)
    _tensor_merger(monkeypatch)
    dev = np.load(predict(run, [tmp_path / "seis.npy"], tmp_path / "dev.npy", **kw).output)
    assert dev.dtype == host.dtype == (np.uint8 if output == "labels" else np.float32)
    np.testing.assert_array_equal(dev, host)


def test_normalize_input_sees_a_rescaled_survey_as_the_training_data(tmp_path, caplog):
    """--normalize input: a survey in other units (×1000, shifted) gives the same prediction in its
    own units; with the run's statistics the model sees amplitudes it never learned, and says so."""
    caplog.set_level(logging.INFO, logger="geocnn.predict")
    run = train(load_config(trainkit.regression_config(tmp_path, max_steps=2)), tmp_path / "run")
    volume = trainkit.layered_volume((6, 12, 48), seed=3)
    np.save(tmp_path / "unit.npy", volume)
    np.save(tmp_path / "scaled.npy", volume * 1000 + 50)
    unit = np.load(predict(run, [tmp_path / "unit.npy"], tmp_path / "a.npy", normalize="input",
                           pictures=False).output)
    report = predict(run, [tmp_path / "scaled.npy"], tmp_path / "b.npy", normalize="input", pictures=False)
    np.testing.assert_allclose(np.load(report.output), unit * 1000 + 50, rtol=1e-4, atol=0.05)
    assert report.warnings == []
    assert "--normalize input: standard statistics of the input" in caplog.text
    as_run = predict(run, [tmp_path / "scaled.npy"], tmp_path / "c.npy", pictures=False)
    assert any("amplitude scale" in w and "--normalize input" in w for w in as_run.warnings)
    assert not np.allclose(np.load(as_run.output), unit * 1000 + 50, rtol=1e-2, atol=5)


def test_normalize_accepts_run_or_input_only(tmp_path, cli):
    result = cli("predict", str(tmp_path / "run"), str(tmp_path / "x.npy"), "--out", str(tmp_path / "o.npy"),
                 "--normalize", "survey")
    assert result.exit_code == 2
    assert "--normalize must be run or input, got survey" in result.stderr
