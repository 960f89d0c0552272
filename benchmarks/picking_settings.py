"""Choosing configs/picking.yaml's settings without the benchmark's held-out stations.

``benchmarks/field_picking.py`` scores the example on stations XG.AB05 and XG.AB06. Settings chosen by
looking at those figures would flatter it, so they are chosen here on the training stations alone: the
network trains on XG.AB01–AB03 and is validated on XG.AB04 (records and picks of AB05/AB06 are left out
of the run entirely: a pick list naming a station the records lack is an error). Each setting is
trained once for ``--epochs`` epochs (``train.seed 0``, ``--threads 1``); every epoch's validation pick
F1 (P at 0.1 s, S at 0.2 s; threshold 0.5) is printed, so the epoch count can be chosen too — by the
mean of P and S F1, smoothed over three epochs, since 14 events on one station are few.

Usage: ``python benchmarks/picking_settings.py [--epochs 20] [--tmp DIR]`` (about a minute per setting).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import tempfile
from pathlib import Path

import _common as C
import numpy as np

from geocnn.config import load_config
from geocnn.train import train

RECORDS = C.ROOT / "data_samples" / "records"
PICKS = C.ROOT / "data_samples" / "picks.csv"
CONFIG = C.ROOT / "configs" / "picking.yaml"
TUNING = ("AB01", "AB02", "AB03", "AB04")  # the benchmark holds out AB05 and AB06
SETTINGS = {  # name → overrides
    f"{shape} w{w}": [f"data.picks.shape={shape}", f"train.loss.class_weights=[1,{w},{w}]"]
    for shape in ("box", "gaussian") for w in (2, 5, 10)
}


def tuning_records(work: Path) -> Path:
    """A folder of the tuning stations' records (links)."""
    folder = work / "records"
    folder.mkdir()
    for s in TUNING:
        (folder / f"{s}.mseed").symlink_to(RECORDS / f"{s}.mseed")
    return folder


def tuning_picks(work: Path) -> Path:
    """The pick list without the benchmark's held-out stations."""
    with PICKS.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["station"].split(".")[-1] in TUNING]
    out = work / "picks_tuning.csv"
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["station", "phase", "time"])
        w.writeheader()
        w.writerows(rows)
    return out


def curve(run: Path) -> list[tuple[float, float]]:
    """(P F1, S F1) of each epoch's validation windows."""
    lines = [json.loads(t) for t in (run / "metrics.jsonl").read_text().splitlines()]
    return [(v["val"]["pick_f1_P"], v["val"]["pick_f1_S"]) for v in lines if "pick_f1_P" in v.get("val", {})]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tmp", type=Path, default=None)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--only", default=None, help="one setting's name (e.g. 'gaussian w5')")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a further override for every setting (e.g. data.picks.threshold=0.3); repeatable")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="geocnn-picking-settings-", dir=args.tmp))
    picks = tuning_picks(work)
    inputs = f"[{tuning_records(work) / '*.mseed'}]"
    print(f"# Picking settings chosen on XG.AB01–AB03 (training) / XG.AB04 (validation); {C.machine()}; "
          f"{dt.date.today().isoformat()}; overrides: {' '.join(args.set) or 'none'}")
    rows = []
    for name, overrides in SETTINGS.items():
        if args.only and name != args.only:
            continue
        cfg = load_config(CONFIG, [f"data.inputs={inputs}", f"data.picks.path={picks}", "data.split.fraction=0.25",
                                   "data.sampling.val_patches=128", f"train.epochs={args.epochs}", "train.seed=0",
                                   "train.threads=1", *overrides, *args.set])
        f1 = np.array(curve(train(cfg, work / name.replace(" ", "_"))))
        mean = f1.mean(axis=1)
        smooth = np.convolve(mean, np.ones(3) / 3, mode="same")
        best = int(np.argmax(smooth[1:-1])) + 1
        print(f"{name}: P F1 per epoch {' '.join(f'{v:.2f}' for v in f1[:, 0])}")
        print(f"{' ' * len(name)}  S F1 per epoch {' '.join(f'{v:.2f}' for v in f1[:, 1])}", flush=True)
        rows.append([name, f"{best + 1}", f"{f1[best, 0]:.2f}", f"{f1[best, 1]:.2f}", f"{smooth[best]:.2f}",
                     f"{f1[-1, 0]:.2f}", f"{f1[-1, 1]:.2f}"])
    print(C.table(["setting", "best epoch", "P F1", "S F1", "mean (3-epoch)", f"P F1 @{args.epochs}",
                   f"S F1 @{args.epochs}"], rows))


if __name__ == "__main__":
    main()
