"""The documentation site's generated pages, written from the code they describe so they cannot drift.

Each ``*_page`` function returns one Markdown page of the site (``mkdocs.yml``; ``docs/hooks.py``
adds them to the build): the layer kinds from :data:`geocnn.model.layers.KINDS`, the config keys
from the section declarations (:data:`geocnn.config.CONFIG`), tasks, outputs and formats from their
closed registries, the command line from the Typer app (click's own records of every command and
option), the errors by really raising each family, and the landing page from README.md. Nothing
generated is committed; the tests read the same functions.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer.main

from geocnn import errors
from geocnn.atomic import check_new
from geocnn.cli import app
from geocnn.config import CONFIG, config_reference, parse_config
from geocnn.grids.formats import FORMATS, NOT_GRIDS, format_from_suffix
from geocnn.model import parse_model
from geocnn.model.layers import COMPOSITE, KINDS
from geocnn.model.shapes import infer
from geocnn.model.spec import BLOCK, MODEL, REPEAT_ARGS, RESIDUAL_ARGS
from geocnn.outputs import AUTO, OUTPUTS
from geocnn.schema import Record, markdown_table
from geocnn.tasks import TASKS
from geocnn.yamlsource import loads

GENERATED_NOTE = "*Generated from the code at build time (`geocnn.refdocs`); do not edit.*"


def _cell(text: object) -> str:
    """One Markdown table cell: pipes escaped, one line."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _page(title: str, intro: str, body: list[str]) -> str:
    return "\n".join([f"# {title}", "", intro, "", GENERATED_NOTE, "", *body]).rstrip() + "\n"


# ----------------------------------------------------------------------------- landing page

_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def _site_link(m: re.Match) -> str:
    text, target = m[1], m[2]
    if re.match(r"[a-z]+://|mailto:|#", target):
        return m[0]
    if target.startswith("docs/"):
        return f"[{text}]({target.removeprefix('docs/')})"
    return text if text.strip("`") == target else f"{text} (`{target}`)"


def index_page(readme: str) -> str:
    """README.md as the site's home page: links into ``docs/`` lose that prefix; links to other files
    of the repository (benchmarks, configs) are not pages of the site, so they become their path in
    code, after the link's text."""
    return _LINK.sub(_site_link, readme)


# ----------------------------------------------------------------------------- layers

def _kind_section(name: str, help: str, args: Record) -> list[str]:
    lines = [f"### `{name}`", "", _cell(help), ""]
    if args.shorthand is not None:
        lines += [f"Shorthand: `{name}: VALUE` sets `{args.shorthand}`.", ""]
    lines += [markdown_table(args) if args.fields else "No arguments: write the bare name (`- " + name + "`).", ""]
    return lines


_EXAMPLE_LAYERS = ("conv: {out: 8, kernel: 3, padding: same}", "conv_transpose: {out: 8, kernel: 2, stride: 2}",
                   "norm: batch", "dense: {out: 10}")


def parameter_examples() -> list[tuple[str, str, str]]:
    """(layer YAML, input shape, parameter formula) for layers with parameters, from the shape walk
    that the summary and the builder read: the lecture's counting rules on real numbers."""
    rows = []
    for layer in _EXAMPLE_LAYERS:
        flat = "flatten, " if layer.startswith("dense") else ""
        data, src = loads(f"model: {{dims: 2, in_channels: 3, layers: [{flat}{{{layer}}}]}}", "example.yaml")
        result = infer(parse_model(data["model"], src), (16, 16))
        record = result.records[-1]
        rows.append((f"- {layer}", "(3, 16, 16)", record.formula))
    return rows


def layers_page() -> str:
    """Every layer kind of the model grammar with its arguments, types, defaults and formula."""
    body = ["## The `model:` section", "", markdown_table(MODEL), "",
            "A block under `blocks:` (used as a layer kind by its name):", "", markdown_table(BLOCK), "",
            "A layer is a kind name (`- relu`) or a one-key mapping (`- conv: {out: 16, kernel: 3}`); `name` and "
            "`from` may sit beside the kind or inside its arguments.", "",
            "## Layer kinds", "", "| kind | what it does |", "|---|---|"]
    body += [f"| [`{k.name}`](#{k.name}) | {_cell(k.help)} |" for k in KINDS.values()]
    body += ["| [`residual`](#residual) | a = σ(f_θ(a) + shortcut(a)) |",
             "| [`repeat`](#repeat) | the same layers, several times |", ""]
    for kind in KINDS.values():
        body += _kind_section(kind.name, kind.help + (" Merges the previous output with the outputs named "
                                                      "(`with`)." if kind.merge else ""), kind.args)
    composite = {"residual": ("a residual block: a = σ(f_θ(a) + shortcut(a))", RESIDUAL_ARGS),
                 "repeat": ("the layers listed, `times` times in a row (names numbered)", REPEAT_ARGS)}
    for name in COMPOSITE:  # a new composite kind without its entry above fails the build here
        help, args = composite[name]
        body += _kind_section(name, help, args)
    body += ["## Parameters, counted", "",
             "What the shape walk (the numbers `geocnn summarize` prints) counts for a few layers on a "
             "3-channel 16×16 input: weights per filter (in_channels·kernel) times filters, plus one bias per "
             "filter; batch norm holds γ and β per channel.", "",
             "| layer | input | parameters |", "|---|---|---|"]
    body += [f"| `{_cell(y)}` | {shape} | `{_cell(f)}` |" for y, shape, f in parameter_examples()]
    return _page("Layer kinds", "Every kind a `model:` section's `layers:` may use, with its arguments. "
                 "Sizes: N_y = floor((N_x + 2·pad − N_h)/stride + 1), N_h = dilation·(kernel − 1) + 1 "
                 "(see [terms](../terms.md)).", body)


# ----------------------------------------------------------------------------- config

def config_keys(record: Record = CONFIG, path: str = "") -> Iterator[str]:
    """Every dotted key a config file may hold, sections first then their keys (``data.split.mode``)."""
    for f in record.fields:
        key = f"{path}.{f.name}" if path else f.name
        yield key
        if isinstance(f.type, Record):
            yield from config_keys(f.type, key)


def config_page() -> str:
    """The tables of ``geocnn schema --markdown`` (:func:`geocnn.config.config_reference`) under the site's intro."""
    tables = config_reference().split("\n## ", 1)[1]
    return _page("Config reference", "Every key of a geocnn config file, section by section: its type, default, "
                 "choices and what it does, from the declarations in `geocnn.config` (`geocnn schema --markdown` "
                 "prints the same tables). The `model:` section and its layers are on [Layer kinds](layers.md).",
                 ["## " + tables])


# ----------------------------------------------------------------------------- tasks, outputs, formats

def tasks_page() -> str:
    """Every ``task:`` value with what the record says: answers, losses, metrics, baseline, outputs."""
    body = ["| task | what it learns | answers | losses (first: default) | metrics (headline) | "
            "compared with | `--output` |", "|---|---|---|---|---|---|---|"]
    for t in TASKS.values():
        answers = ("per sample" if t.dense else "per patch") + (", classes" if t.classifies else ", values")
        metrics = ", ".join(f"`{m}`" for m in t.metric_names) + f" ({t.headlines[0]})"
        body.append(f"| `{t.name}` | {_cell(t.help)} | {answers} | {', '.join(f'`{x}`' for x in t.losses)} | "
                    f"{metrics} | {_cell(t.baseline)} | {', '.join(o.name for o in t.outputs)} |")
    body += ["", "Self-supervised tasks (" + ", ".join(f"`{t.name}`" for t in TASKS.values() if t.self_supervised)
             + ") learn from the inputs alone: no `data.target`."]
    return _page("Tasks", "The values of a config's `task:`, from the task registry (`geocnn.tasks`).", body)


def outputs_page() -> str:
    """Every ``geocnn predict --output`` kind from the output registry."""
    body = ["| `--output` | what is written | dtype | for | one channel per class |", "|---|---|---|---|---|"]
    for o in OUTPUTS.values():
        body.append(f"| `{o.name}` | {_cell(o.help)} | {o.dtype} | "
                    f"{'classifying tasks' if o.of_classes else 'value tasks'} | {'yes' if o.per_class else 'no'} |")
    body += ["", f"`{AUTO}` (the default) lets the task and the output format pick; see [tasks](tasks.md)."]
    return _page("Outputs", "What `geocnn predict --output` may write, from the output registry (`geocnn.outputs`).",
                 body)


def formats_page() -> str:
    """Every file format read or written, from the format registry, and the files that are not grids."""
    body = ["| format | suffixes | what | written by predict | several channels per output | named members |",
            "|---|---|---|---|---|---|"]
    for f in FORMATS.values():
        yes = {True: "yes", False: "no"}
        only = f" ({', '.join(f.outputs)} only)" if f.outputs else ""
        body.append(f"| `{f.name}` | {', '.join(f'`{s}`' for s in f.suffixes)} | {_cell(f.help)} | "
                    f"{yes[f.output]}{only} | {yes[f.channels]} | {yes[f.members]} |")
    body += ["", "## Files that are not grids", "", "| suffix | what geocnn says | what to do |", "|---|---|---|"]
    body += [f"| `{s}` | {_cell(problem)} | {_cell(fix)} |" for s, (problem, fix) in NOT_GRIDS.items()]
    return _page("Formats", "The file formats geocnn reads and writes, from the format registry "
                 "(`geocnn.grids.formats`).", body)


# ----------------------------------------------------------------------------- command line

@dataclass(frozen=True)
class CliOption:
    """One parameter of a command as ``--help`` shows it."""

    names: tuple[str, ...]
    help: str
    default: str
    required: bool
    argument: bool


@dataclass(frozen=True)
class CliCommand:
    """One command (``geocnn synth faults``) and its parameters."""

    path: str
    help: str
    options: tuple[CliOption, ...]


def _default(param: Any) -> str:
    value = param.default
    if param.required or value is None or getattr(param, "is_flag", False) and value is False:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _option(param: Any) -> CliOption:
    argument = param.param_type_name == "argument"
    names = (param.name.upper(),) if argument else (*param.opts, *param.secondary_opts)
    return CliOption(tuple(names), " ".join((param.help or "").split()), _default(param), bool(param.required),
                     argument)


def _help_markdown(text: str) -> str:
    """A command's help as Markdown: paragraphs rewrapped as ``--help`` does, click's ``\\b`` (keep these
    lines as they are) paragraphs as a text block."""
    paragraphs = []
    for para in re.split(r"\n\s*\n", text.strip()):
        if para.lstrip().startswith("\b"):
            lines = para.lstrip()[2:].strip("\n").splitlines()
            paragraphs.append("\n".join(["```text", *(line.strip() for line in lines), "```"]))
        else:
            paragraphs.append(" ".join(para.split()))
    return "\n\n".join(paragraphs)


def cli_commands() -> list[CliCommand]:
    """Every command of the ``geocnn`` app, groups walked, in ``--help`` order (click's records, as
    ``--help`` reads them; typer ships its own click, so groups are told by ``list_commands``)."""
    root = typer.main.get_command(app)
    found: list[CliCommand] = []

    def walk(cmd: Any, path: str, ctx: Any) -> None:
        params = tuple(_option(p) for p in cmd.params if not getattr(p, "hidden", False))
        found.append(CliCommand(path, _help_markdown(cmd.help or ""), params))
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                walk(sub, f"{path} {name}", type(ctx)(sub, parent=ctx, info_name=name))

    walk(root, "geocnn", type(root.context_class(root))(root, info_name="geocnn"))
    return found


def cli_page() -> str:
    """Every command and option with its help text and default."""
    body = []
    for c in cli_commands():
        body += [f"## `{c.path}`", "", c.help, ""]
        if c.options:
            body += ["| option | help | default |", "|---|---|---|"]
            for o in c.options:
                names = ", ".join(f"`{n}`" for n in o.names)
                default = "required" if o.required else (f"`{_cell(o.default)}`" if o.default else "")
                body.append(f"| {names} | {_cell(o.help)} | {default} |")
            body.append("")
    return _page("Command line", "Every `geocnn` command and option, read from the Typer app (what `--help` "
                 "prints).", body)


# ----------------------------------------------------------------------------- API

API_MODULES = ("geocnn.api", "geocnn.grids.grid", "geocnn.summary", "geocnn.progress", "geocnn.errors")


def api_page() -> str:
    """The Python API, rendered by mkdocstrings from the docstrings of :data:`API_MODULES`."""
    body = []
    for module in API_MODULES:
        body += [f"## `{module}`", "", f"::: {module}", "    options:", "      show_root_heading: false", ""]
    return _page("Python API", "The functions a notebook calls (`import geocnn`), from their docstrings; "
                 "see [the Python page](../python.md) for a walk-through.", body)


# ----------------------------------------------------------------------------- errors

@dataclass(frozen=True)
class Family:
    """One error family: how to raise it for real, and what to do about it."""

    kind: type[errors.GeocnnError]
    trigger: Callable[[], None]
    how: str  # what the trigger did, as a user would have done it
    fix: str


def _bad_task() -> None:
    data, src = loads("task: segmentaton\ndata: {inputs: [seismic.sgy], patch: [64, 64]}\n"
                      "model: {dims: 2, in_channels: 1, layers: [relu]}\n", "facies.yaml")
    parse_config(data, src)


def _kernel_too_large() -> None:
    data, src = loads("model:\n  dims: 2\n  in_channels: 1\n  layers:\n    - conv: {out: 8, kernel: 9}\n"
                      "    - conv: {out: 8, kernel: 9}\n", "model.yaml")
    infer(parse_model(data["model"], src), (12, 12))


def _seismic_unix() -> None:
    format_from_suffix("line12.su")


def _existing_output() -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "pred.npy"
        out.touch()
        try:
            check_new(out, force=False)
        except errors.GeocnnError as exc:
            raise type(exc)(exc.problem, where=out.name, fix=exc.fix) from None


_LONG = "p" * 300 + ".npy"


def _unwritable_output() -> None:
    try:
        check_new(_LONG, force=False)
    except errors.GeocnnError as exc:
        raise type(exc)(exc.problem, where="ppp…ppp.npy", fix=exc.fix) from None


FAMILIES: tuple[Family, ...] = (
    Family(errors.ConfigError, _bad_task, "a config with `task: segmentaton` (a typo)",
           "edit the key at the `file:line:col` shown; the message lists the valid values"),
    Family(errors.ShapeError, _kernel_too_large, "two 9×9 convolutions (no padding) on a 12×12 input",
           "`geocnn summarize CONFIG --input-shape ...` prints the layers up to the failing one; pad (`padding: same`), "
           "use smaller kernels or a larger patch"),
    Family(errors.DataError, _seismic_unix, "a Seismic Unix `.su` file given as an input",
           "convert or fix the file as the message says; `geocnn inspect FILE` shows what geocnn reads"),
    Family(errors.OutputExistsError, _existing_output, "`geocnn predict ... --out pred.npy` when pred.npy exists",
           "choose another path, or pass `--force` to replace it"),
    Family(errors.OutputError, _unwritable_output, "an output name longer than the file system allows "
           "(the 300-letter name is shortened here)", "choose a path the system accepts, in a folder you can write"),
)


def raised(family: Family) -> errors.GeocnnError:
    """The error the family's trigger really raises (and a failure if it raises none, or another kind)."""
    try:
        family.trigger()
    except errors.GeocnnError as exc:
        if type(exc) is not family.kind:
            raise RuntimeError(f"{family.how} raised {type(exc).__name__}, not {family.kind.__name__}") from exc
        return exc
    raise RuntimeError(f"{family.how} raised nothing")


def _first_line(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def errors_page() -> str:
    """Each error family with a message produced by really raising it, its meaning and its fix."""
    base = errors.GeocnnError
    body = ["Every mistake a user can make is one `GeocnnError`: the command line prints its message on one line "
            "of stderr and exits with code "
            f"{base.exit_code}; anything else (a traceback) is a bug in geocnn. A message reads "
            "`WHERE: PROBLEM — FIX`: where (a file, a YAML `line:col`, a layer), what is wrong with the numbers, "
            "what to do.", "", "| family | is a | meaning |", "|---|---|---|"]
    body += [f"| `{f.kind.__name__}` | `{f.kind.__mro__[1].__name__}` | {_cell(_first_line(f.kind.__doc__))} |"
             for f in FAMILIES]
    body.append("")
    for family in FAMILIES:
        exc = raised(family)
        body += [f"## `{family.kind.__name__}`", "", _first_line(family.kind.__doc__), "",
                 f"Raised here by {family.how}:", "", "```text", f"error: {exc.message}", "```", "",
                 f"- where: `{exc.where}`" if exc.where else "- where: (none)", f"- problem: {exc.problem}",
                 f"- fix: {family.fix}", ""]
    return _page("Errors", "What each error family means and how to fix it; each example message below is raised "
                 "by geocnn's own code while this page is built.", body)


# ----------------------------------------------------------------------------- all pages

PAGES: dict[str, Callable[[], str]] = {
    "reference/layers.md": layers_page, "reference/config.md": config_page, "reference/tasks.md": tasks_page,
    "reference/outputs.md": outputs_page, "reference/formats.md": formats_page, "reference/cli.md": cli_page,
    "reference/api.md": api_page, "reference/errors.md": errors_page,
}
"""The generated reference pages, by their path under ``docs/``; ``index.md`` comes from README.md."""


def generated_pages(readme: str) -> dict[str, str]:
    """Every generated page's text, by its path under ``docs/``."""
    return {"index.md": index_page(readme), **{path: make() for path, make in PAGES.items()}}
