"""Every command's ``--help`` reads whole at 80 columns (issue 18 §6).

The rule, over the whole command tree (walked from the click command typer builds, so a new
command or option is covered without a new test): no line is wider than the terminal, each
option's and argument's help appears in full (nothing cut or eaten as markup), each paragraph of a
command's docstring comes out as one paragraph (rewrapped, never broken mid-sentence), each
subcommand's line in its group's list is its docstring's whole first paragraph, and no pip extra
is lost (``pip install 'geocnn'`` alone).
"""

from __future__ import annotations

import inspect
import re

import pytest
import typer.main
from typer.testing import CliRunner

from geocnn.cli import app

WIDTH = 80


def _commands(command, path=()):
    """(path, click command) for the app and every command and group under it."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def _flat(text: str) -> str:
    """Whitespace-normalised; a word wrapped after its hyphen ("multi-\\n class") joined again, and
    click's keep-as-is paragraph mark (\\b) dropped."""
    return " ".join(re.sub(r"(?<=\w-)\n\s*", "", text.replace("\b", "")).split())


def _blocks(text: str) -> list[str]:
    """The text's paragraphs as written (blank-line separated)."""
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def _paragraphs(text: str) -> list[str]:
    return [_flat(p) for p in _blocks(text)]


def _filled(block: str) -> bool:
    """Every line but the last is full: the next line's first word would not have fitted on it
    (a hard line break kept from the docstring leaves a short line mid-sentence)."""
    lines = block.splitlines()
    return all(len(a) + 1 + len(b.split()[0]) > WIDTH - 2 for a, b in zip(lines, lines[1:]))


@pytest.fixture(scope="module")
def helps() -> dict[tuple[str, ...], str]:
    """The ``--help`` output of every command at 80 columns."""
    runner = CliRunner()
    out = {}
    for path, _ in COMMANDS:
        r = runner.invoke(app, [*path, "--help"], env={"COLUMNS": str(WIDTH)}, terminal_width=WIDTH)
        assert r.exit_code == 0, r.output
        out[path] = r.stdout
    return out


def test_the_walk_finds_every_command():
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"", "train", "predict", "inspect", "convert", "summarize", "schema", "export", "synth",
            "synth faults"} <= names


@pytest.mark.parametrize(("path", "command"),
                         [pytest.param(p, c, id=" ".join(("geocnn", *p))) for p, c in COMMANDS])
def test_help_reads_whole_at_80_columns(helps, path, command):
    text = helps[path]
    wide = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not wide, wide
    flat = _flat(text)
    for param in command.params:
        if getattr(param, "help", None):
            assert _flat(param.help) in flat, f"{param.name}'s help is cut or changed"
    shown = {_flat(block): block for block in _blocks(text)}
    for written in _blocks(inspect.cleandoc(command.help or "")):
        paragraph = _flat(written)
        assert paragraph in shown, f"docstring paragraph split or cut: {paragraph[:60]}..."
        assert written.startswith("\b") or _filled(shown[paragraph]), shown[paragraph]
    for name, sub in getattr(command, "commands", {}).items():
        first = _paragraphs(inspect.cleandoc(sub.help or ""))[0]
        assert _flat(f"{name} {first}") in flat, f"{name}'s line in the command list is cut"
    assert not re.search(r"geocnn'\)|'geocnn'|geocnn\\\[", flat), "a pip extra was lost or shows its escape"


def test_the_examples_of_the_issue(helps):
    """predict --stride was cut at '(inline=2,crossline=4…'; train's second paragraph broke after
    'one line per'; range metavars left the help column ~22 columns wide."""
    predict = _flat(helps[("predict",)])
    assert "or by name (inline=2,crossline=4); the map's spacing is stride × the input's." in predict
    train = helps[("train",)]
    assert "(one line per\n" not in train  # the docstring's hard line break, kept, then rewrapped
    assert not _filled("  line per\n  epoch), loss.png")  # what _filled refuses
    assert "range" not in train and "--epochs <n>" in train
    # the help column starts where the longest option name ends, not after a range metavar
    start = {line.index("Override train.epochs") for line in train.splitlines() if "Override train.epochs" in line}
    assert start == {len("  --reset-optimizer  ")}
    assert "pip install 'geocnn[tensorboard]'" in _flat(train)
