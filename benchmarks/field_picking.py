"""Phase picking on the sample records: geocnn's picks against ObsPy's classic STA/LTA, on held-out stations.

``data_samples/records/*.mseed`` (6 stations, 4 minutes at 100 Hz, P and S arrivals, coloured noise, gaps)
and ``data_samples/picks.csv`` (the true arrivals). ``configs/picking.yaml`` is trained with
``--threads 1``, ``train.seed 0``; its split holds out whole stations (``split.json``: the validation
stations). ``geocnn predict --picks`` then picks every station with the last epoch's weights (``last.pt``:
no epoch is chosen by a score on the held-out stations), and only the held-out ones are scored.

- **network**: the picks ``geocnn predict --picks`` writes — peaks of each phase's probability at or above
  the threshold (0.5, the CLI default; also 0.3, PhaseNet's), 0.5 s apart.
- **STA/LTA** (the classical baseline, P only): :class:`geocnn.classical.stalta.StaLta`, the one training's
  validation reports — ``obspy.signal.trigger.classic_sta_lta`` on the Z component (STA 0.5 s, LTA 5 s),
  ``trigger_onset`` switching on at 3.0 and off at 1.5; each trigger's onset is a P pick. Textbook settings,
  not tuned on these records.

A pick matches a true pick of its station and phase within the tolerance (0.1 s and 0.5 s; each true pick
at most once, nearest first: :func:`geocnn.picking.score`). Precision, recall, F1, and the mean and
standard deviation of the matched residuals (pick − true, ms) are printed per method and phase.

Usage: ``python benchmarks/field_picking.py [--tmp DIR] [--keep] [--json FILE]`` (about a minute of CPU).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import tempfile
from pathlib import Path

import _common as C
import obspy

from geocnn.classical.stalta import StaLta
from geocnn.config import load_config
from geocnn.grids.grid import open_grid
from geocnn.grids.picks import read_picks, station_index
from geocnn.picking import Pick, Score, score
from geocnn.predict.api import predict
from geocnn.train import train

RECORDS = C.ROOT / "data_samples" / "records"
PICKS = C.ROOT / "data_samples" / "picks.csv"
CONFIG = C.ROOT / "configs" / "picking.yaml"
SEED = 0
THRESHOLDS = (0.5, 0.3)
MIN_SEPARATION_S = 0.5
TOLERANCES_S = (0.1, 0.2, 0.5)
STALTA = StaLta()


def held_out(run: Path, stations: tuple[str, ...]) -> set[str]:
    """The validation stations of the run's split (``NET.STA.LOC``)."""
    lo, hi = json.loads((run / "split.json").read_text())["validation"]
    return set(stations[lo:hi])


def named(picks: list, stations: tuple[str, ...], keep: set[str]) -> list[Pick]:
    """Picks of a pick list with their stations named as the records name them, held-out stations only."""
    out = [Pick(stations[station_index(p.station, stations, p.where)], p.phase, p.time_ns) for p in picks]
    return [p for p in out if p.station in keep]


def sta_lta_picks(station: str) -> list[Pick]:
    """Onsets of classic STA/LTA triggers on the station's Z component (gaps filled with zeros)."""
    net, sta, loc = station.split(".")
    z = obspy.read(str(RECORDS / "*.mseed")).select(network=net, station=sta, location=loc, component="Z")
    z.merge(fill_value=0)
    tr = z[0]
    rate = tr.stats.sampling_rate
    return [Pick(station, "P", (tr.stats.starttime + int(on) / rate).ns) for on in STALTA.onsets(tr.data, rate)]


def row(method: str, s: Score) -> list[str]:
    def f(v: float, fmt: str = "{:.2f}") -> str:
        return "—" if math.isnan(v) else fmt.format(v)
    return [method, s.phase, f"{s.tolerance:g}", f"{s.true_positives}/{s.reference}", str(s.predicted),
            f(s.precision), f(s.recall), f(s.f1), f(s.residual_mean * 1000, "{:+.0f}"), f(s.residual_std * 1000, "{:.0f}")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tmp", type=Path, default=None, help="work folder (default: a new temporary one)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for the network (e.g. train.epochs=20); repeatable")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="geocnn-bench-picking-", dir=args.tmp))
    print("# Phase picking on held-out stations: geocnn vs classic STA/LTA")
    print(f"machine: {C.machine()}; {dt.date.today().isoformat()}; train.seed {SEED}, --threads 1; "
          f"overrides: {' '.join(args.set) or 'none'}")
    run = train(load_config(CONFIG, [f"train.seed={SEED}", "train.threads=1", *args.set]), work / "run")
    stations = open_grid(RECORDS / "*.mseed").inputs[0].stations
    keep = held_out(run, stations)
    truth = named(read_picks(str(PICKS)), stations, keep)
    print(f"held-out stations: {', '.join(sorted(keep))} ({len(truth)} true picks)")
    rows, figures = [], []
    for thr in THRESHOLDS:
        csv = work / f"picks_{thr:g}.csv"
        predict(run / "checkpoints" / "last.pt", [RECORDS / "*.mseed"], work / f"probs_{thr:g}.mseed", picks=csv, threshold=thr,
                min_separation=MIN_SEPARATION_S, threads=1, device_name="cpu", pictures=False)
        ours = named(read_picks(str(csv)), stations, keep)
        for phase in ("P", "S"):
            for tol in TOLERANCES_S:
                rows.append(row(f"network (threshold {thr:g})", s := score(ours, truth, phase, tol)))
                figures.append({"method": f"network@{thr:g}", "phase": phase, "tolerance": tol, "f1": s.f1,
                                "precision": s.precision, "recall": s.recall, "residual_mean": s.residual_mean,
                                "residual_std": s.residual_std})
    baseline = [pk for st in sorted(keep) for pk in sta_lta_picks(st)]
    for tol in TOLERANCES_S:
        rows.append(row(STALTA.name, s := score(baseline, truth, "P", tol)))
        figures.append({"method": "sta_lta", "phase": "P", "tolerance": tol, "f1": s.f1, "precision": s.precision,
                        "recall": s.recall, "residual_mean": s.residual_mean, "residual_std": s.residual_std})
    print(C.table(["method", "phase", "tol s", "matched", "picks", "precision", "recall", "F1",
                   "residual mean ms", "std ms"], rows))
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["val"]
    print(f"last epoch's validation windows: pick F1 P {last.get('pick_f1_P')}, S {last.get('pick_f1_S')}, "
          f"STA/LTA P {last['classical'].get('pick_f1_P')}; work folder {work}")
    if args.json:
        args.json.write_text(json.dumps({"machine": C.machine(), "rows": figures}, indent=2))


if __name__ == "__main__":
    main()
