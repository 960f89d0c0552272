"""Training on the CPU: fp32 eager (today's step) against bf16 autocast and ``torch.compile`` (inductor).

For the 2D denoiser (``configs/denoise2d.yaml``'s model, mse, batches of 16 × 32 × 64) and the 3D
fault U-Net (``configs/faults3d.yaml``'s model, dice, batches of 2 × 24 × 24 × 32), built by geocnn
in its default channels_last layout, with geocnn's own losses and Adam at the configs' learning rates:

- every mode starts from the same weights (seeded) and sees the same batches in the same order
  (a seeded pool of synthetic layered sections/cubes: noisy → clean for the denoiser, reflector
  voxels as the "fault" class for the U-Net);
- the modes step in turns — fp32, bf16, compile, fp32, bf16, compile, ... — so time per step
  (median and range over the steps after the first ``--warmup``) and the learning curve come from
  one interleaved run, and a burst of load elsewhere on the machine falls on all of them;
- the learning curve: the fp32 loss on a held-out batch (fp32 eager forward of each mode's
  weights) every ``--every`` steps; the final figure is its mean over the last three evaluations,
  and the gap is each mode's final held-out loss relative to fp32's;
- ``compile``'s first step (inductor's compilation) is timed apart; a compilation error is
  recorded as the mode's result instead of a time. It runs on request (``--modes fp32,bf16,compile``):
  compiling took 2 to 5.5 minutes per network on 2 shared cores.

A fast path counts as one only where it is faster *and* learns the same: the verdict line says,
per CPU feature found in ``/proc/cpuinfo`` (``avx512_bf16``, ``amx_bf16``), whether a mode beat fp32
on time by more than the timing noise and stayed within ``--tolerance`` of fp32's final loss.
Run ``python benchmarks/cpu_training.py --help`` for the flags.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import _common as C
import numpy as np

MODES = ("fp32", "bf16", "compile")
DEFAULT_MODES = "fp32,bf16"  # compile: 2 to 5 minutes of inductor compilation per network on 2 shared cores


@dataclass(frozen=True)
class Net:
    """One network of the benchmark."""

    config: str
    batch: int
    patch: tuple[int, ...]
    lr: float


NETS = {"denoiser": Net("denoise2d.yaml", 16, (32, 64), 0.002),
        "unet": Net("faults3d.yaml", 2, (24, 24, 32), 0.003)}


def batches(name: str, net: Net, count: int, seed: int) -> list[tuple]:
    """``count`` seeded (input, target) batches: noisy → clean sections, or a cube → its reflector voxels."""
    import _models as M
    import torch

    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        if name == "denoiser":
            clean = np.stack([M.layered_volume((1, *net.patch), seed=seed + i * net.batch + b)[0]
                              for b in range(net.batch)])
            noisy = clean + 0.5 * rng.standard_normal(clean.shape).astype(np.float32)
            out.append((torch.from_numpy(noisy[:, None]), torch.from_numpy(clean[:, None])))
        else:
            cubes = np.stack([M.layered_volume(net.patch, seed=seed + i * net.batch + b) for b in range(net.batch)])
            cubes += 0.3 * rng.standard_normal(cubes.shape).astype(np.float32)
            labels = (cubes > 0.9).astype(np.int64)
            out.append((torch.from_numpy(cubes[:, None]), torch.from_numpy(labels)))
    return out


def network(net: Net, seed: int):
    """The config's model as geocnn builds it, seeded, channels_last."""
    import torch
    import yaml

    from geocnn import device
    from geocnn.model.network import build
    from geocnn.model.spec import parse_model
    from geocnn.yamlsource import Source

    spec = parse_model(yaml.safe_load((C.ROOT / "configs" / net.config).read_text())["model"], Source(net.config))
    torch.manual_seed(seed)
    model, _ = build(spec, net.patch)
    return model.to(memory_format=device.memory_format(spec.dims)), spec.dims


def loss_of(name: str):
    from geocnn.losses import ClassLoss, ValueLoss

    return ValueLoss("mse", 1.0, False) if name == "denoiser" else ClassLoss("dice", None, None, 2.0)


@dataclass
class Mode:
    """One way to train: its model copy, optimizer, step, times and held-out losses."""

    name: str
    model: object
    step: Callable
    times: list[float]
    curve: list[tuple[int, float]]
    first_s: float | None = None
    error: str | None = None


def make_mode(mode: str, model, lr: float, loss_fn, fmt) -> Mode:
    import torch

    own = copy.deepcopy(model)
    opt = torch.optim.Adam(own.parameters(), lr=lr)
    run = torch.compile(own) if mode == "compile" else own
    cast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if mode == "bf16" else contextlib.nullcontext

    def step(x, y) -> float:
        with cast():
            loss = loss_fn(run(x.contiguous(memory_format=fmt)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return Mode(mode, own, step, [], [])


def held_out(model, loss_fn, batch, fmt) -> float:
    """The fp32 eager loss of ``model``'s weights on the held-out batch (train-mode norms, as in a step)."""
    import torch

    with torch.no_grad():
        return float(loss_fn(model(batch[0].contiguous(memory_format=fmt)), batch[1]))


def measure(name: str, args) -> dict:
    """Train every mode in turns for ``args.steps`` steps; times, curves, compile's first step."""
    import torch

    from geocnn import device

    torch.set_num_threads(args.threads)
    net = NETS[name]
    model, dims = network(net, args.seed)
    fmt = device.memory_format(dims)
    pool = batches(name, net, args.pool + 1, args.seed)
    train, check = pool[:-1], pool[-1]
    loss_fn = loss_of(name)
    modes = [make_mode(m, model, net.lr, loss_fn, fmt) for m in args.modes.split(",")]
    for k in range(args.steps):
        x, y = train[k % len(train)]
        for m in modes:
            if m.error:
                continue
            t0 = time.perf_counter()
            try:
                m.step(x, y)
            except Exception as exc:  # noqa: BLE001  inductor's failures come in many types
                m.error = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"
                continue
            dt = time.perf_counter() - t0
            if k == 0:
                m.first_s = dt
            elif k >= args.warmup:
                m.times.append(dt)
            if (k + 1) % args.every == 0 or k + 1 == args.steps:
                m.curve.append((k + 1, held_out(m.model, loss_fn, check, fmt)))
    return {m.name: {"times": m.times, "curve": m.curve, "first_s": m.first_s, "error": m.error} for m in modes}


def final(curve: list[tuple[int, float]]) -> float:
    return statistics.fmean(v for _, v in curve[-3:])


def report(name: str, res: dict, tolerance: float) -> list[str]:
    """The table of one network and its verdict lines."""
    base = res["fp32"]
    t_base, l_base = statistics.median(base["times"]), final(base["curve"])
    rows, verdicts = [], []
    for mode, r in res.items():
        if r["error"]:
            rows.append([f"{name} {mode}", "failed", "", "", "", r["error"]])
            verdicts.append(f"{name} {mode}: not a fast path here ({r['error']})")
            continue
        t = C.Series(r["times"])
        ratios = [tb / tm for tb, tm in zip(base["times"], r["times"])]  # step by step, interleaved
        speed = C.Series(ratios)
        gap = final(r["curve"]) / l_base - 1
        curve = " ".join(f"{v:.4f}" for _, v in r["curve"])
        rows.append([f"{name} {mode}", f"{1000 * t.median:.0f} ({1000 * min(t.values):.0f}–{1000 * max(t.values):.0f})",
                     speed.span("{:.2f}"), f"{final(r['curve']):.4f}", f"{gap:+.1%}",
                     f"first step {r['first_s']:.1f} s; held-out: {curve}"])
        if mode != "fp32":
            q1, q3 = np.percentile(ratios, [25, 75])
            faster = q1 > 1.0  # three quarters of the interleaved steps faster than fp32's
            same = abs(gap) <= tolerance
            verdicts.append(f"{name} {mode}: {speed.median:.2f}× fp32's speed (interquartile {q1:.2f}–{q3:.2f}), "
                            f"final loss {gap:+.1%} of fp32's → "
                            + ("a fast path" if faster and same else
                               "not a fast path (" + ", ".join(w for w, bad in (("not faster", not faster),
                                                                              ("learns differently", not same)) if bad)
                               + ")"))
    del t_base
    return [C.table(["net mode", "ms/step median (range)", "fp32 time / mode", "final held-out loss",
                     "gap to fp32", "curve"], rows), *verdicts]


def cpu_features() -> str:
    flags = set(C._cpuinfo().get("flags", "").split())
    found = [f for f in ("avx512_bf16", "amx_bf16", "amx_tile", "avx512f") if f in flags]
    return ", ".join(found) or "none of avx512_bf16, amx_bf16, avx512f"


def main() -> None:
    p = C.parser(__doc__, rounds=1)
    p.add_argument("--nets", default=",".join(NETS), help="networks, separated by commas")
    p.add_argument("--modes", default=DEFAULT_MODES, help=f"of {', '.join(MODES)}, separated by commas, fp32 first "
                   "(compile is left out by default: its first step compiles for minutes)")
    p.add_argument("--steps", type=int, default=200, help="optimizer steps per mode")
    p.add_argument("--warmup", type=int, default=5, help="steps left out of the timing")
    p.add_argument("--every", type=int, default=20, help="steps between held-out evaluations")
    p.add_argument("--pool", type=int, default=16, help="distinct training batches, cycled")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: the least disturbed by other load)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tolerance", type=float, default=0.05, help="largest final-loss gap that learns the same")
    args = p.parse_args()
    C.header(f"CPU training: {args.modes} on {args.nets}, {args.steps} steps, seed {args.seed}, "
             f"{args.threads} thread(s)", args)
    print(f"CPU features: {cpu_features()}")
    figures, lines = {}, []
    for name in args.nets.split(","):
        t0 = time.perf_counter()
        res = measure(name, args)
        figures[name] = res
        lines += report(name, res, args.tolerance)
        lines.append(f"({name}: {time.perf_counter() - t0:.0f} s)")
    print("\n".join(lines))
    verdicts = [ln for ln in lines if "fast path" in ln]
    C.footer("HEADLINE cpu_training: " + "; ".join(verdicts), args, figures)


if __name__ == "__main__":
    main()
