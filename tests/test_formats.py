"""Frames as people really have them: every colour type and sample format, impossible headers, float data.

Images are written by hand (PNG chunks with zlib and struct, TIFF directories with struct) as well as
by OpenCV and Pillow, so that the reader is checked against the formats, not against one writer's habits.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import decode_video, run_cli
from PIL import Image

from descent.errors import FrameReadError
from descent.normalise.tone import float_range, float_to_counts
from descent.sources.images import MAX_PIXELS, MAX_SIDE_PX, decode_image, missing_pixels, probe, read_pixels

RNG = np.random.default_rng(14)


# --- writers -------------------------------------------------------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path: Path, samples: np.ndarray, *, colour_type: int, depth: int,
              palette: np.ndarray | None = None, size: tuple[int, int] | None = None) -> Path:
    """A PNG of any colour type and bit depth from the file's own sample values (H x W x C)."""
    s = samples if samples.ndim == 3 else samples[:, :, None]
    h, w, _ = s.shape
    rows = []
    for row in s.reshape(h, -1):
        if depth == 16:
            packed = row.astype(">u2").tobytes()
        elif depth == 8:
            packed = row.astype(np.uint8).tobytes()
        else:  # 1, 2 or 4 bits a sample, packed from the high bits of each byte
            bits = np.unpackbits(row.astype(np.uint8)[:, None], axis=1)[:, 8 - depth:]
            packed = np.packbits(bits.reshape(-1)).tobytes()
        rows.append(b"\0" + packed)  # filter type 0 on every row
    width, height = size or (w, h)
    data = _PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0))
    if palette is not None:
        data += _chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    data += _chunk(b"IDAT", zlib.compress(b"".join(rows))) + _chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_tiff_header(path: Path, *, width: int, height: int, bits: int = 8, sample_format: int = 1,
                      big_endian: bool = False) -> Path:
    """A TIFF whose one directory claims a size (and a strip of 16 bytes): enough for the header reader."""
    order = ">" if big_endian else "<"
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, bits), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 0), (277, 3, 1, 1), (279, 4, 1, 16), (339, 3, 1, sample_format)]
    entries[5] = (273, 4, 1, 8 + 2 + 12 * len(entries) + 4)  # the strip, right after the directory
    ifd = struct.pack(order + "H", len(entries))
    for tag, kind, count, value in entries:
        value_bytes = struct.pack(order + ("I" if kind == 4 else "H"), value).ljust(4, b"\0")
        ifd += struct.pack(order + "HHI", tag, kind, count) + value_bytes
    head = (b"MM\0*" if big_endian else b"II*\0") + struct.pack(order + "I", 8)
    path.write_bytes(head + ifd + b"\0\0\0\0" + bytes(16))
    return path


def scene(h: int = 48, w: int = 64, *, shift: int = 0) -> np.ndarray:
    """Smooth ground with texture, in 0..1: a different view for each shift, so no two frames are equal."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.clip(0.15 + 0.6 * (xx + shift) / w + 0.2 * np.sin(yy / 3.0 + shift) * np.cos(xx / 5.0), 0, 1)


# --- every PNG colour type and bit depth, read the same by probe and read_pixels -----------------------

PNG_CASES = [(0, d) for d in (1, 2, 4, 8, 16)] + [(2, 8), (2, 16), (4, 8), (4, 16), (6, 8), (6, 16)] + [
    (3, d) for d in (1, 2, 4, 8)]


@pytest.mark.parametrize(("colour_type", "depth"), PNG_CASES)
def test_every_png_colour_type_reads_as_probed(tmp_path: Path, colour_type: int, depth: int) -> None:
    top = (1 << depth) - 1
    channels_in = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    samples = RNG.integers(0, top + 1, (9, 13, channels_in))
    palette = RNG.integers(0, 256, (1 << depth, 3)) if colour_type == 3 else None
    path = write_png(tmp_path / "f.png", samples, colour_type=colour_type, depth=depth, palette=palette)

    info = probe(path)
    pixels = read_pixels(info)
    assert (info.width, info.height) == (13, 9)
    assert pixels.flags.c_contiguous and pixels.shape[:2] == (9, 13)
    assert pixels.ndim == (2 if info.channels == 1 else 3) and pixels.dtype.itemsize * 8 == info.bit_depth
    if palette is not None:
        expected = palette[samples[:, :, 0]][:, :, ::-1]  # palette entries are RGB; frames are BGR
    else:
        colour = samples[:, :, :3] if colour_type in (2, 6) else samples[:, :, 0]
        expected = colour[:, :, ::-1] if colour.ndim == 3 else colour  # alpha dropped
        if depth < 8:
            expected = expected * (255 // top)  # low depths are scaled to 8 bits
    assert np.array_equal(pixels, expected)


def test_tiff_bmp_jpeg_variants_read_as_probed(tmp_path: Path) -> None:
    grey = (scene() * 255).astype(np.uint8)
    colour = np.dstack([grey, grey[::-1], 255 - grey])
    files: dict[str, Path] = {}

    def pil(name: str, image: Image.Image, compression: str | None = None) -> None:
        files[name] = tmp_path / name
        image.save(files[name], **({"compression": compression} if compression else {}))

    def ocv(name: str, array: np.ndarray) -> None:
        files[name] = tmp_path / name
        assert cv2.imwrite(str(files[name]), array)

    for mode in ("1", "L", "LA", "P", "PA", "RGB", "RGBA"):
        pil(f"pil_{mode}.tif", Image.fromarray(colour[:, :, ::-1]).convert(mode))
    pil("pil_I16.tif", Image.fromarray(grey.astype(np.uint16) * 257))
    pil("pil_F.tif", Image.fromarray(grey.astype(np.float32) / 255))
    pil("pil_I32.tif", Image.fromarray(grey.astype(np.int32) * 1000))
    pil("lzw.tif", Image.fromarray(colour[:, :, ::-1]), compression="tiff_lzw")
    for dtype in (np.uint16, np.int16, np.float32, np.float64):
        for c in (1, 3, 4):
            array = np.dstack([grey] * c).astype(dtype) if c > 1 else grey.astype(dtype)
            ocv(f"cv_{np.dtype(dtype).name}_{c}.tif", array)
    for mode in ("1", "L", "P", "RGB"):
        pil(f"pil_{mode}.bmp", Image.fromarray(colour[:, :, ::-1]).convert(mode))
    ocv("bgra.bmp", np.dstack([colour, grey]))
    ocv("grey.jpg", grey)
    ocv("colour.jpg", colour)

    for name, path in files.items():
        info = probe(path)
        pixels = read_pixels(info)
        assert (info.width, info.height) == (64, 48), name
        assert pixels.flags.c_contiguous, name
        assert pixels.ndim == (2 if info.channels == 1 else 3), name
        assert pixels.dtype == {8: np.uint8, 16: np.uint16, 32: np.float32}[info.bit_depth], name
    # Values: grey stays grey whatever the container; alpha is dropped; signed samples keep their values.
    assert np.array_equal(read_pixels(probe(files["pil_LA.tif"])), read_pixels(probe(files["pil_L.tif"])))
    assert np.array_equal(read_pixels(probe(files["pil_RGBA.tif"])), colour)
    assert np.array_equal(read_pixels(probe(files["bgra.bmp"])), colour)
    assert np.array_equal(read_pixels(probe(files["cv_int16_1.tif"])), grey.astype(np.uint16))
    assert np.array_equal(read_pixels(probe(files["cv_float64_4.tif"])), np.dstack([grey] * 3).astype(np.float32))
    assert probe(files["pil_1.bmp"]).channels == 1 and probe(files["pil_P.bmp"]).channels == 3


def test_signed_samples_below_zero_are_black(tmp_path: Path) -> None:
    values = np.array([[-300, 0, 5, 40000 - 65536]], np.int16)
    path = tmp_path / "signed.tif"
    assert cv2.imwrite(str(path), values)
    assert read_pixels(probe(path)).tolist() == [[0, 0, 5, 0]]


# --- impossible and giant headers: refused by the header, before a decoder allocates ------------------

def _jpeg_claiming(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xda" + bytes(16) + b"\xff\xd9"


def _bmp_claiming(width: int, height: int) -> bytes:
    dib = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 0, 0, 0, 0)
    body = bytes(64)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + len(body), 0, 0, 54) + dib + body


@pytest.mark.parametrize(("kind", "width", "height"), [
    ("png", 100_000, 100_000), ("png", 0, 64), ("png", 2**31 - 1, 1), ("png", 25_000, 25_000),
    ("tiff", 100_000, 100_000), ("tiff-be", 40_000, 10), ("tiff", 64, 0),
    ("jpeg", 65_535, 65_535), ("jpeg", 64, 0), ("bmp", 100_000, -100_000), ("bmp", -64, 64),
])
def test_impossible_or_giant_headers_are_refused_before_decoding(tmp_path: Path, kind: str, width: int,
                                                                 height: int) -> None:
    path = tmp_path / f"giant.{kind[:4]}"
    if kind == "png":
        write_png(path, np.zeros((1, 1), np.uint8), colour_type=0, depth=8, size=(width, height))
    elif kind.startswith("tiff"):
        write_tiff_header(path, width=width, height=height, big_endian=kind == "tiff-be")
    elif kind == "jpeg":
        path.write_bytes(_jpeg_claiming(width, height))
    else:
        path.write_bytes(_bmp_claiming(width, height))
    start = time.perf_counter()
    with pytest.raises(FrameReadError, match=r"header") as refused:
        probe(path)
    with pytest.raises(FrameReadError, match=r"header"):
        decode_image(path)  # read_pixels' decoder checks the header of what it reads too
    assert time.perf_counter() - start < 0.05
    assert str(path) in str(refused.value)
    too_big = max(abs(width), abs(height)) > MAX_SIDE_PX or abs(width * height) > MAX_PIXELS
    assert ("more than descent reads" in refused.value.reason) == (too_big and width > 0 and height != 0)


def test_a_big_but_possible_header_is_accepted(tmp_path: Path) -> None:
    path = write_tiff_header(tmp_path / "wide.tif", width=MAX_SIDE_PX, height=100, bits=16)
    info = probe(path)
    assert (info.width, info.height, info.channels, info.bit_depth) == (MAX_SIDE_PX, 100, 1, 16)
    big_endian = write_tiff_header(tmp_path / "be.tif", width=640, height=480, bits=32, sample_format=3,
                                   big_endian=True)
    assert (probe(big_endian).width, probe(big_endian).bit_depth) == (640, 32)


# --- floats: one sequence-wide scale, NaN and infinity black and counted -------------------------------

def test_float_scale_is_one_for_the_sequence_and_missing_data_is_black() -> None:
    dim = scene().astype(np.float32) * 10.0  # radiance 0..10 in the first frame
    bright = dim * 2.0  # twice as bright later: it must stay twice as bright, not be stretched back
    bright[3:6, 4:9] = np.nan
    bright[0, 0] = np.inf
    bright[0, 1] = -np.inf
    value_range = float_range([dim, bright])
    assert value_range is not None
    a, b = float_to_counts(dim, value_range), float_to_counts(bright, value_range)
    assert a.dtype == np.uint16 and b.dtype == np.uint16
    assert b[3:6, 4:9].max() == 0 and b[0, 0] == 0 and b[0, 1] == 0
    lit = np.isfinite(bright) & (a > 2000) & (b < 60000)
    assert np.median(b[lit].astype(np.float64) / a[lit]) == pytest.approx(2.0, rel=0.02)
    assert missing_pixels(bright) == 15 + 2 and missing_pixels(dim) == 0 and missing_pixels(a) == 0
    colour = np.dstack([bright, dim, dim])  # missing in one channel: the pixel is missing
    assert missing_pixels(colour) == 17
    assert float_to_counts(colour, value_range)[4, 5].tolist() == [0, 0, 0]
    assert float_range([a]) is None  # integer frames need no scale


def test_a_fill_value_does_not_squeeze_the_scene() -> None:
    frame = scene().astype(np.float32)
    frame[:2] = -3.4e38  # a PDS missing constant, in two rows
    value_range = float_range([frame])
    assert value_range is not None
    counts = float_to_counts(frame, value_range)
    assert np.ptp(counts[10:]) > 20000  # the scene still spans most of the 16 bits
    assert counts[:2].max() == 0 and missing_pixels(frame) == 2 * 64  # fill is missing data: black, counted


# --- end to end: the real CLI, build and inspect, for each colour type --------------------------------

def _frames(folder: Path, kind: str, count: int = 4) -> list[np.ndarray]:
    """Write `count` frames of one kind; returns the grey each should show (0..1, NaN where missing)."""
    folder.mkdir()
    shown = []
    for k in range(count):
        grey = scene(shift=3 * k)
        truth = grey.copy()
        path = folder / f"frame_{k:03d}"
        if kind.startswith("png"):
            colour_type, depth = (int(x) for x in kind[3:].split("_"))
            top = (1 << depth) - 1
            levels = np.rint(grey * top).astype(np.int64)
            truth = levels / top
            channels_in = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour_type, 1)
            samples = np.dstack([levels] * channels_in)
            if colour_type in (4, 6):
                samples[:, :, -1] = RNG.integers(0, top + 1, levels.shape)  # alpha noise: it must not show
            palette = None
            if colour_type == 3:
                palette = np.rint(np.linspace(0, 255, top + 1))[:, None].repeat(3, axis=1)
                truth = palette[levels, 0] / 255
            write_png(path.with_suffix(".png"), samples, colour_type=colour_type, depth=depth, palette=palette)
        elif kind == "bmp8":
            cv2.imwrite(str(path.with_suffix(".bmp")), np.dstack([np.rint(grey * 255).astype(np.uint8)] * 3))
            truth = np.rint(grey * 255) / 255
        elif kind in ("float32", "float64"):
            values = (grey * 850.0 - 20.0).astype(kind)  # calibrated radiance, some of it below zero
            values[10:14, 20:30] = np.nan
            values[30, 40:44] = np.inf
            truth[10:14, 20:30] = np.nan
            truth[30, 40:44] = np.nan
            assert cv2.imwrite(str(path.with_suffix(".tif")), values)
        shown.append(truth)
    return shown


KINDS = ["png0_1", "png0_4", "png0_8", "png0_16", "png2_8", "png2_16", "png3_2", "png3_8", "png4_8", "png4_16",
         "png6_8", "png6_16", "bmp8", "float32", "float64"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_every_colour_type_builds_and_inspects(tmp_path: Path, kind: str) -> None:
    truths = _frames(tmp_path / "frames", kind)
    if not kind.startswith("float"):  # (inspect of float frames with NaN: test_missing_float_pixels_are_reported)
        inspected = run_cli("inspect", tmp_path / "frames", "--json", "-q")
        assert inspected.returncode == 0, inspected.stderr
        assert json.loads(inspected.stdout)["frames_used"] == len(truths)
    out = tmp_path / "v.mp4"
    built = run_cli("build", tmp_path / "frames", "-o", out, "--stabilise", "off", "--deflicker", "off",
                    "--defects", "off", "--json", "-q", "--report", tmp_path / "r.json")
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    assert summary["frames_used"] == len(truths)
    assert (summary["output"]["width"], summary["output"]["height"]) == (64, 48)
    video = decode_video(out, width=64, height=48).astype(np.float64)
    assert len(video) == len(truths)
    for frame, truth in zip(video, truths, strict=True):
        known = np.isfinite(truth)
        # The picture follows the data (a posterised 1-bit frame less closely, through the encoder)...
        assert np.corrcoef(frame[known], truth[known])[0, 1] > (0.9 if kind == "png0_1" else 0.98)
        if not (kind.endswith("16") or kind.startswith("float")):
            # ...and 8 bits and fewer are shown as they are; 16-bit and float go through the one tone curve.
            assert abs(frame[known].mean() - 255 * truth[known].mean()) < 4
        if not known.all():
            inner = np.zeros_like(known)
            inner[11:13, 22:28] = True  # inside the NaN block, away from the encoder's smearing at its edges
            assert frame[inner].max() < 24  # missing data is black
            assert frame[known].mean() > 60


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["png4_8", "png6_16", "png6_8"])
def test_alpha_frames_inspect_without_crashing(tmp_path: Path, kind: str) -> None:
    _frames(tmp_path / "frames", kind)
    result = run_cli("inspect", tmp_path / "frames", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames_used"] == 4 and summary["sizes"] == {"64x48": 4}
    assert summary["colour_frames"] == (0 if kind.startswith("png4") else 4)


@pytest.mark.slow
def test_a_giant_header_among_good_frames_is_skipped_in_build_and_inspect(tmp_path: Path) -> None:
    _frames(tmp_path / "frames", "png0_8", count=5)
    giant = write_png(tmp_path / "frames" / "frame_002b.png", np.zeros((1, 1), np.uint8), colour_type=0, depth=8,
                      size=(100_000, 100_000))
    giant_tiff = write_tiff_header(tmp_path / "frames" / "frame_003b.tif", width=100_000, height=100_000)
    commands: list[list[str | Path]] = [
        ["inspect", tmp_path / "frames", "--json"],
        ["build", tmp_path / "frames", "-o", tmp_path / "v.mp4", "--stabilise", "off", "--json"]]
    for command in commands:
        start = time.perf_counter()
        result = run_cli(*command)
        assert result.returncode == 0, result.stderr
        assert time.perf_counter() - start < 30
        summary = json.loads(result.stdout)
        assert summary["frames_used"] == 5
        assert {Path(u["file"]).name for u in summary["unreadable"]} == {giant.name, giant_tiff.name}
        warned = [line for line in result.stderr.splitlines() if "100000x100000" in line]
        assert len(warned) == 2 and all("skipped" in line for line in warned)
    strict = run_cli("inspect", tmp_path / "frames", "--strict")
    assert strict.returncode == 1 and giant.name in strict.stderr and "Traceback" not in strict.stderr


@pytest.mark.slow
def test_missing_float_pixels_are_reported(tmp_path: Path) -> None:
    _frames(tmp_path / "frames", "float32", count=3)
    result = run_cli("build", tmp_path / "frames", "-o", tmp_path / "v.mp4", "--stabilise", "off", "--json", "-q",
                     "--report", tmp_path / "r.json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["missing_pixels"] == 3 * (40 + 4)
    inspected = run_cli("inspect", tmp_path / "frames", "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert "NaN" in inspected.stderr
