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
``...`` matching any text; any other Python block runs as a script. Pages run two at a time
(each in its own folder), as their commands use one thread each. ``docs/python.md``'s Python
blocks are left to ``tests/test_python_docs.py`` (one place runs them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from geocnn.model import parse_model
from geocnn.yamlsource import loads

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "index.md")]  # index.md: README, rendered
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


DOCTEST = """
import doctest, sys
text = sys.stdin.read()
test = doctest.DocTestParser().get_doctest(text, {}, sys.argv[1], sys.argv[1], int(sys.argv[2]))
sys.exit(doctest.DocTestRunner(optionflags=doctest.ELLIPSIS).run(test).failed > 0)
"""


def execute(block: Block, cwd: Path, env: dict[str, str]) -> str | None:
    """Run ``block`` in ``cwd``; None when it succeeds, else what went wrong (its output's tail)."""
    stdin = None
    if block.info == "bash":
        argv = ["bash", "-euo", "pipefail", "-c", shorten(block.body)]
    elif block.body.lstrip().startswith(">>>"):
        argv, stdin = [sys.executable, "-c", DOCTEST, block.where, str(block.line)], block.body
    else:
        argv = [sys.executable, "-c", block.body]
    done = subprocess.run(argv, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=600)
    if done.returncode == 0:
        return None
    return (f"{block.where} ({block.info}) exited {done.returncode}\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")


def run_page(page: Path, samples: Path, folder: Path) -> str | None:
    """The runnable blocks of ``page`` in page order, in ``folder`` (copies of configs/ and data_samples/)."""
    folder.mkdir()
    shutil.copytree(ROOT / "configs", folder / "configs")
    (folder / "data_samples").symlink_to(samples)
    env = {**os.environ, "COLUMNS": "120", "GEOCNN_CACHE": str(folder / "cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    for block in runnable(page):
        failure = execute(block, folder, env)
        if failure:
            return failure
    return None


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


MODEL_YAML = re.compile(r"^```yaml\n(?P<yaml>model:.*?)^```", re.S | re.M)


def test_model_declarations_in_the_pages_parse():
    """Each YAML block that is a model declaration (``model:`` first) is one geocnn accepts.

    docs/terms.md's worked examples are also built and checked against their claims in test_docs.py.
    """
    found = 0
    for page in PAGES:
        for m in MODEL_YAML.finditer(page.read_text(encoding="utf-8")):
            data, src = loads(m["yaml"], page.name)
            parse_model(data["model"], src)
            found += 1
    assert found >= 18  # README's taste, docs/models.md's U-Net, docs/terms.md's examples


# ------------------------------------------------------------------ the pages' examples run (slow)


RUN_PAGES = [p for p in PAGES if runnable(p)]


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory) -> dict[str, str | None]:
    """Each selected page's outcome, the pages run two at a time (their commands use one thread each).

    One copy of data_samples/ serves every page (a page may regenerate it: make_samples.py).
    """
    base = tmp_path_factory.mktemp("docs-examples")
    samples = base / "data_samples"
    shutil.copytree(ROOT / "data_samples", samples)
    chosen = [item.callspec.params["page"] for item in request.session.items
              if item.originalname == "test_page_examples_run"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {page.name: pool.submit(run_page, page, samples, base / page.stem) for page in chosen}
    return {name: future.result() for name, future in futures.items()}


@pytest.mark.slow  # a few minutes in all: training runs (shortened) and predictions on the sample data
@pytest.mark.parametrize("page", RUN_PAGES, ids=[p.name for p in RUN_PAGES])
def test_page_examples_run(page, outcomes):
    failure = outcomes[page.name]
    assert failure is None, failure
