"""docs/python.md runs: its Python blocks, in order, in one namespace, from a folder that holds the
repository's ``configs/`` and ``data_samples/`` (as its root does)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "python.md"


def _blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_page_has_the_walk_through():
    blocks = _blocks(PAGE.read_text(encoding="utf-8"))
    code = "\n".join(blocks)
    assert len(blocks) >= 5
    for step in ("geocnn.open(", ".to_xarray()", "geocnn.summarize(", "geocnn.train(", "geocnn.predict(", ".plot("):
        assert step in code, step


@pytest.mark.slow  # ~8 s: torch's import and a 4-step run on the sample SEG-Y
def test_the_walk_through_runs(tmp_path, monkeypatch):
    pytest.importorskip("xarray")
    pytest.importorskip("pandas")
    for name in ("configs", "data_samples"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, block in enumerate(_blocks(PAGE.read_text(encoding="utf-8"))):
        exec(compile(block, f"docs/python.md block {i + 1}", "exec"), namespace)  # the page's own code
    assert (tmp_path / "runs" / "notebook" / "checkpoints" / "last.pt").is_file()
    assert (tmp_path / "clean.sgy").stat().st_size == (ROOT / "data_samples" / "seismic_noisy.sgy").stat().st_size
    assert (tmp_path / "inline-1031.png").stat().st_size > 10_000
