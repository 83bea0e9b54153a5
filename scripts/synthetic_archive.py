"""Write frames as planetary archive products, the way the real archives lay them out.

Layouts (facts in shared/REFERENCE.md):
- `pds4`: Chang'e GRAS style, `CE4_GRAS_LCAM-1-0000_SCI_N_<time>_<time>_<counter>_A.2A` with a `.2AL`
  XML label beside it, times stamped to the whole second, and a wrong `file_size` as in the real labels.
- `pds3-attached`: Mars 2020 EDL style, `ELM_0000_<clock>_<ms>FDR_...IMG`, a PDS3 label and a VICAR
  header at the start of the file, in 1024-byte records.
- `pds3-detached`: MSL MARDI RDR style, `.IMG` with a `.LBL` beside it.

Usage: python scripts/synthetic_archive.py FRAMES_DIR OUT_DIR --layout pds4 [--bits 16 --byte-order msb]
FRAMES_DIR is a synthetic descent (scripts/synthetic_descent.py) whose truth.json gives the times.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

MARS2020_EPOCH_CLOCK = 666952774.0  # the first LCAM frame's clock count (shared/data/mars2020-lcam)
RECORD_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Sample:
    """How samples are stored: PDS4 data_type and PDS3 SAMPLE_TYPE/SAMPLE_BITS for one choice."""

    bits: int  # 8 or 16
    big_endian: bool = True

    @property
    def dtype(self) -> str:
        return "u1" if self.bits == 8 else (">u2" if self.big_endian else "<u2")

    @property
    def pds4_type(self) -> str:
        return "UnsignedByte" if self.bits == 8 else ("UnsignedMSB2" if self.big_endian else "UnsignedLSB2")

    @property
    def pds3_type(self) -> str:
        if self.bits == 8:
            return "UNSIGNED_INTEGER"
        return "MSB_UNSIGNED_INTEGER" if self.big_endian else "LSB_UNSIGNED_INTEGER"


def _iso(time_s: float, *, decimals: int = 3) -> str:
    text = datetime.fromtimestamp(time_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "")
    return text[:19] if decimals == 0 else text


def _array_bytes(pixels: np.ndarray, sample: Sample) -> bytes:
    """Band-sequential bytes, red band first for colour (pixels are OpenCV BGR)."""
    cube = pixels[:, :, ::-1].transpose(2, 0, 1) if pixels.ndim == 3 else pixels[None]
    return np.ascontiguousarray(cube).astype(sample.dtype).tobytes()


def pds4_label(*, file_name: str, file_size: int, lines: int, samples: int, bands: int, sample: Sample,
               start_utc: str, instrument: str = "LCAM", offset: int = 0) -> str:
    """A PDS4 label with one image array; `file_size` is written as given (Chang'e's is wrong)."""
    axes = [("Line", lines), ("Sample", samples)]
    if bands > 1:
        axes.insert(0, ("Band", bands))
    axis_xml = "".join(
        f"<Axis_Array><axis_name>{name}</axis_name><elements>{n}</elements>"
        f"<sequence_number>{k}</sequence_number></Axis_Array>" for k, (name, n) in enumerate(axes, start=1))
    array = "Array_3D_Image" if bands > 1 else "Array_2D_Image"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Product_Observational xmlns="http://pds.nasa.gov/pds4/pds/v1">
  <Identification_Area><logical_identifier>urn:cnsa:clep:{file_name}</logical_identifier></Identification_Area>
  <Observation_Area>
    <Time_Coordinates><start_date_time>{start_utc}Z</start_date_time><stop_date_time>{start_utc}Z</stop_date_time>
    </Time_Coordinates>
    <Observing_System><Observing_System_Component><name>{instrument}</name><type>Instrument</type>
    </Observing_System_Component></Observing_System>
  </Observation_Area>
  <File_Area_Observational>
    <File><file_name>{file_name}</file_name><file_size unit="byte">{file_size}</file_size></File>
    <{array}><offset unit="byte">{offset}</offset><axes>{len(axes)}</axes>
      <axis_index_order>Last Index Fastest</axis_index_order>
      <Element_Array><data_type>{sample.pds4_type}</data_type></Element_Array>{axis_xml}
    </{array}>
  </File_Area_Observational>
</Product_Observational>
"""


def pds3_label(*, lines: int, samples: int, bands: int, sample: Sample, pointer: str, start_utc: str | None,
               clock: str | None, instrument: str, extra: str = "", bit_mask: int | None = None,
               record_bytes: int = RECORD_BYTES, label_records: int | None = None) -> str:
    """A PDS3 label with an IMAGE object (time and clock left out where None)."""
    lines_out = ["PDS_VERSION_ID = PDS3", "RECORD_TYPE = FIXED_LENGTH", f"RECORD_BYTES = {record_bytes}"]
    if label_records is not None:
        lines_out.append(f"LABEL_RECORDS = {label_records}")
    lines_out += [pointer, f"INSTRUMENT_ID = {instrument}"]
    if start_utc:
        lines_out.append(f"START_TIME = {start_utc}")
    if clock:
        lines_out.append(f'SPACECRAFT_CLOCK_START_COUNT = "{clock}"')
    lines_out.append(extra)
    lines_out += ["GROUP = INSTRUMENT_STATE_PARMS", "  EXPOSURE_DURATION = 0.5 <ms>",
                  "END_GROUP = INSTRUMENT_STATE_PARMS", "OBJECT = IMAGE", f"  LINES = {lines}",
                  f"  LINE_SAMPLES = {samples}",
                  f"  SAMPLE_TYPE = {sample.pds3_type}", f"  SAMPLE_BITS = {sample.bits}", f"  BANDS = {bands}",
                  "  BAND_STORAGE_TYPE = BAND_SEQUENTIAL"]
    if bit_mask is not None:
        lines_out.append(f"  SAMPLE_BIT_MASK = 2#{bit_mask:b}#")
    lines_out += ["END_OBJECT = IMAGE", "END"]
    return "\r\n".join(line for line in lines_out if line) + "\r\n"


def changE_name(time_s: float, counter: int) -> str:
    stamp = datetime.fromtimestamp(math.floor(time_s), UTC).strftime("%Y%m%d%H%M%S")
    return f"CE4_GRAS_LCAM-1-0000_SCI_N_{stamp}_{stamp}_{counter:04d}_A"


def mars2020_name(clock_s: float, counter: int) -> str:
    whole = math.floor(clock_s + 1e-6)
    millis = round((clock_s - whole) * 1000) % 1000
    return f"ELM_0000_{whole:010d}_{millis:03d}FDR_N{counter:07d}LVS_04000_0000LUJ01"


def write_pds4(folder: Path, name: str, pixels: np.ndarray, *, time_s: float, sample: Sample,
               wrong_file_size: bool = True) -> Path:
    """`name.2A` and `name.2AL`; the label's time is truncated to the whole second, as Chang'e's are."""
    data = _array_bytes(pixels, sample)
    data_path = folder / f"{name}.2A"
    data_path.write_bytes(data)
    size = len(data) + 4096 if wrong_file_size else len(data)
    bands = 3 if pixels.ndim == 3 else 1
    (folder / f"{name}.2AL").write_text(pds4_label(
        file_name=data_path.name, file_size=size, lines=pixels.shape[0], samples=pixels.shape[1], bands=bands,
        sample=sample, start_utc=_iso(math.floor(time_s), decimals=0)))
    return data_path


def _vicar_header(lines: int, samples: int, sample: Sample) -> bytes:
    text = (f"LBLSIZE={RECORD_BYTES}  FORMAT='{'BYTE' if sample.bits == 8 else 'HALF'}'  TYPE='IMAGE'  "
            f"ORG='BSQ'  NL={lines}  NS={samples}  NB=1  INTFMT='{'HIGH' if sample.big_endian else 'LOW'}'")
    return text.encode().ljust(RECORD_BYTES, b" ")


def write_pds3_attached(path: Path, pixels: np.ndarray, *, sample: Sample, time_s: float | None,
                        clock_s: float | None, instrument: str = "LCAM", cfa: str | None = "NONE",
                        bit_mask: int | None = None) -> Path:
    """A Mars 2020 EDL style .IMG: PDS3 label, a VICAR header and the image, in 1024-byte records."""
    lines, samples = pixels.shape[:2]
    bands = 3 if pixels.ndim == 3 else 1
    label_records = 4  # room for the label; the VICAR header follows in record 5, the image in record 6

    def label(image_record: int) -> bytes:
        return pds3_label(
            lines=lines, samples=samples, bands=bands, sample=sample,
            pointer=f"^IMAGE_HEADER = {label_records + 1}\r\n^IMAGE = {image_record}",
            start_utc=_iso(time_s) if time_s is not None else None,
            clock=f"{clock_s:.3f}" if clock_s is not None else None, instrument=instrument,
            extra=f"CFA_TYPE = {cfa}" if cfa else "", bit_mask=bit_mask, label_records=label_records,
        ).encode()

    head = label(label_records + 2)
    assert len(head) <= label_records * RECORD_BYTES, "the label outgrew its records"
    body = head.ljust(label_records * RECORD_BYTES, b" ") + _vicar_header(lines, samples, sample)
    path.write_bytes(body + _array_bytes(pixels, sample))
    return path


def write_pds3_detached(image_path: Path, pixels: np.ndarray, *, sample: Sample, time_s: float,
                        clock_s: float | None = None, instrument: str = "MARDI", bit_mask: int | None = None) -> Path:
    """An MSL RDR style pair: image_path (.IMG, the array alone) and a .LBL beside it pointing at it."""
    image_path.write_bytes(_array_bytes(pixels, sample))
    label = pds3_label(
        lines=pixels.shape[0], samples=pixels.shape[1], bands=3 if pixels.ndim == 3 else 1, sample=sample,
        pointer=f'^IMAGE = ("{image_path.name}")', start_utc=_iso(time_s),
        clock=f"{clock_s:.4f}" if clock_s is not None else None, instrument=instrument, bit_mask=bit_mask,
        record_bytes=pixels.shape[1] * sample.bits // 8)
    image_path.with_suffix(".LBL").write_text(label, newline="")
    return image_path


def write_archive(frames_dir: Path, out_dir: Path, *, layout: str, sample: Sample) -> list[dict[str, object]]:
    """Every frame of a synthetic descent as a product; returns (product file, time, counter) per frame."""
    truth = json.loads((frames_dir / "truth.json").read_text())
    frames = sorted((f for f in truth["frames"] if not f["duplicate_of"]), key=lambda f: f["time_s"])
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = frames[0]["time_s"]
    written = []
    for f in frames:
        pixels = cv2.imread(str(frames_dir / f["file"]), cv2.IMREAD_UNCHANGED)
        if sample.bits == 16 and pixels.dtype == np.uint8:
            pixels = pixels.astype(np.uint16) * 4  # an 8-bit frame as a 10-bit camera would give it
        counter = f["index"] + 1
        if layout == "pds4":
            path = write_pds4(out_dir, changE_name(f["time_s"], counter), pixels, time_s=f["time_s"], sample=sample)
        elif layout == "pds3-attached":
            clock = MARS2020_EPOCH_CLOCK + (f["time_s"] - t0)
            path = write_pds3_attached(out_dir / f"{mars2020_name(clock, counter)}.IMG", pixels, sample=sample,
                                       time_s=f["time_s"], clock_s=clock)
        elif layout == "pds3-detached":
            path = write_pds3_detached(out_dir / f"0000MD{counter:07d}_DRXX.IMG", pixels, sample=sample,
                                       time_s=f["time_s"])
        else:
            raise ValueError(f"unknown layout {layout!r}")
        written.append({"file": path.name, "time_s": f["time_s"], "counter": counter})
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("frames_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--layout", choices=("pds4", "pds3-attached", "pds3-detached"), default="pds4")
    parser.add_argument("--bits", type=int, choices=(8, 16), default=8)
    parser.add_argument("--byte-order", choices=("msb", "lsb"), default="msb")
    args = parser.parse_args()
    written = write_archive(args.frames_dir, args.out_dir, layout=args.layout,
                            sample=Sample(args.bits, big_endian=args.byte_order == "msb"))
    print(f"wrote {len(written)} {args.layout} products to {args.out_dir}")


if __name__ == "__main__":
    main()
