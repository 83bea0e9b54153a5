"""Planetary archive products: real labels, synthetic products in each layout, bad products, end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import decode_video, probe_video, psnr, run_cli
from synthetic_archive import (
    Sample,
    changE_name,
    mars2020_name,
    pds4_label,
    write_archive,
    write_pds3_attached,
    write_pds3_detached,
    write_pds4,
)

from descent.errors import FrameReadError
from descent.frames import TimeSource
from descent.sources.discover import discover
from descent.sources.images import probe, read_pixels
from descent.sources.pds3 import read_pds3_label, reduce_label
from descent.sources.times import TimeOptions, assign_times

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
T0 = 1546482009.0  # 2019-01-03T02:20:09Z, the first Chang'e-4 LCAM frame


def _frame(seed: int, shape: tuple[int, ...] = (48, 64), top: int = 255) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, top + 1, shape).astype(np.uint8 if top < 256 else np.uint16)


def _probe_all(folder: Path) -> list:
    found = discover([str(folder)])
    return [probe(p, found.labels.get(p), product=p in found.labels) for p in found.images]


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared/ is beside the checkout in CI and development")
@pytest.mark.parametrize(("name", "lines", "samples", "start"), [
    ("1664MR0086340000802438C00_DRCL_pds3.lbl", 1180, 1323, "2017-04-11T20:23:54.397"),
    ("2264ML0121141200805116C00_DRCL_pds3.lbl", 1193, 1338, "2018-12-19T12:30:00.252"),
])
def test_real_msl_labels(name: str, lines: int, samples: int, start: str) -> None:
    from datetime import UTC, datetime

    layout, label = read_pds3_label(SHARED / "msl-pds3" / name)
    assert (layout.lines, layout.samples, layout.bands) == (lines, samples, 3)
    assert layout.dtype == ">u1" and layout.offset == 0 and layout.storage.name == "BAND_SEQUENTIAL"
    assert layout.file.name == name.replace("_pds3.lbl", ".IMG")  # the ^IMAGE pointer names the data file
    expected = datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp()
    assert label.start_time_s == pytest.approx(expected, abs=1e-6)
    assert label.instrument in ("MAST_LEFT", "MAST_RIGHT") and label.sample_bits == 8
    assert label.clock_s is not None and label.clock_s > 5e8


def test_reduced_label_keeps_what_is_read() -> None:
    text = ("PDS_VERSION_ID = PDS3\nRECORD_BYTES = 512\n^IMAGE = 3\nGROUP = G\n  START_TIME = 2000-01-01T00:00:00\n"
            "  NOTE = (\"a\",\n  \"b\")\nEND_GROUP = G\nSTART_TIME = 2019-01-03T02:20:09\n"
            "OBJECT = IMAGE\n LINES = 2\n LINE_SAMPLES = 3\nEND_OBJECT = IMAGE\nOBJECT = IMAGE\n LINES = 9\n"
            "END_OBJECT = IMAGE\nEND\n")
    reduced = reduce_label(text)
    assert "NOTE" not in reduced and "LINES = 9" not in reduced
    assert reduced.count("START_TIME") == 1 and "2000-01-01" in reduced  # the first one wins
    assert "LINE_SAMPLES = 3" in reduced


@pytest.mark.parametrize("sample", [Sample(8), Sample(16, big_endian=True), Sample(16, big_endian=False)],
                         ids=["8-bit", "16-bit MSB", "16-bit LSB"])
def test_pds4_reads_back_exactly_despite_a_wrong_file_size(tmp_path: Path, sample: Sample) -> None:
    pixels = _frame(1, top=1023 if sample.bits == 16 else 255)
    write_pds4(tmp_path, changE_name(T0 + 0.4, 7), pixels, time_s=T0 + 0.4, sample=sample, wrong_file_size=True)
    (info,) = _probe_all(tmp_path)
    assert (info.width, info.height, info.channels, info.bit_depth) == (64, 48, 1, sample.bits)
    assert info.label.kind == "PDS4" and info.label.instrument == "LCAM"
    assert info.label.start_time_s == T0  # the label stamps the whole second
    np.testing.assert_array_equal(read_pixels(info), pixels)


def test_pds4_colour_band_sequential(tmp_path: Path) -> None:
    pixels = _frame(2, (32, 40, 3))
    write_pds4(tmp_path, changE_name(T0, 1), pixels, time_s=T0, sample=Sample(8))
    (info,) = _probe_all(tmp_path)
    assert info.channels == 3
    np.testing.assert_array_equal(read_pixels(info), pixels)  # red band first on disk, BGR in memory


@pytest.mark.parametrize("sample", [Sample(8), Sample(16, big_endian=True), Sample(16, big_endian=False)],
                         ids=["8-bit", "16-bit MSB", "16-bit LSB"])
def test_pds3_attached_with_vicar_header(tmp_path: Path, sample: Sample) -> None:
    pixels = _frame(3, top=1023 if sample.bits == 16 else 255)
    clock = 666952777.4
    path = write_pds3_attached(tmp_path / f"{mars2020_name(clock, 2)}.IMG", pixels, sample=sample,
                               time_s=T0 + 12.25, clock_s=clock, bit_mask=1023 if sample.bits == 16 else None)
    (info,) = _probe_all(tmp_path)
    assert info.path == path and info.label.kind == "PDS3 attached"
    assert info.label.start_time_s == pytest.approx(T0 + 12.25)
    assert info.label.clock_s == pytest.approx(clock)
    assert info.label.cfa == "none"  # CFA_TYPE = NONE
    assert info.label.sample_bits == (10 if sample.bits == 16 else None)
    np.testing.assert_array_equal(read_pixels(info), pixels)


def test_pds3_detached_case_insensitive_pair(tmp_path: Path) -> None:
    pixels = _frame(4, top=4095)
    image = write_pds3_detached(tmp_path / "0000MD0000001_DRXX.IMG", pixels, sample=Sample(16), time_s=T0)
    (info,) = _probe_all(tmp_path)
    assert info.path == image and info.label.kind == "PDS3" and info.label.instrument == "MARDI"
    assert info.label.cfa == "RGGB"  # MARDI's single-band products are Bayer mosaics by default
    np.testing.assert_array_equal(read_pixels(info), pixels)
    assert discover([str(tmp_path)]).skipped == []  # the label belongs to the product: not a skipped file


def test_label_times_win_over_names(tmp_path: Path) -> None:
    # Names say one order, labels another: the label is the product's own statement.
    for k, label_time in enumerate([T0 + 2, T0 + 1, T0]):
        write_pds3_attached(tmp_path / f"{mars2020_name(666952774 + k, k)}.IMG", _frame(k), sample=Sample(8),
                            time_s=label_time, clock_s=None)
    timed = assign_times(_probe_all(tmp_path), TimeOptions())
    assert timed.source is TimeSource.LABEL and timed.times_are_utc
    assert sorted(f.time_s for f in timed.frames) == [T0, T0 + 1, T0 + 2]


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared/ is beside the checkout in CI and development")
def test_real_mars2020_names_ordered_by_clock_and_uneven_rate_reported(tmp_path: Path) -> None:
    names = (SHARED / "mars2020-lcam" / "filenames.txt").read_text().split()
    for k, name in enumerate(reversed(names)):  # written in reverse so disk order proves nothing
        write_pds3_attached(tmp_path / name, _frame(k, (16, 16)), sample=Sample(8), time_s=None, clock_s=None)
    result = run_cli("inspect", tmp_path, "--json", "--report", tmp_path / "report.json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["time_source"] == "name" and summary["frames_used"] == 87
    assert summary["products"] == {"PDS3 attached LCAM": 87}
    assert summary["span_s"] == pytest.approx(186.8, abs=1e-3)
    assert summary["rate_fps"]["min"] == pytest.approx(1 / 3.4, abs=1e-3)  # 0.29 frames per second
    assert summary["rate_fps"]["max"] == pytest.approx(1.0, abs=1e-3)
    report = json.loads((tmp_path / "report.json").read_text())
    assert [Path(f["file"]).name for f in report["frames"]] == names  # clock order is product order


def test_bad_products_are_named_and_skipped(tmp_path: Path) -> None:
    good = [write_pds4(tmp_path, changE_name(T0 + k, k), _frame(k), time_s=T0 + k, sample=Sample(8))
            for k in range(4)]
    truncated = good[1]
    truncated.write_bytes(truncated.read_bytes()[:-100])
    past_end = good[2].with_suffix(".2AL")
    past_end.write_text(past_end.read_text().replace('<offset unit="byte">0<', '<offset unit="byte">999999<'))
    floats = good[3].with_suffix(".2AL")
    floats.write_text(floats.read_text().replace("UnsignedByte", "IEEE754MSBSingle"))
    with pytest.raises(FrameReadError, match=r"truncated: .* ends 100 bytes short"):
        probe(truncated, truncated.with_suffix(".2AL"), product=True)
    with pytest.raises(FrameReadError, match="past the end"):
        probe(good[2], past_end, product=True)
    with pytest.raises(FrameReadError, match=r"IEEE754MSBSingle.* not supported"):
        probe(good[3], floats, product=True)

    result = run_cli("build", tmp_path, "-o", tmp_path / "out.mp4", "--stabilise", "off", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["frames_used"] == 1
    for bad in (truncated.name, good[2].name, good[3].name):
        assert bad in result.stderr
    strict = run_cli("build", tmp_path, "-o", tmp_path / "strict.mp4", "--stabilise", "off", "--strict")
    assert strict.returncode == 1 and "truncated" in strict.stderr and "Traceback" not in strict.stderr
    assert not (tmp_path / "strict.mp4").exists()


def test_compressed_edr_refused_with_the_product_to_use(tmp_path: Path) -> None:
    (tmp_path / "0044MD0000100000100001E01_XXXX.DAT").write_bytes(b"\x00" * 4096)
    (tmp_path / "0044MD0000100000100001E01_XXXX.LBL").write_text(
        'PDS_VERSION_ID = PDS3\nRECORD_BYTES = 1024\n^IMAGE = ("0044MD0000100000100001E01_XXXX.DAT")\n'
        "INSTRUMENT_ID = MARDI\nOBJECT = IMAGE\n LINES = 1200\n LINE_SAMPLES = 1600\n SAMPLE_TYPE = UNSIGNED_INTEGER\n"
        ' SAMPLE_BITS = 8\n ENCODING_TYPE = "MSLMMM-COMPRESSED"\nEND_OBJECT = IMAGE\nEND\n')
    result = run_cli("inspect", tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "MSLMMM-COMPRESSED" in result.stderr and "RDR" in result.stderr


def test_lone_pds4_label_finds_its_data_file(tmp_path: Path) -> None:
    pixels = _frame(5)
    (tmp_path / "frame_a.img").write_bytes(pixels.tobytes())
    (tmp_path / "frame_a_label.xml").write_text(pds4_label(
        file_name="frame_a.img", file_size=1, lines=48, samples=64, bands=1, sample=Sample(8),
        start_utc="2019-01-03T02:20:09.500"))
    (tmp_path / "notes.xml").write_text("<notes>not a product</notes>")
    found = discover([str(tmp_path)])
    assert [p.name for p in found.skipped] == ["notes.xml"]
    (info,) = [probe(p, found.labels.get(p), product=True) for p in found.images if p.suffix == ".xml"]
    assert info.path.name == "frame_a.img"
    np.testing.assert_array_equal(read_pixels(info), pixels)


@pytest.mark.slow
@pytest.mark.parametrize(("layout", "sample"), [("pds4", Sample(8)), ("pds3-attached", Sample(16, big_endian=False)),
                                                ("pds3-detached", Sample(16))])
def test_build_from_archive(make_descent, tmp_path: Path, layout: str, sample: Sample) -> None:
    folder, _ = make_descent(frames=30)
    archive = tmp_path / "archive"
    written = write_archive(folder, archive, layout=layout, sample=sample)
    out = tmp_path / "landing.mp4"
    bayer = ["--bayer", "none"] if layout == "pds3-detached" else []  # MARDI defaults to RGGB; these are grey
    result = run_cli("build", archive, "-o", out, "--stabilise", "off", "--json", "--report", tmp_path / "r.json",
                     *bayer)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames_used"] == len(written) and summary["skipped_files"] == 0
    assert summary["time_source"] == "label"
    if layout == "pds4":
        assert summary["coarse_clock"]["quantum_s"] == 1.0  # whole-second label stamps, refined by counter
    report = json.loads((tmp_path / "r.json").read_text())
    assert [Path(f["file"]).name for f in report["frames"]] == [w["file"] for w in written]
    info = probe_video(out)
    assert (info["width"], info["height"]) == (128, 128)
    video = decode_video(out, width=128, height=128)
    assert len(video) == len(written)
    # Frames come out in capture order and look like the originals (16-bit data mapped back to 8 bits).
    truth = sorted((f for f in json.loads((folder / "truth.json").read_text())["frames"]), key=lambda f: f["time_s"])
    first = cv2.imread(str(folder / truth[0]["file"]), cv2.IMREAD_GRAYSCALE)
    last = cv2.imread(str(folder / truth[-1]["file"]), cv2.IMREAD_GRAYSCALE)
    assert np.corrcoef(video[0].ravel(), first.ravel())[0, 1] > 0.95
    assert np.corrcoef(video[-1].ravel(), last.ravel())[0, 1] > 0.95
    if sample.bits == 8:
        assert psnr(video[0], first) > 30
    shutil.rmtree(archive)


@pytest.mark.parametrize("storage", ["BAND_SEQUENTIAL", "LINE_INTERLEAVED", "SAMPLE_INTERLEAVED"])
def test_pds3_band_storage_and_byte_pointer(tmp_path: Path, storage: str) -> None:
    bgr = _frame(6, (8, 10, 3))
    rgb = bgr[:, :, ::-1]
    body = {"BAND_SEQUENTIAL": rgb.transpose(2, 0, 1), "LINE_INTERLEAVED": rgb.transpose(0, 2, 1),
            "SAMPLE_INTERLEAVED": rgb}[storage]
    label = (f"PDS_VERSION_ID = PDS3\r\nRECORD_BYTES = 100\r\n^IMAGE = 513 <BYTES>\r\nINSTRUMENT_ID = TCAM\r\n"
             f"START_TIME = 2019-01-03T02:20:09.250Z\r\nOBJECT = IMAGE\r\n LINES = 8\r\n LINE_SAMPLES = 10\r\n"
             f" SAMPLE_TYPE = UNSIGNED_INTEGER\r\n SAMPLE_BITS = 8\r\n BANDS = 3\r\n BAND_STORAGE_TYPE = {storage}\r\n"
             "END_OBJECT = IMAGE\r\nEND\r\n").encode()
    path = tmp_path / "tcam.2C"
    assert len(label) < 512
    path.write_bytes(label.ljust(512, b" ") + np.ascontiguousarray(body).tobytes())  # byte 513 counts from 1
    (info,) = _probe_all(tmp_path)
    assert info.layout.offset == 512 and info.label.start_time_s == pytest.approx(T0 + 0.25)
    np.testing.assert_array_equal(read_pixels(info), bgr)


def test_spacecraft_clock_orders_when_labels_have_no_utc(tmp_path: Path) -> None:
    clocks = [666952780.8, 666952774.0, 666952777.4]
    for k, clock in enumerate(clocks):
        write_pds3_attached(tmp_path / f"frame_{k}.IMG", _frame(k), sample=Sample(8), time_s=None, clock_s=clock)
    timed = assign_times(_probe_all(tmp_path), TimeOptions())
    assert timed.source is TimeSource.LABEL and not timed.times_are_utc  # relative clock time, no SPICE needed
    assert sorted(f.time_s for f in timed.frames) == pytest.approx(sorted(clocks))


def test_inspect_reports_the_bits_the_label_says(tmp_path: Path) -> None:
    for k in range(3):  # 10-bit data in 16-bit words; one noisy sample reaches bit 11 in the file
        pixels = _frame(k, top=1023)
        pixels[0, 0] = 2047 if k == 1 else pixels[0, 0]
        write_pds3_attached(tmp_path / f"{mars2020_name(666952774 + k, k)}.IMG", pixels,
                            sample=Sample(16, big_endian=False), time_s=T0 + k, clock_s=None, bit_mask=1023)
    result = run_cli("inspect", tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["bits_used"] == 10
