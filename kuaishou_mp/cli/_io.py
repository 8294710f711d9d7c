"""Files the command line reads and writes: the authorizers file, and the JSON Lines output.

Nothing here ever puts a token into a message: problems name the file, the line and the field,
never a value from the line (a malformed line may well hold a token).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from typing import BinaryIO

import attrs

from .._convert import json_type
from ..models import Authorizer

__all__ = [
    "APP_IDS_HELP",
    "FORMAT_HELP",
    "InputFileError",
    "JsonLinesSink",
    "PreviousRun",
    "parse_app_ids",
    "parse_authorizers",
    "read_previous_run",
]

FORMAT_HELP = (
    'JSON Lines ({"app_id": ..., "access_token": ...} per line) or CSV with a header row '
    "app_id,access_token"
)

APP_IDS_HELP = (
    'JSON Lines with "app_id", CSV with an app_id column, or one app id per line (tokens in '
    "the file, if any, are ignored)"
)

_FIELDS = ("app_id", "access_token")


class InputFileError(Exception):
    """A file given on the command line cannot be used.

    Attributes:
        source: The file name as given (``<stdin>`` for ``-``).
        line: The 1-based line the problem is on, or ``None`` when it concerns the whole file.
        problem: What is wrong, without any value taken from the file.
    """

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        self.source = source
        self.line = line
        self.problem = problem
        where = f"{source}: line {line}" if line is not None else source
        super().__init__(f"{where}: {problem}")


def parse_authorizers(data: bytes, source: str) -> list[Authorizer]:
    """Validate a whole authorizers file and return its authorizers, in file order.

    The format is detected from the content: a first non-blank character ``{`` means JSON
    Lines, anything else CSV with a header row naming the columns ``app_id`` and
    ``access_token`` (in any order; other columns are ignored). Blank lines are skipped. A UTF-8
    byte order mark is allowed.

    Raises:
        InputFileError: The file is empty, is not UTF-8, a line is not valid JSON or CSV, a
            field or column is missing or empty, or an app id appears twice (two tokens for one
            mini-program is ambiguous, and the output promises one line per app id).
    """
    text = _text(data, source, FORMAT_HELP)
    rows = _jsonl_rows(text, source) if text.lstrip().startswith("{") else _csv_rows(text, source)
    authorizers = [Authorizer(app_id, token) for app_id, token in _unique(rows, source)]
    if not authorizers:
        raise InputFileError(source, 1, "no authorizers after the header row")
    return authorizers


def parse_app_ids(data: bytes, source: str) -> list[str]:
    """Validate a whole file of app ids (tokens come from a token store); return them in order.

    Formats: JSON Lines with an ``app_id`` field (a first non-blank character ``{``); CSV
    whose header row has an ``app_id`` column (a first line with a comma, or the header
    ``app_id`` alone); otherwise one app id per line. Other fields and columns, tokens
    included, are ignored. Blank lines are skipped.

    Raises:
        InputFileError: As :func:`parse_authorizers`, for the ``app_id`` field only.
    """
    text = _text(data, source, APP_IDS_HELP)
    first = next(line.strip() for line in text.split("\n") if line.strip())
    rows: Iterator[tuple[int, str, str]]
    if first.startswith("{"):
        rows = _jsonl_rows(text, source, fields=("app_id",))
    elif "," in first or first.lower() == "app_id":
        rows = _csv_rows(text, source, fields=("app_id",))
    else:
        rows = _id_rows(text, source)
    app_ids = [app_id for app_id, _ in _unique(rows, source)]
    if not app_ids:
        raise InputFileError(source, 1, "no app ids after the header row")
    return app_ids


def _text(data: bytes, source: str, expected: str) -> str:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            source, data.count(b"\n", 0, exc.start) + 1, "not UTF-8 text"
        ) from None
    if not text.strip():
        raise InputFileError(source, 1, f"the file is empty; expected {expected}")
    return text


def _unique(rows: Iterator[tuple[int, str, str]], source: str) -> Iterator[tuple[str, str]]:
    first_seen: dict[str, int] = {}
    for line, app_id, token in rows:
        first = first_seen.setdefault(app_id, line)
        if first != line:
            raise InputFileError(
                source, line, f"duplicate app_id {app_id!r} (first on line {first})"
            )
        yield app_id, token


def _id_rows(text: str, source: str) -> Iterator[tuple[int, str, str]]:
    for number, line in _lines(text):
        value = line.strip()
        if value:
            _check_value(source, number, "app_id", value)
            yield number, value, ""


def _check_value(source: str, line: int, name: str, value: str) -> None:
    if not value.strip():
        raise InputFileError(source, line, f"empty {name}")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        # App ids and tokens never contain these; a stray quote or a pasted line break does.
        raise InputFileError(source, line, f"{name} contains whitespace or control characters")


def _lines(text: str) -> Iterator[tuple[int, str]]:
    # Not str.splitlines(): it also splits on U+2028 and friends, which JSON strings may hold.
    for number, line in enumerate(text.split("\n"), 1):
        yield number, line.removesuffix("\r")


def _jsonl_rows(
    text: str, source: str, fields: tuple[str, ...] = _FIELDS
) -> Iterator[tuple[int, str, str]]:
    for number, line in _lines(text):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            # exc.msg describes the syntax error without quoting the line.
            problem = f"not valid JSON ({exc.msg} at column {exc.colno})"
            raise InputFileError(source, number, problem) from None
        except RecursionError:
            raise InputFileError(source, number, "not valid JSON (nested too deeply)") from None
        if type(doc) is not dict:
            raise InputFileError(
                source,
                number,
                f"expected a JSON object with {' and '.join(fields)}, got {json_type(doc)}",
            )
        values: list[str] = []
        for field in fields:
            if field not in doc:
                raise InputFileError(source, number, f"missing field {field!r}")
            value = doc[field]
            if type(value) is not str:
                problem = f"field {field!r} must be a string, got {json_type(value)}"
                raise InputFileError(source, number, problem)
            _check_value(source, number, field, value)
            values.append(value)
        yield number, values[0], values[1] if len(values) > 1 else ""


def _csv_rows(
    text: str, source: str, fields: tuple[str, ...] = _FIELDS
) -> Iterator[tuple[int, str, str]]:
    # strict: an unbalanced quote is an error, not a field that swallows the following lines.
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True, strict=True)
    header: list[str] | None = None
    columns: tuple[int, ...] = ()
    try:
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in row]
                missing = [name for name in fields if name not in header]
                if missing:
                    # The row is not echoed: a file without a header starts with data.
                    raise InputFileError(
                        source,
                        number,
                        f"the CSV header has no {' and no '.join(missing)} column; the first row "
                        f"must be a header such as {','.join(fields)}",
                    )
                columns = tuple(header.index(name) for name in fields)
                continue
            if len(row) != len(header):
                problem = f"expected {len(header)} CSV fields as in the header, got {len(row)}"
                raise InputFileError(source, number, problem)
            values = [row[column].strip() for column in columns]
            for name, value in zip(fields, values, strict=True):
                _check_value(source, number, name, value)
            yield number, values[0], values[1] if len(values) > 1 else ""
    except csv.Error as exc:
        # Python 3.10's csv refuses a NUL byte itself; later ones pass it to _check_value.
        if "NUL" in str(exc):
            problem = "a field contains whitespace or control characters (NUL)"
        else:
            problem = f"not valid CSV ({exc})"
        raise InputFileError(source, reader.line_num, problem) from None


@attrs.frozen
class PreviousRun:
    """What an earlier run left in the output file, for ``--resume``.

    Attributes:
        outcomes: App id -> whether its line says ``"ok": true``.
        keep_bytes: Length of the file's complete lines. A run killed mid-write can leave a
            partial last line; it is cut off before appending so every line stays valid JSON.
    """

    outcomes: dict[str, bool]
    keep_bytes: int


def read_previous_run(path: str) -> PreviousRun:
    """Read the app ids already present in an output file (a missing file counts as empty).

    Raises:
        InputFileError: The file cannot be read, or a complete line is not one this tool wrote.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return PreviousRun({}, 0)
    except OSError as exc:
        raise InputFileError(path, None, f"cannot read the output file: {exc.strerror}") from None
    keep = data.rfind(b"\n") + 1
    outcomes: dict[str, bool] = {}
    for number, line in enumerate(data[:keep].split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except (ValueError, RecursionError):
            doc = None
        if (
            type(doc) is not dict
            or type(doc.get("app_id")) is not str
            or type(doc.get("ok")) is not bool
        ):
            raise InputFileError(
                path,
                number,
                'cannot resume: not an output line ({"app_id": ..., "ok": ...}) of this tool',
            )
        outcomes[doc["app_id"]] = doc["ok"]
    return PreviousRun(outcomes, keep)


class JsonLinesSink:
    """Writes one JSON line per result and flushes it at once.

    Flushing every line keeps the file valid and resumable whenever the process stops, and
    lets a consumer downstream of a pipe see results as they complete. It costs one write
    call per line, a small price next to a network call per line.
    """

    def __init__(self, stream: BinaryIO, *, owned: bool) -> None:
        self._stream = stream
        self._owned = owned
        self.lines = 0

    @classmethod
    def open(cls, path: str, *, append_after: int | None) -> JsonLinesSink:
        """Open ``path``: truncated, or with ``append_after`` bytes kept and appended to.

        Raises:
            InputFileError: The file cannot be opened for writing.
        """
        try:
            if append_after is None:
                stream: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed by close()
            else:
                try:
                    stream = open(path, "r+b")  # noqa: SIM115
                except FileNotFoundError:
                    stream = open(path, "wb")  # noqa: SIM115
                else:
                    stream.truncate(append_after)
                    stream.seek(append_after)
        except OSError as exc:
            problem = f"cannot write the output file: {exc.strerror}"
            raise InputFileError(path, None, problem) from None
        return cls(stream, owned=True)

    def write(self, line: bytes) -> None:
        """Write one line (without its newline) and flush it."""
        self._stream.write(line + b"\n")
        self._stream.flush()
        self.lines += 1

    def close(self) -> None:
        """Close the file if this sink opened it (standard output stays open)."""
        if self._owned:
            self._stream.close()
        else:
            self._stream.flush()
