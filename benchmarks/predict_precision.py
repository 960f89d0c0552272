"""Prediction in bf16 against fp32 on the CPU: how much faster, and what it changes in the task's own terms.

Each example config named (default: ``denoise2d``, ``facies2d``, ``faults3d``) is trained briefly
here (``--epochs``, ``--patches`` per epoch, seed 0, one process), then ``geocnn predict`` runs it
over its whole training input with ``--precision fp32`` and ``--precision bf16`` (the torch engine,
in turns, fresh child processes; ``faults3d`` on ``geocnn synth faults`` cubes made here). Reported:

- seconds of the prediction call (``Report.seconds``: every window, blending, writing), fp32 ÷ bf16;
- how far the outputs move: the largest and the RMS change, as a share of the fp32 output's scale
  (its largest magnitude), and for classes the share of samples whose label changes;
- the task's own figure against the config's target for both: SNR in dB (regression: a denoiser's
  output against the clean data), F1 of the positive class (binary) or pixel accuracy (classes).

bf16 is worth it where it is faster and the task figure does not move; a briefly trained network is
less sure of its classes than a fully trained one, so label changes here are an upper bound.
"""

from __future__ import annotations

import sys
from pathlib import Path

import _common as C
import numpy as np

DEFAULT = ("denoise2d", "facies2d", "faults3d")
PRECISIONS = ("fp32", "bf16")


def train_run(folder: Path, name: str, epochs: int, patches: int) -> tuple[Path, list[str], str | None]:
    """The example config ``name`` trained briefly in ``folder``: the run, its inputs and its target."""
    import yaml

    cfg = yaml.safe_load((C.ROOT / "configs" / f"{name}.yaml").read_text())
    data = cfg["data"]
    base = C.ROOT / "configs"
    if name.startswith("faults3d"):  # the synthetic cubes the config reads, made here (small)
        synth = folder / "synth"
        C.run_child([sys.executable, "-m", "geocnn", "synth", "faults", str(synth), "--cubes", "6", "--size", "64"],
                    C.child_env("default"))
        data["inputs"], data["target"] = [str(synth / "seismic.npy")], str(synth / "faults.npy")
    inputs = [str((base / p).resolve()) for p in data["inputs"]]
    target = data.get("target") or data.get("labels")
    target = str((base / target).resolve()) if target else None
    path = folder / f"{name}.yaml"
    data["inputs"] = inputs
    if target:
        data["target" if data.get("target") else "labels"] = target
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    run = folder / name
    C.run_child([sys.executable, "-m", "geocnn", "train", str(path), "--out", str(run), "--force",
                 "--epochs", str(epochs), "--set", f"data.sampling.patches_per_epoch={patches}",
                 "--set", "train.workers=0", "--set", "train.examples=0"], C.child_env("default"), cwd=folder,
                timeout=3600)
    return run, inputs, target


def predict_child(payload: dict) -> None:
    from geocnn.predict import predict

    report = predict(payload["run"], payload["inputs"], payload["out"], output=payload["output"], force=True,
                     pictures=False, engine="torch", precision=payload["precision"])
    C.report({"seconds": report.seconds, "windows": report.windows})


def read_target(path: str) -> np.ndarray:
    import geocnn

    grid = geocnn.open(path)
    return np.asarray(grid.read(tuple(slice(None) for _ in grid.shape)))[0]


def task_figure(pred: np.ndarray, target: np.ndarray, output: str) -> tuple[str, float]:
    """The task's own figure of ``pred`` against ``target`` (see the module's docstring)."""
    if output == "values":
        t, p = target.astype(np.float64), pred.reshape(target.shape).astype(np.float64)
        return "SNR dB", float(10 * np.log10(np.sum(t * t) / max(np.sum((p - t) ** 2), 1e-30)))
    probs = pred.reshape((-1, *target.shape))
    if probs.shape[0] == 1:  # binary: the positive class's probability
        hit, truth = probs[0] >= 0.5, target > 0
        tp = float(np.sum(hit & truth))
        return "F1", 2 * tp / max(float(np.sum(hit) + np.sum(truth)), 1.0)
    return "pixel accuracy", float(np.mean(np.argmax(probs, axis=0) == target))


def labels_of(pred: np.ndarray) -> np.ndarray:
    return pred[0] >= 0.5 if pred.shape[0] == 1 else np.argmax(pred, axis=0)


def main() -> None:
    p = C.parser(__doc__, rounds=3)
    p.add_argument("--configs", default=",".join(DEFAULT), help="example configs (names in configs/), commas")
    p.add_argument("--epochs", type=int, default=4, help="training epochs of each config")
    p.add_argument("--patches", type=int, default=256, help="patches per training epoch")
    args = p.parse_args()
    C.header("predict precision: bf16 against fp32 on the CPU", args)
    rows, figures = [], {}
    with C.workdir(args, "precision") as folder:
        for name in args.configs.split(","):
            run, inputs, target = train_run(folder, name, args.epochs, args.patches)
            from geocnn.predict.trained import load_trained

            output = "probabilities" if load_trained(run).cfg.task.classifies else "values"
            seconds = {k: C.Series() for k in PRECISIONS}
            for _ in range(args.rounds):
                for precision in PRECISIONS:
                    res = C.python_child("predict_precision", {
                        "run": str(run), "inputs": inputs, "out": str(folder / f"{name}-{precision}.npy"),
                        "output": output, "precision": precision}, "default")
                    seconds[precision].add(res.data["seconds"])
            fp32, bf16 = (np.load(folder / f"{name}-{k}.npy") for k in PRECISIONS)
            scale = float(np.max(np.abs(fp32))) or 1.0
            delta = np.abs(bf16.astype(np.float64) - fp32)
            changed = float(np.mean(labels_of(fp32) != labels_of(bf16))) if output != "values" else None
            row = [name, seconds["fp32"].span("{:.2f}"), seconds["bf16"].span("{:.2f}"),
                   C.ratios(seconds["fp32"], seconds["bf16"]).span("{:.2f}"),
                   f"{delta.max() / scale:.1e}", f"{np.sqrt(np.mean(delta ** 2)) / scale:.1e}",
                   "" if changed is None else f"{100 * changed:.3f} %"]
            if target is not None:
                truth = read_target(target)
                label, a = task_figure(fp32, truth, output)
                _, b = task_figure(bf16, truth, output)
                row.append(f"{label} {a:.4f} / {b:.4f}")
            rows.append(row)
            figures[name] = {"seconds": {k: v.values for k, v in seconds.items()}, "max_change": delta.max() / scale}
    print(C.table(["config", "fp32 s", "bf16 s", "fp32 ÷ bf16 time", "largest change", "RMS change",
                   "labels changed", "task figure fp32 / bf16"], rows))
    C.footer("HEADLINE predict_precision: " + "; ".join(f"{r[0]} bf16 {r[3]}× as fast, largest change {r[4]}"
                                                        for r in rows), args, figures)


if __name__ == "__main__":
    C.entry(main, predict_child)
