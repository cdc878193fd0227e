"""A fresh clone needs nothing beside it: no tracked file reaches outside the repository for
data or docs, the market data the tests read is carried (gzipped, small), and every relative
link of the README and docs/ leads to a file of the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.data import DATA_DIR, M1_ASK, M1_BID, TRUEFX_TICKS, text_lines
from tests.support.postgres import PROJECT_ROOT

# Ways a file could reach a folder beside the clone (../shared/data, ROOT.parent / "shared").
_OUTSIDE = re.compile(r"\.\./shared|parent\s*/\s*[\"']shared[\"']|parents\[\d\]\s*/\s*[\"']shared[\"']")
_TEXT = {".py", ".md", ".toml", ".yaml", ".yml", ".json", ".sh", ".cfg", ".ini", ".txt", ""}
#: The files that name ../shared to keep it out: CI's guard, and this test.
_GUARDS = {".ci/run", "tests/unit/test_self_contained.py"}


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    return [PROJECT_ROOT / name for name in listed.stdout.decode().split("\0") if name]


def test_no_tracked_file_reaches_for_a_folder_beside_the_clone():
    offenders = []
    for path in tracked_files():
        if path.suffix not in _TEXT or str(path.relative_to(PROJECT_ROOT)) in _GUARDS or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if _OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()[:120]}")
    assert not offenders, "files that need a folder beside the clone:\n" + "\n".join(offenders)


def test_the_market_data_is_carried_gzipped_and_small():
    files = sorted(DATA_DIR.glob("*.gz"))
    assert {TRUEFX_TICKS, M1_BID, M1_ASK} <= set(files)
    assert sum(f.stat().st_size for f in files) < 3_000_000
    assert len(text_lines(TRUEFX_TICKS)) == 1001 and len(text_lines(M1_BID)) == len(text_lines(M1_ASK)) == 28762


def _docs() -> list[Path]:
    return [PROJECT_ROOT / "README.md", DATA_DIR / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", _docs(), ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_every_relative_link_and_data_path_of_a_doc_exists(doc):
    text = doc.read_text()
    links = [target for target in re.findall(r"\]\(([^)#\s]+)", text) if "://" not in target]
    missing = [link for link in links if not (doc.parent / link).exists()]
    # Data files the examples pass to --data / --replay, relative to the repository root.
    missing += [name for name in re.findall(r"(?<![\w/.])data/[\w.-]+\.gz", text) if not (PROJECT_ROOT / name).exists()]
    assert not missing, f"{doc.name} names what the repository does not have: {missing}"
