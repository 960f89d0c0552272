"""Pretraining that transfers: fault F1 on a survey the pretrained network never saw.

The pipeline of docs/finetune.md ("Pretrain, then fine-tune"), run end to end for each seed:

1. ``geocnn synth faults`` cubes (:func:`geocnn.synth.write.write_fault_cubes`, seed 0, shared by
   every seed);
2. pretrain ``configs/faults3d.yaml`` on them (train seed = the seed);
3. fine-tune ``configs/faults3d_finetune.yaml`` from that run on the survey's 16 labelled inlines,
   and train the same config from scratch (no ``init_from``, nothing frozen), same seed and budget —
   once as configured (dice loss) and once with balanced BCE, which learns faster from scratch
   than dice does, so the comparison does not rest on a loss that favours the pretrained side.

The survey is ``data_samples/seismic_noisy.sgy`` with ``data_samples/faults.npy`` (another
generator: ``data_samples/make_samples.py``; field-like noise). Every network is scored the same
way, on the fine-tune config's held-out inlines (``split.json``: inlines 1040-1063): ``geocnn
predict`` over the whole survey, probability > 0.5, F1/IoU/precision/recall of the fault voxels of
those inlines. The pretrained network is applied as it is — no step on the survey — with
``geocnn predict --normalize input`` (the survey normalised with its own statistics, as fine-tuning
normalises it), since it was trained on unit-scale synthetic amplitudes. Trivial baselines: all background (F1 0) and all fault.

Rows show the mean over seeds and (min–max). Targets (issue 16 §4): fine-tuned F1 ≥ from scratch
+ 0.05; the pretrained network as it is above all background (F1 0).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import _common as C
import numpy as np
import torch

from geocnn.config import load_config
from geocnn.predict import predict
from geocnn.synth.write import write_fault_cubes
from geocnn.train import train

METRICS = ("f1", "iou", "precision", "recall")


def scores(prob: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Fault-voxel F1, IoU, precision, recall of ``prob > 0.5`` against ``truth`` (precision of no
    positives: NaN, shown as –)."""
    pred, truth = prob > 0.5, truth.astype(bool)
    tp, fp, fn = int((pred & truth).sum()), int((pred & ~truth).sum()), int((~pred & truth).sum())
    return {"f1": 2 * tp / max(2 * tp + fp + fn, 1), "iou": tp / max(tp + fp + fn, 1),
            "precision": tp / (tp + fp) if tp + fp else float("nan"), "recall": tp / max(tp + fn, 1)}


def held_out(run: Path) -> slice:
    """The fine-tune run's validation block along its split axis (inline indices)."""
    lo, hi = json.loads((run / "split.json").read_text())["validation"]
    return slice(lo, hi)


def score_run(run: Path, cube: Path, labels: np.ndarray, block: slice, work: Path,
              normalize: str = "run") -> dict[str, float]:
    """Predict the whole survey with ``run`` and score the held-out block."""
    out = work / f"{run.name}.prob.npy"
    predict(run, [cube], out, output="probabilities", force=True, pictures=False, threads=1, normalize=normalize)
    return scores(np.load(out).reshape(labels.shape)[block], labels[block])


def trained(config: Path, out: Path, overrides: list[str]) -> tuple[Path, float]:
    """A training run and its wall time."""
    t0 = time.perf_counter()
    run = train(load_config(config, overrides), out, force=True)
    return run, time.perf_counter() - t0


def one_seed(seed: int, args, synth: Path, work: Path, labels: np.ndarray) -> dict:
    """Pretrain, fine-tune and train from scratch with one seed; score all three."""
    common = ["train.threads=1", f"train.seed={seed}"]
    budget = [f"data.sampling.patches_per_epoch={args.pretrain_patches}"] if args.pretrain_patches else []
    budget += [f"train.epochs={args.pretrain_epochs}"] if args.pretrain_epochs else []
    pre, pre_s = trained(C.ROOT / "configs/faults3d.yaml", work / f"pretrain{seed}", common + budget + [
        f"data.inputs=[{synth / 'seismic.npy'}]", f"data.target={synth / 'faults.npy'}"])
    field = ["train.threads=1", f"train.seed={seed}", f"data.inputs=[{args.cube}]", f"data.target={args.labels}"]
    if args.finetune_epochs:
        field.append(f"train.epochs={args.finetune_epochs}")
    fine, fine_s = trained(C.ROOT / "configs/faults3d_finetune.yaml", work / f"finetune{seed}",
                           field + [f"train.init_from={pre}"])
    scratch, scratch_s = trained(C.ROOT / "configs/faults3d_finetune.yaml", work / f"scratch{seed}",
                                 field + ["train.init_from=null", "train.freeze=[]"])
    bce, bce_s = trained(C.ROOT / "configs/faults3d_finetune.yaml", work / f"scratch_bce{seed}",
                         field + ["train.init_from=null", "train.freeze=[]", "train.loss=bce_balanced"])
    block = held_out(fine)
    as_is = score_run(pre, args.cube, labels, block, work, normalize="input")
    return {"seed": seed, "block": [block.start, block.stop],
            "pretrained": {**as_is, "seconds": pre_s},
            "finetuned": {**score_run(fine, args.cube, labels, block, work), "seconds": fine_s},
            "scratch": {**score_run(scratch, args.cube, labels, block, work), "seconds": scratch_s},
            "scratch_bce": {**score_run(bce, args.cube, labels, block, work), "seconds": bce_s}}


def cell(values: list[float], fmt: str = "{:.3f}") -> str:
    """``mean (min–max)`` of the finite values, ``–`` when none."""
    v = [x for x in values if x == x]
    if not v:
        return "–"
    m = fmt.format(statistics.fmean(v))
    return m if len(v) == 1 else f"{m} ({fmt.format(min(v))}–{fmt.format(max(v))})"


def main() -> None:
    p = C.parser(__doc__, rounds=1)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds (pretraining and field runs)")
    p.add_argument("--cubes", type=int, default=16, help="synthetic cubes for pretraining")
    p.add_argument("--size", type=int, default=128, help="synthetic cube edge, voxels")
    p.add_argument("--pretrain-epochs", type=int, default=0, help="pretraining epochs (0: the config's)")
    p.add_argument("--pretrain-patches", type=int, default=0, help="pretraining patches per epoch (0: the config's)")
    p.add_argument("--finetune-epochs", type=int, default=0, help="field runs' epochs (0: the config's)")
    p.add_argument("--cube", type=Path, default=C.ROOT / "data_samples/seismic_noisy.sgy", help="the survey")
    p.add_argument("--labels", type=Path, default=C.ROOT / "data_samples/faults.npy", help="its fault labels")
    args = p.parse_args()
    args.cube, args.labels = args.cube.resolve(), args.labels.resolve()
    torch.set_num_threads(1)
    print("# field_faults: synthetic pretraining → fine-tuning on 16 labelled inlines of another survey")
    print(f"machine: {C.machine()}")
    print(f"before: {C.load()}; survey {args.cube}; seeds {args.seeds}", flush=True)
    labels = np.load(args.labels)
    with C.workdir(args, "field-faults") as work:
        t0 = time.perf_counter()
        made = write_fault_cubes(work / "synth", args.cubes, args.size, seed=0)
        print(f"synthetic: {args.cubes} cubes of {args.size}³ in {made.seconds:.1f} s "
              f"({100 * made.fault_share:.1f}% fault voxels)", flush=True)
        runs = [one_seed(s, args, work / "synth", work, labels) for s in args.seeds]
        total = time.perf_counter() - t0
    block = runs[0]["block"]
    truth = labels[block[0]:block[1]].astype(bool)
    share = float(truth.mean())
    rows = [["all background (trivial)", "0", "0", "–", "0", "–"],
            ["all fault (trivial)", f"{2 * share / (1 + share):.3f}", f"{share:.3f}", f"{share:.3f}", "1", "–"]]
    names = {"pretrained": "pretrained on synthetic cubes, as it is", "finetuned": "pretrained, then fine-tuned",
             "scratch": "from scratch on the 16 inlines",
             "scratch_bce": "from scratch, balanced BCE instead of dice"}
    for key, name in names.items():
        rows.append([name, *(cell([r[key][m] for r in runs]) for m in METRICS),
                     cell([r[key]["seconds"] for r in runs], "{:.0f}")])
    print(f"held-out inline indices {block[0]}–{block[1] - 1} of {args.cube.name} ({100 * share:.1f}% fault voxels); "
          f"mean over seeds (min–max); {total / 60:.1f} min in all")
    print(C.table(["weights", "F1", "IoU", "precision", "recall", "training s"], rows))
    gain = statistics.fmean(r["finetuned"]["f1"] - r["scratch"]["f1"] for r in runs)
    as_is = statistics.fmean(r["pretrained"]["f1"] for r in runs)
    verdict = "PASS" if gain >= 0.05 and as_is > 0 else "FAIL"
    headline = (f"HEADLINE field_faults: fine-tuned F1 − from scratch = {gain:+.3f} (target ≥ +0.05), pretrained as it "
                f"is F1 {as_is:.3f} (all background 0): {verdict}")
    C.footer(headline, args, {"runs": runs, "fault_share": share, "seconds": total})


if __name__ == "__main__":
    sys.exit(main())
