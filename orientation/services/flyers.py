"""Flyers: the questionnaire URL with a source tag, its QR code (SVG, PNG), a printable sheet.

The source tag says where a request came from (pharmacie, mairie...) for the indicators; it is
part of the URL the QR code encodes, so each pile of flyers counts on its own.
"""

from __future__ import annotations

import io
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg
from PIL import Image, ImageDraw, ImageFont

from models import Territory

SOURCE_TAGS = {
    "pharmacie": "Pharmacie",
    "mairie": "Mairie",
    "cabinet": "Cabinet médical ou paramédical",
    "site-web": "Site web",
    "cpam": "CPAM",
    "autre": "Autre",
}
# Pixels at 150 dpi: enough for a crisp print, light enough to download on a phone line.
PAGE_SIZES = {"A4": (1240, 1754), "A5": (874, 1240)}
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


class FlyerError(ValueError):
    """A flyer cannot be made as asked (unknown format, bad tag)."""


def clean_tag(tag: str) -> str:
    """A source tag as it goes into URLs and indicators: 'Site Web' -> 'site-web'."""
    value = re.sub(r"[^a-z0-9]+", "-", tag.strip().lower()).strip("-")[:40]
    if not value:
        raise FlyerError("Choisissez où le flyer sera déposé.")
    return value


def questionnaire_url(base_url: str, slug: str, tag: str) -> str:
    """What the QR code encodes: <base>/cpts/<slug>/demande?source=<tag>."""
    return f"{base_url.rstrip('/')}/cpts/{slug}/demande?{urlencode({'source': tag})}"


def _qr(url: str) -> qrcode.QRCode:
    # Level M survives a fold or a stain on a flyer pinned in a waiting room.
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(url)
    code.make(fit=True)
    return code


def qr_svg(url: str) -> bytes:
    image = _qr(url).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    result: bytes = image.to_string(encoding="utf-8")
    return result


def qr_png(url: str, box_size: int = 10) -> bytes:
    code = _qr(url)
    code.box_size = box_size
    buffer = io.BytesIO()
    code.make_image(fill_color="black", back_color="white").save(buffer)
    return buffer.getvalue()


@dataclass(frozen=True)
class FlyerText:
    title: str
    body: str
    phone: str
    email: str


def flyer_text(territory: Territory) -> FlyerText:
    return FlyerText(
        title="Vous n'avez pas de médecin traitant ?",
        body=(
            f"{territory.name} vous aide à en trouver un près de chez vous. Scannez le code "
            "avec votre téléphone et répondez à quelques questions (2 minutes) : la coordination "
            "vous recontacte. Service gratuit."
        ),
        phone=territory.contact_phone,
        email=territory.contact_email,
    )


def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = FONT_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    if path.exists():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def flyer_image(territory: Territory, url: str, page: str) -> Image.Image:
    """The flyer as an image (for the PNG and PDF downloads)."""
    if page not in PAGE_SIZES:
        raise FlyerError("Format inconnu : A4 ou A5.")
    width, height = PAGE_SIZES[page]
    unit = width / 1240
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    text = flyer_text(territory)
    margin = int(90 * unit)
    y = margin
    for line in textwrap.wrap(text.title, 24):
        draw.text((margin, y), line, font=_font(int(64 * unit), True), fill="#00517a")
        y += int(80 * unit)
    y += int(30 * unit)
    for line in textwrap.wrap(text.body, 44):
        draw.text((margin, y), line, font=_font(int(36 * unit)), fill="#1b1b1b")
        y += int(50 * unit)
    qr = Image.open(io.BytesIO(qr_png(url, box_size=14))).convert("RGB")
    side = int(560 * unit)
    qr = qr.resize((side, side), Image.Resampling.NEAREST)
    y += int(40 * unit)
    image.paste(qr, ((width - side) // 2, y))
    y += side + int(40 * unit)
    for line in (f"Téléphone : {text.phone}" if text.phone else "", text.email, url):
        if not line:
            continue
        size = int(32 * unit)
        # A long URL shrinks to fit the sheet rather than run off its edge.
        while size > 10 and draw.textlength(line, font=_font(size)) > width - 2 * margin:
            size -= 1
        draw.text((margin, y), line, font=_font(size), fill="#1b1b1b")
        y += int(48 * unit)
    return image


def flyer_file(territory: Territory, url: str, page: str, kind: str) -> bytes:
    """The flyer as PNG or PDF bytes."""
    if kind not in ("png", "pdf"):
        raise FlyerError("Téléchargement en PNG ou PDF.")
    buffer = io.BytesIO()
    image = flyer_image(territory, url, page)
    if kind == "pdf":
        image.save(buffer, format="PDF", resolution=150.0)
    else:
        image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
