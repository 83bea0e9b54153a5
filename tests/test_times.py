"""Capture times from every source, and the order they give."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from descent.clock import parse_time_text
from descent.errors import DescentError, UsageError
from descent.frames import FrameInfo, TimeSource
from descent.sources.discover import natural_key
from descent.sources.times import TimeOptions, assign_times, read_index, time_in_name

T0 = datetime(2019, 1, 3, 2, 26, 12, 345000, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cam_2019-01-03T02:26:12.345Z", T0),
        ("cam_2019-01-03T02-26-12.345Z", T0),  # dashes where a file system refuses colons
        ("2019-01-03 02:26:12.345", T0),  # no zone means UTC
        ("img_2019-01-03T04:26:12.345+02:00", T0),
        ("img_2019-01-03T03:26:12.345+0100", T0),
        ("20190103T022612.345", T0),
        ("20190103T022612.345Z_frame", T0),
        ("20190103_022612", T0 - 0.345),
        ("CE4_GRAS_LCAM-1-0000_SCI_N_20190103022612_20190103022612_0001_A", T0 - 0.345),
        (f"frame_{int(T0)}", float(int(T0))),  # Unix seconds
        (f"frame_{round(T0 * 1000)}", round(T0 * 1000) / 1000),  # Unix milliseconds
        ("frame_1546482372.345", 1546482372.345),
    ],
)
def test_time_in_name(name: str, expected: float) -> None:
    found = time_in_name(name)
    assert found is not None
    assert found.time_s == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("name", ["frame_0001", "frame_20191340_251212", "IMG_1234", "X_0666952774_000FDR"])
def test_no_time_in_name(name: str) -> None:
    assert time_in_name(name) is None


def test_mars2020_product_names_carry_the_spacecraft_clock() -> None:
    # ELM_<sol>_<clock seconds>_<milliseconds><product type>: a clock count, not a Unix time.
    found = time_in_name("ELM_0000_0666952777_400FDR_N0000002LVS_04000_0000LUJ01")
    assert found is not None and not found.is_utc
    assert found.time_s == pytest.approx(666952777.4, abs=1e-6)


def test_parse_time_text_clock_counts() -> None:
    assert parse_time_text("0666952960_800") == (pytest.approx(666952960.8), False)
    assert parse_time_text("12.5") == (12.5, False)
    assert parse_time_text("2019-01-03T02:26:12.345Z") == (pytest.approx(T0), True)
    assert parse_time_text("yesterday") is None


def test_natural_order() -> None:
    names = ["frame_10.png", "frame_9.png", "frame_100.png", "frame_1.png"]
    assert [n for n in sorted(names, key=lambda n: natural_key(Path(n)))] == [
        "frame_1.png", "frame_9.png", "frame_10.png", "frame_100.png"]


def _infos(folder: Path, names: list[str]) -> list[FrameInfo]:
    infos = []
    for name in names:
        (folder / name).write_bytes(b"")
        infos.append(FrameInfo(path=folder / name, width=8, height=8, channels=1, bit_depth=8))
    return infos


def test_name_pattern_with_spacecraft_clock(tmp_path: Path) -> None:
    names = [f"ELM_0000_{clock:010d}_{ms:03d}FDR_N{n:07d}LVS.IMG" for n, (clock, ms) in
             enumerate([(666952774, 0), (666952775, 300), (666952776, 900)], start=1)]
    timed = assign_times(_infos(tmp_path, names[::-1]), TimeOptions(
        name_pattern=r"ELM_\d{4}_(?P<time>\d{10}_\d{3})FDR_N(?P<counter>\d+)"))
    assert timed.source is TimeSource.NAME
    assert not timed.times_are_utc  # a clock count, not UTC
    assert sorted(f.time_s for f in timed.frames) == pytest.approx([666952774.0, 666952775.3, 666952776.9])
    assert sorted(f.counter for f in timed.frames) == [1, 2, 3]


def test_name_pattern_errors(tmp_path: Path) -> None:
    infos = _infos(tmp_path, ["a_xx.png"])
    with pytest.raises(UsageError, match="named group"):
        assign_times(infos, TimeOptions(name_pattern=r"a_(\w+)"))
    with pytest.raises(UsageError, match="not a valid regular expression"):
        assign_times(infos, TimeOptions(name_pattern=r"a_(?P<time>"))
    with pytest.raises(DescentError, match=r"a_xx.png: --name-pattern matched time 'xx'"):
        assign_times(infos, TimeOptions(name_pattern=r"a_(?P<time>\w+)"))


def test_index_csv_semicolon_with_header(tmp_path: Path) -> None:
    infos = _infos(tmp_path, ["b.png", "a.png"])
    index = tmp_path / "index.csv"
    index.write_text("frame;utc\na.png;2019-01-03T02:26:12.345Z\nb.png;2019-01-03T02:26:12.445Z\n")
    timed = assign_times(infos, TimeOptions(index_csv=index))
    assert timed.source is TimeSource.INDEX
    times = {f.path.name: f.time_s for f in timed.frames}
    assert times == {"a.png": pytest.approx(T0), "b.png": pytest.approx(T0 + 0.1)}


def test_index_csv_bad_time_names_line(tmp_path: Path) -> None:
    index = tmp_path / "index.csv"
    index.write_text("file,time\na.png,0.0\nb.png,soon\n")
    with pytest.raises(DescentError, match=r"index.csv: line 3: 'soon' is not a time"):
        read_index(index)


def test_index_missing_frame_is_an_error(tmp_path: Path) -> None:
    infos = _infos(tmp_path, ["a.png", "b.png"])
    index = tmp_path / "index.csv"
    index.write_text("a.png,1.0\n")
    with pytest.raises(DescentError, match=r"b.png: no capture time from index"):
        assign_times(infos, TimeOptions(index_csv=index))


def test_exif_times_with_subseconds_and_offset(tmp_path: Path) -> None:
    from PIL import ExifTags

    infos = []
    for i, (clock, sub) in enumerate([("2019:01:03 04:26:12", "345"), ("2019:01:03 04:26:12", "845")]):
        exif = Image.Exif()
        ifd = exif.get_ifd(ExifTags.IFD.Exif)
        ifd[ExifTags.Base.DateTimeOriginal] = clock
        ifd[ExifTags.Base.SubsecTimeOriginal] = sub
        ifd[ExifTags.Base.OffsetTimeOriginal] = "+02:00"
        path = tmp_path / f"IMG_{i}.jpg"
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(path, exif=exif)
        infos.append(FrameInfo(path=path, width=8, height=8, channels=1, bit_depth=8))
    timed = assign_times(infos, TimeOptions())
    assert timed.source is TimeSource.EXIF
    assert [f.time_s for f in timed.frames] == pytest.approx([T0, T0 + 0.5])


def test_mtime_is_used_with_a_warning(tmp_path: Path) -> None:
    infos = _infos(tmp_path, ["x.png", "y.png", "z.png"])
    for k, info in enumerate(infos):
        os.utime(info.path, (1000.0 + k, 1000.0 + 3 - k))  # mtimes in reverse name order
    timed = assign_times(infos, TimeOptions())
    assert timed.source is TimeSource.MTIME
    assert any("modification times" in n for n in timed.notes)
    assert [f.time_s for f in timed.frames] == [1003.0, 1002.0, 1001.0]


def test_equal_mtimes_fall_back_to_name_order(tmp_path: Path) -> None:
    infos = _infos(tmp_path, ["frame_10.png", "frame_9.png"])
    for info in infos:
        os.utime(info.path, (5.0, 5.0))
    timed = assign_times(infos, TimeOptions())
    assert timed.source is TimeSource.NONE
    assert any("natural name order" in n for n in timed.notes)


def test_forced_source_without_times_names_the_file(tmp_path: Path) -> None:
    infos = _infos(tmp_path, ["cam_2019-01-03T02-26-12Z.png", "cam_later.png"])
    with pytest.raises(DescentError, match=r"cam_later.png: no capture time from name"):
        assign_times(infos, TimeOptions(source=TimeSource.NAME))


def test_partial_name_times_fall_through_with_a_note(tmp_path: Path) -> None:
    infos = _infos(tmp_path, ["cam_2019-01-03T02-26-12Z.png", "cam_later.png"])
    for k, info in enumerate(infos):
        os.utime(info.path, (100.0 + k, 100.0 + k))
    timed = assign_times(infos, TimeOptions())
    assert timed.source is TimeSource.MTIME
    assert any("1 of 2 frames have no time in their name" in n for n in timed.notes)


def test_counter_found_beside_a_timestamp(tmp_path: Path) -> None:
    names = [f"CE4_GRAS_LCAM-1-0000_SCI_N_20190103022009_20190103022009_{n:04d}_A.png" for n in (3, 1, 2)]
    timed = assign_times(_infos(tmp_path, names), TimeOptions())
    assert [f.counter for f in timed.frames] == [3, 1, 2]


def test_name_pattern_that_misses_a_frame_is_an_error(tmp_path: Path) -> None:
    infos = _infos(tmp_path, ["t_0000000010_500.png", "other.png"])
    with pytest.raises(DescentError, match=r"other.png: no capture time from name"):
        assign_times(infos, TimeOptions(name_pattern=r"t_(?P<time>\d{10}_\d{3})"))
