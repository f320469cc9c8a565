"""Time zones named in a request: IANA names ("Europe/Paris") and the cities they are named after ("Tokyo",
"New York"), as IANA names, for the parameters that take one (an MCP time server's ``timezone``)."""

import re
import zoneinfo
from functools import lru_cache

# The regions whose zones are named after a city; the other names (Etc/, US/, aliases such as Japan) are not.
REGIONS = ("Europe", "Asia", "America", "Africa", "Australia", "Pacific", "Atlantic", "Indian", "Antarctica")
IANA_NAME = re.compile(rf"\b(?:{'|'.join(REGIONS)})/[A-Za-z_\-]+(?:/[A-Za-z_\-]+)?\b")
ABBREVIATIONS = {"utc": "Etc/UTC", "gmt": "Etc/GMT"}
WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
# Cities whose name is also a common English word: only their IANA name refers to them.
COMMON_WORDS = frozenset({"easter", "wake", "truk", "chatham", "casey", "davis", "mawson", "palmer", "vostok"})
CLOCK_TIME = re.compile(r"(?<![\d:])([01]?\d|2[0-3]):([0-5]\d)(?![\d:])")


@lru_cache(maxsize=1)
def _cities() -> dict[str, str]:
    """A city's name in lower case ("new york") -> its zone ("America/New_York"); the first region listed wins."""
    cities: dict[str, str] = {}
    names = sorted(zoneinfo.available_timezones())
    for region in REGIONS:
        for name in names:
            parts = name.split("/")
            if len(parts) == 2 and parts[0] == region:
                city = parts[1].replace("_", " ").lower()
                if city not in COMMON_WORDS:
                    cities.setdefault(city, name)
    return cities


def timezones_in(text: str) -> list[str]:
    """The zones the text names, in the order it names them."""
    return [zone for _, _, zone in _zone_spans(text)]


def place_names_removed(text: str) -> str:
    """The text without the zones and cities it names, so that "New York" reads as no verb."""
    for start, end, _ in sorted(_zone_spans(text), reverse=True):
        text = text[:start] + " " + text[end:]
    return text


def _zone_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, zone) of each zone or city named, in order."""
    found: list[tuple[int, int, str]] = []
    valid = zoneinfo.available_timezones()
    for match in IANA_NAME.finditer(text):
        if match.group(0) in valid:
            found.append((match.start(), match.end(), match.group(0)))
    without = IANA_NAME.sub(lambda match: " " * len(match.group(0)), text)
    tokens = [(match.start(), match.end(), match.group(0).lower()) for match in WORD.finditer(without)]
    cities = _cities()
    index = 0
    while index < len(tokens):
        for length in (3, 2, 1):
            span = tokens[index : index + length]
            phrase = " ".join(token for _, _, token in span)
            zone = cities.get(phrase) or (ABBREVIATIONS.get(phrase) if length == 1 else None)
            if zone is not None and len(span) == length:
                found.append((span[0][0], span[-1][1], zone))
                index += length
                break
        else:
            index += 1
    return sorted(found)


def clock_times_in(text: str) -> list[str]:
    """Times of day written HH:MM (24-hour), as HH:MM."""
    return [f"{int(hours):02d}:{minutes}" for hours, minutes in CLOCK_TIME.findall(text)]


def is_iana_name(text: str) -> bool:
    return text in zoneinfo.available_timezones()
