"""PDS3 products: a label attached at the start of the data file (Chang'e-3 `.2A`, Mars 2020 EDL `.IMG`,
which also carries a VICAR header) or detached beside it (MARDI and Mastcam RDR `.LBL` + `.IMG`).

`pvl` decodes the label's values (pointers with units, quoted names, dates). It is slow on whole
labels (about 0.2 s for a 22 KB MSL label, minutes for an archive), so it is handed only the
statements descent reads: the keywords below, wherever they stand, and the whole IMAGE object.
"""

from __future__ import annotations

import re
import threading
import warnings
from pathlib import Path
from typing import Any

from descent.clock import parse_clock, parse_utc
from descent.errors import FrameReadError
from descent.frames import BandStorage, ProductLabel, RawLayout
from descent.sources.label import bayer_from_label

WANTED = frozenset({
    "PDS_VERSION_ID", "RECORD_BYTES", "LABEL_RECORDS", "^IMAGE", "INSTRUMENT_ID", "PRODUCT_TYPE",
    "START_TIME", "IMAGE_TIME", "SPACECRAFT_CLOCK_START_COUNT", "CFA_TYPE",
})
ATTACHED_MARKERS = (b"PDS_VERSION_ID", b"ODL_VERSION_ID", b"SFDU_LABEL")
MAX_LABEL_BYTES = 1 << 20
_STATEMENT = re.compile(r"^\s*(?P<key>\^?[A-Za-z][\w:]*)\s*=")
_BLOCK_START = re.compile(r"^\s*(?:BEGIN_)?(?P<kind>OBJECT|GROUP)\s*=\s*(?P<name>\w+)", re.IGNORECASE)
_BLOCK_END = re.compile(r"^\s*END_(?:OBJECT|GROUP)\b", re.IGNORECASE)
_END = re.compile(rb"(?m)^\s*END\s*$")

# SAMPLE_TYPE -> numpy kind with byte order ("u" unsigned, "i" signed); the size comes from SAMPLE_BITS.
_BIG_UNSIGNED = ("UNSIGNED_INTEGER", "MSB_UNSIGNED_INTEGER", "SUN_UNSIGNED_INTEGER", "MAC_UNSIGNED_INTEGER")
_LITTLE_UNSIGNED = ("LSB_UNSIGNED_INTEGER", "PC_UNSIGNED_INTEGER", "VAX_UNSIGNED_INTEGER")
_BIG_SIGNED = ("INTEGER", "MSB_INTEGER", "SUN_INTEGER", "MAC_INTEGER")
_LITTLE_SIGNED = ("LSB_INTEGER", "PC_INTEGER", "VAX_INTEGER")
SAMPLE_TYPES = {**{t: ">u" for t in _BIG_UNSIGNED}, **{t: "<u" for t in _LITTLE_UNSIGNED},
                **{t: ">i" for t in _BIG_SIGNED}, **{t: "<i" for t in _LITTLE_SIGNED}}
STORAGE = {"BAND_SEQUENTIAL": BandStorage.BAND_SEQUENTIAL, "LINE_INTERLEAVED": BandStorage.LINE_INTERLEAVED,
           "SAMPLE_INTERLEAVED": BandStorage.SAMPLE_INTERLEAVED}


def has_attached_label(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return any(marker in head for marker in ATTACHED_MARKERS)


def attached_label_text(path: Path) -> str:
    """The label at the start of a data file, up to its END statement."""
    with path.open("rb") as f:
        head = f.read(MAX_LABEL_BYTES)
    end = _END.search(head)
    if end is None:
        raise FrameReadError(path, f"the attached PDS3 label has no END statement in its first {MAX_LABEL_BYTES} bytes")
    return head[: end.end()].decode("latin-1")


def reduce_label(text: str) -> str:
    """The statements descent reads: WANTED keywords at any depth (first one wins) and the first IMAGE object."""
    kept: list[str] = []
    seen: set[str] = set()
    depth = 0
    image_depth: int | None = None  # the depth of the IMAGE object while inside it
    image_done = False
    balance = 0  # open parentheses and quotes of a kept statement that goes on over several lines
    for line in text.splitlines():
        if balance > 0:
            kept.append(line)
            balance += line.count("(") - line.count(")") + line.count('"') % 2
            continue
        start, end = _BLOCK_START.match(line), _BLOCK_END.match(line)
        if start:
            depth += 1
            is_image = start.group("kind").upper() == "OBJECT" and start.group("name").upper() == "IMAGE"
            if is_image and not image_done and image_depth is None:
                image_depth = depth
        if image_depth is not None:
            kept.append(line)
        elif (m := _STATEMENT.match(line)) and (key := m.group("key").upper()) in WANTED and key not in seen:
            seen.add(key)
            kept.append(line)
            balance = line.count("(") - line.count(")") + line.count('"') % 2
        if end:
            if depth == image_depth:
                image_depth, image_done = None, True
            depth -= 1
    return "\n".join(kept) + "\nEND\n"


# pvl warns about optional speed-ups and its own deprecations, on import and while parsing: nothing a
# user can act on. catch_warnings swaps process-wide state, so calls are serialised; pvl is pure Python
# and holds the GIL anyway, so the lock costs no parallelism.
_PVL_LOCK = threading.Lock()


def parse_label(text: str, source: Path) -> dict[str, Any]:
    try:
        with _PVL_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pvl

            return dict(pvl.loads(reduce_label(text)))
    except Exception as exc:  # noqa: BLE001 - pvl raises several types for a malformed label
        raise FrameReadError(source, f"cannot parse the PDS3 label ({type(exc).__name__}: {exc})") from None


def read_pds3_label(label_path: Path, data_path: Path | None = None) -> tuple[RawLayout, ProductLabel]:
    """The IMAGE object of a PDS3 product, detached (`label_path` is the .LBL) or attached (the data file)."""
    attached = has_attached_label(label_path) and label_path.suffix.lower() not in (".lbl", ".lab")
    try:
        text = attached_label_text(label_path) if attached else label_path.read_text("latin-1")
    except OSError as exc:
        raise FrameReadError(label_path, f"cannot read the label ({exc.strerror or exc})") from None
    if "MSLMMM-COMPRESSED" in text.upper():
        raise FrameReadError(label_path, "a compressed MSL EDR (MSLMMM-COMPRESSED): it needs the camera maker's "
                                         "decompressor; use the RDR products instead (.IMG with a .LBL, DRCX/DRXX)")
    label = parse_label(text, label_path)
    image = label.get("IMAGE")
    if not isinstance(image, dict):
        raise FrameReadError(label_path, "the PDS3 label has no IMAGE object")
    encoding = str(image.get("ENCODING_TYPE", "NONE")).upper()
    if encoding not in ("NONE", "N/A", "NULL"):
        raise FrameReadError(label_path, f"the image is compressed ({encoding}); decompress it with the mission's "
                                         "tools first, or use the uncompressed (RDR) product")
    data_file, offset = _pointer(label.get("^IMAGE"), label, label_path, data_path if not attached else label_path)
    layout = _layout(image, data_file, offset, label_path)
    start = label.get("START_TIME") or label.get("IMAGE_TIME")
    clock = label.get("SPACECRAFT_CLOCK_START_COUNT")
    mask = image.get("SAMPLE_BIT_MASK")
    instrument = label.get("INSTRUMENT_ID")
    return layout, ProductLabel(
        kind="PDS3 attached" if attached else "PDS3", label=label_path,
        instrument=str(instrument) if instrument else None,
        start_time_s=_time_value(start), clock_s=parse_clock(str(clock)) if clock is not None else None,
        cfa=bayer_from_label(str(label["CFA_TYPE"])) if "CFA_TYPE" in label else None,
        sample_bits=int(mask).bit_length() if isinstance(mask, int) and mask > 0 else None,
    )


def _time_value(value: Any) -> float | None:
    if value is None:
        return None
    if hasattr(value, "timestamp"):  # pvl gives datetimes; a time without a zone is UTC in PDS
        from datetime import UTC

        return float((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())
    return parse_utc(str(value))


def _count(value: Any) -> tuple[int, bool]:
    """A pointer's position: (number, counts_bytes). `3` is record 3; `3 <BYTES>` is byte 3."""
    if hasattr(value, "value") and hasattr(value, "units"):
        return int(value.value), str(value.units).upper().startswith("BYTE")
    return int(value), False


def _pointer(pointer: Any, label: dict[str, Any], label_path: Path, data_path: Path | None) -> tuple[Path, int]:
    """Where ^IMAGE points: the file and the byte offset (PDS3 records and bytes count from 1)."""
    if pointer is None:
        raise FrameReadError(label_path, "the PDS3 label has no ^IMAGE pointer")
    name: str | None = None
    position: Any = pointer
    is_quantity = hasattr(pointer, "units")  # `301 <BYTES>`: pvl's Quantity is a namedtuple, not a (file, n) pair
    if isinstance(pointer, (list, tuple)) and not is_quantity:
        name, position = str(pointer[0]), (pointer[1] if len(pointer) > 1 else 1)
    elif isinstance(pointer, str):
        name, position = pointer, 1
    number, in_bytes = _count(position)
    record_bytes = int(label.get("RECORD_BYTES") or 0)
    if not in_bytes and number > 1 and record_bytes <= 0:
        raise FrameReadError(label_path, "^IMAGE counts records but the label has no RECORD_BYTES")
    offset = number - 1 if in_bytes else (number - 1) * record_bytes
    if name is not None:
        return _sibling(label_path, name), offset
    return (data_path or label_path), offset


def _sibling(label_path: Path, name: str) -> Path:
    """The data file beside the label; archives written on other systems change the case of names."""
    candidate = label_path.with_name(name)
    if candidate.exists():
        return candidate
    wanted = name.lower()
    for other in label_path.parent.iterdir():
        if other.name.lower() == wanted:
            return other
    return candidate


def _layout(image: dict[str, Any], data_file: Path, offset: int, label_path: Path) -> RawLayout:
    sample_type = str(image.get("SAMPLE_TYPE", "")).upper()
    bits = int(image.get("SAMPLE_BITS", 0) or 0)
    if sample_type not in SAMPLE_TYPES or bits not in (8, 16, 32):
        raise FrameReadError(label_path, f"SAMPLE_TYPE {sample_type or '?'} with SAMPLE_BITS {bits} is not "
                                         "supported; descent reads 8-, 16- and 32-bit integer images")
    storage = str(image.get("BAND_STORAGE_TYPE", "BAND_SEQUENTIAL")).upper()
    try:
        lines, samples, bands = (int(image[k]) if k in image else 1 for k in ("LINES", "LINE_SAMPLES", "BANDS"))
    except (TypeError, ValueError):
        raise FrameReadError(label_path, "LINES, LINE_SAMPLES and BANDS must be whole numbers") from None
    return RawLayout(
        file=data_file, offset=offset, lines=lines, samples=samples, bands=bands,
        dtype=SAMPLE_TYPES[sample_type] + str(bits // 8), storage=STORAGE.get(storage, BandStorage.BAND_SEQUENTIAL),
        line_prefix_bytes=int(image.get("LINE_PREFIX_BYTES", 0) or 0),
        line_suffix_bytes=int(image.get("LINE_SUFFIX_BYTES", 0) or 0),
    )
