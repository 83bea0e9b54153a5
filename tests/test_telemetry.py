"""Telemetry in: real published logs and generated ones in every shape, read with no options."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from descent.errors import DescentError, UsageError
from descent.telemetry import Telemetry, TelemetryOptions, read_telemetry

DATA = Path(__file__).parent / "data" / "telemetry"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
T0 = datetime(2019, 1, 3, 2, 26, 0, tzinfo=UTC).timestamp()
FT = 0.3048


def at(series: Telemetry, time_s: float) -> float:
    """The altitude sampled at exactly this time (no interpolation: the test names a real row)."""
    hits = np.flatnonzero(np.isclose(series.times_s, time_s, rtol=0, atol=1e-6))
    assert len(hits) == 1, (time_s, series.times_s[:5])
    return float(series.altitude_m[hits[0]])


# --- real files ----------------------------------------------------------------------------------------


def test_ranger7_counts_down_to_impact_in_km() -> None:
    # Padded fields, a first column named TAB, `Timp` seconds before impact, `alt` in km with no unit in the
    # name: the speed column `v` and the fall's gravity (0.73 m/s² in km, 0.0007 in metres) say km.
    series = read_telemetry(DATA / "ranger7" / "terminal_7a.csv")
    assert (series.time_column, series.altitude_column, series.unit) == ("Timp", "alt", "km")
    assert series.counts_down and series.time_kind == "countdown" and not series.is_utc
    assert series.unit_source == "inferred" and "gravity" in series.unit_reason
    assert len(series.times_s) == 199 and series.problems == []
    assert at(series, -1016.238) == pytest.approx(2095918.58, rel=1e-9)
    assert at(series, -2.498) == pytest.approx(5877.14, rel=1e-9)
    assert np.all(np.diff(series.altitude_m) < 0)  # falling all the way


def test_ranger7_options_still_win() -> None:
    series = read_telemetry(DATA / "ranger7" / "terminal_7a.csv",
                            TelemetryOptions(time_column="Timp", time_format="countdown", altitude_unit="km"))
    assert len(series.times_s) == 199 and series.counts_down and series.unit_source == "option"
    assert series.altitude_m[0] == pytest.approx(2095918.58)
    feet = read_telemetry(DATA / "ranger7" / "terminal_7a.csv", TelemetryOptions(altitude_unit="ft"))
    assert feet.altitude_m[0] == pytest.approx(2095.91858 * FT)
    other = read_telemetry(DATA / "ranger7" / "terminal_7a.csv", TelemetryOptions(altitude_column="pt1_srange"))
    assert other.altitude_column == "pt1_srange" and other.altitude_m[0] == pytest.approx(2283445.47)


def test_falcon9_json_columns_in_km() -> None:
    # One object of arrays; `altitude` has no unit in its name but `velocity` (m/s) is ~1000x its rate.
    series = read_telemetry(DATA / "falcon9-crs11" / "stage1_raw.json")
    raw = json.loads((DATA / "falcon9-crs11" / "stage1_raw.json").read_text())
    events = json.loads((DATA / "falcon9-crs11" / "events.json").read_text())
    assert series.format.startswith("json columns") and series.unit == "km" and series.unit_source == "inferred"
    assert (series.time_column, series.altitude_column) == ("time", "altitude") and not series.is_utc
    assert len(series.times_s) == 13489 and series.problems == []
    apogee = raw["time"].index(min(raw["time"], key=lambda t: abs(t - events["apogee"])))
    assert at(series, raw["time"][apogee]) == pytest.approx(raw["altitude"][apogee] * 1000, rel=1e-6)
    assert series.altitude_m.max() == pytest.approx(120000)
    landed = series.altitude_m[series.times_s >= events["landing_end"]]
    assert len(landed) and np.all(landed < 50)


def test_dji_sidecars() -> None:
    air2s = read_telemetry(DATA / "dji-srt" / "air2s.srt")
    assert air2s.format.startswith("dji srt") and air2s.altitude_column == "altitude" and air2s.unit == "m"
    assert air2s.unit_source == "format" and not air2s.is_utc and air2s.time_column == "cue start"
    assert len(air2s.times_s) == 17 and at(air2s, 0.0) == 117.0 and at(air2s, 0.133) == pytest.approx(117.1)
    assert any("local date-time" in n for n in air2s.notes)
    pro = read_telemetry(DATA / "dji-srt" / "mavic_pro.SRT")
    assert pro.altitude_column == "BAROMETER" and "GPS alt" in pro.altitude_reason  # relative beats GPS
    assert at(pro, 3.0) == pytest.approx(2.0) and pro.problems == []  # 0.1 m steps near the ground: no glitches
    broken = read_telemetry(DATA / "dji-srt" / "broken_incomplete.SRT")
    assert len(broken.times_s) == 19 and at(broken, 19.0) == pytest.approx(7.7)
    assert any("cut off" in p for p in broken.problems)
    with pytest.raises(DescentError, match="no altitude") as error:
        read_telemetry(DATA / "dji-srt" / "mavic_2_style.SRT")
    assert "\n" not in str(error.value) and len(str(error.value)) < 200


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared/ is beside the checkout in development, not always in CI")
@pytest.mark.parametrize("name", ["ranger7/terminal_7a.csv", "falcon9-crs11/stage1_raw.json", "dji-srt/air2s.srt",
                                  "dji-srt/mavic_pro.SRT", "dji-srt/broken_incomplete.SRT"])
def test_shared_copies_read_as_ours(name: str) -> None:
    ours, theirs = read_telemetry(DATA / name), read_telemetry(SHARED / name)
    assert ours.to_dict() | {"file": ""} == theirs.to_dict() | {"file": ""}


# --- from tests/test_altitude.py: the options given, and the first shapes read ----------------------------


def test_messy_semicolon_log_with_compact_times_and_feet(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    rows = ["# exported by the flight computer, rev 3", "flight;42", "",
            "Raw timestamp;alt_ft;vs_ft_s;note"]
    times = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    alts_ft = [6000, 5800, 5600, 5400, 5200, 5000, 4800, 4600]
    for k, (t, ft) in enumerate(zip(times, alts_ft, strict=True)):
        when = datetime.fromtimestamp(T0 + t, UTC).strftime("%y%m%d%H%M%S.%f")[:-3]
        rows.append(f"{when};{ft};-400;{'' if k else 'start'}")
    rows.insert(6, rows[6])  # a repeated timestamp
    rows[8], rows[9] = rows[9], rows[8]  # two rows out of order
    rows.append(f"{datetime.fromtimestamp(T0 + 4, UTC).strftime('%y%m%d%H%M%S.%f')[:-3]};;-400;")  # empty cell
    rows.append(f"{datetime.fromtimestamp(T0 + 4.5, UTC).strftime('%y%m%d%H%M%S.%f')[:-3]};90000;-400;glitch")
    rows.append(f"{datetime.fromtimestamp(T0 + 5, UTC).strftime('%y%m%d%H%M%S.%f')[:-3]};4000;-400;")
    rows.append(f"{datetime.fromtimestamp(T0 + 5.5, UTC).strftime('%y%m%d%H%M%S.%f')[:-3]};3800;-400;")
    rows.append(f"{datetime.fromtimestamp(T0 + 6, UTC).strftime('%y%m%d%H%M%S.%f')[:-3]};3600;-400;")
    log.write_text("\n".join(rows) + "\n")
    series = read_telemetry(log, TelemetryOptions(time_column="Raw timestamp", time_format="%y%m%d%H%M%S.%f"))
    assert series.is_utc and series.unit == "ft"  # the unit comes from the column's name
    assert series.altitude_column == "alt_ft"
    assert series.times_s[0] == pytest.approx(T0) and np.all(np.diff(series.times_s) > 0)
    assert series.altitude_m[0] == pytest.approx(6000 * 0.3048)
    assert 90000 * 0.3048 not in series.altitude_m  # the glitch is gone
    problems = " | ".join(series.problems)
    for expected in ("empty", "repeated timestamps", "not in time order", "glitch"):
        assert expected in problems, problems
    assert len(series.times_s) == len(times) + 3


def test_common_shapes(tmp_path: Path) -> None:
    tsv = tmp_path / "epoch.tsv"
    tsv.write_text("timestamp\theight\n" + "".join(f"{T0 + k:.3f}\t{1000 - k * 10}\n" for k in range(5)))
    jsonl = tmp_path / "relative.jsonl"
    jsonl.write_text("".join(json.dumps({"t": k * 0.5, "agl_km": 2 - k * 0.1, "extra": None}) + "\n" for k in range(5)))
    epoch = read_telemetry(tsv)
    assert epoch.is_utc and epoch.time_column == "timestamp" and epoch.altitude_m[-1] == 960
    relative = read_telemetry(jsonl)
    assert not relative.is_utc and relative.unit == "km" and relative.altitude_m[0] == 2000
    assert list(relative.times_s) == [0, 0.5, 1, 1.5, 2]
    with pytest.raises(UsageError, match="--alt-column"):
        read_telemetry(tsv, TelemetryOptions(altitude_column="nope"))


# --- generated logs: every shape and spelling, with messy rows ----------------------------------------------


@dataclass(frozen=True)
class TimeForm:
    names: tuple[str, ...]
    kind: str
    step_s: float  # forms without a fraction of a second step by whole seconds

    def text(self, t_s: float, end_s: float) -> str:
        when = datetime.fromtimestamp(T0 + t_s, UTC)
        return {"iso": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "epoch": f"{T0 + t_s:.3f}", "compact12": when.strftime("%y%m%d%H%M%S.%f")[:-4],
                "compact14": when.strftime("%Y%m%d%H%M%S"), "elapsed": f"{t_s:.3f}",
                "hhmmss": when.strftime("%H%M%S"), "hms": when.strftime("%H:%M:%S.%f")[:-3],
                "countdown": f"{end_s - t_s:.3f}", "tminus": f"{t_s - end_s:.3f}"}[self.kind]

    def expected_s(self, t_s: float, end_s: float) -> float:
        when = T0 + t_s
        return {"hhmmss": when % 86400, "hms": when % 86400, "elapsed": t_s, "countdown": t_s - end_s,
                "tminus": t_s - end_s}.get(self.kind, when)


TIME_FORMS = {
    "iso": TimeForm(("time_utc", "timestamp", "Date Time"), "iso", 0.25),
    "epoch": TimeForm(("unix_time", "timestamp", "epoch"), "epoch", 0.25),
    "compact12": TimeForm(("Raw timestamp", "GMT"), "compact12", 0.25),
    "compact14": TimeForm(("time", "gmt"), "compact14", 1.0),
    "elapsed": TimeForm(("Relativeseconds", "t", "elapsed (s)", "seconds"), "elapsed", 0.25),
    "hhmmss": TimeForm(("hhmmss",), "hhmmss", 1.0),
    "hms": TimeForm(("time of day", "utc"), "hms", 0.25),
    "countdown": TimeForm(("Timp", "time to impact", "countdown"), "countdown", 0.25),
    "tminus": TimeForm(("t_minus",), "tminus", 0.25),
}
KIND = {"iso": "utc", "epoch": "utc", "compact12": "utc", "compact14": "utc", "elapsed": "elapsed",
        "hhmmss": "time of day", "hms": "time of day", "countdown": "countdown", "tminus": "elapsed"}
# (column name, unit read, factor to metres, where the unit comes from)
ALTITUDES = [("alt_ft", "ft", FT, "name"), ("Rawaltitudeft", "ft", FT, "name"), ("altkm", "km", 1000.0, "name"),
             ("height (m)", "m", 1.0, "name"), ("Altitude[km]", "km", 1000.0, "name"),
             ("elevation_m", "m", 1.0, "name"), ("agl", "m", 1.0, "assumed"), ("Height", "m", 1.0, "assumed"),
             ("rel_alt", "m", 1.0, "assumed"), ("altitude_feet", "ft", FT, "name")]
SHAPES = ["csv", "csv;", "tsv", "jsonl", "json columns", "json records"]


def _messy_log(rng: random.Random, folder: Path) -> tuple[Path, dict[str, object]]:
    """A log of a falling altitude in a random shape and spelling, with an empty cell, a repeated row, two
    rows swapped and a glitch; returns the file and what reading it must give."""
    form_key = rng.choice(sorted(TIME_FORMS))
    form = TIME_FORMS[form_key]
    time_name = rng.choice(form.names)
    alt_name, unit, factor, source = rng.choice(ALTITUDES)
    shape = rng.choice(SHAPES)
    n = rng.randint(24, 60)
    start_m = rng.uniform(50, 40000)
    times = [k * form.step_s for k in range(n)]
    end = round(times[-1] + rng.uniform(1, 20), 3)
    values = [round(start_m * math.exp(-t / (n * form.step_s / 3)) / factor + 1, 4) for t in times]
    decimal_comma = shape in ("csv;", "tsv") and rng.random() < 0.7
    thousands = shape == "csv" and rng.random() < 0.5

    def number(v: float) -> str:
        if thousands:
            return f'"{v:,.4f}"'
        return f"{v:.4f}".replace(".", ",") if decimal_comma else f"{v:.4f}"

    def time_cell(t: float) -> str:
        text = form.text(t, end)
        return text.replace(".", ",") if decimal_comma and form.kind in ("elapsed", "countdown", "tminus") else text

    rows = [[time_cell(t), number(v), f"{rng.uniform(-5, 5):.2f}"] for t, v in zip(times, values, strict=True)]
    probe = n // 2  # a clean row the test reads back
    glitch = probe + 5
    rows[glitch][1] = number(values[glitch] * 40)
    rows[probe - 6][1] = ""  # an empty cell
    rows.insert(probe - 3, list(rows[probe - 3]))  # a repeated row
    rows[probe + 2], rows[probe + 3] = rows[probe + 3], rows[probe + 2]  # two rows out of order
    header = [time_name, alt_name, "temp_c"]
    path = folder / f"log_{rng.randrange(10**6)}"
    if shape.startswith("csv") or shape == "tsv":
        delimiter = {"csv": ",", "csv;": ";", "tsv": "\t"}[shape]
        pad = "  " if rng.random() < 0.5 else ""
        preamble = ["# exported by the flight computer", f"flight{delimiter}42", ""] if rng.random() < 0.5 else []
        lines = preamble + [delimiter.join(header)] + [delimiter.join(pad + c for c in r) for r in rows]
        path = path.with_suffix(".csv")
        path.write_text("\n".join(lines) + "\n")
    else:
        def cell(text: str) -> object:
            if not text:
                return None
            try:
                return float(text.strip('"').replace(",", ""))
            except ValueError:
                return text

        records = [{h: cell(c) for h, c in zip(header, r, strict=True)} for r in rows]
        path = path.with_suffix(".jsonl" if shape == "jsonl" else ".json")
        if shape == "jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in records))
        elif shape == "json records":
            path.write_text(json.dumps(records))
        else:
            path.write_text(json.dumps({h: [r[h] for r in records] for h in header}))
    expected = {"time_column": time_name, "altitude_column": alt_name, "unit": unit, "unit_source": source,
                "time_kind": KIND[form_key], "probe_s": form.expected_s(times[probe], end),
                "probe_m": values[probe] * factor, "glitch_s": form.expected_s(times[glitch], end),
                "samples": n - 2, "shape": shape, "form": form_key}
    return path, expected


@pytest.mark.parametrize("seed", range(120))
def test_generated_logs_read_with_no_options(seed: int, tmp_path: Path) -> None:
    path, expected = _messy_log(random.Random(seed), tmp_path)
    series = read_telemetry(path)
    got = {k: getattr(series, k) for k in ("time_column", "altitude_column", "unit", "unit_source", "time_kind")}
    assert got == {k: expected[k] for k in got}, (expected, path.read_text()[:400])
    assert at(series, float(expected["probe_s"])) == pytest.approx(expected["probe_m"], rel=1e-6)
    assert not np.any(np.isclose(series.times_s, float(expected["glitch_s"]), rtol=0, atol=1e-6))  # dropped
    assert len(series.times_s) == expected["samples"]  # minus the empty cell and the glitch
    assert np.all(np.diff(series.times_s) > 0)
    problems = " | ".join(series.problems)
    for word in ("empty", "repeated timestamps", "not in time order", "glitch"):
        assert word in problems, problems
    assert series.is_utc == (series.time_kind == "utc") and series.time_of_day == (series.time_kind == "time of day")
    assert ("assumed metres" in problems) == (expected["unit_source"] == "assumed")
    report = "\n".join(series.lines())
    for key in ("format", "time", "alt column", "unit"):
        assert f"\n{key.ljust(12)}" in report, report


def test_apollo_style_landing_radar_log(tmp_path: Path) -> None:
    # ';' with decimal commas; dated compact times, a time of day, seconds and two altitudes: the raw one in
    # feet glued to its name, and a derived metres column that is wrong (here 1 % off).
    rows = ["Apollo 11 landing radar, digitised from the DSKY/telemetry listing", "source;enthusiasts", "",
            "Raw timestamp;hhmmss;Relativeseconds;Rawaltitudeft;Altitudem"]
    start = datetime(1969, 7, 20, 20, 15, 38, 400000, tzinfo=UTC).timestamp()
    for k in range(40):
        t = k * 2.0
        when = datetime.fromtimestamp(start + t, UTC)
        feet = 43753.45 - 1000 * k
        rows.append(f"{when.strftime('%y%m%d%H%M%S.%f')[:-4]};{when.strftime('%H%M%S')};{t:.1f}".replace(".", ",")
                    + f";{feet:.2f};{feet * FT * 1.01:.2f}".replace(".", ","))
    rows[10] = rows[10].split(";")[0] + ";;;;"  # a row of empty cells
    log = tmp_path / "apollo11.csv"
    log.write_text("\n".join(rows) + "\n")
    series = read_telemetry(log)
    assert (series.time_column, series.altitude_column, series.unit) == ("Raw timestamp", "Rawaltitudeft", "ft")
    assert series.is_utc and series.time_reading.startswith("YYMMDDhhmmss.ss") and "decimal commas" in series.format
    assert "raw" in series.altitude_reason and "Relativeseconds" in series.time_reason
    assert series.times_s[0] == pytest.approx(start) and series.altitude_m[0] == pytest.approx(43753.45 * FT)
    assert format(datetime.fromtimestamp(series.times_s[0], UTC), "%Y-%m-%d %H:%M:%S") == "1969-07-20 20:15:38"
    relative = read_telemetry(log, TelemetryOptions(time_column="Relativeseconds", altitude_column="Altitudem"))
    assert not relative.is_utc and relative.unit == "m" and at(relative, 4.0) == pytest.approx(41753.45 * FT * 1.01,
                                                                                                rel=1e-6)


def test_dji_spellings(tmp_path: Path) -> None:
    def cue(k: int, body: str) -> str:
        return f"{k + 1}\n00:00:{k:02d},000 --> 00:00:{k + 1:02d},000\n{body}\n"

    spellings = {
        "mini.SRT": ("rel_alt", lambda k, h: f"<font size=\"28\">FrameCnt: {k} 2023-05-01 10:00:0{k % 10}.000\n"
                     f"[latitude: 1.0] [longitude: 2.0] [rel_alt: {h:.3f} abs_alt: {h + 150:.3f}] </font>"),
        "p4.SRT": ("H", lambda k, h: f"F/2.8, SS 320, ISO 100, EV 0, GPS (2.0, 1.0, 19), D 24.05m, H {h:.2f}m, "
                   "H.S 2.84m/s, V.S -1.10m/s"),
        "spark.SRT": ("BAROMETER", lambda k, h: f"HOME(2.0,1.0) 2017.08.05 14:11:51\n"
                      f"GPS(2.0,1.0,16) BAROMETER:{h:.1f}M"),
    }
    for name, (column, body) in spellings.items():
        path = tmp_path / name
        path.write_text("\n".join(cue(k, body(k, 60.0 - 2 * k)) for k in range(20)))
        series = read_telemetry(path)
        assert series.altitude_column == column and series.unit == "m" and series.unit_source == "format", name
        assert at(series, 7.0) == pytest.approx(46.0) and len(series.times_s) == 20, name
        assert series.problems == [], (name, series.problems)


def test_gpx_track(tmp_path: Path) -> None:
    points = "".join(f'<trkpt lat="1.0" lon="2.0"><ele>{300 - k * 1.5:.1f}</ele>'
                     f"<time>{datetime.fromtimestamp(T0 + k, UTC).isoformat().replace('+00:00', 'Z')}</time></trkpt>"
                     for k in range(30))
    path = tmp_path / "flight.gpx"
    path.write_text('<?xml version="1.0"?>\n<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
                    f"<trk><trkseg>{points}<trkpt lat='1' lon='2'><ele>1</ele></trkpt></trkseg></trk></gpx>")
    series = read_telemetry(path)
    assert series.format.startswith("gpx") and series.is_utc and series.unit_source == "format"
    assert at(series, T0 + 10) == pytest.approx(285.0) and len(series.times_s) == 30
    assert any("empty" in p for p in series.problems)  # the point with no time


def test_options_win_over_detection(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("time,alt_ft,height\n" + "".join(f"{k},{1000 - k},{(1000 - k) / 2}\n" for k in range(10)))
    detected = read_telemetry(log)
    assert detected.altitude_column == "height" and "landing HUD" in detected.altitude_reason  # above ground first
    chosen = read_telemetry(log, TelemetryOptions(altitude_column="alt_ft", altitude_unit="km", time_offset_s=5))
    assert chosen.altitude_column == "alt_ft" and chosen.unit_source == "option" and at(chosen, 5.0) == 1000000
    stamped = tmp_path / "stamped.csv"
    stamped.write_text("when;alt\n" + "".join(f"03/01/2019 02:26:{k:02d};{100 - k}\n" for k in range(10)))
    series = read_telemetry(stamped, TelemetryOptions(time_column="when", time_format="%d/%m/%Y %H:%M:%S"))
    assert series.is_utc and at(series, T0 + 3) == 97
    with pytest.raises(UsageError, match="--alt-column"):
        read_telemetry(log, TelemetryOptions(altitude_column="nope"))
    with pytest.raises(UsageError, match="--alt-unit"):
        read_telemetry(log, TelemetryOptions(altitude_unit="furlong"))


def test_unit_is_never_assumed_silently(tmp_path: Path) -> None:
    log = tmp_path / "drone.csv"
    log.write_text("t,Height\n" + "".join(f"{k},{120 - k}\n" for k in range(20)))
    series = read_telemetry(log)
    assert series.unit_assumed and series.to_dict()["unit_source"] == "assumed"
    assert "(assumed metres: say --alt-unit)" in "\n".join(series.lines())
    assert any("assumed metres" in p for p in series.problems)
    # A drone with a speed column in m/s whose descent rate fits metres: the evidence says metres.
    flown = tmp_path / "flown.csv"
    flown.write_text("t,Height,speed_mps\n" + "".join(f"{k},{120 - 3 * k},3.2\n" for k in range(20)))
    checked = read_telemetry(flown)
    assert checked.unit == "m" and checked.unit_source == "inferred" and "'speed_mps'" in checked.unit_reason
    # With no unit on the speed either, metres with m/s and km with km/s fit alike: still assumed, and said.
    vague = tmp_path / "vague.csv"
    vague.write_text("t,Height,speed\n" + "".join(f"{k},{120 - 3 * k},3.2\n" for k in range(20)))
    assert read_telemetry(vague).unit_assumed and "does not tell" in read_telemetry(vague).unit_reason


def test_bad_files_say_one_short_line(tmp_path: Path) -> None:
    binary = tmp_path / "frame.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(DescentError, match="binary") as error:
        read_telemetry(binary)
    assert len(str(error.value)) < 250 and "\n" not in str(error.value)
    header_only = tmp_path / "header.csv"
    header_only.write_text("time,altitude\n")
    with pytest.raises(DescentError, match="no data rows"):
        read_telemetry(header_only)
    prose = tmp_path / "notes.txt"
    prose.write_text("this is a note about the flight\n" * 3)
    with pytest.raises(DescentError, match="no header row") as error:
        read_telemetry(prose)
    assert len(str(error.value)) < 250
    not_columns = tmp_path / "truth.json"
    not_columns.write_text(json.dumps({"spec": {"a": 1}, "frames": [{"time_s": 1, "altitude_m": 2}]}))
    with pytest.raises(DescentError, match="without columns"):
        read_telemetry(not_columns)


def test_to_dict_keeps_its_keys_and_adds_the_decisions() -> None:
    record = read_telemetry(DATA / "ranger7" / "terminal_7a.csv").to_dict()
    for key in ("file", "time_column", "altitude_column", "unit", "samples", "is_utc", "start", "end", "span_s",
                "rate_hz", "altitude_m", "problems", "format", "time_reading", "time_kind", "counts_down",
                "time_of_day", "time_reason", "altitude_reason", "unit_source", "unit_reason", "notes"):
        assert key in record, key
    json.dumps(record)  # JSON all the way down
