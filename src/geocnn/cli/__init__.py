"""The ``geocnn`` command line: wiring only.

Each command declares its options and calls one library function. User errors
(:class:`geocnn.errors.GeocnnError`) are caught here, once, and printed as one line on stderr
with exit code 2.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import typer

from geocnn import __version__
from geocnn.cli import console
from geocnn.errors import GeocnnError

app = typer.Typer(
    name="geocnn",
    help="Train and apply convolutional neural networks on gridded earth data "
    "(SEG-Y volumes, sections, traces; NumPy grids), declared in YAML.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help is plain text, laid out by click: a docstring's paragraphs are rewrapped to the terminal
    # (rich mode kept their hard line breaks), an option's help gets the width left of a 30-column
    # name column, and nothing in brackets — pip extras, [default: ...] — is read as markup.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},  # -h, as most tools have it
)


def _version(value: bool) -> None:
    if value:
        console.out.print(f"geocnn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.",
                                 callback=_version, is_eager=True),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details."),
) -> None:
    console.setup_logging(verbose)


def user_errors(fn: Callable) -> Callable:
    """Turn a :class:`GeocnnError` into one stderr line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GeocnnError as exc:
            console.print_error(exc.message)
            raise typer.Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            # train turns Ctrl-C into TrainingInterrupted (with a checkpoint); elsewhere outputs are
            # temporary files until the end, so nothing half-written is left behind.
            console.print_error("interrupted — no output was written")
            raise typer.Exit(code=130) from None

    return wrapper


def short_help(doc: str) -> str:
    """A command's line in its group's list: the docstring's whole first paragraph (click's own
    short help stops at 45 characters or at the first ". ", which cuts "e.g." in half)."""
    return " ".join(doc.strip().split("\n\n", 1)[0].split())


# Command modules, one per concept; each exposes COMMANDS = [(name, function), ...], and a module
# whose commands form a group (``geocnn synth faults``) also GROUP = (name, help).
COMMAND_MODULES = ("model", "grid", "train", "predict", "export", "synth")


def _register() -> None:
    import importlib

    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f"geocnn.cli.{module_name}")
        parent = app
        group = getattr(module, "GROUP", None)
        if group is not None:
            parent = typer.Typer(name=group[0], help=group[1], short_help=short_help(group[1]),
                                 no_args_is_help=True, rich_markup_mode=None,
                                 context_settings={"help_option_names": ["-h", "--help"]})
            app.add_typer(parent, name=group[0])
        for name, fn in module.COMMANDS:
            parent.command(name, short_help=short_help(fn.__doc__ or ""))(user_errors(fn))


_register()


def main() -> None:
    """Console-script entry point (also ``python -m geocnn``: completion scripts still name ``geocnn``)."""
    app(prog_name="geocnn")
