"""Addresses and GroupedAddresses forms (RFC 8621 §4.1.2.3, §4.1.2.4)."""

from __future__ import annotations

from typing import Any

import pytest

from jmapd.mail.addresses import addresses, grouped_addresses

RFC_EXAMPLE = (
    '"  James Smythe" <james@example.com>, Friends:\r\n'
    "  jane@example.com, =?UTF-8?Q?John_Sm=C3=AEth?=\r\n"
    "  <john@example.com>;"
)


def a(name: str | None, email: str) -> dict[str, Any]:
    return {"name": name, "email": email}


def test_rfc_example_addresses() -> None:
    # The RFC prints "John Smith"; the encoded word really says "John Smîth" (U+00EE).
    assert addresses(RFC_EXAMPLE) == [
        a("James Smythe", "james@example.com"),
        a(None, "jane@example.com"),
        a("John Smîth", "john@example.com"),
    ]


def test_rfc_example_grouped_addresses() -> None:
    assert grouped_addresses(RFC_EXAMPLE) == [
        {"name": None, "addresses": [a("James Smythe", "james@example.com")]},
        {
            "name": "Friends",
            "addresses": [a(None, "jane@example.com"), a("John Smîth", "john@example.com")],
        },
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("   ", []),
        ("john@example.com", [a(None, "john@example.com")]),
        ("John <john@example.com>", [a("John", "john@example.com")]),
        ('"Smith, John" <j@x.com>', [a("Smith, John", "j@x.com")]),  # comma inside quotes
        ('"Smith, John" <j@x.com>, k@x.com', [a("Smith, John", "j@x.com"), a(None, "k@x.com")]),
        ('"a \\"quoted\\" \\\\ pair" <q@x.com>', [a('a "quoted" \\ pair', "q@x.com")]),
        ('"  folded\r\n name  " <f@x.com>', [a("folded name", "f@x.com")]),
        ("John Q. Public <jqp@x.com>", [a("John Q. Public", "jqp@x.com")]),  # obs-phrase "."
        ('Foo "Bar" Baz <q@x.com>', [a("Foo Bar Baz", "q@x.com")]),
        ("john@example.com (John Doe)", [a("John Doe", "john@example.com")]),  # comment as name
        ("John <john@example.com> (work)", [a("John", "john@example.com")]),  # comment dropped
        ("(before) john@example.com", [a(None, "john@example.com")]),
        (
            "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
            [a("Pete", "pete@silly.test")],
        ),  # RFC 5322 A.5
        ("john", [a(None, "john")]),  # missing domain
        ("<john>", [a(None, "john")]),
        ("John <john>", [a("John", "john")]),
        ("<@route.example,@other.example:j@x.com>", [a(None, "j@x.com")]),  # obs-route
        ("< j@x.com >", [a(None, "j@x.com")]),
        ("j . doe @ x . com", [a(None, "j.doe@x.com")]),  # obsolete CFWS in addr-spec
        ('"j doe"@x.com', [a(None, '"j doe"@x.com')]),
        ('J <"j doe"@x.com>', [a("J", '"j doe"@x.com')]),
        ("j@[192.0.2.1]", [a(None, "j@[192.0.2.1]")]),
        ('"" <e@x.com>', [a(None, "e@x.com")]),  # empty display name
        ("a@x.com,,, b@x.com,", [a(None, "a@x.com"), a(None, "b@x.com")]),
        ("Unterminated <u@x.com", [a("Unterminated", "u@x.com")]),
        ('"Unterminated <u@x.com>', [a(None, '"Unterminated <u@x.com>"')]),
        ("Smith, John <j@x.com>", [a(None, "Smith"), a("John", "j@x.com")]),  # unquoted comma
        ("=?UTF-8?Q?J=C3=B6rg?= <j@x.com>", [a("Jörg", "j@x.com")]),
        ("=?UTF-8?Q?J=C3=B6rg?= =?UTF-8?Q?_M?= <j@x.com>", [a("Jörg M", "j@x.com")]),
        ('"=?UTF-8?Q?J=C3=B6rg?=" <j@x.com>', [a("=?UTF-8?Q?J=C3=B6rg?=", "j@x.com")]),  # quoted
        ("j@x.com (=?UTF-8?Q?J=C3=B6rg?=)", [a("Jörg", "j@x.com")]),  # RFC 2047 §5(2)
        ("Jörg Müller <jm@x.de>", [a("Jörg Müller", "jm@x.de")]),  # RFC 6532 UTF-8
        ("e\u0301 <e@x.com>", [a("\u00e9", "e@x.com")]),  # NFC
    ],
)
def test_addresses(value: str, expected: list[dict[str, Any]]) -> None:
    assert addresses(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("undisclosed-recipients:;", [{"name": "undisclosed-recipients", "addresses": []}]),
        (
            "a@x.com, Team: b@x.com, c@x.com; d@x.com",
            [
                {"name": None, "addresses": [a(None, "a@x.com")]},
                {"name": "Team", "addresses": [a(None, "b@x.com"), a(None, "c@x.com")]},
                {"name": None, "addresses": [a(None, "d@x.com")]},
            ],
        ),
        (
            '"The Team": b@x.com',  # group never closed
            [{"name": "The Team", "addresses": [a(None, "b@x.com")]}],
        ),
        (
            "=?UTF-8?Q?=C3=89quipe?=: b@x.com;",
            [{"name": "Équipe", "addresses": [a(None, "b@x.com")]}],
        ),
        (
            # RFC 5322 Appendix A.5
            "A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n"
            "         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend);"
            " (the end of the group)",
            [
                {
                    "name": "A Group",
                    "addresses": [
                        a("Chris Jones", "c@public.example"),
                        a(None, "joe@example.org"),
                        a("John", "jdoe@one.test"),
                    ],
                }
            ],
        ),
        (
            "A: a@x.com, B: b@x.com;",  # a nested group (invalid) starts a new one
            [
                {"name": "A", "addresses": [a(None, "a@x.com")]},
                {"name": "B", "addresses": [a(None, "b@x.com")]},
            ],
        ),
    ],
)
def test_groups(value: str, expected: list[dict[str, Any]]) -> None:
    assert grouped_addresses(value) == expected
    assert addresses(value) == [x for g in expected for x in g["addresses"]]
