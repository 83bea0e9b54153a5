"""What a product label's words mean to descent, whatever the label's format."""

from __future__ import annotations

import re

from descent.options import BAYER_PATTERNS


def bayer_from_label(value: str | None) -> str | None:
    """CFA_TYPE (`BAYER_RGGB`, `"BAYER RGGB"`, `NONE`) as a pattern name or "none"; None when unknown."""
    if value is None:
        return None
    text = re.sub(r"[^A-Z]", "", value.upper())
    if text in ("NONE", "NA", "NULL"):
        return "none"
    return next((p for p in BAYER_PATTERNS if text.endswith(p)), None)
