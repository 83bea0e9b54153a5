"""Planetary archive products as frames: find each product's label, read its layout and capture time.

A product is a data file with a label: PDS4 XML beside it (`X.2A` + `X.2AL`, `X.img` + `X.xml`),
a PDS3 label beside it (`X.IMG` + `X.LBL`), or a PDS3 label at the start of the data file.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from descent.errors import FrameReadError
from descent.frames import FrameInfo, ProductLabel, RawLayout
from descent.sources.pds3 import has_attached_label, read_pds3_label
from descent.sources.pds4 import read_pds4_label
from descent.sources.raw import SUPPORTED_BANDS

DATA_SUFFIXES = frozenset({".2a", ".2b", ".2c", ".img", ".dat"})
PDS4_LABEL_SUFFIXES = frozenset({".xml", ".2al", ".2bl", ".2cl"})
PDS3_LABEL_SUFFIXES = frozenset({".lbl", ".lab"})
LABEL_SUFFIXES = PDS4_LABEL_SUFFIXES | PDS3_LABEL_SUFFIXES

# Colour filter arrays by instrument, where the label does not say (REFERENCE.md): Chang'e PCAM and
# MARDI's single-band products are RGGB mosaics; Chang'e and Mars 2020 landing cameras are grey.
MOSAIC_INSTRUMENTS = ("PCAM", "MARDI", "MARS_DESCENT_IMAGER")


def probe_product(path: Path, label: Path | None) -> FrameInfo:
    """A product's frame description from its label: size, depth, capture time, colour filter."""
    if label is None and path.suffix.lower() in LABEL_SUFFIXES:
        label, path = path, None  # type: ignore[assignment]  # a label whose data file has another name
    if label is not None and label.suffix.lower() in PDS4_LABEL_SUFFIXES:
        layout, info = read_pds4_label(label, path)
    elif label is not None:
        layout, info = read_pds3_label(label, path)
    elif has_attached_label(path):
        layout, info = read_pds3_label(path)
    elif path.suffix.lower() == ".dat":
        raise FrameReadError(path, "a raw data file without a label: if it is a compressed MSL EDR it needs the "
                                   "camera maker's decompressor; use the RDR products (.IMG with a .LBL) instead")
    else:
        raise FrameReadError(path, "no label found: put the product's label (.xml, .2AL, .LBL) beside it")
    try:
        layout.check(layout.file.stat().st_size)
    except OSError as exc:
        raise FrameReadError(layout.file, f"cannot read the data file its label names ({exc.strerror or exc})") \
            from None
    if layout.bands not in SUPPORTED_BANDS:
        raise FrameReadError(layout.file, f"{layout.bands} bands: descent reads grey (1 band) or colour (3 bands)")
    return FrameInfo(path=layout.file, width=layout.samples, height=layout.lines, channels=layout.bands,
                     bit_depth=layout.bit_depth, layout=layout, label=_with_default_cfa(info, layout))


def _with_default_cfa(info: ProductLabel, layout: RawLayout) -> ProductLabel:
    if info.cfa is not None:
        return info
    names = f"{info.instrument or ''} {layout.file.name}".upper()
    mosaic = layout.bands == 1 and any(instrument in names for instrument in MOSAIC_INSTRUMENTS)
    return replace(info, cfa="RGGB" if mosaic else None)


def pair_labels(files: list[Path]) -> tuple[dict[Path, Path | None], list[Path]]:
    """Products among `files`: each data file with its label (None: attached or missing), and the
    labels that describe no data file by name (their pointer names it; they are probed as frames)."""
    by_stem: dict[tuple[Path, str], Path] = {}
    for f in files:
        if f.suffix.lower() in LABEL_SUFFIXES:
            by_stem.setdefault((f.parent, f.stem.lower()), f)
    products: dict[Path, Path | None] = {}
    claimed: set[Path] = set()
    for f in files:
        if f.suffix.lower() in DATA_SUFFIXES:
            label = by_stem.get((f.parent, f.stem.lower()))
            products[f] = label
            if label is not None:
                claimed.add(label)
    lone_labels = [f for f in by_stem.values() if f not in claimed and _is_product_label(f)]
    return products, lone_labels


def _is_product_label(path: Path) -> bool:
    """A lone .xml is only a frame if it is a PDS4 observational label (other XML is left alone)."""
    if path.suffix.lower() in PDS3_LABEL_SUFFIXES or path.suffix.lower() != ".xml":
        return True
    try:
        with path.open("rb") as f:
            return b"Product_Observational" in f.read(4096)
    except OSError:
        return False
