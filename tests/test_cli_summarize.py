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


def test_table_shows_formula_shapes_and_receptive_field(cli, write_yaml, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # every column fits: formula and notes in the table
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
    assert set(doc) == {"input_shape", "output_shape", "total_params", "trainable_params", "total_macs", "output",
                        "receptive_field", "layers"}
    assert doc["input_shape"] == [3, 32, 32] and doc["output_shape"] == [1, 15, 15]
    assert doc["output"] == {"index": 9, "name": "conv2", "kind": "conv"}
    # 12 samples × 25 m and × 4 ms
    assert doc["receptive_field"] == {"samples": [12, 12], "axes": ["height", "width"], "physical": ["300 m", "48 ms"]}
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


ENDS_IN_A_RESIDUAL = """
model:
  dims: 1
  in_channels: 2
  input_shape: [16]
  layers:
    - conv: {out: 4, kernel: 3, padding: same}
    - residual:
        body:
          - conv: {out: 4, kernel: 3, padding: same}
        shortcut: auto
"""


def test_json_names_the_output_when_the_last_row_is_a_shortcut(cli, write_yaml, tmp_path):
    out = tmp_path / "s.json"
    assert cli("summarize", write_yaml(ENDS_IN_A_RESIDUAL), "--json", out).exit_code == 0
    doc = json.loads(out.read_text())
    assert [layer["name"] for layer in doc["layers"]] == ["conv1", "residual1", "residual1.conv1", "residual1.shortcut"]
    assert doc["output"] == {"index": 2, "name": "residual1", "kind": "residual"}
    # conv 3 → body conv 3 + 3 − 1 = 5 samples; the shortcut alone would say 3; no spacing: no units
    assert doc["receptive_field"] == {"samples": [5], "axes": ["length"], "physical": None}
    assert doc["layers"][-1]["receptive_field"] == [3]


BIG = """
model:
  name: big
  dims: 2
  in_channels: 256
  input_shape: [8, 8]
  layers:
    - conv: {out: 512, kernel: 3, padding: same, name: a_rather_long_first_layer_name}
    - relu
    - conv: {out: 512, kernel: 3, padding: same}
"""


def _lines_fit(text: str, width: int) -> bool:
    from rich.cells import cell_len

    return all(cell_len(line) <= width for line in text.splitlines())


@pytest.mark.parametrize("width", [80, 120])
def test_narrow_terminals_keep_every_count_and_fold_the_text(cli, write_yaml, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    result = cli("summarize", write_yaml(LECTURE))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert _lines_fit(out, width)
    lines = out.splitlines()
    folded = next(i for i, line in enumerate(lines) if "(--wide shows them as columns)" in line)
    table = "\n".join(lines[:folded])
    for count in ("280", "1,456", "2,320", "176", "17", "243,000", "324,000", "518,400", "36,000", "3,600"):
        assert f" {count} " in table  # whole, in its column
    # the formula and notes are still all there: folded under the table when it is too narrow
    assert "3·3·10·16 + 16 = 1,456" in out and "max pool, per channel, no parameters" in out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("#"))
    assert ("formula" in header) is (width == 120)  # 120 columns hold the formula, not the notes
    assert "notes" not in header
    assert "parameters: 4,249 (trainable 4,249)" in out


def test_large_counts_are_never_cut_at_80_columns(cli, write_yaml, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("summarize", write_yaml(BIG))
    assert result.exit_code == 0, result.stderr
    assert _lines_fit(result.stdout, 80)
    # 3·3·256·512 + 512 and 8·8·512·256·9; 3·3·512·512 + 512 and 8·8·512·512·9
    for count in ("1,180,160", "75,497,472", "2,359,808", "150,994,944", "3,539,968"):
        assert count in result.stdout
    assert "a_rather_long_first_layer_name" in result.stdout.replace("\n", "").replace(" ", "")


def test_wide_shows_every_column(cli, write_yaml, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("summarize", write_yaml(LECTURE), "--wide")
    assert result.exit_code == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if line.lstrip().startswith("#"))
    assert header.split() == ["#", "layer", "kind", "output", "params", "formula", "mult-adds", "RF", "jump", "RF",
                              "(units)", "notes"]
    assert "(--wide shows them as columns)" not in result.stdout
    row = next(line for line in result.stdout.splitlines() if "↳ residual1.shortcut" in line)
    assert "1·1·10·16 + 16 = 176" in row and "100 m × 16 ms" in row and "channels 10→16" in row


def test_terminal_and_markdown_show_the_same_rows(cli, write_yaml, tmp_path, monkeypatch):
    from geocnn import summary
    from tests.conftest import spec_from

    monkeypatch.setenv("COLUMNS", "300")
    md = tmp_path / "s.md"
    result = cli("summarize", write_yaml(LECTURE), "--markdown", md)
    assert result.exit_code == 0
    terminal = [line.split() for line in result.stdout.splitlines() if line[:2].strip().isdigit()]
    markdown = [[w for w in line.split() if w != "|"] for line in md.read_text().splitlines()
                if line[:3].strip("| ").isdigit()]
    rows = summary.rows(summary.summarize(spec_from(LECTURE), (3, 32, 32)))
    assert len(terminal) == len(markdown) == len(rows) == 9
    for row, t, m in zip(rows, terminal, markdown):
        # the terminal adds the RF in physical units before the notes; every other cell is the same
        units, notes = row.cells["rf_units"].split(), row.cells["notes"].split()
        assert units and t == m[:len(m) - len(notes)] + units + notes


@pytest.mark.parametrize("width", [60, 80, 120])
def test_layer_names_are_never_broken(cli, monkeypatch, width):
    # issue 18 §5: at 80 columns "double1.co" / "nv1"; now sizes are spelled short first (24³, 8 × 24×24×32),
    # then output shapes wrap between sizes; names and counts stay whole
    from geocnn.config import load_config
    from tests.conftest import ROOT

    monkeypatch.setenv("COLUMNS", str(width))
    config = ROOT / "configs" / "faults3d.yaml"
    result = cli("summarize", str(config))
    assert result.exit_code == 0, result.stderr
    assert _lines_fit(result.stdout, width)
    table = result.stdout.split("(--wide shows them as columns)")[0]
    rows = [line.split() for line in table.splitlines() if line[:3].strip().isdigit()]
    spec = load_config(config).model
    names = [n.name for n in spec.nodes()]
    assert [r[1] for r in rows] == names  # row i holds layer i's whole name
    assert all(r[2] in ("conv", "norm", "relu", "pool", "upsample", "concat") for r in rows)
    for count in ("31,850,496", "47,775,744", "20,752"):
        assert f" {count} " in result.stdout
    if width < 120:
        assert rows[0][3:] == (["8", "×", "24×24×32", "224", "3,981,312", "3³", "1³"] if width == 80 else
                               ["8", "×", "24", "224", "3,981,312", "3³", "1³"])
        assert rows[-1][-2:] == ["44³", "1³"]


def test_compact_sizes():
    from geocnn.fmt import fmt_shape_compact, fmt_sizes_compact

    assert fmt_sizes_compact([44, 44, 44]) == "44³" and fmt_sizes_compact([3, 3]) == "3²"
    assert fmt_sizes_compact([24, 24, 32]) == "24×24×32" and fmt_sizes_compact([7]) == "7"
    assert fmt_shape_compact((8, 24, 24, 24)) == "8 × 24³" and fmt_shape_compact((10,)) == "10"
