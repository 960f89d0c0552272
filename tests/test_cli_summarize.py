"""``geocnn summarize``: table, JSON schema, Markdown, errors (exit 2, one line, YAML position)."""

from __future__ import annotations

import json

import pytest

LECTURE = """
model:
  name: lecture
  dims: 2
  in_channels: 3
  input_shape: [32, 32]
  spacing: ["25 m", "4 ms"]
  layers:
    - conv: {out: 10, kernel: 3}
    - relu
    - pool: {kind: max, size: 2}
    - residual:
        body:
          - conv: {out: 16, kernel: 3, padding: same}
          - relu
          - conv: {out: 16, kernel: 3, padding: same}
        shortcut: auto
    - conv: {out: 1, kernel: 1}
"""


def test_table_shows_formula_shapes_and_receptive_field(cli, write_yaml):
    result = cli("summarize", write_yaml(LECTURE))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "3·3·3·10 + 10 = 280" in out
    assert "10 × 30 × 30" in out and "10 × 15 × 15" in out
    assert "projection shortcut, learned 1×1 conv: channels 10→16" in out
    assert "1×1 conv (mixes channels only)" in out
    assert "receptive field of the output: 12 × 12 samples (height × width) = 300 m × 48 ms" in out
    assert "valid input sizes: height: multiples of 2 (≥ 4); width: multiples of 2 (≥ 4)" in out
    assert "training with Adam" in out


def test_json_has_exactly_the_schema(cli, write_yaml, tmp_path):
    out = tmp_path / "s.json"
    result = cli("summarize", write_yaml(LECTURE), "--json", out, "--batch-size", "8")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(out.read_text())
    assert set(doc) == {"input_shape", "output_shape", "total_params", "trainable_params", "total_macs", "layers"}
    assert doc["input_shape"] == [3, 32, 32] and doc["output_shape"] == [1, 15, 15]
    first = doc["layers"][0]
    assert first == {"index": 1, "name": "conv1", "kind": "conv", "output_shape": [10, 30, 30], "params": 280,
                     "macs": 30 * 30 * 10 * 3 * 9, "receptive_field": [3, 3], "jump": [1, 1]}
    assert set(doc["layers"][3]) == set(first)
    body = 3 * 3 * 10 * 16 + 16 + 3 * 3 * 16 * 16 + 16
    assert doc["total_params"] == 280 + body + (10 * 16 + 16) + (16 + 1) == doc["trainable_params"]
    assert doc["total_macs"] == sum(layer["macs"] for layer in doc["layers"])


def test_markdown_and_no_silent_overwrite(cli, write_yaml, tmp_path):
    md = tmp_path / "s.md"
    assert cli("summarize", write_yaml(LECTURE), "--markdown", md).exit_code == 0
    text = md.read_text()
    assert text.startswith("# lecture") and "| 1 | conv1 | conv | 10 × 30 × 30 | 280 | 3·3·3·10 + 10 = 280 |" in text
    again = cli("summarize", write_yaml(LECTURE), "--markdown", md)
    assert again.exit_code == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert cli("summarize", write_yaml(LECTURE), "--markdown", md, "--force").exit_code == 0


def test_input_shape_option_overrides_and_checks_channels(cli, write_yaml):
    path = write_yaml(LECTURE)
    ok = cli("summarize", path, "--input-shape", "3,64,64")
    assert ok.exit_code == 0 and "10 × 62 × 62" in ok.stdout
    bad = cli("summarize", path, "--input-shape", "4,64,64")
    assert bad.exit_code == 2
    assert bad.stderr.count("\n") == 1
    assert "--input-shape has 4 channels but the model has in_channels 3" in bad.stderr


def test_shape_error_prints_table_up_to_failing_layer(cli, write_yaml):
    path = write_yaml("""
        model:
          dims: 3
          in_channels: 1
          input_shape: [3, 32, 32]
          layers:
            - conv: {out: 8, kernel: 3, padding: same}
            - relu
            - conv: {out: 8, kernel: 5, name: down3}
            - relu
    """)
    result = cli("summarize", path)
    assert result.exit_code == 2
    assert "✗ down3" in result.stdout and "relu1" in result.stdout and "relu2" not in result.stdout
    # line 9: the dedented text starts with a blank line
    assert result.stderr == (f"error: {path}:9:7: layer 3 'down3' conv: depth 3 < kernel 5 — use padding: same, "
                             "a smaller kernel, or a larger input\n")


@pytest.mark.parametrize("text,message", [
    ("model: {dims: 2, in_channels: 1, layers: [relu]}", "no input shape"),
    ("model: [1, 2", "not valid YAML"),
    ("data: {}", "no model found"),
    ("model: {dims: 2, in_channels: 1, layers: [{conv: {out: 2, kernel: 3, stride: 2}}], input_shape: [8, 8]}\n"
     "  extra: 1", "not valid YAML"),
])
def test_user_errors_exit_2_one_line(cli, write_yaml, text, message):
    result = cli("summarize", write_yaml(text))
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_file(cli, tmp_path):
    result = cli("summarize", tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "nope.yaml: file not found" in result.stderr


def test_help_is_complete(cli):
    for command in ("summarize", "schema"):
        result = cli(command, "--help")
        assert result.exit_code == 0
    top = cli("--help")
    assert "summarize" in top.stdout and "schema" in top.stdout


def test_summarize_a_run_folder_and_a_checkpoint(cli, tmp_path):
    from geocnn.config import load_config
    from geocnn.train import train
    from tests import trainkit

    run = train(load_config(trainkit.regression_config(tmp_path, epochs=1)), tmp_path / "run")
    for source in (run, run / "checkpoints" / "last.pt"):
        result = cli("summarize", source, "--json", tmp_path / "s.json", "--force")
        assert result.exit_code == 0, result.stderr
        assert json.loads((tmp_path / "s.json").read_text())["input_shape"] == [1, 8, 16]  # the training patch
    bad = cli("summarize", tmp_path / "nothing.pt")
    assert bad.exit_code == 2 and "checkpoint not found" in bad.stderr


def test_markdown_matches_the_golden_file(tmp_path, cli, write_yaml):
    # Every number in tests/golden/lecture_summary.md was checked by hand: e.g. conv1 280 parameters,
    # 30·30·10·3·9 = 243,000 multiply-adds; 4,249 parameters in all; activations (9,000 + 9,000 + 2,250
    # + 6 × 3,600 + 225) values × batch 4 × 4 bytes = 601.2 KiB.
    out = tmp_path / "s.md"
    result = cli("summarize", write_yaml(LECTURE, "lecture.yaml"), "--markdown", out, "--batch-size", "4")
    assert result.exit_code == 0
    from tests.conftest import ROOT

    assert out.read_text() == (ROOT / "tests" / "golden" / "lecture_summary.md").read_text()


def test_ctrl_c_is_one_line_and_exit_130(cli, write_yaml, monkeypatch):
    from geocnn import summary

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(summary, "summarize", interrupted)
    result = cli("summarize", write_yaml(LECTURE))
    assert result.exit_code == 130 and result.stderr == "error: interrupted — no output was written\n"
