"""Shell completion and --threads: conventions of the command line itself."""

from __future__ import annotations

import os
import subprocess
import sys


def _geocnn(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geocnn", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_show_completion_prints_a_bash_script():
    result = _geocnn("--show-completion", "bash", SHELL="/bin/bash")
    assert result.returncode == 0, result.stderr
    # the script registers a completion function for the geocnn command, driven by _GEOCNN_COMPLETE
    assert "complete -o default -F _geocnn_completion geocnn" in result.stdout
    assert "_GEOCNN_COMPLETE=complete_bash" in result.stdout


def test_completion_lists_the_commands():
    result = _geocnn(_GEOCNN_COMPLETE="complete_bash", COMP_WORDS="geocnn ex", COMP_CWORD="1")
    assert result.stdout.split() == ["export"]
