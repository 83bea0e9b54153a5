"""The HUD fits any frame: at most a fifth of the picture from 128 px to 4K, shedding the profile, then the
labels, then all but the altitude; its glyphs never under 9 px; golden images at a small and a large size."""

from __future__ import annotations

import numpy as np
import pytest
from test_altitude import _demo_track, _golden_background, assert_matches_golden

from descent.overlay import MIN_GLYPH_PX, Hud, HudConfig

SIZES = [(128, 128), (320, 180), (640, 480), (1920, 1080), (3840, 2160)]


def drawn_box_share(hud: Hud, width: int, height: int) -> float:
    """The drawn panel's bounding box (from its alpha, as an editor sees it) over the frame's area."""
    alpha = hud.draw_alone(70, width=width, height=height)[:, :, 3]
    ys, xs = np.nonzero(alpha)
    return (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1) / (width * height)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_hud_covers_at_most_a_fifth(width: int, height: int) -> None:
    hud = Hud(HudConfig(), width=width, height=height, track=_demo_track())
    share = drawn_box_share(hud, width, height)
    print(f"{width}x{height}: {hud.layout}, {share:.1%} of the picture")
    assert share <= 0.2
    fonts = [hud.big] + ([hud.label, hud.small] if hud.layout in ("full", "no profile") else []) + (
        [hud.medium] if hud.layout != "altitude" else [])
    assert min(f.font.size for f in fonts) >= MIN_GLYPH_PX


def test_the_ladder_gives_up_the_profile_first_and_the_altitude_last() -> None:
    layouts = [Hud(HudConfig(), width=w, height=h, track=_demo_track()).layout for w, h in SIZES]
    assert layouts[-2:] == ["full", "full"]
    assert layouts[0] in ("values", "altitude")
    order = ["altitude", "values", "no profile", "full"]
    assert [order.index(x) for x in layouts] == sorted(order.index(x) for x in layouts)  # richer as frames grow
    small = Hud(HudConfig(), width=128, height=128, track=_demo_track())
    assert "m" in small.caption(70)  # the altitude is always there


@pytest.mark.parametrize(("width", "height"), [(320, 180), (1920, 1080)])
def test_hud_matches_the_approved_image(width: int, height: int) -> None:
    """Golden images: when the look changes on purpose, `make approve` accepts the received image."""
    hud = Hud(HudConfig(mark_site=True), width=width, height=height, track=_demo_track(),
              sites=np.tile([width / 2 + width / 20, height / 2 - height / 16], (120, 1)))
    assert_matches_golden(hud.draw(_golden_background(width, height), 70), f"hud_{height}p")
