"""The site's generated reference pages name everything the code has (geocnn.refdocs).

Each page is generated here without MkDocs and read back by a small checker that finds its
sections and table rows; every test also removes one known entry from the page and sees the same
checker miss it, so a checker that stopped matching cannot pass vacuously.
"""

from __future__ import annotations

import inspect
import re

import pytest
import yaml

import geocnn
from geocnn import errors, refdocs
from geocnn.grids.formats import FORMATS
from geocnn.model.layers import COMPOSITE, KINDS
from geocnn.model.spec import MODEL
from geocnn.outputs import OUTPUTS
from geocnn.tasks import TASKS
from tests.conftest import ROOT

ROW = re.compile(r"^\| (`[^|]+`(?:, `[^|]+`)*|\[`[^`]+`\]\([^)]*\)) \|", re.M)


def sections(page: str, level: str) -> dict[str, str]:
    """The page's sections at one heading level (``##``), by their heading's backticked text."""
    parts = re.split(rf"^{level} (.+)$", page, flags=re.M)
    return {head.strip().strip("`"): body for head, body in zip(parts[1::2], parts[2::2])}


def row_names(text: str) -> set[str]:
    """The backticked names in the first cell of each table row (``| `--out`, `-o` |`` gives both)."""
    return {n for cell in ROW.findall(text) for n in re.findall(r"`([^`]+)`", cell)}


def without_row(page: str, first_cell: str) -> str:
    """The page with the table row that starts with ``first_cell`` removed."""
    out = re.sub(rf"^\| {re.escape(first_cell)} \|.*\n", "", page, count=1, flags=re.M)
    assert out != page, f"no row {first_cell}"
    return out


# ------------------------------------------------------------------ layers

def missing_layers(page: str) -> list[str]:
    """Layer kinds, or ``kind.argument``s, the page does not describe."""
    found = sections(page, "###")
    missing = [k for k in (*KINDS, *COMPOSITE) if k not in found]
    for name, kind in KINDS.items():
        missing += [f"{name}.{f.name}" for f in kind.args.fields if name in found and f.name not in row_names(found[name])]
    model = sections(page, "##").get("The `model:` section", "")
    return missing + [f"model.{f.name}" for f in MODEL.fields if f.name not in row_names(model)]


@pytest.fixture(scope="module")
def layers():
    return refdocs.layers_page()


def test_layers_page_describes_every_kind_and_argument(layers):
    assert missing_layers(layers) == []
    assert len(KINDS) >= 20 and {"conv", "pool", "concat", "posterior", "softmax"} <= set(sections(layers, "###"))


def test_layers_checker_sees_a_kind_or_an_argument_go(layers):
    gone = layers.replace("### `conv_transpose`", "### `conv_transposed`")
    assert missing_layers(gone) == ["conv_transpose"]
    conv = sections(layers, "###")["conv"]
    assert missing_layers(layers.replace(conv, without_row(conv, "`dilation`"))) == ["conv.dilation"]


def test_layers_page_gives_the_formula_and_counted_parameters(layers):
    assert "N_y = floor((N_x + 2·pad − N_h)/stride + 1)" in layers
    # 3 channels in, 8 filters of 3×3: 3·3·3·8 weights + 8 biases (the lecture's count)
    assert "`3·3·3·8 + 8 = 224`" in layers and 3 * 3 * 3 * 8 + 8 == 224
    assert "`768·10 + 10 = 7,690`" in layers and 3 * 16 * 16 * 10 + 10 == 7690


# ------------------------------------------------------------------ config

def missing_keys(page: str) -> list[str]:
    """Dotted config keys without a row in their section's table."""
    found = sections(page, "##")
    missing = []
    for key in refdocs.config_keys():
        parent, _, name = key.rpartition(".")
        if name not in row_names(found.get(parent or "top level", "")):
            missing.append(key)
    return missing


def test_config_page_lists_every_key():
    page = refdocs.config_page()
    keys = list(refdocs.config_keys())
    assert {"task", "data.split", "train.loss.kind", "train.early_stop.patience"} <= set(keys) and len(keys) > 80
    assert missing_keys(page) == []
    split = sections(page, "##")["data.split"]
    assert missing_keys(page.replace(split, without_row(split, "`fraction`"))) == ["data.split.fraction"]


# ------------------------------------------------------------------ tasks, outputs, formats

@pytest.mark.parametrize("make,names,known", [
    (refdocs.tasks_page, TASKS, "`denoise_self`"),
    (refdocs.outputs_page, OUTPUTS, "`probabilities`"),
    (refdocs.formats_page, FORMATS, "`netcdf`"),
], ids=["tasks", "outputs", "formats"])
def test_registry_page_has_a_row_per_record(make, names, known):
    page = make()
    assert set(names) <= row_names(page)
    assert known.strip("`") not in row_names(without_row(page, known))


def test_formats_page_lists_every_suffix():
    page = refdocs.formats_page()
    for fmt in FORMATS.values():
        row = next(line for line in page.splitlines() if line.startswith(f"| `{fmt.name}` |"))
        assert all(f"`{s}`" in row for s in fmt.suffixes), row


# ------------------------------------------------------------------ command line

def missing_cli(page: str) -> list[str]:
    """Commands without a section, or ``command option``s without a row with their help and default."""
    found = sections(page, "##")
    missing = []
    for cmd in refdocs.cli_commands():
        if cmd.path not in found:
            missing.append(cmd.path)
            continue
        rows = {line for line in found[cmd.path].splitlines() if line.startswith("| `")}
        for o in cmd.options:
            row = next((r for r in rows if re.findall(r"`([^`]+)`", r.split(" | ")[0]) == list(o.names)), "")
            if not row or o.help[:40].replace("|", "\\|") not in row or (o.default and o.default not in row):
                missing.append(f"{cmd.path} {o.names[0]}")
    return missing


@pytest.fixture(scope="module")
def cli_page():
    return refdocs.cli_page()


def test_cli_page_has_every_command_and_option(cli_page):
    commands = {c.path: c for c in refdocs.cli_commands()}
    assert {"geocnn train", "geocnn predict", "geocnn synth faults", "geocnn schema"} <= set(commands)
    predict = {n for o in commands["geocnn predict"].options for n in o.names}
    assert {"RUN", "INPUTS", "--out", "-o", "--overlap", "--force"} <= predict
    overlap = next(o for o in commands["geocnn predict"].options if o.names == ("--overlap",))
    assert overlap.default == "0.25" and overlap.help.startswith("Share of each window")
    assert missing_cli(cli_page) == []
    # click's \b paragraph (lines kept as written) stays a block of its own, not run into the prose
    assert "config:\n\n```text\n# yaml-language-server: $schema=geocnn-schema.json\n```" in commands["geocnn schema"].help


def test_cli_checker_sees_an_option_go(cli_page):
    predict = sections(cli_page, "##")["geocnn predict"]
    assert missing_cli(cli_page.replace(predict, without_row(predict, "`--overlap`"))) == ["geocnn predict --overlap"]
    assert "geocnn synth faults" in missing_cli(cli_page.replace("## `geocnn synth faults`", "## `faults`"))


# ------------------------------------------------------------------ API, errors, home page

def test_api_page_documents_every_public_name():
    page = refdocs.api_page()
    documented = set(re.findall(r"^::: (\S+)$", page, re.M))
    assert documented == set(refdocs.API_MODULES)
    homes = {geocnn._PUBLIC[name] for name in geocnn.__all__ if name != "__version__"}
    assert homes <= documented


def test_every_error_family_is_raised_for_its_page():
    kinds = {c for _, c in inspect.getmembers(errors, inspect.isclass)
             if issubclass(c, errors.GeocnnError) and c is not errors.GeocnnError}
    assert {f.kind for f in refdocs.FAMILIES} == kinds
    page = refdocs.errors_page()
    found = sections(page, "##")
    for family in refdocs.FAMILIES:
        exc = refdocs.raised(family)
        assert type(exc) is family.kind and exc.message
        assert f"error: {exc.message}\n" in found[family.kind.__name__]
    assert "facies.yaml:1:1: task: unknown value 'segmentaton'" in found["ConfigError"]
    assert "layer 2 'conv2' conv: height 4 < kernel 9" in found["ShapeError"]  # 12 − 9 + 1 = 4


def test_raised_refuses_a_trigger_that_raises_nothing():
    with pytest.raises(RuntimeError, match="raised nothing"):
        refdocs.raised(refdocs.Family(errors.DataError, lambda: None, "nothing", "none"))


def test_home_page_links_into_the_site():
    readme = ("See [terms](docs/terms.md#receptive-field), ![loss](docs/pictures/loss.png), "
              "[bench](benchmarks/README.md), [`configs/a.yaml`](configs/a.yaml) and [web](https://x.org/docs/a).")
    assert refdocs.index_page(readme) == (
        "See [terms](terms.md#receptive-field), ![loss](pictures/loss.png), "
        "bench (`benchmarks/README.md`), `configs/a.yaml` and [web](https://x.org/docs/a).")


def test_generated_pages_are_not_committed():
    for path in ["index.md", *refdocs.PAGES]:
        assert not (ROOT / "docs" / path).exists(), f"docs/{path} is generated at build time"


def nav_pages(nav: list) -> list[str]:
    """The page paths of an mkdocs.yml ``nav:``, in order."""
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_nav_lists_every_page_once_and_only_pages_that_exist():
    nav = nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"])
    written = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert len(nav) == len(set(nav)) and {"index.md", "reference/layers.md", "terms.md"} <= set(nav)
    assert set(nav) == written | {"index.md", *refdocs.PAGES}
