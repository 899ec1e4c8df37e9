"""An instrument file edited as a practice would edit it, swapped in for one test.

The shipped catalogue is parsed once per worker and shared, so the edited
instrument goes in through ``monkeypatch`` and is put back after the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.instruments.loader import BUILTIN_DIR, load_file, load_vocabularies
from bot.services.runtime import Runtime


def edit_instrument_file(
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    instrument_id: str,
    old: str,
    new: str,
) -> None:
    """Load ``instrument_id``'s shipped YAML with ``old`` replaced by ``new`` (once, exactly)."""
    text = (BUILTIN_DIR / f"{instrument_id}.yaml").read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not in {instrument_id}.yaml exactly once"
    path = tmp_path / f"{instrument_id}.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    edited = load_file(path, load_vocabularies([BUILTIN_DIR]))
    monkeypatch.setitem(runtime.catalogue._instruments, instrument_id, edited)
