"""tools/run_benchmarks.py: the index page built from the per-package pages."""

from __future__ import annotations

from pathlib import Path

import pytest

import run_benchmarks


def test_the_index_keeps_every_page_and_fixes_their_relative_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "b.md").write_text("## b\n\nsee [state](../state.md#ledger)\n")
    (tmp_path / "benchmarks" / "a.md").write_text("## a\n\n| metric | ours |\n")
    monkeypatch.setattr(run_benchmarks, "DOCS", tmp_path)
    run_benchmarks.rebuild_index()
    index = (tmp_path / "benchmarks.md").read_text()
    assert index.index("## a") < index.index("## b")
    assert "[state](state.md#ledger)" in index
    assert "../" not in index
