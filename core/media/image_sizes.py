"""What anonymous image requests are snapped to, and how many stored images an asset may have (pure).

Images are made on demand by anyone who can play an asset, stored forever
and cached by every CDN under their URL. Exact parameters would give each
viewer an unbounded supply of new files to make (any width and height from 1
to 1920, four fit modes, any time to 1/100 s), so every request is snapped
to a small, documented grid before it is planned, and URLs that snap to the
same grid point are one stored file:

- width and height round UP to the next of `IMAGE_SIZES` (never a blurrier
  picture than asked; the page scales it down);
- times round to the nearest whole second (the last frame stays reachable:
  a time past it is clamped to it);
- animated previews: widths to `ANIMATED_WIDTHS`, frame rates up to the next
  of `ANIMATED_FRAME_RATES`.

On top, an asset keeps at most `max_variants` stored thumbnails and animated
previews (setting `ABR_MAX_IMAGE_VARIANTS`): beyond, new ones are refused
while those already made are still served. The storyboard, made once by the
worker, does not count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from core.errors import AbrError

IMAGE_SIZES = (90, 120, 160, 180, 240, 320, 360, 480, 640, 720, 960, 1080, 1280, 1920)
ANIMATED_WIDTHS = tuple(s for s in IMAGE_SIZES if s <= 640)
ANIMATED_FRAME_RATES = (5, 10, 15, 20, 25, 30)
STORYBOARD_PREFIX = "storyboard-"  # made by the worker; outside the variant budget


class TooManyImages(AbrError):
    code = "too_many_images"
    status = 422


def snap_up(value: int | None, grid: tuple[int, ...]) -> int | None:
    """The smallest grid value ≥ `value` (the largest for values beyond the grid); None stays None."""
    if value is None:
        return None
    return next((g for g in grid if g >= value), grid[-1])


def snap_time(seconds: float) -> float:
    """To the nearest whole second, halves up (`round` would send 0.5 and 2.5 down, 1.5 up)."""
    return float(math.floor(seconds + 0.5))


def stored_variants(names: Iterable[str]) -> int:
    """How many of an asset's stored image names count against its budget."""
    return sum(1 for name in names if not name.rsplit("/", 1)[-1].startswith(STORYBOARD_PREFIX))


def check_variant_budget(names: Iterable[str], max_variants: int) -> None:
    """Refuse a new stored image once the asset holds `max_variants` of them."""
    if stored_variants(names) >= max_variants:
        raise TooManyImages(f"this asset already has its {max_variants} stored images (ABR_MAX_IMAGE_VARIANTS); "
                            "images already made are still served, new sizes or times are not made")
