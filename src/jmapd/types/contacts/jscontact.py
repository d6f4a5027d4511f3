"""The JSContact Card model (RFC 9553) as value kinds, each invalid value named by its path.

The schema is a table: an `Obj` has its @type name, its properties and which are mandatory;
`Map` is Id[…], `Set` is String[Boolean] (each value true), `List` is A[], `Enum` a String of
enumerated values (or a vendor-specific value, §1.8.2). Unknown properties of the IANA syntax
and vendor-specific ones are kept as given (§1.7.4, §1.8.1); a name that differs from a known
one only in case is invalid (§1.7.1).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ...protocol.values import MAX_SAFE, InvalidValue, Kind, Resolver, date_test

IANA_NAME = re.compile(r"[A-Za-z0-9@]+")
# §1.8.1 v-extension: a domain-like prefix, a colon, a name without CTLs, '"', '/' or '~'.
ALNUM = r"A-Za-z0-9\u0080-\U0010ffff"
V_LABEL = rf"(?:[{ALNUM}](?:[{ALNUM}-]*[{ALNUM}])?)"
V_EXTENSION = re.compile(rf"{V_LABEL}(?:\.{V_LABEL})*:[ \t!#-.0-}}\u0080-\U0010ffff]+")
UTC_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]*[1-9])?Z"
)
JSVERSION = re.compile(r"[0-9]+\.[0-9]+")
VERSIONS = ("1.0",)
Check = Callable[[Any], None]  # raises InvalidValue (paths relative to the value)


def fail(message: str, *path: str) -> InvalidValue:
    return InvalidValue(message, tuple(path))


class Node:
    """One place in the schema: checks a value, and knows the node below a path token (for
    patches in localizations, §2.7.1)."""

    def check(self, value: Any) -> None:
        raise NotImplementedError

    def child(self, token: str) -> Node | None:
        return None


@dataclass
class Scalar(Node):
    name: str
    test: Callable[[Any], bool]

    def check(self, value: Any) -> None:
        if not self.test(value):
            raise fail(f"must be {self.name}")


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -MAX_SAFE <= v <= MAX_SAFE


STRING = Scalar("a String", lambda v: isinstance(v, str))
NONEMPTY = Scalar("a non-empty String", lambda v: isinstance(v, str) and v != "")
BOOLEAN = Scalar("a Boolean", lambda v: isinstance(v, bool))
UNSIGNED = Scalar("an UnsignedInt", lambda v: _int(v) and v >= 0)
PREF = Scalar("an UnsignedInt from 1 to 100", lambda v: _int(v) and 1 <= v <= 100)
UTC = Scalar(
    "a UTCDateTime (YYYY-MM-DDTHH:MM:SS[.f]Z, no trailing zeros)", date_test(UTC_DATE_TIME)
)
ID = Scalar(
    "an Id", lambda v: isinstance(v, str) and bool(re.fullmatch(r"[A-Za-z0-9_-]{1,255}", v))
)
ANY = Scalar("any JSON value", lambda v: True)


@dataclass
class Enum(Node):
    values: tuple[str, ...]

    def check(self, value: Any) -> None:
        if not isinstance(value, str):
            raise fail("must be a String")
        if value not in self.values and not V_EXTENSION.fullmatch(value):
            raise fail(f"must be one of {', '.join(self.values)} or a vendor-specific value")


@dataclass
class Set(Node):
    """String[Boolean]: every value true (contexts, features, members, keywords)."""

    key: Node = field(default_factory=lambda: NONEMPTY)

    def check(self, value: Any) -> None:
        if not isinstance(value, dict):
            raise fail("must be a set: an object of String to true")
        for k, v in value.items():
            self.key.check(k)
            if v is not True:
                raise fail("must be true", k)

    def child(self, token: str) -> Node | None:
        return Scalar("true", lambda v: v is True)


@dataclass
class Map(Node):
    """Id[T] (or String[T] with `key`)."""

    value: Node
    key: Node = field(default_factory=lambda: ID)

    def check(self, value: Any) -> None:
        if not isinstance(value, dict):
            raise fail("must be an object")
        for k, v in value.items():
            try:
                self.key.check(k)
            except InvalidValue as e:
                raise fail(f"key {k!r} {e}", k) from None
            try:
                self.value.check(v)
            except InvalidValue as e:
                raise e.within(k) from None

    def child(self, token: str) -> Node | None:
        return self.value


@dataclass
class List(Node):
    item: Node
    nonempty: bool = False

    def check(self, value: Any) -> None:
        if not isinstance(value, list) or (self.nonempty and not value):
            raise fail("must be a non-empty list" if self.nonempty else "must be a list")
        for i, v in enumerate(value):
            try:
                self.item.check(v)
            except InvalidValue as e:
                raise e.within(str(i)) from None

    def child(self, token: str) -> Node | None:
        return self.item if token.isdigit() else None


@dataclass
class Obj(Node):
    type: str
    properties: dict[str, Node]
    mandatory: tuple[str, ...] = ()
    rules: tuple[Check, ...] = ()  # across properties, once each property is valid
    type_required: bool = False

    def check(self, value: Any) -> None:
        if not isinstance(value, dict):
            raise fail(f"must be a {self.type} object")
        check_type(value, self.type, self.type_required)
        check_members(value, self.properties)
        for name in self.mandatory:
            if name not in value:
                raise fail(f"is mandatory in a {self.type}", name)
        for rule in self.rules:
            rule(value)

    def child(self, token: str) -> Node | None:
        return self.properties.get(token)


@dataclass
class OneOf(Node):
    """A|B (defaultType: the first): chosen by @type."""

    choices: tuple[Obj, ...]

    def check(self, value: Any) -> None:
        if not isinstance(value, dict):
            raise fail("must be an object")
        wanted = value.get("@type", self.choices[0].type)
        for choice in self.choices:
            if choice.type == wanted:
                choice.check(value)
                return
        raise fail(f"must be one of {', '.join(c.type for c in self.choices)}", "@type")


def check_type(value: dict[str, Any], name: str, required: bool = False) -> None:
    """§1.3.4: @type, if set (or where it must be), names the object's type."""
    if "@type" in value:
        if value["@type"] != name:
            raise fail(f'must be "{name}"', "@type")
    elif required:
        raise fail(f'is mandatory: "{name}"', "@type")


def check_members(value: dict[str, Any], properties: dict[str, Node]) -> None:
    folded = {k.casefold(): k for k in properties}
    for name, member in value.items():
        if name == "@type":
            continue
        node = properties.get(name)
        if node is not None:
            try:
                node.check(member)
            except InvalidValue as e:
                raise e.within(name) from None
            continue
        problem = property_name_problem(name, folded)
        if problem:
            raise fail(problem, name)


def property_name_problem(name: str, known: dict[str, str]) -> str | None:
    """Why a property name the schema does not define is invalid, or None: kept as given."""
    if V_EXTENSION.fullmatch(name):
        return None
    if name == "extra":
        return "is a reserved property name (RFC 9553 §1.7.3.1)"
    if not IANA_NAME.fullmatch(name):
        return "is neither an IANA property name nor a vendor-specific one (domain:name)"
    if name.casefold() in known:
        return f"differs from {known[name.casefold()]!r} only in case"
    return None


# -- rules across properties -------------------------------------------------------------------


def _components_rule(kind_name: str) -> Check:
    """Name and Address: full or components; an unordered list has no separators and no
    defaultSeparator (§2.2.1.1, §2.5.1.1)."""

    def rule(value: dict[str, Any]) -> None:
        components = value.get("components")
        if components is None:
            if kind_name == "Name" and "full" not in value:
                raise fail("a Name needs components or full", "components")
            if "defaultSeparator" in value:
                raise fail("is only set with components", "defaultSeparator")
            return
        if not any(c.get("kind") != "separator" for c in components):
            raise fail("must have a component that is not a separator", "components")
        if not value.get("isOrdered", False):
            for i, c in enumerate(components):
                if c.get("kind") == "separator":
                    raise fail("separator only in ordered components", "components", str(i),
                               "kind")  # fmt: skip
            if "defaultSeparator" in value:
                raise fail("is only set when isOrdered is true", "defaultSeparator")
        phonetic = "phoneticSystem" in value or "phoneticScript" in value
        for i, c in enumerate(components):
            if "phonetic" in c and not phonetic:
                raise fail(f"needs phoneticSystem or phoneticScript in the {kind_name}",
                           "components", str(i), "phonetic")  # fmt: skip
        kinds = {c.get("kind") for c in components}
        for key in value.get("sortAs", {}) if kind_name == "Name" else ():
            if key not in kinds:
                raise fail(f"no {key} component to sort by", "sortAs", key)

    return rule


def _partial_date_rule(value: dict[str, Any]) -> None:
    """§2.8.1: month with year or day, day with month; the day exists in the month."""
    year, month, day = value.get("year"), value.get("month"), value.get("day")
    if year is None and month is None and day is None:
        raise fail("a PartialDate needs year, month or day", "year")
    if month is not None and not 1 <= month <= 12:
        raise fail("must be from 1 to 12", "month")
    if month is not None and year is None and day is None:
        raise fail("a month needs a year or a day", "month")
    if day is not None:
        if month is None:
            raise fail("a day needs a month", "day")
        import calendar

        last = calendar.monthrange(year if year is not None else 2000, month)[1]
        if not 1 <= day <= last:
            raise fail(f"must be from 1 to {last} in that month", "day")


def _media_rule(value: dict[str, Any]) -> None:
    # RFC 9610 §3: a Media object has a uri or a blobId.
    if "uri" not in value and "blobId" not in value:
        raise fail("a Media object needs uri or blobId", "uri")


# -- the schema ----------------------------------------------------------------------------------

CONTEXTS = Set()
COMMON = {"contexts": CONTEXTS, "pref": PREF, "label": STRING}
VCARD = {"vCardName": STRING, "vCardParams": Map(ANY, key=NONEMPTY)}


def obj(type: str, properties: dict[str, Node], mandatory: Iterable[str] = (),
        rules: Iterable[Check] = ()) -> Obj:  # fmt: skip
    return Obj(type, {**properties, **VCARD}, tuple(mandatory), tuple(rules))


def resource(type: str, kinds: tuple[str, ...] | None, kind_mandatory: bool,
             extra: dict[str, Node] | None = None, uri_mandatory: bool = True,
             rules: Iterable[Check] = ()) -> Obj:  # fmt: skip
    """§1.4.4 Resource and its concrete types."""
    props = {"kind": Enum(kinds) if kinds else STRING, "uri": STRING, "mediaType": STRING,
             **COMMON, **(extra or {})}  # fmt: skip
    mandatory = (("kind",) if kind_mandatory else ()) + (("uri",) if uri_mandatory else ())
    return obj(type, props, mandatory, rules)


NAME_KINDS = ("title", "given", "given2", "surname", "surname2", "credential", "generation",
              "separator")  # fmt: skip
ADDRESS_KINDS = (
    "room", "apartment", "floor", "building", "number", "name", "block", "subdistrict",
    "district", "locality", "region", "postcode", "country", "direction", "landmark",
    "postOfficeBox", "separator",
)  # fmt: skip
NAME_COMPONENT = obj("NameComponent", {"value": STRING, "kind": Enum(NAME_KINDS),
                                       "phonetic": STRING}, ("value", "kind"))  # fmt: skip
NAME = obj(
    "Name",
    {"components": List(NAME_COMPONENT, nonempty=True), "isOrdered": BOOLEAN,
     "defaultSeparator": STRING, "full": STRING, "sortAs": Map(STRING, key=Enum(NAME_KINDS)),
     "phoneticScript": STRING, "phoneticSystem": Enum(("ipa", "jyut", "piny"))},
    rules=(_components_rule("Name"),),
)  # fmt: skip
ADDRESS_COMPONENT = obj("AddressComponent", {"value": STRING, "kind": Enum(ADDRESS_KINDS),
                                             "phonetic": STRING}, ("value", "kind"))  # fmt: skip
ADDRESS = obj(
    "Address",
    {"components": List(ADDRESS_COMPONENT, nonempty=True), "isOrdered": BOOLEAN,
     "countryCode": STRING, "coordinates": STRING, "timeZone": STRING, "contexts": CONTEXTS,
     "full": STRING, "defaultSeparator": STRING, "pref": PREF, "phoneticScript": STRING,
     "phoneticSystem": Enum(("ipa", "jyut", "piny"))},
    rules=(_components_rule("Address"),),
)  # fmt: skip
PARTIAL_DATE = obj(
    "PartialDate",
    {"year": UNSIGNED, "month": UNSIGNED, "day": UNSIGNED, "calendarScale": STRING},
    rules=(_partial_date_rule,),
)
TIMESTAMP = obj("Timestamp", {"utc": UTC}, ("utc",))
AUTHOR = obj("Author", {"name": STRING, "uri": STRING})

CARD_PROPERTIES: dict[str, Node] = {
    "created": UTC,
    "kind": Enum(("individual", "group", "org", "location", "device", "application")),
    "language": NONEMPTY,
    "members": Set(),
    "prodId": NONEMPTY,
    "relatedTo": Map(obj("Relation", {"relation": Set()}), key=NONEMPTY),
    "uid": NONEMPTY,
    "updated": UTC,
    "name": NAME,
    "nicknames": Map(
        obj("Nickname", {"name": STRING, "contexts": CONTEXTS, "pref": PREF}, ("name",))
    ),
    "organizations": Map(
        obj(
            "Organization",
            {
                "name": STRING,
                "units": List(obj("OrgUnit", {"name": STRING, "sortAs": STRING}, ("name",))),
                "sortAs": STRING,
                "contexts": CONTEXTS,
            },
        )
    ),
    "speakToAs": obj(
        "SpeakToAs",
        {
            "grammaticalGender": Enum(
                ("animate", "common", "feminine", "inanimate", "masculine", "neuter")
            ),
            "pronouns": Map(
                obj(
                    "Pronouns",
                    {"pronouns": STRING, "contexts": CONTEXTS, "pref": PREF},
                    ("pronouns",),
                )
            ),
        },
    ),
    "titles": Map(
        obj(
            "Title",
            {"name": STRING, "kind": Enum(("title", "role")), "organizationId": ID},
            ("name",),
        )
    ),
    "emails": Map(obj("EmailAddress", {"address": STRING, **COMMON}, ("address",))),
    "onlineServices": Map(
        obj("OnlineService", {"service": STRING, "uri": STRING, "user": STRING, **COMMON})
    ),
    "phones": Map(obj("Phone", {"number": STRING, "features": Set(), **COMMON}, ("number",))),
    "preferredLanguages": Map(
        obj(
            "LanguagePref",
            {"language": NONEMPTY, "contexts": CONTEXTS, "pref": PREF},
            ("language",),
        )
    ),
    "calendars": Map(resource("Calendar", ("calendar", "freeBusy"), True)),
    "schedulingAddresses": Map(obj("SchedulingAddress", {"uri": STRING, **COMMON}, ("uri",))),
    "addresses": Map(ADDRESS),
    "cryptoKeys": Map(resource("CryptoKey", None, False)),
    "directories": Map(resource("Directory", ("directory", "entry"), True, {"listAs": UNSIGNED})),
    "links": Map(resource("Link", ("contact",), False)),
    "media": Map(
        resource(
            "Media",
            ("photo", "sound", "logo"),
            True,
            {"blobId": ID},
            uri_mandatory=False,
            rules=(_media_rule,),
        )
    ),
    "localizations": Map(Scalar("a PatchObject", lambda v: isinstance(v, dict)), key=NONEMPTY),
    "anniversaries": Map(
        obj(
            "Anniversary",
            {
                "kind": Enum(("birth", "death", "wedding")),
                "date": OneOf((PARTIAL_DATE, TIMESTAMP)),
                "place": ADDRESS,
            },
            ("kind", "date"),
        )
    ),
    "keywords": Set(),
    "notes": Map(obj("Note", {"note": STRING, "created": UTC, "author": AUTHOR}, ("note",))),
    "personalInfo": Map(
        obj(
            "PersonalInfo",
            {
                "kind": Enum(("expertise", "hobby", "interest")),
                "value": STRING,
                "level": Enum(("high", "low", "medium")),
                "listAs": UNSIGNED,
                "label": STRING,
            },
            ("kind", "value"),
        )
    ),
    # RFC 9555 §2.15: what a vCard held that JSContact has no property for.
    "vCardProps": List(
        Scalar(
            "a jCard property [name, parameters, type, value…]",
            lambda v: (
                isinstance(v, list)
                and len(v) >= 4
                and isinstance(v[0], str)
                and isinstance(v[1], dict)
                and isinstance(v[2], str)
            ),
        )
    ),
}
KNOWN_CARD = {k.casefold(): k for k in (*CARD_PROPERTIES, "@type", "version", "id",
                                        "addressBookIds")}  # fmt: skip


class CardValue(Kind):
    """One top-level Card property, checked against the schema; a localization's patches
    checked against the properties they patch."""

    def __init__(self, name: str) -> None:
        self.prop = name
        self.node = CARD_PROPERTIES[name]
        self.name = f"a valid {name}"

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        self.node.check(value)
        if self.prop == "localizations":
            for language, patch in value.items():
                for path, patched in patch.items():
                    _check_localized(language, path, patched)
        return value


def _check_localized(language: str, path: str, value: Any) -> None:
    """§2.7.1: a patch must not target localizations; its value must be valid where it goes."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")]
    where = (language, path)
    if tokens[0] in ("localizations", "@type", "version", "uid", "id", "addressBookIds"):
        raise fail(f"a localization must not patch {tokens[0]}", *where)
    node: Node | None = CARD_PROPERTIES.get(tokens[0])
    for token in tokens[1:]:
        node = node.child(token) if node is not None else None
    if node is None:
        return  # unknown or vendor-specific: kept as given
    if value is None:
        return
    try:
        node.check(value)
    except InvalidValue as e:
        raise fail(str(e), *where, *e.path) from None


class OtherProperty(Kind):
    """A Card property the schema does not define: kept as given (§1.7.4, §1.8.1)."""

    name = "any JSON value"

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        return value


OTHER = OtherProperty()


def other_card_property(name: str) -> Kind | None:
    if property_name_problem(name, KNOWN_CARD) is None and not name.startswith("_"):
        return OTHER
    return None


class ConstantKind(Kind):
    def __init__(self, values: tuple[str, ...], what: str) -> None:
        self.values = values
        self.name = what

    def check(self, value: Any, resolve: Resolver | None = None) -> Any:
        if value not in self.values:
            raise ValueError(f"must be {self.name}")
        return value


TYPE_KIND = ConstantKind(("Card",), '"Card"')
VERSION_KIND = ConstantKind(VERSIONS, f"a JSContact version this server knows ({VERSIONS[0]})")
