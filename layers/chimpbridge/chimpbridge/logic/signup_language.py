"""A signup's language, as one of Mailchimp's language codes.

Given explicitly (``language``) or taken from the browser's ``Accept-Language``. Mailchimp
knows a fixed set of codes, mostly ISO 639-1 plus a few regional variants (``fr_CA``,
``pt_PT``, ``es_ES``, ``zh_TW``); anything else maps to its base language or is left unset.
"""

from __future__ import annotations

# https://mailchimp.com/help/view-and-edit-contact-languages/
MAILCHIMP_LANGUAGES = frozenset(
    {
        *("en", "ar", "af", "be", "bg", "ca", "zh", "zh_TW", "hr", "cs", "da", "nl", "et", "fa", "fi", "fr", "fr_CA"),
        *("de", "el", "he", "hi", "hu", "is", "id", "ga", "it", "ja", "km", "ko", "lv", "lt", "mt", "ms", "mk"),
        *("no", "pl", "pt", "pt_PT", "ro", "ru", "sr", "sk", "sl", "es", "es_ES", "sw", "sv", "ta", "th", "tr"),
        *("uk", "vi"),
    }
)
# Codes browsers send that Mailchimp spells differently.
ALIASES = {"nb": "no", "nn": "no", "iw": "he", "in": "id", "zh_HK": "zh_TW", "zh_MO": "zh_TW", "zh_Hant": "zh_TW"}
MAX_HEADER_ENTRIES = 20


def mailchimp_language(value: str) -> str | None:
    """``"fr-CA"`` -> ``"fr_CA"``, ``"de-AT"`` -> ``"de"``, ``"nb-NO"`` -> ``"no"``, ``"xx"`` -> None."""
    parts = value.strip().replace("-", "_").split("_")
    if not parts[0] or not parts[0].isalpha():
        return None
    base = parts[0].lower()
    region = parts[1] if len(parts) > 1 else ""
    region = region.title() if len(region) == 4 else region.upper()  # zh-Hant is a script, zh-TW a region
    for code in (f"{base}_{region}" if region else "", base):
        candidate = ALIASES.get(code, code)
        if candidate in MAILCHIMP_LANGUAGES:
            return candidate
    return None


def language_from_header(header: str | None) -> str | None:
    """The most preferred language of ``Accept-Language`` that Mailchimp knows."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, entry in enumerate(header.split(",")[:MAX_HEADER_ENTRIES]):
        tag, _, parameters = entry.strip().partition(";")
        quality = 1.0
        if parameters.strip().startswith("q="):
            try:
                quality = float(parameters.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        language = mailchimp_language(tag)
        if language is not None:
            return language
    return None
