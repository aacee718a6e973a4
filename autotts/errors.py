"""User-facing errors: one line that names the file/field/value, exit code 2, no traceback."""

from __future__ import annotations


class AutottsError(Exception):
    """An error caused by the user's input (a file, a flag, a config value).

    The CLI prints ``str(err)`` as a single line and exits with ``exit_code``.
    """

    exit_code = 2


class StoreError(AutottsError):
    """A replay store that is malformed: names the file, the question index and the field."""

    def __init__(self, path: str, message: str, question: int | None = None, field: str | None = None):
        where = str(path)
        if question is not None:
            where += f": question {question}"
        if field is not None:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")
        self.path, self.question, self.field = path, question, field
