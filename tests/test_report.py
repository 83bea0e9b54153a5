"""The JSON of `--json` and `--report` is an interface scripts rely on: its keys are pinned here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

pytestmark = pytest.mark.slow  # builds a video

TOP = {"images_found", "frames_used", "skipped_files", "time_source", "start", "end", "span_s", "rate_fps",
       "coarse_clock", "gaps", "out_of_place", "duplicates", "unreadable", "not_shown", "sizes", "bit_depths",
       "bits_used", "colour_frames", "products", "notes", "warnings", "missing_pixels", "stabilisation",
       "normalisation", "deflicker", "altitude", "output", "timings"}
SECTIONS = {
    "rate_fps": {"median", "min", "max"},
    "stabilisation": {"mode", "zoom", "bridged_pairs", "correlated_pairs", "gaps_measured_across", "perspective_pairs",
                      "frames_with_fill", "static_fraction", "motion_reused"},
    "normalisation": {"bits_used", "bayer", "bayer_source", "bayer_evidence", "white_balance_rgb", "tone", "defects",
                      "vignetting", "float_range"},
    "deflicker": {"largest_correction", "rms_correction", "steps_kept", "unmeasured_pairs"},
    "altitude": {"source", "frames_with_altitude", "frames_estimated", "touchdown_s", "highest_m", "lowest_m",
                 "time_offset_s", "offset_source", "offset_fit", "unit", "unit_source"},
    "output": {"path", "frames", "duration_s", "fps", "width", "height", "codec", "encoder", "crf", "preset",
               "ffmpeg"},
}
LISTS = {
    "gaps": {"after", "before", "interval_s", "missing_frames"},
    "duplicates": {"file", "duplicate_of"},
    "unreadable": {"file", "reason"},
}
FRAME = {"file", "time_s", "counter", "status", "output_first", "output_count", "note", "time"}
STATUSES = {"used", "duplicate", "unreadable", "not shown"}


def _check(summary: dict, *, built: bool) -> None:
    assert set(summary) == TOP
    for key, fields in SECTIONS.items():
        if built or key not in ("stabilisation", "deflicker", "altitude", "output"):
            assert set(summary[key]) == fields, key
    for key, fields in LISTS.items():
        assert summary[key], f"{key}: the test input should have some"
        assert all(set(item) == fields for item in summary[key]), key
    assert set(summary["normalisation"]["tone"]) == {"black", "white", "gamma"}


def test_json_and_report_keys_are_pinned(make_descent, tmp_path: Path) -> None:
    source, _ = make_descent(drop_every=9, duplicates=2)
    folder = tmp_path / "frames"
    shutil.copytree(source, folder)
    (folder / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a header and nothing else
    built = run_cli("build", folder, "-o", tmp_path / "v.mp4", "--json", "--report", tmp_path / "r.json",
                    "--telemetry", folder / "telemetry.csv", "-q")
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    _check(summary, built=True)
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report) == TOP | {"frames"}
    assert all(set(f) == FRAME for f in report["frames"])
    assert {f["status"] for f in report["frames"]} <= STATUSES and {"used", "duplicate"} <= {
        f["status"] for f in report["frames"]}
    assert {k: v for k, v in report.items() if k != "frames"} == summary

    inspected = run_cli("inspect", folder, "--json", "-q")
    assert inspected.returncode == 0, inspected.stderr
    summary = json.loads(inspected.stdout)
    _check(summary, built=False)
    assert summary["output"] is None and summary["stabilisation"] is None


def test_coarse_clock_keys(make_descent) -> None:
    folder, _ = make_descent(coarse_clock=True)
    inspected = run_cli("inspect", folder, "--json", "-q")
    assert inspected.returncode == 0, inspected.stderr
    assert set(json.loads(inspected.stdout)["coarse_clock"]) == {"quantum_s", "frames_per_stamp"}
