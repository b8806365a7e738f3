"""Photos: prove each upload is an image, read its GPS tag if allowed, and re-encode it clean.

The stored JPEG is built from the decoded pixels with no EXIF, XMP, ICC profile or comment, so
nothing the camera or phone wrote (location, device, owner) survives. The upload itself is
never stored or served.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from citizen_report.model import Photo, ReportConfig
from foundation.errors import FieldError
from foundation.i18n import N_

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "MPO"})
GPS_IFD = 0x8825


@dataclass(frozen=True)
class CleanPhoto:
    id: str  # content hash of the clean JPEG
    jpeg: bytes
    width: int
    height: int
    gps: tuple[float, float] | None  # (lat, lon) from the original's EXIF, when present


def clean_photos(photos: list[Photo], config: ReportConfig) -> tuple[list[CleanPhoto], list[FieldError]]:
    """Re-encode every photo; CPU-bound, so callers run it in a thread."""
    if len(photos) > config.max_photos:
        return [], [too_many_photos(config.max_photos)]
    clean: list[CleanPhoto] = []
    errors: list[FieldError] = []
    for index, photo in enumerate(photos):
        field = f"photos[{index}]"
        if len(photo.data) > config.max_photo_bytes:
            mb = config.max_photo_bytes // (1024 * 1024)
            errors.append(FieldError(field, "too_large", N_("A photo may be at most %(mb)s MB."), {"mb": mb}))
            continue
        try:
            clean.append(_clean(photo.data, config))
        except _NotAnImage:
            errors.append(FieldError(field, "not_an_image", N_("This file is not a JPEG, PNG, WebP or GIF image.")))
        except _TooManyPixels:
            errors.append(FieldError(field, "too_many_pixels", N_("This image has too many pixels.")))
    return clean, errors


def too_many_photos(most: int) -> FieldError:
    return FieldError("photos", "too_many", N_("Attach at most %(count)s photos."), {"count": most})


class _NotAnImage(Exception):
    pass


class _TooManyPixels(Exception):
    pass


def _clean(data: bytes, config: ReportConfig) -> CleanPhoto:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ACCEPTED_FORMATS:
                raise _NotAnImage
            if image.width * image.height > config.max_photo_pixels:
                raise _TooManyPixels
            gps = _gps(image)
            image.load()  # decodes every pixel: a truncated or forged file fails here
            upright = ImageOps.exif_transpose(image) or image
            pixels = upright.convert("RGB")
    except Image.DecompressionBombError as exc:  # Pillow's own limit, hit already when it opens the file
        raise _TooManyPixels from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _NotAnImage from exc
    pixels.thumbnail((config.photo_edge, config.photo_edge))
    # A fresh image holds pixels only: no info dict, no EXIF, no ICC profile to carry over.
    bare = Image.new("RGB", pixels.size)
    bare.paste(pixels)
    out = io.BytesIO()
    bare.save(out, format="JPEG", quality=85, optimize=True)
    jpeg = out.getvalue()
    return CleanPhoto(hashlib.sha256(jpeg).hexdigest()[:32], jpeg, bare.width, bare.height, gps)


def _gps(image: Image.Image) -> tuple[float, float] | None:
    try:
        gps = image.getexif().get_ifd(GPS_IFD)
        lat = _degrees(gps[2], gps.get(1, "N"))
        lon = _degrees(gps[4], gps.get(3, "E"))
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError, AttributeError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return round(lat, 6), round(lon, 6)


def _degrees(dms: tuple, ref: str | bytes) -> float:
    degrees, minutes, seconds = (float(x) for x in dms)
    value = degrees + minutes / 60 + seconds / 3600
    ref = ref.decode() if isinstance(ref, bytes) else ref
    return -value if ref.strip().upper() in ("S", "W") else value
