"""PDS4 products: a binary array file with an XML label beside it (Chang'e GRAS `.2A` + `.2AL`).

The label's `Array_2D_Image` or `Array_3D_Image` is read for the array's offset, data type and axis
sizes; `file_size` is not trusted (Chang'e labels state it wrongly), the array description is.
Namespaces differ between missions and dictionary versions, so elements are matched by local name.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from descent.clock import parse_utc
from descent.errors import FrameReadError
from descent.frames import BandStorage, ProductLabel, RawLayout

# PDS4 data_type -> numpy dtype. Floating-point types are listed so the message can name them.
DATA_TYPES = {
    "UnsignedByte": "u1", "SignedByte": "i1",
    "UnsignedLSB2": "<u2", "UnsignedMSB2": ">u2", "SignedLSB2": "<i2", "SignedMSB2": ">i2",
    "UnsignedLSB4": "<u4", "UnsignedMSB4": ">u4", "SignedLSB4": "<i4", "SignedMSB4": ">i4",
}
ARRAY_CLASSES = ("Array_2D_Image", "Array_3D_Image", "Array_3D_Spectrum", "Array_2D", "Array_3D")


def _find(element: ET.Element, path: str) -> ET.Element | None:
    return element.find("/".join(f"{{*}}{part}" for part in path.split("/")))


def _text(element: ET.Element, path: str) -> str | None:
    found = _find(element, path)
    return found.text.strip() if found is not None and found.text else None


def read_pds4_label(label_path: Path, data_path: Path | None = None) -> tuple[RawLayout, ProductLabel]:
    """The first image array of a PDS4 product and what its label says about it."""
    try:
        root = ET.parse(label_path).getroot()
    except ET.ParseError as exc:
        raise FrameReadError(label_path, f"not a readable PDS4 XML label ({exc})") from None
    except OSError as exc:
        raise FrameReadError(label_path, f"cannot read the label ({exc.strerror or exc})") from None
    area = _find(root, "File_Area_Observational")
    if area is None:
        raise FrameReadError(label_path, "a PDS4 label without File_Area_Observational: not an observational product")
    if data_path is None:
        name = _text(area, "File/file_name")
        if not name:
            raise FrameReadError(label_path, "the PDS4 label names no data file (File/file_name)")
        data_path = label_path.with_name(name)
    array = next((a for cls in ARRAY_CLASSES if (a := _find(area, cls)) is not None), None)
    if array is None:
        raise FrameReadError(label_path, "the PDS4 label describes no 2D or 3D image array")
    layout = _layout(array, data_path, label_path)
    instrument = next((_text(c, "name") for c in root.iter() if c.tag.endswith("Observing_System_Component")
                       and (_text(c, "type") or "").lower() == "instrument"), None)
    start = _text(root, "Observation_Area/Time_Coordinates/start_date_time")
    return layout, ProductLabel(
        kind="PDS4", label=label_path, instrument=instrument,
        start_time_s=parse_utc(start) if start else None, clock_s=None, cfa=None,
        sample_bits=None,
    )


def _layout(array: ET.Element, data_path: Path, label_path: Path) -> RawLayout:
    data_type = _text(array, "Element_Array/data_type") or "?"
    if data_type not in DATA_TYPES:
        raise FrameReadError(label_path, f"data type {data_type!r} is not supported; descent reads "
                                         f"{', '.join(DATA_TYPES)}")
    axes: dict[str, tuple[int, int]] = {}
    for axis in array.findall("{*}Axis_Array"):
        name = (_text(axis, "axis_name") or "").lower()
        elements, sequence = _text(axis, "elements"), _text(axis, "sequence_number")
        if not (elements and sequence and elements.isdigit() and sequence.isdigit()):
            raise FrameReadError(label_path, f"Axis_Array {name!r} lacks whole-number elements or sequence_number")
        axes[name] = (int(sequence), int(elements))
    order = [name for name, _ in sorted(axes.items(), key=lambda item: item[1][0])]  # slowest axis first
    lines = next((axes[n][1] for n in ("line", "lines", "y") if n in axes), None)
    samples = next((axes[n][1] for n in ("sample", "samples", "x") if n in axes), None)
    if lines is None or samples is None:
        raise FrameReadError(label_path, f"axes {order} have no Line and Sample axis")
    band_name = next((n for n in order if n.startswith("band")), None)
    bands = axes[band_name][1] if band_name else 1
    storage = BandStorage.BAND_SEQUENTIAL
    if band_name == order[-1]:
        storage = BandStorage.SAMPLE_INTERLEAVED
    elif band_name and band_name == order[1]:
        storage = BandStorage.LINE_INTERLEAVED
    offset = _text(array, "offset") or "0"
    if not offset.isdigit():
        raise FrameReadError(label_path, f"array offset {offset!r} is not a whole number of bytes")
    return RawLayout(file=data_path, offset=int(offset), lines=lines, samples=samples, bands=bands,
                     dtype=DATA_TYPES[data_type], storage=storage)
