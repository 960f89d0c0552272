"""The benchmark scripts keep working: each runs at a tiny size and prints its table and headline.

Timings are never asserted (they depend on the machine and its load); only that every script
runs to the end, prints a table and ends with its one ``HEADLINE`` line, and leaves no files.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # long end-to-end runs: python -m pytest -m slow

BENCH = ROOT / "benchmarks"

TINY = {
    "cpu_training": ["--steps", "4", "--warmup", "1", "--every", "2", "--pool", "2"],
    "compute_limit": ["--rounds", "1", "--seconds", "0.05", "--size", "16"],
    "train_throughput": ["--rounds", "1", "--epochs", "2", "--patches-per-epoch", "8", "--batch", "4",
                         "--patch", "16", "--shape", "8", "24", "24", "--no-limit"],
    "predict_throughput": ["--rounds", "1", "--size", "64", "--no-limit", "--engines", "torch,auto", "--bf16"],
    "predict_precision": ["--rounds", "1", "--configs", "denoise2d", "--epochs", "1", "--patches", "16"],
    "predict_scaling": ["--rounds", "1", "--inlines", "64", "--section", "64", "64"],
    "patch_io": ["--rounds", "1", "--shape", "64", "64", "96", "--patches", "3", "--segyio-patches", "1"],
    "field_reconstruct": ["--quick"],
    "field_faults": ["--seeds", "0", "--cubes", "2", "--size", "32", "--pretrain-epochs", "1", "--pretrain-patches", "8",
                     "--finetune-epochs", "1"],
    "field_denoise": ["--cubes", "samples", "--epochs", "1", "--patches", "16"],
}


@pytest.mark.parametrize("script", sorted(TINY))
def test_benchmark_runs_at_a_tiny_size(tmp_path, script):
    cmd = [sys.executable, str(BENCH / f"{script}.py"), "--tmp", str(tmp_path), *TINY[script]]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith(f"HEADLINE {script}: "), done.stdout[-2000:]
    assert any(line.startswith("machine: ") for line in lines)
    assert any(set(line) <= {"-", " "} and "--" in line for line in lines), "no table printed"
    assert list(tmp_path.iterdir()) == [], "the script left files behind"


def test_gpu_check_dry_run_on_the_cpu(tmp_path):
    import json

    cmd = [sys.executable, str(BENCH / "gpu_check.py"), "--device", "cpu", "--quick", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    failed = {k: v.get("error") for k, v in report.items() if isinstance(v, dict) and v.get("ok") is False}
    assert not failed, failed
    targets = report["targets"]
    assert sorted(k for k in targets if k not in ("ok", "seconds")) == ["denoise2d", "faults3d", "predict_npy",
                                                                         "predict_sgy"]
    assert all(targets[k]["value"] > 0 and targets[k]["limit"] in (0.9, 0.5) for k in ("denoise2d", "predict_sgy"))
    assert report["gpu_decode_bits"]["differ"] == 0
    lines = [line for line in done.stdout.splitlines() if line.startswith("TARGET")]
    assert len(lines) == 5 and lines[-1].startswith("TARGETS on cpu: ")
    assert all(line.endswith(")") and ("PASS" in line or "FAIL" in line) for line in lines[:4])
    assert [p.name for p in tmp_path.iterdir()] == ["gpu_check.json"]
