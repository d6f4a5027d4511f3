"""The Date form (RFC 8621 §4.1.2.6): an RFC 5322 §3.3 date-time as an RFC 3339 string that keeps
the sender's offset, e.g. "2014-10-30T14:12:00+08:00"; None when it cannot be read."""

from __future__ import annotations

import calendar
import re

from jmapd.mail.lexer import without_comments

_DATE_TIME = re.compile(
    r"""^\s*(?:[A-Za-z]+\s*,?\s*)?                   # day-of-week, not checked (§3.3, §4.3)
    (?P<day>\d{1,2})\s*-?\s*(?P<month>[A-Za-z]+)\s*-?\s*(?P<year>\d{2,4})\s+
    (?P<hour>\d{1,2})\s*:\s*(?P<minute>\d{2})(?:\s*:\s*(?P<second>\d{2}))?
    \s*(?P<zone>[+-]\d{2}:?\d{2}|[A-Za-z]+)?\s*$""",
    re.X,
)
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}

# RFC 5322 §4.3 obsolete zones. Military letters, and any zone we do not know, mean "-0000".
_ZONES = {
    "ut": "+0000",
    "gmt": "+0000",
    "edt": "-0400",
    "est": "-0500",
    "cdt": "-0500",
    "cst": "-0600",
    "mdt": "-0600",
    "mst": "-0700",
    "pdt": "-0700",
    "pst": "-0800",
}


def parse_date(value: str) -> str | None:
    """Read a date-time; obsolete syntax (2- and 3-digit years, named zones, missing seconds) is
    accepted, and a missing zone is taken as "-0000" (local time unknown, RFC 5322 §3.3)."""
    match = _DATE_TIME.match(without_comments(value.replace("\r", "").replace("\n", "")))
    if match is None:
        return None
    month = _MONTHS.get(match["month"][:3].lower())
    year = _year(match["year"])
    day, hour, minute = int(match["day"]), int(match["hour"]), int(match["minute"])
    second = int(match["second"] or 0)
    zone = _zone(match["zone"])
    if month is None or zone is None or year < 1900:  # §3.3: "1900 or later"
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    if hour > 23 or minute > 59 or second > 60:
        return None
    time = f"{hour:02d}:{minute:02d}:{second:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}T{time}{zone[:3]}:{zone[3:]}"


def _year(text: str) -> int:
    # RFC 5322 §4.3: 00-49 are 2000-2049; 50-99 and three-digit years count from 1900.
    year = int(text)
    if len(text) == 2:
        return year + (2000 if year < 50 else 1900)
    return year + 1900 if len(text) == 3 else year


def _zone(text: str | None) -> str | None:
    if text is None:
        return "-0000"
    if text[0] in "+-":
        zone = text.replace(":", "")
        return zone if int(zone[1:3]) <= 23 and int(zone[3:]) <= 59 else None
    return _ZONES.get(text.lower(), "-0000")
