"""Make the documentation's pictures (docs/pictures.md): short training runs on data_samples/, then predictions, one picture of each kind.

    python docs/pictures/make_pictures.py            # rewrite the PNGs in docs/pictures/
    python docs/pictures/make_pictures.py --out DIR  # write them somewhere else

The runs are deliberately short (a few hundred patches, two epochs, CPU): the pictures show what
geocnn draws, not how good a full run gets. Takes a few minutes on a laptop.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from geocnn.config import load_config
from geocnn.predict import predict
from geocnn.train import train

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data_samples"
SHORT = ["train.epochs=2", "train.device=cpu", "train.workers=0", "train.examples=2"]

# config, extra overrides, prediction inputs, --output, {picture in the run or prediction: name in docs/pictures}
# (a reconstruction model fills the traces of MISSING: --mask)
MISSING = "missing.npy"
RUNS = [
    ("denoise2d", ["data.sampling.patches_per_epoch=384", "data.sampling.val_patches=48"],
     ["seismic_noisy.sgy"], "auto",
     {"loss.png": "loss.png", "examples.png": "examples_regression.png", "preview": "preview_regression.png"}),
    ("facies2d", ["data.sampling.patches_per_epoch=256", "data.sampling.val_patches=48"],
     ["seismic_clean.sgy"], "labels",
     {"examples.png": "examples_segmentation.png", "confusion.png": "confusion_segmentation.png",
      "preview": "preview_segmentation.png"}),
    ("angles_gas", ["data.sampling.patches_per_epoch=256", "data.sampling.val_patches=48"],
     ["angles.sgy"], "probabilities", {"preview": "preview_probabilities.png"}),
    ("events1d", ["data.sampling.patches_per_epoch=320"],
     ["traces3c.npy"], "probabilities",
     {"examples.png": "examples_traces.png", "confusion.png": "confusion_classification.png",
      "preview": "preview_trace_scores.png"}),
    ("denoise_n2v", ["data.sampling.patches_per_epoch=256"], ["seismic_noisy.sgy"], "auto",
     {"loss.png": "loss_selfsup.png", "examples.png": "examples_denoise_self.png"}),
    ("reconstruct_traces", ["data.sampling.patches_per_epoch=256"], ["seismic_noisy.sgy"], "auto",
     {"examples.png": "examples_reconstruct.png", "preview": "preview_reconstruct.png"}),
]


def missing_traces(path: Path, shape: tuple[int, int] = (64, 48), share: float = 0.1) -> Path:
    """``--mask`` for the reconstruction preview: ``share`` of the survey's traces at random (seed 0)
    and a gap of 3 crosslines on one inline."""
    missing = np.random.default_rng(0).random(shape) < share
    missing[40, 20:23] = True
    np.save(path, missing)
    return path


def make(out: Path, work: Path) -> list[Path]:
    """Train and apply each run in ``work``; copy the chosen pictures to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    mask = missing_traces(work / MISSING)
    for name, overrides, inputs, kind, pictures in RUNS:
        cfg = load_config(ROOT / "configs" / f"{name}.yaml", SHORT + overrides)
        run = train(cfg, work / name)
        fills = cfg.task.masking is not None and cfg.task.masking.fills_traces
        report = predict(run, [SAMPLES / f for f in inputs], work / f"{name}_pred.npy", output=kind, device_name="cpu",
                         mask=mask if fills else None)
        for source, target in pictures.items():
            src = report.pictures[0] if source == "preview" else run / source
            written.append(small_png(src, out / target))
    written.append(picks_preview(out, work))
    return written


def picks_preview(out: Path, work: Path) -> Path:
    """The preview of a prediction on earthquake records with ``--picks``: the picking model with its own
    18 epochs (about a minute on one thread; after two epochs no probability reaches a threshold)."""
    cfg = load_config(ROOT / "configs" / "picking.yaml", ["train.device=cpu", "train.workers=0", "train.examples=0"])
    run = train(cfg, work / "picking")
    report = predict(run, [SAMPLES / "records" / "*.mseed"], work / "probs.mseed", device_name="cpu",
                     picks=work / "picks.csv", threshold={"P": 0.5, "S": 0.4})
    return small_png(report.pictures[0], out / "preview_picks.png")


def small_png(src: Path, dst: Path, colors: int = 128) -> Path:
    """A copy of ``src`` with a palette of ``colors`` colours: a documentation picture in tens of kilobytes."""
    with Image.open(src) as img:
        img.convert("RGB").quantize(colors=colors).save(dst, optimize=True)
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory() as work:
        for path in make(args.out, Path(work)):
            print(f"{path}  {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
