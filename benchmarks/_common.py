"""What every benchmark script shares: child processes with a known allocator regime, peak memory,
medians of interleaved rounds, the machine in words, and the printed table.

Each side of a comparison runs in its own child process, because glibc's allocator settings are
fixed at process start (``MALLOC_*`` variables) or by the first ``mallopt`` call (geocnn does that
in :func:`geocnn.device.setup`): measuring both sides in one process would give one side the
other's regime. Children print one JSON line (the last line of their stdout) with their figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Same effect as geocnn.device.tune_allocator (mallopt at start-up), set from outside the process.
TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(2 << 30)}
REGIMES = {
    "default": "glibc defaults (no MALLOC_* variables), contiguous NCHW layout",
    "tuned": "MALLOC_MMAP_THRESHOLD_=1 GiB, MALLOC_TRIM_THRESHOLD_=2 GiB in the environment, channels_last",
    "geocnn": "as shipped: mallopt(1 GiB mmap, 2 GiB trim) at start-up, channels_last (train.channels_last: auto)",
}


# ----------------------------------------------------------------------------- command line

def parser(doc: str | None, rounds: int) -> argparse.ArgumentParser:
    """The flags every script takes: rounds, where to work, keep the files."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=rounds, help="interleaved rounds (median reported)")
    p.add_argument("--tmp", type=Path, default=None, help="folder for the generated inputs (default: system temp)")
    p.add_argument("--keep", action="store_true", help="keep the generated files")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    return p


@contextlib.contextmanager
def workdir(args: argparse.Namespace, name: str) -> Iterator[Path]:
    """A fresh temporary folder for deterministic inputs, removed afterwards (unless --keep)."""
    folder = Path(tempfile.mkdtemp(prefix=f"geocnn-bench-{name}-", dir=args.tmp))
    try:
        yield folder
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------------- child processes

def child_env(regime: str, **extra: str) -> dict[str, str]:
    """The environment of a child: no inherited allocator or thread settings, plus the regime's."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k not in ("GEOCNN_MALLOC", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    # An outer PYTHONPATH comes first: PYTHONPATH=/old/checkout/src measures another version of geocnn.
    paths = [env.get("PYTHONPATH", ""), str(ROOT / "src"), str(ROOT / "benchmarks")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    if regime == "tuned":
        env.update(TUNED_MALLOC)
    env.update(extra)
    return env


@dataclass
class ChildResult:
    """What one child reported, with its wall time and memory high-water marks (bytes)."""

    data: dict
    wall_s: float
    peak_rss: int  # VmHWM: resident anonymous + file-backed pages, at their peak
    peak_anon: int  # highest RssAnon seen while polling /proc (private memory only)
    stdout: str = ""


def status(pid: int | str = "self") -> dict[str, int]:
    """The ``kB`` fields of ``/proc/<pid>/status`` (VmHWM, RssAnon...) in bytes; empty when unknown."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                if rest.endswith("kB\n"):
                    out[name] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return out


def _poll(pid: int, stop: threading.Event, peak: dict[str, int]) -> None:
    """Track the child's VmHWM and RssAnon, 20 times a second (more often costs the 2-core
    machine a measurable share of a core, taken from the child being measured)."""
    while not stop.is_set():
        now = status(pid)
        for name in peak:
            peak[name] = max(peak[name], now.get(name, 0))
        stop.wait(0.05)


def run_child(cmd: Sequence[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 900,
              answers: bool = False) -> ChildResult:
    """Run ``cmd`` (when it ``answers``, its last stdout line is JSON); raises with its stderr on failure.

    Peak RSS is the child's own VmHWM (reported by the child itself when it answers, else the last
    value polled), never ``ru_maxrss`` from ``wait4``: a child started with vfork + exec inherits
    its parent's high-water mark there (a parent that had written a 4 GB volume made every child
    look 4 GB big).
    """
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=out, stderr=err, text=True)
        stop, peak = threading.Event(), {"VmHWM": 0, "RssAnon": 0}
        poller = threading.Thread(target=_poll, args=(proc.pid, stop, peak), daemon=True)
        poller.start()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stop.set()
        poller.join()
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{stderr[-3000:]}")
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    data = json.loads(lines[-1]) if answers and lines else {}
    own = data.pop("_vmhwm", 0)
    return ChildResult(data, wall, own or peak["VmHWM"], peak["RssAnon"], stdout)


def python_child(module: str, payload: dict, regime: str, **env_extra: str) -> ChildResult:
    """Run ``python benchmarks/<module>.py --child JSON`` in the given regime."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / f"{module}.py"), "--child", json.dumps(payload)]
    return run_child(cmd, child_env(regime, **env_extra), answers=True)


def child_payload(argv: Sequence[str]) -> dict | None:
    """The JSON a parent passed with ``--child``, or None when run from the shell."""
    if len(argv) >= 2 and argv[1] == "--child":
        return json.loads(argv[2])
    return None


def entry(main: Callable[[], None], child: Callable[[dict], None]) -> None:
    """A script's start: the child side when a parent passed ``--child JSON``, else the benchmark."""
    payload = child_payload(sys.argv)
    if payload is not None:
        child(payload)
    else:
        main()


def report(data: dict) -> None:
    """A child's answer: one JSON line on stdout (with its own peak RSS), after anything else it printed."""
    sys.stdout.flush()
    print(json.dumps({**data, "_vmhwm": status().get("VmHWM", 0)}), flush=True)


# ----------------------------------------------------------------------------- statistics

@dataclass
class Series:
    """Values of one quantity over rounds."""

    values: list[float] = field(default_factory=list)

    def add(self, v: float) -> None:
        self.values.append(float(v))

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def span(self, fmt: str = "{:.0f}") -> str:
        """``median (min–max)`` as text."""
        if not self.values:
            return "n/a"
        m = fmt.format(self.median)
        if len(self.values) == 1:
            return m
        return f"{m} ({fmt.format(min(self.values))}–{fmt.format(max(self.values))})"


def ratios(a: Series, b: Series) -> Series:
    """Per-round ratios a/b (both sides measured in the same round, side by side)."""
    return Series([x / y for x, y in zip(a.values, b.values) if y])


# ----------------------------------------------------------------------------- the machine

def machine() -> str:
    """CPU model, cores this process may use, torch/NumPy versions, torch threads."""
    model = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import numpy
    import torch

    return (f"{model}, {cores} cores, {_ram_gib()} GiB RAM; Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"NumPy {numpy.__version__}")


@dataclass(frozen=True)
class Peak:
    """The CPU's fp32 peak, cores × FMA units × vector lanes × 2 FLOP per FMA × clock, with where each
    number came from (``formula``); ``gflops`` is 0 where the clock cannot be read."""

    cores: int
    fma_units: int
    lanes: int  # fp32 lanes of one FMA unit
    ghz: float
    formula: str

    @property
    def gflops(self) -> float:
        return self.cores * self.fma_units * self.lanes * 2 * self.ghz


def fp32_peak() -> Peak:
    """The fp32 peak of the cores this process may use, read from ``/proc/cpuinfo`` (flags, cpu MHz,
    family/model) and ``lscpu`` (max MHz where the kernel knows it).

    The number of FMA units per core and their width are not in ``/proc/cpuinfo``: they are assumed
    from the vendor's family and model and said so (AMD Zen 4, family 25 models 0x10–0x1f, 0x60–0x7f,
    0xa0–0xaf, has AVX-512 on two 256-bit FMA pipes: 2 units × 8 lanes; Zen 5, family 26: two 512-bit
    pipes; Intel with avx512f: two 512-bit FMA units (one on some Xeon Silver/Bronze parts); AVX2 with
    fma: two 256-bit units).
    """
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    bits = 512 if "avx512f" in flags else 256 if "avx2" in flags or "avx" in flags else 128
    vendor, family, model = info.get("vendor_id", "?"), int(info.get("cpu family", 0)), int(info.get("model", 0))
    units, pipe_bits, why = _fma_units(vendor, family, model, bits, "fma" in flags)
    mhz, clock_from = _clock_mhz(info)
    peak = Peak(cores, units, pipe_bits // 32, mhz / 1000, "")
    formula = (f"fp32 peak = {cores} cores × {units} FMA units × {pipe_bits // 32} lanes ({pipe_bits}-bit) × "
               f"2 FLOP/FMA × {mhz / 1000:.3f} GHz = {peak.gflops:.0f} GFLOP/s. Vector width: widest ISA in "
               f"/proc/cpuinfo flags {bits} bits; clock: {clock_from}; FMA units: {why}")
    return Peak(cores, units, pipe_bits // 32, mhz / 1000, formula)


def _cpuinfo() -> dict[str, str]:
    """The first processor's ``key: value`` lines of ``/proc/cpuinfo``."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            out[key.strip()] = value.strip()
    return out


def _fma_units(vendor: str, family: int, model: int, bits: int, fma: bool) -> tuple[int, int, str]:
    """(FMA units per core, bits per unit, the assumption in words): not readable from the machine."""
    where = f"not readable from /proc/cpuinfo or lscpu; assumed for {vendor} family {family} model {model}"
    if not fma:
        return 1, bits, f"{where}: no fma flag, one {bits}-bit multiply + add counted as one unit"
    zen4 = vendor == "AuthenticAMD" and family == 25 and (0x10 <= model <= 0x1F or 0x60 <= model <= 0x7F
                                                         or 0xA0 <= model <= 0xAF)
    if zen4:
        return 2, 256, f"{where} (Zen 4): two 256-bit FMA pipes, AVX-512 runs as two 256-bit halves"
    if vendor == "AuthenticAMD" and family >= 26:
        return 2, bits, f"{where} (Zen 5): two {bits}-bit FMA pipes"
    if vendor == "AuthenticAMD":
        return 2, min(bits, 256), f"{where} (Zen 1–3): two 256-bit FMA pipes at most"
    return 2, bits, f"{where}: two {bits}-bit FMA units (some Xeon Silver/Bronze parts have one: halve the peak)"


def _clock_mhz(info: dict[str, str]) -> tuple[float, str]:
    """The highest clock the machine states: lscpu's max MHz, else /proc/cpuinfo's cpu MHz."""
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError):
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in text.splitlines():
            if line.startswith("CPU max MHz:"):
                return float(line.split(":", 1)[1]), "lscpu 'CPU max MHz'"
    with contextlib.suppress(KeyError, ValueError):
        return float(info["cpu MHz"]), ("/proc/cpuinfo 'cpu MHz' (lscpu gives no max MHz: under a hypervisor "
                                        "this is the nominal clock, boost can run above it)")
    return 0.0, "unknown (no 'cpu MHz' in /proc/cpuinfo, no max MHz from lscpu)"


def _ram_gib() -> str:
    with contextlib.suppress(OSError, IndexError, ValueError):
        return f"{int(Path('/proc/meminfo').read_text().split()[1]) / 2**20:.0f}"
    return "?"


def load() -> str:
    """The 1/5/15-minute load averages, to read the figures against."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


# ----------------------------------------------------------------------------- output

def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table (first column left-aligned, the rest right-aligned)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def header(title: str, args: argparse.Namespace) -> None:
    print(f"# {title}")
    print(f"machine: {machine()}")
    print(f"before: {load()}; rounds: {args.rounds} (interleaved; median (min–max) shown)")


def footer(headline: str, args: argparse.Namespace, figures: dict) -> None:
    """The closing load average, the optional JSON file, and the one headline line."""
    print(f"after: {load()}")
    if args.json:
        args.json.write_text(json.dumps({**figures, "headline": headline, "machine": machine()}, indent=2))
    print(headline)


def mib(n: float) -> str:
    return f"{n / 2**20:.0f}"
