"""The generated documentation is current."""

from __future__ import annotations

from pathlib import Path

from jmapd.config import reference_markdown

ROOT = Path(__file__).parent.parent


def test_configuration_reference_is_current() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert text == reference_markdown(), "run: jmapd config-reference > docs/configuration.md"
