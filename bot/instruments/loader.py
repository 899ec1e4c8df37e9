"""Loading questionnaire files into a checked catalogue.

The six shipped instruments live beside this module; a practice may add its
own by putting files in folders named by configuration (``PROMBOT_INSTRUMENTS_DIRS``
in the shell). Every file is validated on load, and any fault is raised as
``InstrumentFileError`` naming the file and the fault, so a bad file stops the
service at start-up rather than at a patient's third answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from bot.instruments.schema import Instrument

BUILTIN_DIR = Path(__file__).parent
SUFFIXES = (".yaml", ".yml")


class InstrumentFileError(Exception):
    """A questionnaire file that cannot be used, and why."""

    def __init__(self, path: Path | str, fault: str) -> None:
        super().__init__(f"{path}: {fault}")
        self.path = str(path)
        self.fault = fault


def load_file(path: Path) -> Instrument:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InstrumentFileError(path, f"cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise InstrumentFileError(path, "is not a mapping of instrument fields")
    try:
        return Instrument.model_validate(data)
    except ValidationError as exc:
        faults = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'file'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InstrumentFileError(path, faults) from None


class Catalogue(Mapping[str, Instrument]):
    """The instruments available, by id, with cross-file references checked."""

    def __init__(self, instruments: Mapping[str, Instrument], paths: Mapping[str, str]) -> None:
        self._instruments = dict(instruments)
        self._paths = dict(paths)
        for instrument in self._instruments.values():
            self._check_continuation(instrument)

    def _check_continuation(self, instrument: Instrument) -> None:
        if instrument.continuation is None:
            return
        path = self._paths.get(instrument.id, instrument.id)
        target = self._instruments.get(instrument.continuation.instrument)
        if target is None:
            raise InstrumentFileError(
                path, f"continues to unknown instrument {instrument.continuation.instrument!r}"
            )
        for item in instrument.items:
            if item.id in target.item_ids:
                mine = [o.value for o in instrument.options_for(item.id)]
                theirs = [o.value for o in target.options_for(item.id)]
                if mine != theirs:
                    raise InstrumentFileError(
                        path, f"item {item.id!r} is carried to {target.id} with other options"
                    )

    def __getitem__(self, key: str) -> Instrument:
        return self._instruments[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._instruments)

    def __len__(self) -> int:
        return len(self._instruments)

    def path_of(self, instrument_id: str) -> str:
        return self._paths[instrument_id]


def load_catalogue(extra_dirs: Iterable[Path | str] = ()) -> Catalogue:
    """The shipped instruments plus any in ``extra_dirs``; ids must be unique."""
    instruments: dict[str, Instrument] = {}
    paths: dict[str, str] = {}
    folders = [BUILTIN_DIR, *(Path(d) for d in extra_dirs)]
    for folder in folders:
        if not folder.is_dir():
            raise InstrumentFileError(folder, "is not a folder of questionnaire files")
        for path in sorted(folder.iterdir()):
            if path.suffix not in SUFFIXES:
                continue
            instrument = load_file(path)
            if instrument.id in instruments:
                raise InstrumentFileError(
                    path, f"id {instrument.id!r} is already used by {paths[instrument.id]}"
                )
            instruments[instrument.id] = instrument
            paths[instrument.id] = str(path)
    return Catalogue(instruments, paths)


_default: Catalogue | None = None


def builtin_catalogue() -> Catalogue:
    """The shipped instruments, loaded once."""
    global _default
    if _default is None:
        _default = load_catalogue()
    return _default
