"""Prediction scaling: peak memory and time of ``geocnn predict`` on volumes of growing size.

The 3D model of ``predict_throughput`` (64³ windows, overlap 0.25, Gaussian blending, batch 4)
runs over ``.npy`` volumes that grow along the inline axis with a fixed crossline × sample
section, each prediction in its own child process (``geocnn.predict.predict``, no pictures).
Prediction keeps one slab of window height in its ring buffer, so its memory should stay flat
and its time grow linearly with the volume: the table shows, per size, seconds, Mvoxel/s,
peak RSS (the child's ``VmHWM``, which also counts pages of the memory-mapped input and output
files while they are mapped) and peak anonymous memory (``RssAnon``: the process's own arrays).

Sizes: ``--inlines`` (default 64 128 256 on a 128 × 256 section: 8-32 MiB, about a minute), or
``--gb 0.25 1 4`` for volumes of that many GB on disk on a 512 × 512 section (minutes).
"""

from __future__ import annotations

from pathlib import Path

import _common as C
import _models as M
import numpy as np
from predict_throughput import BATCH, BENCHES, OVERLAP, make_run


def child(payload: dict) -> None:
    from geocnn.predict import predict

    report = predict(payload["run"], [payload["volume"]], payload["out"], overlap=OVERLAP, blend="gaussian",
                     batch_size=BATCH, device_name="cpu", force=True, pictures=False)
    C.report({"seconds": report.seconds, "windows": report.windows, "buffer_bytes": report.buffer_bytes})


def write_volume(path: Path, shape: tuple[int, int, int]) -> None:
    """A seeded layered volume written slab by slab (never whole in memory)."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    step = max(1, (64 << 20) // (shape[1] * shape[2] * 4))
    for start in range(0, shape[0], step):
        n = min(step, shape[0] - start)
        out[start:start + n] = M.layered_volume((n, *shape[1:]), seed=start)
    out.flush()
    del out


def main() -> None:
    p = C.parser(__doc__, rounds=2)
    p.add_argument("--inlines", type=int, nargs="+", default=[64, 128, 256], help="inline counts of the volumes")
    p.add_argument("--section", type=int, nargs=2, default=(128, 256), help="crossline × sample section")
    p.add_argument("--gb", type=float, nargs="+", default=None,
                   help="volume sizes in GB on disk instead (section 512 × 512), e.g. 0.25 1 4")
    args = p.parse_args()
    section = (512, 512) if args.gb else tuple(args.section)
    per_inline = section[0] * section[1] * 4
    inlines = [max(64, round(g * 1e9 / per_inline)) for g in args.gb] if args.gb else args.inlines
    C.header(f"predict scaling: geocnn predict on growing volumes (section {section[0]} × {section[1]})", args)
    rows, seconds, figures = [], {}, {}
    with C.workdir(args, "scaling") as folder:
        run = make_run(folder, BENCHES["net3d"])
        for n in inlines:
            volume = folder / f"volume_{n}.npy"
            write_volume(volume, (n, *section))
            t, rss, anon = C.Series(), C.Series(), C.Series()
            buffer = windows = 0
            for _ in range(args.rounds):
                payload = {"run": str(run), "volume": str(volume), "out": str(folder / "out.npy")}
                res = C.python_child("predict_scaling", payload, "default")
                t.add(res.data["seconds"])
                rss.add(res.peak_rss / 2**20)
                anon.add(res.peak_anon / 2**20)
                buffer, windows = res.data["buffer_bytes"], res.data["windows"]
            volume.unlink()
            voxels = n * section[0] * section[1]
            seconds[n] = t.median / windows  # per window: the tiling's overlap varies with the size
            figures[n] = {"seconds": t.values, "windows": windows, "peak_rss_mib": rss.values,
                          "peak_anon_mib": anon.values}
            rows.append([f"{n} × {section[0]} × {section[1]}", f"{voxels * 4 / 2**20:.0f}", t.span("{:.2f}"),
                         f"{voxels / t.median / 1e6:.2f}", windows, f"{1e3 * seconds[n]:.1f}",
                         f"{seconds[n] / seconds[inlines[0]]:.2f}", rss.span(), anon.span(), C.mib(buffer)])
    print(C.table(["volume", "MiB", "seconds", "Mvoxel/s", "windows", "ms/window", "time / linear", "peak RSS MiB",
                   "peak anon MiB", "ring MiB"], rows))
    print("time / linear: seconds per window ÷ those of the smallest volume (1.00 = time linear in the windows, "
          "which grow as the volume; the last window of an axis overlaps more on some sizes)")
    first, last = figures[inlines[0]], figures[inlines[-1]]
    growth = np.median(last["peak_anon_mib"]) - np.median(first["peak_anon_mib"])
    rss_growth = np.median(last["peak_rss_mib"]) - np.median(first["peak_rss_mib"])
    linear = seconds[inlines[-1]] / seconds[inlines[0]]
    C.footer(f"HEADLINE predict_scaling: {inlines[-1] / inlines[0]:.0f}× the volume → peak anon {growth:+.0f} MiB, "
             f"peak RSS {rss_growth:+.0f} MiB, time {linear:.2f}× linear", args, figures)


if __name__ == "__main__":
    C.entry(main, child)
