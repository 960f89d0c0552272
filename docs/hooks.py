"""MkDocs hook (``hooks:`` in mkdocs.yml): adds the generated pages to the build.

The home page comes from README.md and the reference pages from the registries, the schema and the
Typer app (:mod:`geocnn.refdocs`), so none of them is committed and none can drift from the code.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

from geocnn.refdocs import generated_pages


def on_files(files: Files, config: MkDocsConfig) -> Files:
    readme = Path(config.config_file_path).parent / "README.md"
    for path, text in generated_pages(readme.read_text(encoding="utf-8")).items():
        if files.get_file_from_path(path) is not None:
            raise PluginError(f"docs/{path} is generated at build time (geocnn.refdocs): delete the committed copy")
        files.append(File.generated(config, path, content=text))
    return files
