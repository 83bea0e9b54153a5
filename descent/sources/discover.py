"""Find the image files among what the user named: folders, files and glob patterns; or the video files.

Videos are read when named (`descent build part1.mp4 part2.mp4`), or found in a folder that holds
no image frames; a video in a folder of frames (a preview made from them) is skipped.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from descent.errors import DescentError, UsageError
from descent.sources.products import pair_labels
from descent.sources.video import is_video

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True, slots=True)
class Discovery:
    images: list[Path]  # image files and archive products, in natural name order
    skipped: list[Path]  # files that are not images we read
    labels: dict[Path, Path | None]  # archive products: data file (or lone label) -> its label
    videos: list[Path] = field(default_factory=list)  # video files, in natural name order (then no images)

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


def _gather(inputs: list[str], *, recursive: bool) -> tuple[dict[Path, None], set[Path]]:
    """Every file the inputs name (an ordered set: a file named twice is read once), and those named
    or matched by a pattern rather than found in a folder."""
    found: dict[Path, None] = {}
    named: set[Path] = set()
    for item in inputs:
        path = Path(item)
        if any(ch in item for ch in "*?["):
            matches = [Path(m) for m in glob.glob(item, recursive=True)]
            if not matches:
                raise DescentError(f"{item}: the pattern matches no file")
            found.update((m, None) for m in matches if m.is_file())
            named.update(m for m in matches if m.is_file())
        elif path.is_dir():
            walker = _walk(path) if recursive else path.iterdir()
            found.update((p, None) for p in walker if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            found[path] = None
            named.add(path)
        else:
            raise DescentError(f"{item}: no such folder or file")
    return found, named


def discover(inputs: list[str], *, recursive: bool = False) -> Discovery:
    """All image files named by `inputs`, with the other files found counted as skipped."""
    if not inputs:
        raise DescentError("no input given: name a folder of frames, files, or a quoted glob like 'frames/*.png'")
    found, named = _gather(inputs, recursive=recursive)
    videos = sorted((p for p in found if is_video(p)), key=natural_key)
    if videos:
        found = {p: None for p in found if not is_video(p)}
    products, lone_labels = pair_labels(list(found))
    labels: dict[Path, Path | None] = {**products, **{label: None for label in lone_labels}}
    used = set(labels) | {label for label in products.values() if label is not None}
    images = sorted([*(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES), *labels], key=natural_key)
    skipped = [p for p in found if p.suffix.lower() not in IMAGE_SUFFIXES and p not in used]
    if videos and images:
        if any(v in named for v in videos):
            raise UsageError(f"{videos[0]} and {len(images)} image frames given together: give the videos or the "
                             "frames, not both")
        skipped += videos  # a video among the frames (a preview made from them?) is not one of them
    elif videos:
        return Discovery(images=[], skipped=skipped, labels={}, videos=videos)
    if not images:
        where = ", ".join(inputs)
        if not found:
            raise DescentError(f"{where}: no files found (use --recursive for sub-folders)")
        raise DescentError(f"{where}: no images among {len(found)} files; descent reads PNG, JPEG, TIFF, BMP, "
                           "PDS3/PDS4 archive products and videos (MP4, MOV, MKV, AVI, WebM, GIF)")
    return Discovery(images=images, skipped=skipped, labels=labels)
