"""Loading questionnaire files into a checked catalogue.

The six shipped instruments live beside this module, and the shared
vocabularies of everyday answers in ``vocabulary/`` beside them; a practice
may add its own of either by putting files in folders named by configuration
(``PROMBOT_INSTRUMENTS_DIRS`` in the shell; vocabularies in a ``vocabulary``
folder inside). Every file is validated on load, and any fault is raised as
``InstrumentFileError`` naming the file and the fault, so a bad file stops the
service at start-up rather than at a patient's third answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from bot.instruments.schema import Instrument
from bot.instruments.vocabulary import Vocabulary

BUILTIN_DIR = Path(__file__).parent
VOCABULARY_FOLDER = "vocabulary"
SUFFIXES = (".yaml", ".yml")

Vocabularies = Mapping[str, Vocabulary]


class InstrumentFileError(Exception):
    """A questionnaire file that cannot be used, and why."""

    def __init__(self, path: Path | str, fault: str) -> None:
        super().__init__(f"{path}: {fault}")
        self.path = str(path)
        self.fault = fault


# libyaml's safe loader when PyYAML has it (ten times faster: every app start reads
# every file), the pure-Python one otherwise; both build the same plain data.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_mapping(path: Path, what: str) -> dict:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InstrumentFileError(path, f"cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise InstrumentFileError(path, f"is not a mapping of {what} fields")
    return data


def _faults(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'file'}: {err['msg']}" for err in exc.errors()
    )


def load_vocabulary(path: Path) -> Vocabulary:
    """One vocabulary file, checked on its own (its id is its file name)."""
    data = _read_mapping(path, "vocabulary")
    try:
        vocabulary = Vocabulary.model_validate(data)
    except ValidationError as exc:
        raise InstrumentFileError(path, _faults(exc)) from None
    if vocabulary.id != path.stem:
        raise InstrumentFileError(path, f"id {vocabulary.id!r} is not the file's name")
    return vocabulary


def load_vocabularies(folders: Iterable[Path]) -> dict[str, Vocabulary]:
    """Every vocabulary in the ``vocabulary`` folder of each folder given; ids must be unique."""
    found: dict[str, Vocabulary] = {}
    paths: dict[str, Path] = {}
    for folder in folders:
        inside = folder / VOCABULARY_FOLDER
        if not inside.is_dir():
            continue
        for path in sorted(inside.iterdir()):
            if path.suffix not in SUFFIXES:
                continue
            vocabulary = load_vocabulary(path)
            if vocabulary.id in found:
                raise InstrumentFileError(
                    path,
                    f"vocabulary {vocabulary.id!r} is already defined by {paths[vocabulary.id]}",
                )
            found[vocabulary.id] = vocabulary
            paths[vocabulary.id] = path
    return found


def _with_vocabularies(
    path: Path, instrument: Instrument, vocabularies: Vocabularies
) -> Instrument:
    option_sets = {}
    for name, option_set in instrument.option_sets.items():
        if option_set.vocabulary is None:
            option_sets[name] = option_set
            continue
        vocabulary = vocabularies.get(option_set.vocabulary)
        if vocabulary is None:
            known = ", ".join(sorted(vocabularies)) or "none"
            raise InstrumentFileError(
                path,
                f"option set {name!r} uses unknown vocabulary {option_set.vocabulary!r} "
                f"(known: {known})",
            )
        try:
            option_sets[name] = option_set.with_vocabulary(vocabulary)
        except ValueError as exc:
            raise InstrumentFileError(path, f"option set {name!r}: {exc}") from None
    return instrument.model_copy(update={"option_sets": option_sets})


def load_file(path: Path, vocabularies: Vocabularies | None = None) -> Instrument:
    """One questionnaire file, checked, with its option sets' vocabularies attached.

    ``vocabularies`` defaults to the shipped ones.
    """
    data = _read_mapping(path, "instrument")
    try:
        instrument = Instrument.model_validate(data)
    except ValidationError as exc:
        raise InstrumentFileError(path, _faults(exc)) from None
    if vocabularies is None:
        vocabularies = builtin_vocabularies()
    return _with_vocabularies(path, instrument, vocabularies)


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
    """The shipped instruments plus any in ``extra_dirs``; ids must be unique.

    Vocabularies come from the ``vocabulary`` folder beside the shipped files
    and inside each extra folder, and any instrument may use any of them.
    """
    instruments: dict[str, Instrument] = {}
    paths: dict[str, str] = {}
    folders = [BUILTIN_DIR, *(Path(d) for d in extra_dirs)]
    for folder in folders:
        if not folder.is_dir():
            raise InstrumentFileError(folder, "is not a folder of questionnaire files")
    vocabularies = load_vocabularies(folders)
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.suffix not in SUFFIXES:
                continue
            instrument = load_file(path, vocabularies)
            if instrument.id in instruments:
                raise InstrumentFileError(
                    path, f"id {instrument.id!r} is already used by {paths[instrument.id]}"
                )
            instruments[instrument.id] = instrument
            paths[instrument.id] = str(path)
    return Catalogue(instruments, paths)


_default: Catalogue | None = None
_default_vocabularies: dict[str, Vocabulary] | None = None


def builtin_vocabularies() -> dict[str, Vocabulary]:
    """The shipped vocabularies, loaded once."""
    global _default_vocabularies
    if _default_vocabularies is None:
        _default_vocabularies = load_vocabularies([BUILTIN_DIR])
    return _default_vocabularies


def builtin_catalogue() -> Catalogue:
    """The shipped instruments, loaded once."""
    global _default
    if _default is None:
        _default = load_catalogue()
    return _default
