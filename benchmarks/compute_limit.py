"""What this machine's CPU does on the benchmark models alone: conv GFLOP/s, no data, no I/O.

Three measurements, each in a child process per regime: ``default`` and ``tuned`` (see
``_common.REGIMES``), and each half of ``tuned`` alone (the allocator variables; channels_last):

- ``train 2D``: one optimizer step (forward, backward, Adam) of the 2D denoiser of
  ``train_throughput`` on a fixed random batch (32 × 1 × 64 × 64) → patches/s;
- ``forward 2D``: the same model's forward pass without gradients;
- ``predict 3D``: forward of the 3-layer 8-channel 3D CNN of ``predict_throughput`` on a batch of
  four 64³ windows → window voxels/s, and the volume voxels/s that gives on a 256³ volume tiled
  with overlap 0.25 (125 windows of 64³ for 16.8 M voxels: each voxel is computed 1.95 times).

The two forward passes also run on ONNX Runtime's CPU provider (regime ``onnxruntime``: the
plain model traced to ONNX by :mod:`geocnn.graph`, as ``geocnn predict --engine onnxruntime`` does,
threads as torch's), in a child of its own.

Train and predict throughputs are reported as a fraction of these rates ("of model alone"), and
every GFLOP/s as a share of the CPU's fp32 peak (``_common.fp32_peak``: cores × FMA units × vector
lanes × 2 × clock, read from the machine; the formula and its assumptions are printed).
FLOPs: 2 per multiply-add; a training step counts 3 forward passes (forward, gradient of the
input, gradient of the weights). Run ``python benchmarks/compute_limit.py --help`` for the flags.
"""

from __future__ import annotations

import time

import _common as C

OVERLAP_FACTOR = 125 * 64**3 / 256**3  # windows × window voxels / volume voxels at overlap 0.25


def measure(kind: str, channels_last: bool, batch: int, size: int, seconds: float, engine: str = "torch") -> dict:
    """Time one workload in this process: steps per second after two warm-up steps."""
    import _models as M
    import torch

    torch.manual_seed(0)
    dims = 3 if kind == "predict3d" else 2
    model = M.net3d() if dims == 3 else M.Denoiser()
    shape = (batch, 1, *(size,) * dims)
    x = torch.randn(shape)
    fmt = torch.channels_last_3d if dims == 3 else torch.channels_last
    if channels_last:
        model = model.to(memory_format=fmt)
        x = x.contiguous(memory_format=fmt)
    if engine == "onnxruntime":
        step = onnxruntime_forward(model.eval(), x)
    else:
        step = _train_step(model, x) if kind == "train2d" else _forward(model, x)
    for _ in range(2):
        step()
    n, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds or n < 3:
        step()
        n += 1
    macs = M.conv_macs(model, shape[2:]) * batch
    flops = 2 * macs * (3 if kind == "train2d" else 1)
    return {"step_s": elapsed / n, "gflops": flops * n / elapsed / 1e9,
            "samples_per_s": batch * n / elapsed, "voxels_per_s": batch * size**dims * n / elapsed}


def _train_step(model, x):
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    y = x.clone()

    def step() -> None:
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        float(loss)

    return step


def _forward(model, x):
    import torch

    model.eval()

    def step() -> None:
        with torch.no_grad():
            model(x)

    return step


def onnxruntime_forward(model, x):
    """ONNX Runtime's CPU provider on ``model``'s graph (traced as geocnn's engine traces it), torch's threads."""
    import json
    import tempfile
    from pathlib import Path

    import onnxruntime

    from geocnn import graph
    from geocnn.predict.engines import session_options

    folder = Path(tempfile.mkdtemp(prefix="geocnn-bench-onnx-"))
    path = folder / "model.onnx"
    layout = ["batch", "channel", *("ilxt"[: x.dim() - 2])]
    graph.write_onnx(graph.trace_fixed(model, x[:2].contiguous()), path,
                     {"task": "benchmark", "layout": json.dumps(layout), "output": "raw"})
    # geocnn's own options (no spinning): spinning ORT threads would also slow the PyTorch runs timed
    # in turns with it in this process (the denoiser's PyTorch rates fell below geocnn's own)
    session = onnxruntime.InferenceSession(str(path), session_options(onnxruntime),
                                           providers=["CPUExecutionProvider"])
    feed = {graph.INPUT_NAME: x.contiguous().numpy()}

    def step() -> None:
        session.run(None, feed)

    return step


WORKLOADS = {  # name: (kind, batch, patch size)
    "train 2D": ("train2d", 32, 64),
    "forward 2D": ("forward2d", 32, 64),
    "predict 3D": ("predict3d", 4, 64),
}


def child(payload: dict) -> None:
    import torch

    out = {"threads": torch.get_num_threads()}
    engine = payload.get("engine", "torch")
    for name in payload["workloads"]:
        kind, batch, size = WORKLOADS[name]
        if engine == "onnxruntime" and kind == "train2d":
            continue  # ONNX Runtime runs the forward pass only
        size, batch = payload.get("size") or size, payload.get("batch") or batch
        out[name] = measure(kind, payload["channels_last"], batch, size, payload["seconds"], engine)
    C.report(out)


# regime: (allocator environment, channels_last, engine); the middle two split "tuned" into its parts
SETUPS = {"default": ("default", False, "torch"), "allocator only": ("tuned", False, "torch"),
          "channels_last only": ("default", True, "torch"), "tuned": ("tuned", True, "torch"),
          "onnxruntime": ("tuned", False, "onnxruntime")}


def limits(regime: str, seconds: float = 1.5, workloads=tuple(WORKLOADS), size: int | None = None,
           batch: int | None = None) -> dict:
    """Run the workloads in a child process of ``regime`` (a key of :data:`SETUPS`); their figures."""
    env, channels_last, engine = SETUPS[regime]
    payload = {"channels_last": channels_last, "seconds": seconds, "workloads": list(workloads), "size": size,
               "batch": batch, "engine": engine}
    return C.python_child("compute_limit", payload, env).data


def main() -> None:
    p = C.parser(__doc__, rounds=3)
    p.add_argument("--seconds", type=float, default=1.0, help="timed seconds per workload and child")
    p.add_argument("--size", type=int, default=None, help="patch size instead of 64 (smoke tests)")
    p.add_argument("--regimes", default=",".join(SETUPS), help="regimes to run, separated by commas")
    args = p.parse_args()
    C.header("compute limit: the benchmark models alone", args)
    peak = C.fp32_peak()
    print(peak.formula)
    series: dict[tuple[str, str], dict[str, C.Series]] = {}
    for _ in range(args.rounds):
        for regime in args.regimes.split(","):
            data = limits(regime, args.seconds, size=args.size)
            for name in WORKLOADS:
                if name not in data:
                    continue
                per = series.setdefault((name, regime), {k: C.Series() for k in ("gflops", "rate")})
                per["gflops"].add(data[name]["gflops"])
                rate = data[name]["voxels_per_s"] / 1e6 if name == "predict 3D" else data[name]["samples_per_s"]
                per["rate"].add(rate)
    rows = []
    for (name, regime), per in sorted(series.items(), key=lambda kv: list(WORKLOADS).index(kv[0][0])):
        unit = "Mvoxel/s (window)" if name == "predict 3D" else "patches/s"
        share = C.Series([g / peak.gflops for g in per["gflops"].values]) if peak.gflops else C.Series()
        rows.append([name, regime, per["gflops"].span("{:.1f}"), share.span("{:.1%}"),
                     f"{per['rate'].span('{:.1f}')} {unit}"])
    print(C.table(["workload", "regime", "GFLOP/s", f"of fp32 peak ({peak.gflops:.0f})", "rate"], rows))
    print("regimes: " + "; ".join(f"{k}: {C.REGIMES[k]}" for k in ("default", "tuned"))
          + "; allocator only / channels_last only: one half of tuned; onnxruntime: tuned allocator, ONNX "
          "Runtime's CPU provider on the traced graph (NCHW)")
    figures = {f"{n} | {r}": {k: s.values for k, s in v.items()} for (n, r), v in series.items()}
    figures["fp32_peak"] = {"gflops": peak.gflops, "formula": peak.formula}
    C.footer(headline(series, peak), args, figures)


def headline(series: dict[tuple[str, str], dict[str, C.Series]], peak: C.Peak) -> str:
    """Training and prediction in the tuned regime, and the fastest engine's forward pass."""
    parts = []
    if ("train 2D", "tuned") in series:
        t2 = series[("train 2D", "tuned")]
        parts.append(f"train 2D {t2['rate'].median:.0f} patches/s ({t2['gflops'].median:.0f} GFLOP/s)")
    for regime in ("tuned", "onnxruntime"):
        if ("predict 3D", regime) in series:
            p3 = series[("predict 3D", regime)]
            parts.append(f"predict 3D {regime} {p3['rate'].median / OVERLAP_FACTOR:.2f} Mvoxel/s of a 256³ volume "
                         f"at overlap 0.25 ({p3['gflops'].median:.0f} GFLOP/s, "
                         f"{p3['gflops'].median / peak.gflops:.0%} of the fp32 peak)" if peak.gflops else "")
    return "HEADLINE compute_limit: " + "; ".join(parts)


if __name__ == "__main__":
    C.entry(main, child)
