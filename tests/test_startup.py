"""The command line starts cheaply: the commands that only parse, describe or check — ``--help``,
``schema``, ``inspect``, ``summarize`` of a config or a run folder, shell completion — import
neither torch nor matplotlib (each runs in a fresh interpreter, which then lists what it loaded).

The records on that path hold names (a layer kind's builder, a task's accumulator and picture set);
the torch and matplotlib code behind the names is loaded by the commands that build, train, predict
or draw. The time is not asserted (the machine may be busy); the modules are.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from geocnn.config import load_config
from tests import trainkit
from tests.segyfactory import write_segy

# Runs the command line as `geocnn ARGS...` would, then prints the heavy modules it loaded.
_RUN = """
import sys
from geocnn.cli import main
sys.argv = ["geocnn", *sys.argv[1:]]
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code or 0
print("loaded:" + ",".join(m for m in ("torch", "matplotlib") if m in sys.modules))
sys.exit(code)
"""


def _geocnn(*args: object, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run the command; its result and the heavy modules it imported."""
    r = subprocess.run([sys.executable, "-c", _RUN, *map(str, args)], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "200", **env}, timeout=120)
    last = r.stdout.rstrip("\n").rsplit("\n", 1)[-1]
    assert last.startswith("loaded:"), r.stdout + r.stderr
    return r, [m for m in last.removeprefix("loaded:").split(",") if m]


def test_help_imports_neither_torch_nor_matplotlib():
    r, heavy = _geocnn("--help")
    assert r.returncode == 0 and "summarize" in r.stdout and "predict" in r.stdout
    assert heavy == []


@pytest.mark.parametrize("command", ["train", "predict", "export", "summarize", "inspect"])
def test_a_command_help_imports_neither(command):
    r, heavy = _geocnn(command, "--help")
    assert r.returncode == 0 and "Usage: geocnn " + command in r.stdout
    assert heavy == []


def test_schema_imports_neither():
    r, heavy = _geocnn("schema")
    assert r.returncode == 0 and '"$schema"' in r.stdout and '"conv"' in r.stdout
    assert heavy == []


def test_inspect_imports_neither(tmp_path):
    write_segy(tmp_path / "small.sgy")  # 5 inlines × 5 crosslines
    np.save(tmp_path / "cube.npy", np.zeros((3, 4, 10), np.float32))
    r, heavy = _geocnn("inspect", tmp_path / "small.sgy", tmp_path / "cube.npy")
    assert r.returncode == 0, r.stderr
    assert "small.sgy" in r.stdout and "cube.npy" in r.stdout
    assert heavy == []


def test_summarize_a_config_imports_neither(tmp_path):
    r, heavy = _geocnn("summarize", trainkit.regression_config(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "input 1 × 8 × 16" in r.stdout  # the training patch of the config
    assert heavy == []


def test_summarize_a_run_folder_reads_its_config_yaml_and_imports_neither(tmp_path):
    cfg = load_config(trainkit.regression_config(tmp_path))
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.raw, sort_keys=False))
    (run / "checkpoints" / "best.pt").write_bytes(b"not opened")  # summarize reads config.yaml only
    r, heavy = _geocnn("summarize", run)
    assert r.returncode == 0, r.stderr
    assert "input 1 × 8 × 16" in r.stdout
    assert heavy == []


def test_a_folder_without_config_yaml_is_not_a_run(tmp_path):
    r, heavy = _geocnn("summarize", tmp_path)
    assert r.returncode == 2 and "has no config.yaml, so it is not a run folder" in r.stderr
    assert heavy == []


def test_shell_completion_imports_neither():
    r, heavy = _geocnn(_GEOCNN_COMPLETE="complete_bash", COMP_WORDS="geocnn su", COMP_CWORD="1")
    assert r.stdout.split()[:-1] == ["summarize"]
    r, heavy = _geocnn(_GEOCNN_COMPLETE="complete_bash", COMP_WORDS="geocnn predict --bl", COMP_CWORD="2")
    assert r.stdout.split()[:-1] == ["--blend"]
    assert heavy == []



# ----------------------------------------------------------------------------- issue 18 §6: help

@pytest.mark.parametrize("args", [[], ["summarize"], ["synth", "faults"]])
def test_dash_h_is_help(cli, args):
    short, long = cli(*args, "-h"), cli(*args, "--help")
    assert short.exit_code == long.exit_code == 0
    assert short.stdout == long.stdout and "Usage: geocnn" in short.stdout


def test_extras_in_help_are_not_eaten_as_markup(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    text = " ".join(cli("train", "--help").stdout.replace("│", " ").split())
    assert "pip install 'geocnn[tensorboard]'" in text  # it said "pip install 'geocnn')"
