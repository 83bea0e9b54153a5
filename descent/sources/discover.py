"""Find the image files among what the user named: folders, files and glob patterns."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from descent.errors import DescentError
from descent.sources.products import pair_labels

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True, slots=True)
class Discovery:
    images: list[Path]  # image files and archive products, in natural name order
    skipped: list[Path]  # files that are not images we read
    labels: dict[Path, Path | None]  # archive products: data file (or lone label) -> its label

def natural_key(path: Path) -> tuple[object, ...]:
    """Sort key where numbers compare as numbers: frame_9 before frame_10."""
    parts = _DIGITS.split(path.name.lower())
    # Text sits at even positions and numbers at odd ones, so like always compares with like.
    name_key = tuple(int(p) if i % 2 else p for i, p in enumerate(parts))
    return (name_key, str(path.parent))


def _walk(folder: Path) -> Iterator[Path]:
    """Every file below `folder`, through linked sub-folders too (each real folder once, so a loop ends)."""
    seen: set[str] = set()
    for root, folders, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            folders[:] = []
            continue
        seen.add(real)
        folders[:] = [f for f in folders if not f.startswith(".")]
        yield from (Path(root) / name for name in files)


def discover(inputs: list[str], *, recursive: bool = False) -> Discovery:
    """All image files named by `inputs`, with the other files found counted as skipped."""
    if not inputs:
        raise DescentError("no input given: name a folder of frames, files, or a quoted glob like 'frames/*.png'")
    found: dict[Path, None] = {}  # ordered set: a file named twice is read once
    for item in inputs:
        path = Path(item)
        if any(ch in item for ch in "*?["):
            matches = [Path(m) for m in glob.glob(item, recursive=True)]
            if not matches:
                raise DescentError(f"{item}: the pattern matches no file")
            found.update((m, None) for m in matches if m.is_file())
        elif path.is_dir():
            walker = _walk(path) if recursive else path.iterdir()
            found.update((p, None) for p in walker if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            found[path] = None
        else:
            raise DescentError(f"{item}: no such folder or file")
    products, lone_labels = pair_labels(list(found))
    labels: dict[Path, Path | None] = {**products, **{label: None for label in lone_labels}}
    used = set(labels) | {label for label in products.values() if label is not None}
    images = sorted([*(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES), *labels], key=natural_key)
    skipped = [p for p in found if p.suffix.lower() not in IMAGE_SUFFIXES and p not in used]
    if not images:
        where = ", ".join(inputs)
        if not found:
            raise DescentError(f"{where}: no files found (use --recursive for sub-folders)")
        raise DescentError(f"{where}: no images among {len(found)} files; descent reads PNG, JPEG, TIFF, BMP "
                           "and PDS3/PDS4 archive products")
    return Discovery(images=images, skipped=skipped, labels=labels)
