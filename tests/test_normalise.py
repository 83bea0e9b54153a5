"""Bit depth, output size and fitting."""

from __future__ import annotations

import numpy as np
import pytest

from descent.errors import UsageError
from descent.normalise.size import SizeConfig, fit, output_size, parse_size
from descent.normalise.tone import sample_histogram, tone_map_from_histogram


def test_tone_map_uses_the_range_the_sensor_really_uses() -> None:
    # A 12-bit camera in 16-bit files: values 160..3900; the mapping must stretch that, not 0..65535.
    rng = np.random.default_rng(0)
    frame = rng.integers(160, 3901, (256, 256)).astype(np.uint16)
    tone = tone_map_from_histogram(sample_histogram(frame))
    assert 160 <= tone.black < 170 and 3890 < tone.white <= 3900
    lut = tone.lut()
    assert lut[tone.black] == 0 and lut[tone.white] == 255
    assert np.all(np.diff(lut.astype(int)) >= 0)


def test_one_mapping_keeps_frame_brightness_relative() -> None:
    # Two frames, the second 20% darker: a per-frame stretch would erase that, one mapping keeps it.
    base = np.linspace(1000, 3000, 4096).reshape(64, 64).astype(np.uint16)
    dark = (base * 0.8).astype(np.uint16)
    tone = tone_map_from_histogram(sample_histogram(base) + sample_histogram(dark))
    lut = tone.lut()
    assert lut[dark].mean() < lut[base].mean() - 20


def test_output_size_is_even() -> None:
    assert output_size((1023, 767), SizeConfig()) == (1022, 766)
    assert output_size((1024, 1024), SizeConfig(scale=0.5)) == (512, 512)
    assert output_size((1024, 1024), SizeConfig(size=(1280, 720))) == (1280, 720)
    with pytest.raises(UsageError):
        output_size((10, 10), SizeConfig(scale=0))


def test_parse_size() -> None:
    assert parse_size("1920x1080") == (1920, 1080)
    with pytest.raises(UsageError, match="WIDTHxHEIGHT"):
        parse_size("big")


def test_fit_keeps_aspect_and_centres() -> None:
    frame = np.full((100, 200), 200, np.uint8)
    out = fit(frame, 100, 100)  # 2:1 into a square: 100x50 band in the middle
    assert out.shape == (100, 100)
    assert out[:24].max() == 0 and out[76:].max() == 0
    assert out[26:74].min() == 200
    assert fit(frame, 200, 100) is frame
