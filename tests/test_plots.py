"""Pictures: survey coordinates, clip, legends, per-class probabilities, loss with one epoch, and
the guard that keeps a failing picture from failing a run. Checked on the Figure objects."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest

from geocnn import plots
from geocnn.config import load_config
from geocnn.errors import ConfigError
from geocnn.grids.grid import open_grid
from geocnn.grids.spec import InputSpec
from geocnn.outputs import PROBABILITIES, VALUES
from geocnn.patches import patch_geometry
from geocnn.predict import predict
from geocnn.runs.metrics_log import EpochRecord, StepLosses
from geocnn.tasks import TASKS
from geocnn.train import train
from tests import segyfactory, trainkit

ILINES, XLINES = range(1001, 1007), range(2001, 2009)  # 6 inlines × 8 crosslines, 20 samples at 4 ms from 100 ms


@pytest.fixture
def cube(tmp_path):
    segyfactory.write_segy(tmp_path / "cube.sgy", ILINES, XLINES, 20, delay_ms=100)
    return open_grid(tmp_path / "cube.sgy")


def image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def colorbar_labels(fig):
    return [ax.get_ylabel() for ax in fig.axes if not ax.images and ax.get_ylabel() and ax.collections]


def tick_texts(fig, ax, axis="x"):
    fig.canvas.draw()
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks]


def test_survey_coordinates_come_from_the_headers(cube):
    il, xl, t = plots.survey_coords(cube)
    assert il.values.tolist() == list(ILINES) and xl.values.tolist() == list(XLINES)
    assert t.values[:3].tolist() == [100.0, 104.0, 108.0] and t.values[-1] == 100 + 4 * 19
    assert (il.label, xl.label, t.label) == ("inline", "crossline", "two-way time (ms)")
    assert il.at(2) == "inline 1003" and t.at(5) == "time 120 ms"


def test_an_array_without_headers_says_its_numbers_are_indices(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 4, 5), np.float32))
    il, _, s = plots.survey_coords(open_grid(tmp_path / "a.npy"))
    assert il.label == "inline (index)" and s.values.tolist() == [0, 1, 2, 3, 4]


def test_a_patch_frame_names_its_line_and_windows_the_axes(cube):
    geom = patch_geometry(cube.axes, cube.shape, (4, 8), section="inline")
    frame = plots.patch_frame(plots.survey_coords(cube), geom, (2, 3, 5))
    assert frame.line == "inline 1003"
    assert frame.axes[0].values.tolist() == [2004, 2005, 2006, 2007]
    assert frame.axes[1].values.tolist() == [100 + 4 * k for k in range(5, 13)]
    geom3 = patch_geometry(cube.axes, cube.shape, (4, 4, 8))
    assert plots.patch_frame(plots.survey_coords(cube), geom3, (1, 2, 0)).line == "inline 1004"  # middle of 1002-1005


def examples_on(cube, x, target, pred, probs=None, same_units=False, size=(4, 8)):
    geom = patch_geometry(cube.axes, cube.shape, size, section="inline")
    origins = np.array([[2, 3, 5], [4, 0, 0]])[: len(x)]
    frames = plots.patch_frames(plots.survey_coords(cube), geom, origins)
    return plots.Examples(x, target, pred, probs, frames=frames, same_units=same_units)


def test_regression_examples_share_one_scale_with_the_residual(cube):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 4, 8)).astype(np.float32)
    pred = 0.5 * x
    fig = plots.PICTURES[TASKS["regression"].pictures].examples(examples_on(cube, x, x * 0.4, pred, same_units=True), plots.Names())
    panels = image_axes(fig)
    assert len(panels) == 2 * 4
    assert [ax.get_title() for ax in panels[:4]] == ["input — inline 1003", "target", "prediction",
                                                     "residual (input − prediction)"]
    clip = float(np.percentile(np.abs(x[0, 0]), 99))
    assert all(ax.images[0].get_clim() == pytest.approx((-clip, clip)) for ax in panels[:4])
    np.testing.assert_allclose(panels[3].images[0].get_array().T, x[0, 0] - pred[0, 0])
    assert sum(f"clip ±{clip:.3g} (99th percentile)" in label for label in colorbar_labels(fig)) == 1
    assert panels[0].get_xlim() == (2003.5, 2007.5) and panels[0].get_ylim() == (150.0, 118.0)  # time down
    assert "2005" in tick_texts(fig, panels[0]) and panels[0].get_ylabel() == "two-way time (ms)"


def marks(ax):
    """The survey positions of the filled-trace marks of a panel (none: empty)."""
    lines = [line for line in ax.lines if line.get_label() == plots.FILLED]
    return np.concatenate([line.get_xdata() for line in lines]).tolist() if lines else []


@pytest.mark.parametrize("with_clean", [True, False])
def test_self_supervised_denoising_labels_the_noisy_input_the_training_target(cube, with_clean):
    rng = np.random.default_rng(4)
    noisy = rng.standard_normal((2, 1, 4, 8)).astype(np.float32)
    clean, pred = 0.5 * noisy, 0.6 * noisy
    ex = examples_on(cube, noisy, noisy, pred, same_units=True)
    ex.clean = clean if with_clean else None
    fig = plots.PICTURES[TASKS["denoise_self"].pictures].examples(ex, plots.Names())
    panels = image_axes(fig)
    titles = ["noisy input (the training target) — inline 1003", *(["clean twin (never trained on)"] * with_clean),
              "prediction", "residual (noisy input − prediction)"]
    assert [ax.get_title() for ax in panels[:len(titles)]] == titles and len(panels) == 2 * len(titles)
    shown = [ax.images[0].get_array().T for ax in panels[:len(titles)]]
    np.testing.assert_allclose(shown[0], noisy[0, 0])
    np.testing.assert_allclose(shown[-2], pred[0, 0])
    np.testing.assert_allclose(shown[-1], noisy[0, 0] - pred[0, 0], rtol=1e-6)
    if with_clean:
        np.testing.assert_allclose(shown[1], clean[0, 0])
    assert not any(marks(ax) for ax in panels)  # nothing is filled


def test_trace_reconstruction_examples_fill_and_mark_the_hidden_traces_only(cube):
    rng = np.random.default_rng(5)
    noisy = rng.standard_normal((1, 1, 4, 8)).astype(np.float32)
    hidden = np.zeros((1, 4, 8), bool)
    hidden[0, [1, 3]] = True  # crosslines 2005 and 2007 of the patch at crossline 2004
    filled = np.where(hidden[:, None], 0.3 * noisy, noisy)  # what predict writes: the prediction there only
    ex = examples_on(cube, np.where(hidden[:, None], 0, noisy), noisy, filled, same_units=True)
    ex.hidden, ex.clean = hidden, 0.5 * noisy
    fig = plots.PICTURES[TASKS["reconstruct_traces"].pictures].examples(ex, plots.Names())
    panels = image_axes(fig)
    assert [ax.get_title() for ax in panels] == [
        "noisy input (the training target) — inline 1003", "clean twin (never trained on)",
        "hidden traces filled (marked)", "residual on the filled traces (input − prediction)"]
    assert all(marks(ax) == [2005, 2007] for ax in panels)
    np.testing.assert_allclose(panels[2].images[0].get_array().T, filled[0, 0])
    residual = np.ma.filled(panels[3].images[0].get_array().T.astype(float), np.nan)
    assert np.isnan(residual[[0, 2]]).all()  # no residual where nothing was filled
    np.testing.assert_allclose(residual[[1, 3]], 0.7 * noisy[0, 0, [1, 3]], rtol=1e-5)


def test_a_3d_reconstruction_example_is_drawn_at_its_slice_with_the_most_hidden_traces(cube):
    geom = patch_geometry(cube.axes, cube.shape, (4, 4, 8))
    frames = plots.patch_frames(plots.survey_coords(cube), geom, np.array([[1, 2, 0]]))  # inlines 1002-1005
    noisy = np.random.default_rng(6).standard_normal((1, 1, 4, 4, 8))
    hidden = np.zeros((1, 4, 4, 8), bool)
    hidden[0, 0, 2] = hidden[0, 3, :2] = True  # one trace on inline 1002, two on inline 1005
    ex = plots.Examples(noisy, noisy, noisy, frames=frames, same_units=True, hidden=hidden)
    fig = plots.PICTURES[TASKS["reconstruct_traces"].pictures].examples(ex, plots.Names())
    first = image_axes(fig)[0]
    assert first.get_title() == "noisy input (the training target) — inline 1005" and marks(first) == [2003, 2004]
    assert frames[0].line == "inline 1004"  # the middle slice by default


def test_loss_picture_draws_every_compared_method_of_the_headline():
    records = [EpochRecord.from_dict({"epoch": e, "step": 4 * e, "train_loss": 0.5, "val_loss": 0.4, "val": {
        "snr_db": 3.0 + e, "clean_snr_db": 6.0 + e, "baseline": {"snr_db": -1.8, "clean_snr_db": 2.5},
        "classical": {"method": "f-x deconvolution", "clean_snr_db": 5.0}}}) for e in (1, 2)]
    metric = plots.loss_figure(records, "clean_snr_db").axes[1]
    lines = {line.get_label(): line for line in metric.lines}
    assert metric.get_title() == "validation clean_snr_db"
    assert lines["clean_snr_db"].get_ydata().tolist() == [7.0, 8.0]
    assert lines["baseline"].get_linestyle() == "--" and lines["baseline"].get_ydata()[0] == 2.5
    assert lines["f-x deconvolution"].get_linestyle() == ":" and lines["f-x deconvolution"].get_ydata()[0] == 5.0
    hidden = {line.get_label() for line in plots.loss_figure(records, "snr_db").axes[1].lines}
    assert hidden == {"snr_db", "baseline"}  # f-x is scored against the clean twin only


def test_segmentation_examples_show_every_class_with_a_legend(cube):
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=(2, 4, 8)).transpose(0, 3, 1, 2)
    labels = probs.argmax(1)
    x = rng.standard_normal((2, 1, 4, 8))
    names = plots.Names(classes=("shale", "sand", "gas"))
    fig = plots.PICTURES[TASKS["segmentation"].pictures].examples(examples_on(cube, x, labels, labels, probs), names)
    titles = [ax.get_title() for ax in image_axes(fig)[:6]]
    assert titles == ["input — inline 1003", "target", "prediction", "P(shale)", "P(sand)", "P(gas)"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["shale", "sand", "gas"]
    np.testing.assert_allclose(image_axes(fig)[5].images[0].get_array().T, probs[0, 2])
    assert "probability" in colorbar_labels(fig)


def test_binary_segmentation_shows_the_positive_class_and_default_names(cube):
    probs = np.full((1, 2, 4, 8), 0.5)
    fig = plots.PICTURES[TASKS["segmentation"].pictures].examples(
        examples_on(cube, np.ones((1, 1, 4, 8)), np.zeros((1, 4, 8), int), np.zeros((1, 4, 8), int), probs),
        plots.Names())
    assert [ax.get_title() for ax in image_axes(fig)][3:] == ["P(class 1)"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["class 0", "class 1"]


def test_patch_classification_examples_title_their_scores(cube):
    probs = np.array([[0.1, 0.9], [0.7, 0.3]])
    ex = examples_on(cube, np.ones((2, 1, 4, 8)), np.array([1, 1]), np.array([1, 0]), probs)
    fig = plots.PICTURES[TASKS["classification"].pictures].examples(ex, plots.Names(classes=("brine", "gas")))
    titles = [ax.get_title() for ax in image_axes(fig)]
    assert titles == ["inline 1003\ntarget gas — predicted gas (P 0.90)",
                      "inline 1005\ntarget gas — predicted brine (P 0.70)"]
    fig = plots.PICTURES[TASKS["scalar"].pictures].examples(examples_on(cube, np.ones((1, 1, 4, 8)), np.array([5.25]),
                                                        np.array([4.5])), plots.Names())
    assert image_axes(fig)[0].get_title() == "inline 1003\ntarget 5.25 — predicted 4.5"


def test_traces_are_lines_named_by_component(tmp_path):
    np.save(tmp_path / "t.npy", np.zeros((5, 3, 16), np.float32))
    grid = open_grid(InputSpec(str(tmp_path / "t.npy"), axes=("trace", "component", "sample"),
                               channels_from="component"))
    geom = patch_geometry(grid.axes, grid.shape, (16,))
    x = np.random.default_rng(2).standard_normal((2, 3, 16))
    ex = plots.Examples(x, np.array([0, 1]), np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]]),
                        frames=plots.patch_frames(plots.survey_coords(grid, plots.declared_spacing(
                            SimpleNamespace(spacing=((2.0, "ms"),)), geom.model_axes)), geom, np.array([[3, 0], [4, 0]])))
    fig = plots.PICTURES[TASKS["classification"].pictures].examples(ex, plots.Names(channels=("Z", "N", "E"),
                                                                     classes=("noise", "event")))
    assert len(fig.axes) == 2 and not image_axes(fig)
    labels = tick_texts(fig, fig.axes[0], "y")
    assert dict(zip(fig.axes[0].get_yticks().tolist(), labels)) == {3: "Z", 2: "N", 1: "E"}  # Z on top
    assert fig.axes[1].get_title() == "trace 4: target event — predicted event (P 0.60)"
    assert fig.axes[0].get_xlabel() == "two-way time (ms)" and len(fig.axes[0].lines) == 3
    assert fig.axes[0].lines[0].get_xdata()[:3].tolist() == [0.0, 2.0, 4.0]  # the model's 2 ms: no interval in .npy
    default = plots.PICTURES[TASKS["classification"].pictures].examples(ex, plots.Names.of(SimpleNamespace(data=SimpleNamespace(channel_names=None, class_names=None)), grid))
    assert tick_texts(default, default.axes[0], "y") == ["component 0", "component 1", "component 2"]


def test_loss_picture_of_a_one_epoch_run():
    record = {"epoch": 1, "step": 3, "train_loss": 0.5, "val_loss": 0.4,
              "val": {"snr_db": 6.0, "baseline": {"snr_db": 2.0}},
              "step_loss": {"steps": [1, 2, 3], "loss": [0.7, 0.5, 0.3]}}
    fig = plots.loss_figure([EpochRecord.from_dict(record)], "snr_db")
    loss, metric = fig.axes[:2]
    raw = loss.lines[0]
    assert raw.get_xdata().tolist() == [1, 2, 3] and raw.get_marker() == "o" and raw.get_alpha() < 1
    assert loss.lines[1].get_label() == "training (smoothed)"
    assert loss.lines[1].get_ydata()[0] == pytest.approx(0.7)  # the debiased average starts at the first loss
    val = [line for line in loss.lines if line.get_label() == "validation (per epoch)"][0]
    assert val.get_xdata().tolist() == [3] and val.get_marker() == "s"
    point = metric.lines[0]
    assert point.get_xdata().tolist() == [1] and point.get_ydata().tolist() == [6.0] and point.get_marker() == "o"
    base = [line for line in metric.lines if line.get_label() == "baseline"][0]
    assert base.get_linestyle() == "--" and base.get_ydata()[0] == 2.0
    assert metric.get_xlim() == (0.5, 1.5) and tick_texts(fig, metric) == ["1"]


def test_step_losses_are_thinned_to_bin_means():
    kept = StepLosses.thinned(11, list(range(450)), max_points=200)
    assert len(kept.steps) == 200
    assert kept.steps[:2] == (13, 16) and kept.loss[:2] == (1.0, 4.0)  # bins of 3 first (450 = 50×3 + 150×2)
    assert kept.steps[-1] == 460 and kept.loss[-1] == 448.5
    assert StepLosses.thinned(5, [0.25, 0.5]).to_dict() == {"steps": [5, 6], "loss": [0.25, 0.5]}


def test_confusion_picture_counts_and_names():
    fig = plots.confusion_figure([[8, 2], [1, 9]], plots.Names(classes=("noise", "event")))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["8\n80%", "2\n20%", "1\n10%", "9\n90%"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["noise", "event"]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"


def test_previews_of_a_prestack_input_and_of_class_probabilities(tmp_path):
    segyfactory.write_segy(tmp_path / "gathers.sgy", ILINES, XLINES, 20, offsets=[5, 15, 25])
    grid = open_grid(InputSpec(str(tmp_path / "gathers.sgy"), channels_from="offset"))
    np.save(tmp_path / "pred.npy", np.zeros((6, 8, 20), np.float32))
    pred = open_grid(tmp_path / "pred.npy")
    fig = plots.PICTURES[TASKS["regression"].pictures].preview(plots.Preview(grid, pred, VALUES, plots.Names.of(
        SimpleNamespace(data=SimpleNamespace(channel_names=None, class_names=None)), grid)))
    panels = image_axes(fig)
    assert len(panels) == 3 * 2
    assert [ax.get_title() for ax in panels[::2]] == ["input (offset 5) — inline 1004", "input (offset 5) — crossline 2005",
                                                      "input (offset 5) — time 40 ms"]
    assert panels[4].get_xlabel() == "inline" and panels[4].get_ylabel() == "crossline"
    np.save(tmp_path / "probs.npy", np.random.default_rng(3).dirichlet(np.ones(3), (6, 8, 20)).transpose(3, 0, 1, 2))
    probs = open_grid(InputSpec(str(tmp_path / "probs.npy"), axes=("channel", "inline", "crossline", "sample"),
                                channels_from="channel"))
    fig = plots.PICTURES[TASKS["segmentation"].pictures].preview(plots.Preview(grid, probs, PROBABILITIES, classes=3))
    assert [ax.get_title() for ax in image_axes(fig)[:4]] == ["input — inline 1004", "P(class 0)", "P(class 1)",
                                                              "P(class 2)"]  # not class 0 alone


def test_a_reconstruction_preview_shows_the_lines_with_the_most_filled_traces(cube, tmp_path):
    values = cube.read(tuple(slice(0, n) for n in cube.shape))[0]
    missing = np.zeros(cube.shape[:-1], bool)  # 6 inlines × 8 crosslines
    missing[4, [1, 2, 6]] = missing[0, 6] = True  # none on the middle inline (1004) or crossline (2005)
    out = np.where(missing[..., None], values + 1.0, values).astype(np.float32)
    np.save(tmp_path / "out.npy", out)
    fig = plots.PICTURES[TASKS["reconstruct_traces"].pictures].preview(
        plots.Preview(cube, open_grid(tmp_path / "out.npy"), VALUES, same_units=True, filled=missing))
    panels = image_axes(fig)
    assert fig.get_suptitle() == "prediction preview: 4 of 48 traces filled"
    assert [ax.get_title() for ax in panels[::3]] == ["input — inline 1005", "input — crossline 2007",
                                                      "input — time 140 ms"]
    assert [ax.get_title() for ax in panels[1:3]] == ["output: the marked traces filled",
                                                      "residual on the filled traces (input − output)"]
    assert all(marks(ax) == [2002, 2003, 2007] for ax in panels[:3])  # the inline's filled crosslines
    assert all(marks(ax) == [1001, 1005] for ax in panels[3:6])  # the crossline's filled inlines
    residual = np.ma.filled(panels[2].images[0].get_array().T.astype(float), np.nan)  # crossline × sample
    np.testing.assert_allclose(residual[[1, 2, 6]], -1.0)  # input − output on the filled traces
    assert np.isnan(np.delete(residual, [1, 2, 6], axis=0)).all()
    square = [line for line in panels[6].lines if line.get_label() == plots.FILLED][0]  # the time slice
    assert sorted(zip(square.get_xdata(), square.get_ydata())) == [(1001, 2007), (1005, 2002), (1005, 2003),
                                                                  (1005, 2007)]


def test_a_failing_picture_is_a_warning_not_a_failed_run(tmp_path, caplog, monkeypatch):
    def broken(ex, names):
        raise ValueError("no luck")

    monkeypatch.setitem(plots.PICTURES, "broken", plots.Pictures(broken, broken))
    task = SimpleNamespace(pictures="broken")
    ex = plots.Examples(np.ones((1, 1, 4, 4)), np.ones((1, 1, 4, 4)), np.ones((1, 1, 4, 4)))
    with caplog.at_level(logging.WARNING, logger="geocnn.plots"):
        assert plots.examples(ex, task, tmp_path / "examples.png") is None
    assert "could not draw examples (ValueError: no luck)" in caplog.text
    assert not (tmp_path / "examples.png").exists()


@pytest.mark.slow
def test_a_segmentation_run_writes_its_pictures(tmp_path, caplog):
    data = trainkit.write_segmentation(tmp_path, classes=3)
    path = trainkit.write_config(tmp_path, "segmentation", data, trainkit.SMALL_2D % {"out": 3}, {"epochs": 1, "examples": 2},
                                 patch=[8, 16], section="inline", class_names=["low", "mid", "high"])
    with caplog.at_level(logging.WARNING, logger="geocnn.plots"):
        run = train(load_config(path), tmp_path / "run")
        report = predict(run, [tmp_path / "seis.npy"], tmp_path / "p.npy", output="probabilities")
    assert "could not draw" not in caplog.text
    assert report.pictures == [tmp_path / "p.preview.png"] and report.pictures[0].stat().st_size > 0
    for name in ("loss.png", "examples.png", "confusion.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    confusion = json.loads((run / "confusion.json").read_text())
    val = json.loads((run / "metrics.jsonl").read_text())["val"]
    assert confusion["matrix"] == val["confusion"] and confusion["classes"] == ["low", "mid", "high"]
    assert np.sum(confusion["matrix"]) == 8 * 8 * 16  # every sample of the 8 validation patches
    record = json.loads((run / "metrics.jsonl").read_text())
    assert record["step_loss"]["steps"] == [1, 2, 3, 4]  # 16 patches, batches of 4


@pytest.mark.parametrize("field,value,message", [
    ("channel_names", ["Z", "N"], "channel_names gives 2 names for the model's 1 input channel"),
    ("class_names", ["a", "b", "c"], "class_names are for classifying tasks, not regression"),
])
def test_names_that_do_not_fit_are_config_errors(tmp_path, field, value, message):
    data = trainkit.write_regression(tmp_path)
    path = trainkit.write_config(tmp_path, "regression", data, trainkit.SMALL_2D % {"out": 1}, patch=[8, 16],
                                 section="inline", **{field: value})
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert f"data.{field}" in str(err.value) or field in str(err.value)


def test_class_names_must_match_the_classes(tmp_path):
    data = trainkit.write_segmentation(tmp_path, classes=3)
    path = trainkit.write_config(tmp_path, "segmentation", data, trainkit.SMALL_2D % {"out": 3}, patch=[8, 16],
                                 section="inline", classes=3, class_names=["low", "high"])
    with pytest.raises(ConfigError, match="class_names gives 2 names for 3 classes"):
        load_config(path)


def test_a_picture_draws_at_most_max_drawn_samples_per_axis():
    """A long axis (a day of records, a 100,000-pixel scene) is drawn around its middle, MAX_DRAWN samples,
    with the coordinates of the part drawn: the preview's read stays bounded whatever the grid."""
    coords = (plots.index_coords("trace", 6), plots.Coords("time", np.arange(10_000) * 4.0, "ms"))
    ((frame, window),) = plots._views(coords, (6, 10_000))
    assert window == (slice(0, 6), slice(2952, 7048)) and plots.MAX_DRAWN == 4096
    assert frame.axes[1].values[0] == 2952 * 4.0 and len(frame.axes[1].values) == 4096
    assert frame.axes[0].values.tolist() == list(range(6))


def test_prediction_preview_of_a_long_grid_reads_a_bounded_window(identity_run, tmp_path, monkeypatch):
    run = identity_run(tmp_path)
    cube = np.random.default_rng(0).normal(size=(2, 8, 9000)).astype(np.float32)
    np.save(tmp_path / "long.npy", cube)
    widest = []
    real_read = type(open_grid(tmp_path / "long.npy")).read

    def read(self, window):
        widest.append(max(s.stop - s.start for s in window))
        return real_read(self, window)

    monkeypatch.setattr(type(open_grid(tmp_path / "long.npy")), "read", read)
    report = predict(run, [tmp_path / "long.npy"], tmp_path / "out.npy", threads=1)
    assert report.pictures and report.pictures[0].stat().st_size > 10_000
    assert np.allclose(np.load(tmp_path / "out.npy"), cube, atol=1e-4)  # the identity: the whole grid written
    assert max(widest) == plots.MAX_DRAWN  # the preview's sections: 4,096 of the 9,000 samples, never the whole
