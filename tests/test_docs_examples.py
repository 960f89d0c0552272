"""Every command and Python snippet of the pages runs, so the examples stay true.

A fenced block of ``README.md`` or ``docs/*.md`` (the generated ``docs/reference/`` aside) whose info
string is ``bash`` or ``python`` is executed, unless the line before its fence is
``<!-- not run: REASON -->`` with a reason; ``text``, ``yaml``, ``console`` and bare blocks never run.
A page's blocks run in page order, in one folder per page that holds copies of ``configs/`` and
``data_samples/`` (so a page may train, then predict, and the repository is never written).

To keep the test within a few minutes on 2 cores, every ``geocnn train`` command gets
:data:`SHORT_TRAINING` appended (one epoch of 32 patches, one thread, one row in
``examples.png``, whose drawing is most of a short run), and nothing else is changed.
A Python block written as a doctest (``>>>`` lines and their output) runs as a doctest with
``...`` matching any text; any other Python block runs as a script. ``docs/python.md``'s Python
blocks are left to ``tests/test_python_docs.py`` (one place runs them).
"""

from __future__ import annotations

import doctest
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_ELSEWHERE = {("python.md", "python")}  # tests/test_python_docs.py executes those
SHORT_TRAINING = ("--set train.epochs=1 --set data.sampling.patches_per_epoch=32 "
                  "--set data.sampling.val_patches=16 --set train.threads=1 --set train.examples=1")

FENCE = re.compile(r"^```(?P<info>[\w-]*)[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.S | re.M)
NOT_RUN = re.compile(r"<!-- not run: (?P<reason>[^>]*?) -->\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    info: str
    body: str
    not_run: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The bash and python blocks of ``page``, in page order, with their not-run reason if any."""
    text = page.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        if m["info"] not in ("bash", "python"):
            continue
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = NOT_RUN.search(before)
        found.append(Block(page, text.count("\n", 0, m.start()) + 1, m["info"], m["body"],
                           mark["reason"].strip() if mark else None))
    return found


def runnable(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.not_run is None and (page.name, b.info) not in RUN_ELSEWHERE]


def shorten(command: str) -> str:
    """Each ``geocnn train`` line with :data:`SHORT_TRAINING` appended before any trailing comment."""
    out = []
    for line in command.splitlines():
        m = re.match(r"^(\s*geocnn train \S.*?)(\s+#.*)?$", line)
        out.append(f"{m[1]} {SHORT_TRAINING}{m[2] or ''}" if m else line)
    return "\n".join(out)


def _doctest(block: Block, cwd: Path) -> None:
    test = doctest.DocTestParser().get_doctest(block.body, {}, block.where, str(block.page), block.line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = runner.run(test)
    finally:
        os.chdir(old)
    assert result.failed == 0, f"{block.where}: {result.failed} doctest example(s) failed (output above)"


def execute(block: Block, cwd: Path, env: dict[str, str]) -> None:
    if block.info == "python" and block.body.lstrip().startswith(">>>"):
        _doctest(block, cwd)
        return
    argv = (["bash", "-euo", "pipefail", "-c", shorten(block.body)] if block.info == "bash"
            else [sys.executable, "-c", block.body])
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (f"{block.where} ({block.info}) exited {done.returncode}\n"
                                  f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")


# ------------------------------------------------------------------ the convention holds (quick)


def test_every_block_is_run_or_says_why_not():
    every = [b for page in PAGES for b in blocks(page)]
    run = [b for page in PAGES for b in runnable(page)]
    for b in every:
        if b.not_run is not None:
            assert len(b.not_run) >= 10, f"{b.where}: 'not run' needs an honest reason, got {b.not_run!r}"
    assert len(run) >= 15, [b.where for b in run]  # a FENCE that stopped matching would pass vacuously
    assert any(b.page.name == "getting-started.md" for b in run)


def test_train_commands_are_shortened_and_nothing_else():
    script = "geocnn summarize c.yaml\ngeocnn train configs/x.yaml --threads 1   # note\n  geocnn train a.yaml"
    assert shorten(script).splitlines() == [
        "geocnn summarize c.yaml",
        f"geocnn train configs/x.yaml --threads 1 {SHORT_TRAINING}   # note",
        f"  geocnn train a.yaml {SHORT_TRAINING}",
    ]


# ------------------------------------------------------------------ the pages' examples run (slow)


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    """One copy of data_samples/ for every page (a page may regenerate it: make_samples.py)."""
    base = tmp_path_factory.mktemp("samples")
    shutil.copytree(ROOT / "data_samples", base / "data_samples")
    return base / "data_samples"


RUN_PAGES = [p for p in PAGES if runnable(p)]


@pytest.mark.slow  # about two minutes in all: training runs (shortened) and predictions on the sample data
@pytest.mark.parametrize("page", RUN_PAGES, ids=[p.name for p in RUN_PAGES])
def test_page_examples_run(page, samples, tmp_path):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    (tmp_path / "data_samples").symlink_to(samples)
    env = {**os.environ, "COLUMNS": "120", "GEOCNN_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    for block in runnable(page):
        execute(block, tmp_path, env)
