"""vCard (RFC 6350, 3.0 and 4.0) to JSContact and back, after RFC 9555.

vobject reads each content line (groups, parameters, quoting); this module unfolds the file
itself, keeping line numbers for what it rejects, and maps values. vobject's own property
behaviours are not used: for vCard 4.0 they split a data: URI at its comma and lose the
photo. What has no JSContact property is kept in vCardProps (jCard form) and parameters
that no property takes in vCardParams, so a card exports as it came in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vobject.base import ParseError, parseLine

STRUCTURED_N = ("surname", "given", "given2", "title", "credential", "surname2", "generation")
N_ORDER = ("title", "given", "given2", "surname", "surname2", "generation", "credential")
ADR_KINDS = ("postOfficeBox", "apartment", "name", "locality", "region", "postcode", "country")
CONTEXTS = {"work": "work", "home": "private"}
FEATURES = {
    "cell": "mobile",
    "voice": "voice",
    "text": "text",
    "video": "video",
    "textphone": "textphone",
    "fax": "fax",
    "pager": "pager",
}
ANNIVERSARIES = {"BDAY": "birth", "ANNIVERSARY": "wedding", "DEATHDATE": "death"}
MEDIA = {"PHOTO": "photo", "LOGO": "logo", "SOUND": "sound"}
KINDS = ("individual", "group", "org", "location", "device", "application")
DATE = re.compile(r"(\d{4}|--)-?(\d{2}|-)?-?(\d{2})?")
STAMP = re.compile(
    r"(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?"
)


class VCardError(ValueError):
    """A card that cannot be read: the line it starts at and why."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass
class Line:
    name: str  # upper case
    params: dict[str, list[str]]  # names in upper case
    value: str  # as written, escapes and all
    group: str | None
    number: int


@dataclass
class RawCard:
    line: int  # where BEGIN:VCARD is
    lines: list[Line] = field(default_factory=list)


# -- reading ---------------------------------------------------------------------------------------


def unfold(text: str) -> Iterator[tuple[int, str]]:
    """Logical lines with the number of their first physical line (RFC 6350 §3.2)."""
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if raw[:1] in (" ", "\t") and current:
            current.append(raw[1:])
            continue
        if current:
            yield start, "".join(current)
        current, start = [raw], number
    if current:
        yield start, "".join(current)


def split_cards(text: str) -> Iterator[RawCard | VCardError]:
    """Each BEGIN:VCARD … END:VCARD, or the error that stopped it (the rest is read on)."""
    card: RawCard | None = None
    for number, logical in unfold(text):
        if not logical.strip():
            continue
        try:
            name, params, value, group = parseLine(logical, number)
        except ParseError:
            if card is not None:
                yield VCardError(card.line, f"unreadable line {number}")
                card = None
            continue
        name = name.upper()
        if name == "BEGIN" and value.upper() == "VCARD":
            if card is not None:
                yield VCardError(card.line, "no END:VCARD")
            card = RawCard(number)
        elif name == "END" and value.upper() == "VCARD" and card is not None:
            yield card
            card = None
        elif card is not None:
            pairs: dict[str, list[str]] = {}
            for p in params:  # TYPE=work;TYPE=pref (3.0) is TYPE=work,pref
                pairs.setdefault(p[0].upper(), []).extend(
                    v for vs in p[1:] for v in _split_list(vs)
                )
            card.lines.append(Line(name, pairs, value, group, number))
    if card is not None:
        yield VCardError(card.line, "no END:VCARD")


def _split_list(value: str) -> list[str]:
    return [v for v in value.split(",")] if value else [""]


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def split_unescaped(value: str, sep: str) -> list[str]:
    """Split at separators not escaped with a backslash."""
    parts, current, i = [], [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            current.append(value[i : i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def structured(value: str) -> list[list[str]]:
    """A structured value (N, ADR, ORG): components of comma lists, unescaped."""
    return [[unescape(v) for v in split_unescaped(c, ",")] for c in split_unescaped(value, ";")]


class Builder:
    """One card being converted: counters for map keys, the card, the leftovers."""

    def __init__(self) -> None:
        self.card: dict[str, Any] = {"@type": "Card", "version": "1.0"}
        self.counts: dict[str, int] = {}
        self.labels: dict[str, tuple[str, str]] = {}  # group → (property, key) labelled by it

    def add(self, prop: str, value: dict[str, Any], line: Line, used: tuple[str, ...] = ()) -> str:
        self.counts[prop] = self.counts.get(prop, 0) + 1
        key = f"{prop[0]}{self.counts[prop]}"
        params = {
            k.lower(): v if len(v) > 1 else v[0] for k, v in line.params.items() if k not in used
        }
        if line.group:
            params["group"] = line.group
            self.labels[line.group.lower()] = (prop, key)
        if params:
            value["vCardParams"] = params
        self.card.setdefault(prop, {})[key] = value
        return key

    def keep(self, line: Line) -> None:
        """RFC 9555 §2.15.1: a property without a JSContact counterpart, as jCard."""
        params: dict[str, Any] = {
            k.lower(): v if len(v) > 1 else v[0] for k, v in line.params.items()
        }
        if line.group:
            params["group"] = line.group
        self.card.setdefault("vCardProps", []).append(
            [line.name.lower(), params, "unknown", line.value]
        )


def _types(line: Line) -> list[str]:
    return [t.lower() for t in line.params.get("TYPE", [])]


def _pref(line: Line) -> int | None:
    if "PREF" in line.params:
        try:
            return max(1, min(100, int(line.params["PREF"][0])))
        except ValueError:
            return None
    return 1 if "pref" in _types(line) else None  # vCard 3.0: TYPE=pref


def _common(line: Line, value: dict[str, Any]) -> tuple[str, ...]:
    """contexts and pref from TYPE and PREF; the parameters that are thereby used."""
    contexts = {CONTEXTS[t]: True for t in _types(line) if t in CONTEXTS}
    if contexts:
        value["contexts"] = contexts
    pref = _pref(line)
    if pref is not None:
        value["pref"] = pref
    return ("PREF",)


def _leftover_types(line: Line, known: dict[str, str] | tuple[str, ...]) -> None:
    """TYPE values not mapped stay as a TYPE parameter (vCardParams)."""
    rest = [
        t
        for t in line.params.get("TYPE", [])
        if t.lower() not in known and t.lower() not in CONTEXTS and t.lower() != "pref"
    ]
    if rest:
        line.params["TYPE"] = rest
    else:
        line.params.pop("TYPE", None)


def _email(b: Builder, line: Line) -> None:
    value: dict[str, Any] = {"address": unescape(line.value)}
    used = _common(line, value)
    _leftover_types(line, ("internet",))
    b.add("emails", value, line, used)


def _tel(b: Builder, line: Line) -> None:
    value: dict[str, Any] = {"number": unescape(line.value)}
    features = {FEATURES[t]: True for t in _types(line) if t in FEATURES}
    if features:
        value["features"] = features
    used = _common(line, value)
    _leftover_types(line, FEATURES)
    b.add("phones", value, line, used)


def _adr(b: Builder, line: Line) -> None:
    parts = structured(line.value)
    components = [
        {"kind": kind, "value": v}
        for kind, values in zip(ADR_KINDS, parts, strict=False)
        for v in values
        if v
    ]
    value: dict[str, Any] = {"components": components} if components else {}
    if "LABEL" in line.params:
        value["full"] = unescape(",".join(line.params.pop("LABEL")))
    for param, prop in (("GEO", "coordinates"), ("TZ", "timeZone"), ("CC", "countryCode")):
        if param in line.params:
            value[prop] = ",".join(line.params.pop(param))
    if not value.get("components") and "full" not in value:
        value["full"] = ""
    used = _common(line, value)
    _leftover_types(line, ())
    b.add("addresses", value, line, used)


def _media(b: Builder, line: Line) -> None:
    value = line.value
    encoding = [e.lower() for e in line.params.get("ENCODING", [])]
    if encoding and encoding[0] in ("b", "base64"):  # vCard 3.0 inline
        kind = (line.params.get("TYPE") or ["octet-stream"])[0].lower()
        media_type = kind if "/" in kind else f"image/{'jpeg' if kind == 'jpg' else kind}"
        value = f"data:{media_type};base64,{''.join(value.split())}"
        line.params.pop("ENCODING")
        line.params.pop("TYPE", None)
    item: dict[str, Any] = {"kind": MEDIA[line.name], "uri": value}
    if "MEDIATYPE" in line.params:
        item["mediaType"] = line.params.pop("MEDIATYPE")[0]
    line.params.pop("VALUE", None)
    used = _common(line, item)
    b.add("media", item, line, used)


def partial_date(value: str) -> dict[str, Any] | None:
    """A vCard date (19700228, 1970-02-28, --0228, 1970-02, 1970) or timestamp."""
    stamp = STAMP.fullmatch(value)
    if stamp and (stamp.group(7) in (None, "Z")):
        y, mo, d, h, mi, s = stamp.groups()[:6]
        return {"@type": "Timestamp", "utc": f"{y}-{mo}-{d}T{h}:{mi}:{s}Z"}
    found = DATE.fullmatch(value)
    if not found:
        return None
    year, month, day = found.groups()
    out: dict[str, Any] = {}
    if year and year != "--":
        out["year"] = int(year)
    if month and month != "-":
        out["month"] = int(month)
    if day:
        out["day"] = int(day)
    return out or None


def _anniversary(b: Builder, line: Line) -> None:
    date = partial_date(line.value.strip())
    if date is None or line.params.get("VALUE", [""])[0].lower() == "text":
        b.keep(line)
        return
    line.params.pop("VALUE", None)
    b.add("anniversaries", {"kind": ANNIVERSARIES[line.name], "date": date}, line)


def _utc(value: str) -> str | None:
    found = partial_date(value.strip())
    return found["utc"] if found and "utc" in found else None


def _name(b: Builder, line: Line) -> None:
    parts = structured(line.value)
    by_kind: dict[str, list[str]] = {
        k: [v for v in vs if v] for k, vs in zip(STRUCTURED_N, parts, strict=False)
    }
    components = [{"kind": k, "value": v} for k in N_ORDER for v in by_kind.get(k, [])]
    name = b.card.setdefault("name", {})
    if components:
        name["components"] = components
        name["isOrdered"] = True
    if "SORT-AS" in line.params:
        sort = line.params.pop("SORT-AS")
        name["sortAs"] = {
            k: v
            for k, v in zip(("surname", "given"), sort, strict=False)
            if v and k in by_kind and by_kind[k]
        }
        if not name["sortAs"]:
            del name["sortAs"]


def _text_map(
    prop: str, field_name: str, extra: dict[str, Any] | None = None
) -> Callable[[Builder, Line], None]:
    def convert(b: Builder, line: Line) -> None:
        value = {field_name: unescape(line.value), **(extra or {})}
        used = _common(line, value) if prop != "notes" else ()
        _leftover_types(line, ())
        b.add(prop, value, line, used)

    return convert


def _org(b: Builder, line: Line) -> None:
    parts = [", ".join(p) for p in structured(line.value)]
    value: dict[str, Any] = {"name": parts[0]} if parts and parts[0] else {}
    if len(parts) > 1:
        value["units"] = [{"name": u} for u in parts[1:] if u]
    used = _common(line, value)
    _leftover_types(line, ())
    b.add("organizations", value, line, used)


def _nickname(b: Builder, line: Line) -> None:
    for nick in [unescape(v) for v in split_unescaped(line.value, ",")]:
        value: dict[str, Any] = {"name": nick}
        _common(line, value)
        b.add("nicknames", value, Line(line.name, {}, line.value, line.group, line.number))


def _categories(b: Builder, line: Line) -> None:
    for keyword in [unescape(v) for v in split_unescaped(line.value, ",")]:
        if keyword:
            b.card.setdefault("keywords", {})[keyword] = True


def _member(b: Builder, line: Line) -> None:
    b.card.setdefault("members", {})[unescape(line.value)] = True


def _related(b: Builder, line: Line) -> None:
    relation = {t: True for t in _types(line)}
    b.card.setdefault("relatedTo", {})[unescape(line.value)] = {"relation": relation}


def _kind(b: Builder, line: Line) -> None:
    kind = unescape(line.value).lower()
    if kind in KINDS:
        b.card["kind"] = kind
    else:
        b.keep(line)


def _single(prop: str, convert: Callable[[str], Any]) -> Callable[[Builder, Line], None]:
    def apply(b: Builder, line: Line) -> None:
        value = convert(unescape(line.value))
        if value is None or prop in b.card:
            b.keep(line)
        else:
            b.card[prop] = value

    return apply


def _impp(b: Builder, line: Line) -> None:
    value: dict[str, Any] = {"uri": unescape(line.value), "vCardName": line.name.lower()}
    if "SERVICE-TYPE" in line.params:
        value["service"] = line.params.pop("SERVICE-TYPE")[0]
    if "USERNAME" in line.params:
        value["user"] = line.params.pop("USERNAME")[0]
    used = _common(line, value)
    _leftover_types(line, ())
    b.add("onlineServices", value, line, used)


def _resource(prop: str, kind: str | None) -> Callable[[Builder, Line], None]:
    def convert(b: Builder, line: Line) -> None:
        value: dict[str, Any] = {"uri": unescape(line.value)}
        if kind:
            value["kind"] = kind
        if "MEDIATYPE" in line.params:
            value["mediaType"] = line.params.pop("MEDIATYPE")[0]
        used = _common(line, value)
        _leftover_types(line, ())
        b.add(prop, value, line, used)

    return convert


def _group_kind(b: Builder, line: Line) -> None:
    # Apple's X-ADDRESSBOOKSERVER-KIND:group (vCard 3.0) is KIND:group.
    if unescape(line.value).lower() == "group" and "kind" not in b.card:
        b.card["kind"] = "group"
    else:
        b.keep(line)


def _skip(b: Builder, line: Line) -> None:
    """VERSION: the exported card says 4.0; FN is read with N (below)."""


def _fn(b: Builder, line: Line) -> None:
    if "full" in b.card.get("name", {}):
        b.keep(line)
        return
    b.card.setdefault("name", {})["full"] = unescape(line.value)


CONVERTERS: dict[str, Callable[[Builder, Line], None]] = {
    "VERSION": _skip,
    "FN": _fn,
    "N": _name,
    "NICKNAME": _nickname,
    "EMAIL": _email,
    "TEL": _tel,
    "ADR": _adr,
    **dict.fromkeys(MEDIA, _media),
    **dict.fromkeys(ANNIVERSARIES, _anniversary),
    "ORG": _org,
    "TITLE": _text_map("titles", "name", {"kind": "title"}),
    "ROLE": _text_map("titles", "name", {"kind": "role"}),
    "NOTE": _text_map("notes", "note"),
    "CATEGORIES": _categories,
    "MEMBER": _member,
    "X-ADDRESSBOOKSERVER-MEMBER": _member,
    "X-ADDRESSBOOKSERVER-KIND": _group_kind,
    "RELATED": _related,
    "KIND": _kind,
    "UID": _single("uid", lambda v: v or None),
    "PRODID": _single("prodId", lambda v: v or None),
    "REV": _single("updated", _utc),
    "CREATED": _single("created", _utc),
    "IMPP": _impp,
    "SOCIALPROFILE": _impp,
    "URL": _resource("links", None),
    "CONTACT-URI": _resource("links", "contact"),
    "KEY": _resource("cryptoKeys", None),
    "CALURI": _resource("calendars", "calendar"),
    "FBURL": _resource("calendars", "freeBusy"),
    "CALADRURI": _text_map("schedulingAddresses", "uri"),
    "LANG": _text_map("preferredLanguages", "language"),
}


def to_jscontact(raw: RawCard) -> dict[str, Any]:
    """A JSContact Card from one vCard (RFC 9555 §2)."""
    b = Builder()
    labels: list[Line] = []
    for line in raw.lines:
        if line.name == "X-ABLABEL" and line.group:
            labels.append(line)
            continue
        CONVERTERS.get(line.name, Builder.keep)(b, line)
    for line in labels:  # Apple: item1.EMAIL + item1.X-ABLabel (RFC 9555 §2.11.11)
        target = b.labels.get(line.group.lower() if line.group else "")
        if target is None:
            b.keep(line)
            continue
        prop, key = target
        b.card[prop][key]["label"] = unescape(line.value)
    name = b.card.get("name")
    if name is not None and not name:
        del b.card["name"]
    if "members" in b.card:
        b.card.setdefault("kind", "group")
    return b.card


def read_vcards(text: str) -> Iterator[tuple[int, dict[str, Any] | VCardError]]:
    """(line, Card or the error) for each vCard of a file."""
    for raw in split_cards(text):
        if isinstance(raw, VCardError):
            yield raw.line, raw
            continue
        try:
            yield raw.line, to_jscontact(raw)
        except (ValueError, IndexError, KeyError) as e:
            yield raw.line, VCardError(raw.line, f"cannot convert: {e}")


# -- writing ---------------------------------------------------------------------------------------


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace(",", "\\,").replace(";", "\\;")


def _param_value(value: str) -> str:
    return f'"{value}"' if any(c in value for c in ":;,") else value


def content_line(
    name: str, value: str, params: dict[str, Any] | None = None, group: str | None = None
) -> str:
    """One content line, folded at 75 octets (RFC 6350 §3.2) without splitting a character."""
    head = f"{group}.{name}" if group else name
    for key, v in (params or {}).items():
        values = v if isinstance(v, list) else [v]
        head += f";{key.upper()}={','.join(_param_value(str(x)) for x in values)}"
    text = f"{head}:{value}"
    out: list[str] = []
    current = ""
    for char in text:
        limit = 75 if not out else 74
        if len((current + char).encode()) > limit:
            out.append(current)
            current = ""
        current += char
    out.append(current)
    return "\r\n ".join(out) + "\r\n"


def _entry_params(item: dict[str, Any], types: list[str]) -> tuple[dict[str, Any], str | None]:
    params = dict(item.get("vCardParams") or {})
    group = params.pop("group", None)
    given = params.pop("type", [])
    kinds = [*types, *([given] if isinstance(given, str) else given)]
    for context in item.get("contexts") or {}:
        kinds.append({"private": "home"}.get(context, context))
    out: dict[str, Any] = {}
    if kinds:
        out["TYPE"] = kinds
    if "pref" in item:
        out["PREF"] = item["pref"]
    return out | params, group


def _write_entries(
    card: dict[str, Any],
    prop: str,
    name: str,
    render: Callable[[dict[str, Any]], tuple[str, list[str]]],
    lines: list[str],
) -> None:
    for item in (card.get(prop) or {}).values():
        value, types = render(item)
        params, group = _entry_params(item, types)
        lines.append(content_line(name, value, params, group))
        if "label" in item:
            label_group = group or f"item{len(lines)}"
            if group is None:
                lines[-1] = content_line(name, value, params, label_group)
            lines.append(content_line("X-ABLabel", escape(item["label"]), None, label_group))


def _date(date: dict[str, Any]) -> str:
    if date.get("@type") == "Timestamp":
        return str(date["utc"]).replace("-", "").replace(":", "")
    year = f"{date['year']:04d}" if "year" in date else "--"
    month = f"{date['month']:02d}" if "month" in date else ("-" if "day" in date else "")
    day = f"{date['day']:02d}" if "day" in date else ""
    if year != "--" and month and not day:
        return f"{year}-{month}"
    return f"{year}{month}{day}"


def from_jscontact(card: dict[str, Any], media: Callable[[dict[str, Any]], str | None]) -> str:
    """A vCard 4.0 of a Card (RFC 9555 §3); `media` gives a Media object's URI (a data: URI
    for one kept by blobId)."""
    lines = ["BEGIN:VCARD\r\n", "VERSION:4.0\r\n"]

    def add(name: str, value: str, params: dict[str, Any] | None = None) -> None:
        lines.append(content_line(name, value, params))

    add("UID", escape(card["uid"]))
    if "kind" in card:
        add("KIND", card["kind"])
    name = card.get("name") or {}
    components = name.get("components") or []
    full = name.get("full") or " ".join(c["value"] for c in components if c["kind"] != "separator")
    add("FN", escape(full))
    if components:
        fields = [
            ",".join(escape(c["value"]) for c in components if c["kind"] == k) for k in STRUCTURED_N
        ]
        params = (
            {"SORT-AS": [name["sortAs"].get(k, "") for k in ("surname", "given")]}
            if name.get("sortAs")
            else None
        )
        add("N", ";".join(fields), params)
    for item in (card.get("nicknames") or {}).values():
        add("NICKNAME", escape(item["name"]))
    _write_entries(card, "emails", "EMAIL", lambda e: (escape(e["address"]), []), lines)
    _write_entries(
        card,
        "phones",
        "TEL",
        lambda p: (
            escape(p["number"]),
            [k for k, f in FEATURES.items() if f in (p.get("features") or {})],
        ),
        lines,
    )

    def adr(a: dict[str, Any]) -> tuple[str, list[str]]:
        comps = a.get("components") or []
        return ";".join(
            ",".join(escape(c["value"]) for c in comps if c["kind"] == k) for k in ADR_KINDS
        ), []

    for item in (card.get("addresses") or {}).values():
        value, _ = adr(item)
        params, group = _entry_params(item, [])
        for prop, param in (
            ("full", "LABEL"),
            ("coordinates", "GEO"),
            ("timeZone", "TZ"),
            ("countryCode", "CC"),
        ):
            if item.get(prop):
                params[param] = item[prop]
        lines.append(content_line("ADR", value, params, group))
    for item in (card.get("media") or {}).values():
        uri = media(item)
        if uri is None:
            continue
        params, group = _entry_params(item, [])
        if "mediaType" in item and not uri.startswith("data:"):
            params["MEDIATYPE"] = item["mediaType"]
        name_of = {v: k for k, v in MEDIA.items()}[item["kind"]]
        lines.append(content_line(name_of, uri, params, group))
    for item in (card.get("anniversaries") or {}).values():
        prop = {v: k for k, v in ANNIVERSARIES.items()}[item["kind"]]
        add(prop, _date(item["date"]))
    _write_entries(
        card,
        "organizations",
        "ORG",
        lambda o: (
            ";".join(
                escape(n) for n in [o.get("name", ""), *(u["name"] for u in o.get("units") or [])]
            ),
            [],
        ),
        lines,
    )
    for item in (card.get("titles") or {}).values():
        add("ROLE" if item.get("kind") == "role" else "TITLE", escape(item["name"]))
    for item in (card.get("notes") or {}).values():
        add("NOTE", escape(item["note"]))
    if card.get("keywords"):
        add("CATEGORIES", ",".join(escape(k) for k in card["keywords"]))
    for member in card.get("members") or {}:
        add("MEMBER", member)
    for uid, relation in (card.get("relatedTo") or {}).items():
        kinds = list((relation or {}).get("relation") or {})
        add("RELATED", uid, {"TYPE": kinds} if kinds else None)
    for item in (card.get("onlineServices") or {}).values():
        params, group = _entry_params(item, [])
        if "service" in item:
            params["SERVICE-TYPE"] = item["service"]
        if "user" in item:
            params["USERNAME"] = item["user"]
        prop = (item.get("vCardName") or "socialprofile").upper()
        lines.append(content_line(prop, item.get("uri", ""), params, group))
    resources: tuple[tuple[str, str, dict[str, str]], ...] = (
        ("links", "URL", {"contact": "CONTACT-URI"}),
        ("cryptoKeys", "KEY", {}),
        ("calendars", "CALURI", {"freeBusy": "FBURL"}),
    )
    for prop, vname, by_kind in resources:
        for item in (card.get(prop) or {}).values():
            params, group = _entry_params(item, [])
            if "mediaType" in item:
                params["MEDIATYPE"] = item["mediaType"]
            lines.append(
                content_line(by_kind.get(item.get("kind", ""), vname), item["uri"], params, group)
            )
    _write_entries(card, "schedulingAddresses", "CALADRURI", lambda s: (s["uri"], []), lines)
    _write_entries(card, "preferredLanguages", "LANG", lambda s: (s["language"], []), lines)
    for prop, vname in (("prodId", "PRODID"), ("updated", "REV"), ("created", "CREATED")):
        if prop in card:
            value = card[prop]
            add(
                vname,
                value.replace("-", "").replace(":", "").split(".")[0].rstrip("Z") + "Z"
                if prop != "prodId"
                else escape(value),
            )
    for kept in card.get("vCardProps") or []:
        kept_params = dict(kept[1])
        kept_group = kept_params.pop("group", None)
        value = ",".join(str(v) for v in kept[3:])
        lines.append(content_line(str(kept[0]).upper(), value, kept_params, kept_group))
    lines.append("END:VCARD\r\n")
    return "".join(lines)
