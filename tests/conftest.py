"""Shared fixtures: YAML specs written to temporary files, and the CLI runner."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geocnn.model import parse_model
from geocnn.yamlsource import loads
from tests import trainkit

ROOT = Path(__file__).resolve().parents[1]


def spec_from(text: str, label: str = "model.yaml"):
    """Parse a YAML snippet (dedented) holding a ``model:`` section."""
    data, src = loads(textwrap.dedent(text), label)
    return parse_model(data["model"], src)


@pytest.fixture
def write_yaml(tmp_path):
    def write(text: str, name: str = "model.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def cli():
    """Invoke the geocnn CLI; returns the click Result (stdout, stderr, exit_code)."""
    from geocnn.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture(autouse=True)
def _reset_geocnn_logging():
    """The CLI installs a rich handler on the 'geocnn' logger; undo it so caplog works in every test."""
    import logging

    yield
    logger = logging.getLogger("geocnn")
    logger.handlers[:] = [h for h in logger.handlers if isinstance(h, logging.NullHandler)]
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Decoded SEG-Y caches go to a temporary folder, never to the user's ~/.cache."""
    monkeypatch.setenv("GEOCNN_CACHE", str(tmp_path_factory.mktemp("geocnn-cache")))


@pytest.fixture(scope="session")
def _identity_runs(tmp_path_factory) -> dict:
    """Identity runs trained once per test session, by their arguments → the folder holding them."""
    return {}


@pytest.fixture
def identity_run(_identity_runs, tmp_path_factory):
    """``identity_run(tmp_path, model=..., patch=..., section=..., inputs=None, name="id")``: a run whose
    model is the identity (see :func:`tests.trainkit.train_identity`), trained once per session for
    the same arguments and copied into ``tmp_path`` with its training files; a run on the test's own
    ``inputs`` is trained in ``tmp_path``."""

    def make(tmp_path: Path, model=trainkit.IDENTITY_2D, patch=(8, 16), section="inline", inputs=None,
             name="id") -> Path:
        if inputs is not None:
            return trainkit.train_identity(tmp_path, model, patch, section, inputs, name)
        key = (model, tuple(patch), section, name)
        if key not in _identity_runs:
            folder = tmp_path_factory.mktemp("identity")
            trainkit.train_identity(folder, model, patch, section, None, name)
            _identity_runs[key] = folder
        trainkit.copy_into(_identity_runs[key], tmp_path)
        return tmp_path / name

    return make
