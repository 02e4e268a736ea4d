"""Provenance in published images: what made them, as IPTC DigitalSourceType in XMP.

An image from a generative model says trainedAlgorithmicMedia, as Google Merchant Center
requires of AI-generated product images. An offline preview says what it is instead: a
composite of the product's own photo on a backdrop made by code, without a generative model
(DigitalSourceType composite). The XMP packet goes into the PNG as an iTXt chunk
("XML:com.adobe.xmp"), into JPEG and WebP through Pillow's xmp argument.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from PIL import Image
from PIL.PngImagePlugin import PngInfo

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/composite"
OFFLINE_DESCRIPTION = (
    "Offline preview: the product's own photo composed on a backdrop by code, "
    "without a generative model."
)
PNG_XMP_KEY = "XML:com.adobe.xmp"


def xmp_packet(*, title: str, models: list[str], created: str, offline: bool = False) -> str:
    """An XMP packet saying how the image was made, with the models (or tools) that made it."""
    tools = ", ".join(model for model in models if model)
    parts = [
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>',
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
        '<rdf:Description rdf:about="" '
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/">',
        f"<Iptc4xmpExt:DigitalSourceType>{COMPOSITE if offline else TRAINED_ALGORITHMIC_MEDIA}"
        "</Iptc4xmpExt:DigitalSourceType>",
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(title)}</rdf:li></rdf:Alt></dc:title>',
        f"<xmp:CreatorTool>{escape(tools)}</xmp:CreatorTool>",
    ]
    if offline:
        parts.append(
            '<dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
            f"{escape(OFFLINE_DESCRIPTION)}</rdf:li></rdf:Alt></dc:description>"
        )
    else:
        models_bag = "".join(f"<rdf:li>{escape(model)}</rdf:li>" for model in models if model)
        parts.append(
            f"<Iptc4xmpExt:AIModels><rdf:Bag>{models_bag}</rdf:Bag></Iptc4xmpExt:AIModels>"
        )
    if created:
        parts.append(f"<xmp:CreateDate>{escape(created)}</xmp:CreateDate>")
    parts.append('</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
    return "".join(parts)


def with_provenance(content: bytes, xmp: str) -> tuple[bytes, str]:
    """The image re-saved with the XMP packet; returns the bytes and the file extension."""
    image = Image.open(io.BytesIO(content))
    image.load()
    buffer = io.BytesIO()
    if image.format == "PNG":
        info = PngInfo()
        info.add_itxt(PNG_XMP_KEY, xmp)
        image.save(buffer, format="PNG", pnginfo=info)
        return buffer.getvalue(), "png"
    fmt = "WEBP" if image.format == "WEBP" else "JPEG"
    image.convert("RGB").save(buffer, format=fmt, xmp=xmp.encode("utf-8"), quality=92)
    return buffer.getvalue(), fmt.lower().replace("jpeg", "jpg")


def read_xmp(content: bytes) -> str:
    """The XMP packet of an image ("" when there is none)."""
    image = Image.open(io.BytesIO(content))
    raw = image.info.get(PNG_XMP_KEY) or image.info.get("xmp") or ""
    return raw.decode("utf-8") if isinstance(raw, bytes) else raw
