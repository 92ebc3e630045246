"""Reading and validating a reference set's ``manifest.csv``.

Columns: ``id, file, caption, licence, source, sha256``, and optionally ``text``. ``file`` is relative to the set
folder and may not escape it. A manifest with a ``text`` column declares a **text set**: each row's ``text`` holds
the strings the image shows, in reading order, one line of text per line of the cell (a quoted CSV field; empty:
the image shows no text, a control for invented text). Text rules of the release policies are required on a
text set (``docs/text.md``).

Loading checks every entry (existence, path, hash) and collects problems per item instead of stopping at the
first: a bad item is reported by name and the rest of the set stays usable.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import ManifestError
from qa.hashing import sha256_file
from qa.plain_text import refusal
from qa.settings import get_settings

MANIFEST = "manifest.csv"
COLUMNS = ("id", "file", "caption", "licence", "source", "sha256")
#: optional column with the true text of each image; its presence makes the set a text set
TEXT_COLUMN = "text"
#: marker of a duplicate-id problem (see :attr:`ReferenceSet.duplicates`)
DUPLICATE = "duplicate id"
#: where named reference sets live, relative to the working directory


@dataclass(frozen=True)
class ReferenceItem:
    """One reference image. ``problem`` is non-empty when the item cannot be used (and says why)."""

    id: str
    file: str
    path: Path
    caption: str
    licence: str
    source: str
    sha256: str
    problem: str = ""
    #: the true text of the image (lines separated by "\n"; "" = none or not a text set)
    text: str = ""


@dataclass
class ReferenceSet:
    """A loaded reference set. ``sha256`` identifies its content (ids, hashes, captions and, in a text set, the
    true text). ``text_set``: the manifest has a ``text`` column (:data:`TEXT_COLUMN`)."""

    name: str
    root: Path
    items: list[ReferenceItem] = field(default_factory=list)
    text_set: bool = False

    @property
    def sha256(self) -> str:
        h = hashlib.sha256()
        for item in sorted(self.items, key=lambda i: i.id):
            h.update(f"{item.id}\0{item.sha256}\0{item.caption}\n".encode())
            if self.text_set:  # sets without text keep the identity they had before text sets existed
                h.update(f"text\0{item.text}\n".encode())
        return h.hexdigest()

    @property
    def kinds(self) -> list[str]:
        """What kind of set this is, for gates that require rules on some kinds: ``["text"]`` or ``[]``."""
        return ["text"] if self.text_set else []

    @property
    def duplicates(self) -> list[str]:
        """One line per manifest row whose id an earlier row already has (naming both rows)."""
        return [i.problem for i in self.items if DUPLICATE in i.problem]

    @property
    def good(self) -> list[ReferenceItem]:
        return [i for i in self.items if not i.problem]

    @property
    def bad(self) -> list[ReferenceItem]:
        return [i for i in self.items if i.problem]


def resolve_reference_set(name_or_path: str | Path) -> Path:
    """A reference set folder from a name under ``reference_sets/`` or a path."""
    candidate = Path(name_or_path)
    if (candidate / MANIFEST).exists():
        return candidate
    folders = get_settings().reference_set_dirs  # ./reference_sets, then the qa source tree's
    for folder in folders:
        if (folder / str(name_or_path) / MANIFEST).exists():
            return folder / str(name_or_path)
    named = folders[0] / str(name_or_path)
    available = sorted({p.name for f in folders if f.is_dir() for p in f.glob("*") if (p / MANIFEST).exists()})
    raise ManifestError(
        f"reference set {str(name_or_path)!r} not found (no {MANIFEST} at {candidate} or {named})",
        "make one with `qa refset build FOLDER`"
        + (f"; available: {', '.join(available)}" if available else ""),
    )


def load_reference_set(name_or_path: str | Path, verify_hashes: bool = True) -> ReferenceSet:
    """Load and validate a reference set. Raises :class:`ManifestError` only for an unreadable manifest."""
    root = resolve_reference_set(name_or_path)
    manifest = root / MANIFEST
    try:
        # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark, which is not part of the first
        # column's name; column names are matched without case or surrounding spaces ("ID", " file")
        with open(manifest, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            names = [(h or "").strip().lower() for h in header]
            reader.fieldnames = names
            missing = [c for c in ("id", "file") if c not in names]
            if missing:
                raise ManifestError(f"{manifest}: missing column(s) {', '.join(missing)} (its header reads "
                                    f"{header!r})", f"the first line names the columns, comma-separated: "
                                    f"{','.join(COLUMNS)}")
            rows = list(reader)
            text_set = TEXT_COLUMN in names
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{manifest}: not UTF-8 text ({exc})",
                            "save it as UTF-8 (a spreadsheet's \"CSV UTF-8\"), or rebuild it with `qa refset build`"
                            ) from exc
    except (OSError, csv.Error) as exc:
        raise ManifestError(f"{manifest}: cannot read ({exc})") from exc
    root_resolved = root.resolve()
    items: list[ReferenceItem] = []
    seen: dict[str, int] = {}  # id -> the manifest line that has it first
    for n, row in enumerate(rows, start=2):
        item_id = (row.get("id") or "").strip()
        rel = (row.get("file") or "").strip()
        problem = ""
        try:
            path = (root / rel).resolve()
        except (OSError, ValueError) as exc:  # e.g. an embedded NUL byte, a symlink loop
            path, rel_error = root_resolved / "__refused__", f"file {rel!r} is not a usable path ({exc})"
        else:
            rel_error = ""
        if not item_id:
            item_id = f"line-{n}"
            problem = f"{manifest}:{n}: empty id"
        elif refused := refusal("id", item_id):  # it would be obeyed in a terminal, a CI summary, a log
            item_id = f"line-{n}"
            problem = f"{manifest}:{n}: {refused}"
        elif item_id in seen:
            problem = (f"{manifest}:{n}: {DUPLICATE} {item_id!r} (file {rel!r}); line {seen[item_id]} has the same "
                       "id: every row needs its own id")
        seen.setdefault(item_id, n)
        if not problem and rel_error:
            problem = f"{manifest}:{n}: {rel_error}"
        elif not problem and (not rel or Path(rel).is_absolute() or not path.is_relative_to(root_resolved)):
            problem = f"{manifest}:{n}: file {rel!r} escapes the set folder {root}"
            path = root_resolved / "__refused__"
        elif not problem and not path.is_file():
            problem = f"{manifest}:{n}: file {rel!r} not found"
        expected = (row.get("sha256") or "").strip().lower()
        actual = expected
        if not problem and verify_hashes:
            try:
                actual = sha256_file(path)
            except OSError as exc:
                actual, problem = expected, f"{manifest}:{n}: {rel} cannot be read ({exc})"
            if not problem and expected and actual != expected:
                problem = f"{manifest}:{n}: {rel} sha256 is {actual[:12]}..., manifest says {expected[:12]}..."
        items.append(
            ReferenceItem(
                id=item_id,
                file=rel,
                path=path,
                caption=(row.get("caption") or "").strip(),
                licence=(row.get("licence") or "").strip(),
                source=(row.get("source") or "").strip(),
                sha256=actual,
                problem=problem,
                text=normalise_text(row.get(TEXT_COLUMN) or ""),
            )
        )
    if not items:
        raise ManifestError(f"{manifest}: no items", "add rows, or rebuild with `qa refset build`")
    return ReferenceSet(name=root.name, root=root, items=items, text_set=text_set)


def normalise_text(text: str) -> str:
    """True text as stored: each line's runs of spaces collapsed, blank lines and edge spaces dropped."""
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def write_manifest(root: Path, items: list[dict[str, str]], text_set: bool | None = None) -> Path:
    """Write ``manifest.csv`` in ``root`` from dicts with the manifest columns; returns its path. ``text_set``:
    write the ``text`` column (a text set); None: when any item has a ``text`` key."""
    path = root / MANIFEST
    if text_set is None:
        text_set = any(TEXT_COLUMN in item for item in items)
    columns = [*COLUMNS, TEXT_COLUMN] if text_set else list(COLUMNS)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for item in items:
            writer.writerow({c: item.get(c, "") for c in columns})
    return path
