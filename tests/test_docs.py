"""The documentation stands alone and tells the truth.

Every worked example in ``docs/terms.md`` (a ``model:`` block with the line ``→ …`` under it) is
built with geocnn's analytic pass and a real module, and every ``expression = number`` written in
backticks there is evaluated; README.md and docs/*.md point at nothing outside the repository.
"""

from __future__ import annotations

import ast
import math
import re
import textwrap
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from geocnn.fmt import fmt_shape
from geocnn.model import parse_model
from geocnn.model.network import build
from geocnn.refdocs import PAGES as GENERATED
from geocnn.yamlsource import loads

ROOT = Path(__file__).resolve().parents[1]
TERMS = ROOT / "docs" / "terms.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# ------------------------------------------------------------------ worked examples of docs/terms.md

EXAMPLE = re.compile(r"```yaml\n(?P<yaml>model:.*?)```\n→ (?P<claim>[^\n]+)", re.S)


def examples() -> list[tuple[str, str]]:
    """(yaml, claim line) of every worked example, in page order."""
    return [(m["yaml"], m["claim"]) for m in EXAMPLE.finditer(TERMS.read_text(encoding="utf-8"))]


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def test_terms_page_has_its_worked_examples():
    # 16 examples today; a regex that stopped matching would otherwise make the next test vacuous
    assert len(examples()) >= 16
    assert "3·3·3·10 + 10 = 280" in TERMS.read_text(encoding="utf-8")


@pytest.mark.parametrize("yaml_text,claim", examples(), ids=[f"example{i + 1}" for i in range(len(examples()))])
def test_worked_example_matches_the_analytic_pass(yaml_text, claim):
    data, src = loads(textwrap.dedent(yaml_text), "terms.md")
    spec = parse_model(data["model"], src)
    net, inf = build(spec, spec.input_shape)
    total = sum(r.params for r in inf.records)
    claims = dict(re.findall(r"(output|parameters|receptive field|mult-adds) ([^·(]+)", claim))

    assert claims["output"].strip().strip("`") == fmt_shape(inf.output.shape)
    assert _int(claims["parameters"]) == total == sum(p.numel() for p in net.parameters())
    assert [int(n) for n in claims["receptive field"].split("×")] == inf.output_record.receptive_field
    if "mult-adds" in claims:
        assert _int(claims["mult-adds"]) == sum(r.macs for r in inf.records)
    formulas = {r.formula for r in inf.records}
    for written in [q for q in re.findall(r"`([^`]+)`", claim) if "=" in q]:  # each quoted formula is a layer's
        assert written in formulas, f"{written!r} is not among {sorted(formulas)}"
    with torch.no_grad():  # the module agrees with the records
        y = net.eval()(torch.zeros(1, spec.in_channels, *spec.input_shape))
    assert tuple(y.shape[1:]) == inf.output.shape


# ------------------------------------------------------------------ arithmetic written in the page

_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b}
_FUNCS = {"floor": math.floor, "ceil": math.ceil}


def _eval(node: ast.AST) -> Fraction:
    """Exact value of + − · / floor ceil over integers; anything else is not a worked formula."""
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left), _eval(node.right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS:
        return Fraction(_FUNCS[node.func.id](_eval(node.args[0])))
    raise ValueError(ast.dump(node))


ARITHMETIC = re.compile(r"`([0-9(][0-9()·+−/ ,a-z]*?) = ([0-9,]+)`")


def written_arithmetic() -> list[tuple[str, str]]:
    """Every backticked ``numbers-only expression = number`` in docs/terms.md."""
    return ARITHMETIC.findall(TERMS.read_text(encoding="utf-8"))


def test_terms_page_arithmetic_is_right():
    found = written_arithmetic()
    assert len(found) >= 25  # the formulas above the examples and in their claim lines
    for expr, value in found:
        python = re.sub(r"(?<=\d),(?=\d{3})", "", expr).replace("·", "*").replace("−", "-")
        assert _eval(ast.parse(python, mode="eval")) == _int(value), f"`{expr} = {value}`"


def test_terms_formula_of_output_size_is_the_one_geocnn_uses():
    # N_y = floor((N_x + 2·pad − N_h)/stride + 1) on every case the page names, through real layers
    for n, pad, kernel, stride in [(32, 0, 3, 1), (32, 1, 3, 2), (33, 0, 3, 2), (10, 2, 3, 3)]:
        data, src = loads(f"model: {{dims: 1, in_channels: 1, layers: [{{conv: {{out: 1, kernel: {kernel}, "
                          f"stride: {stride}, padding: {pad}}}}}]}}", "t.yaml")
        net, inf = build(parse_model(data["model"], src), (n,))
        assert inf.output.shape == (1, math.floor((n + 2 * pad - kernel) / stride + 1))


# ------------------------------------------------------------------ links stay inside the repository

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"```.*?```", re.S)


def test_pages_point_at_nothing_outside_the_repository():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        prose = FENCE.sub("", text)
        where = page.relative_to(ROOT)
        assert "/work/" not in text and "shared/reference" not in text, f"{where} cites a path users lack"
        assert "../" not in prose, f"{where} points above its folder"
        for target in LINK.findall(text):
            if re.match(r"[a-z]+://|mailto:|#", target):
                continue
            assert not target.startswith(("/", "~")), f"{where}: absolute link {target}"
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(ROOT), f"{where}: {target} leaves the repository"
            generated = path.is_relative_to(ROOT / "docs") and path.relative_to(ROOT / "docs").as_posix() in GENERATED
            assert path.exists() or generated, f"{where}: {target} does not exist"


def test_config_paths_in_examples_resolve_from_configs():
    # YAML snippets are configs: their '../x' paths are relative to configs/, and must exist there,
    # except run folders (runs/ is what the walk-throughs' own commands write)
    for page in PAGES:
        for block in FENCE.findall(page.read_text(encoding="utf-8")):
            for rel in re.findall(r"(\.\./[\w./-]+)", block):
                path = (ROOT / "configs" / rel).resolve()
                assert path.is_relative_to(ROOT), f"{page.name}: {rel}"
                assert path.exists() or path.is_relative_to(ROOT / "runs"), f"{page.name}: {rel}"


def test_readme_points_at_the_terms_page():
    assert "(docs/terms.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_project_layout_lists_every_module_once():
    """docs/development.md's project layout has one row per module of src/geocnn, and no row for a module that is gone."""
    text = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    section = text.split("## Project layout", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `geocnn/([^`]+\.py)`(?:, `([^`]+\.py)`)? \|", section, re.M)
    listed = []
    for first, second in rows:
        listed.append(first)
        if second:
            listed.append(str(Path(first).parent / second) if "/" in first else second)
    modules = sorted(str(p.relative_to(ROOT / "src" / "geocnn")) for p in (ROOT / "src" / "geocnn").rglob("*.py"))
    assert sorted(listed) == modules
