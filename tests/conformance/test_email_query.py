"""RFC 8621 §4.4 Email/query (filters §4.4.1, sorts §4.4.2, collapseThreads §4.4.3), §4.5
Email/queryChanges and §5 SearchSnippet/get, over real HTTP.

Every test makes a fresh account, imports a few hand-made messages with explicit receivedAt,
Date, addresses, subjects, keywords, mailboxes and threads, and compares exact lists of ids
(shown as the short names the test gave its messages). Where the RFC leaves the matching of
text to the server (§4.4.1 "deliberately not defined"), the tests check the semantics jmapd
chose: whole words, case- and diacritics-insensitive, all words required, quoted phrases,
the last unquoted word also as a prefix, CJK ideographs as words.
"""

from __future__ import annotations

import base64
import html
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.test_email import account, import_, message
from tests.conformance.test_engine_querychanges import Cache, apply_changes
from tests.conftest import CORE, MAIL, Client, Server, start_server, stop_server

Filter = dict[str, Any]
OLDEST_FIRST = [{"property": "receivedAt", "isAscending": True}]
NEWEST_FIRST = [{"property": "receivedAt", "isAscending": False}]
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


# -- helpers -------------------------------------------------------------------------------------


def at(minutes: int) -> str:
    """A receivedAt: `minutes` after 2024-01-01T00:00:00Z."""
    return (EPOCH + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def mail(
    subject: str | None,
    body: str = "",
    *,
    sender: str | None = "Joe Bloggs <joe@example.com>",
    to: str | None = "ann@example.com",
    cc: str | None = None,
    bcc: str | None = None,
    date: str = "Mon, 13 Oct 2014 14:00:00 +0000",
    msgid: str | None = None,
    refs: str = "",
    content_type: str = "text/plain; charset=utf-8",
    headers: Sequence[str] = (),
) -> bytes:
    """A raw RFC 5322 message (CRLF line ends, UTF-8 octets). `None` leaves a field out;
    `refs` makes it a reply (References, and In-Reply-To the last of them); `headers` are
    extra "Name: value" lines; a text body gets 8bit unless `headers` sets an encoding."""
    fields = [
        ("From", sender),
        ("To", to),
        ("Cc", cc),
        ("Bcc", bcc),
        ("Subject", subject),
        ("Date", date),
        ("Message-ID", msgid or f"<{random.getrandbits(64):x}@query.example>"),
        ("References", refs or None),
        ("In-Reply-To", refs.split()[-1] if refs else None),
        ("MIME-Version", "1.0"),
        ("Content-Type", content_type),
    ]
    lines = [f"{name}: {value}" for name, value in fields if value is not None]
    lines += headers
    has_encoding = any(h.lower().startswith("content-transfer-encoding:") for h in headers)
    if content_type.startswith("text/") and not has_encoding:
        lines.append("Content-Transfer-Encoding: 8bit")
    text = "\r\n".join(lines) + "\r\n\r\n" + body.replace("\r\n", "\n").replace("\n", "\r\n")
    return text.encode()


def encoded_word(text: str) -> str:
    """RFC 2047 B-encoding of `text` in UTF-8."""
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="


def multipart(
    kind: str, *parts: tuple[Sequence[str], str], boundary: str = "part"
) -> tuple[str, str]:
    """(content_type, body) of a multipart/`kind` whose parts are (header lines, body)."""
    body = "".join(
        f"--{boundary}\n" + "".join(h + "\n" for h in head) + "\n" + text + "\n"
        for head, text in parts
    )
    return f'multipart/{kind}; boundary="{boundary}"', body + f"--{boundary}--\n"


@dataclass
class Account:
    """A fresh account (test_email.account()) and the calls these tests make on it."""

    client: Client
    id: str
    boxes: dict[str, str]  # mailbox id by role

    @classmethod
    def fresh(cls, server: Server) -> Account:
        return cls(*account(server))

    def add(
        self,
        raw: bytes,
        received: str,
        *,
        boxes: Sequence[str] = ("inbox",),
        keywords: Sequence[str] = (),
    ) -> str:
        """Email/import into the mailboxes with these roles; the new Email's id."""
        created = import_(
            self.client,
            self.id,
            self.boxes[boxes[0]],
            raw,
            mailboxIds={self.boxes[b]: True for b in boxes},
            keywords={k: True for k in keywords},
            receivedAt=received,
        )
        return str(created["id"])

    def query(self, **args: Any) -> dict[str, Any]:
        return self.client.ok("Email/query", {"accountId": self.id, **args})

    def ids(self, filter: Filter | None = None, sort: Any = None, **args: Any) -> list[str]:
        """Email/query ids, oldest received first unless `sort` is given."""
        return list(self.query(filter=filter, sort=sort or OLDEST_FIRST, **args)["ids"])

    def error(self, method: str, **args: Any) -> str:
        """The type of the method-level error a call must answer (RFC 8620 §3.6.2)."""
        name, out = self.client.call(method, {"accountId": self.id, **args})
        assert name == "error", (method, args, out)
        return str(out["type"])

    def set(self, **args: Any) -> None:
        out = self.client.ok("Email/set", {"accountId": self.id, **args})
        for failed in ("notCreated", "notUpdated", "notDestroyed"):
            assert out[failed] is None, out

    def snippets(self, filter: Filter | None, email_ids: list[str]) -> dict[str, Any]:
        args = {"accountId": self.id, "filter": filter, "emailIds": email_ids}
        return self.client.ok("SearchSnippet/get", args)


def names(made: dict[str, str], ids: list[str]) -> list[str]:
    """Ids as the names the test gave them ("?" for an id it did not make)."""
    by_id = {id: name for name, id in made.items()}
    return [by_id.get(id, "?") for id in ids]


def check_filters(acc: Account, made: dict[str, str], cases: list[tuple[Any, str]]) -> None:
    """Each (filter, names of the expected Emails, oldest first); every mismatch reported."""
    wrong = []
    for filter, expected in cases:
        got = "".join(names(made, acc.ids(filter)))
        if got != expected:
            wrong.append(f"{filter}: got {got!r}, expected {expected!r}")
    assert not wrong, "\n".join(wrong)


def check_searches(acc: Account, made: dict[str, str], cases: list[tuple[str, str, str]]) -> None:
    """Each (condition, text, space-separated names expected, oldest first)."""
    check_filters(acc, made, [({cond: text}, want.replace(" ", "")) for cond, text, want in cases])


# -- §4.4.1 filter conditions --------------------------------------------------------------------


def filter_corpus(acc: Account) -> dict[str, str]:
    """Six Emails, one name letter each, received a day apart, in four threads:

    | | mailboxes       | keywords          | thread | from / to / cc / bcc                    |
    |A| inbox           | $seen             | T1     | alice@…com / bob@…org / carol@…net       |
    |B| inbox, archive  | $seen, $flagged   | T1     | bob@…org / alice@…com                    |
    |C| archive         | $flagged (PDF)    | T2     | dave@…com / alice / — / eve@…com         |
    |D| trash           | —                 | T2     | eve@…com / dave@…com                     |
    |E| inbox           | $seen (largest)   | T3     | frank@…com / alice / bob                 |
    |F| junk            | —                 | T4     | win@prizes.example / alice               |
    """
    pdf = base64.encodebytes(bytes(range(256)) * 3).decode()
    c_type, c_body = multipart(
        "mixed",
        (["Content-Type: text/plain; charset=utf-8"], "See the attached menu."),
        (
            [
                'Content-Type: application/pdf; name="menu.pdf"',
                'Content-Disposition: attachment; filename="menu.pdf"',
                "Content-Transfer-Encoding: base64",
            ],
            pdf,
        ),
    )
    alice, bob = "Alice Adams <alice@example.com>", "Bob Brown <bob@example.org>"
    dave = "Dave Davis <dave@example.com>"
    messages = {
        "A": mail("Quarterly report", "The numbers look good this quarter.\n", sender=alice,
                  to=bob, cc="carol@example.net", msgid="<a@corpus.example>",
                  headers=["X-Priority: 1"]),
        "B": mail("Re: Quarterly report", "Agreed, well done.\n", sender=bob, to=alice,
                  msgid="<b@corpus.example>", refs="<a@corpus.example>",
                  headers=["List-Id: Dev Team <dev.lists.example.com>"]),
        "C": mail("Lunch menu", c_body, sender=dave, to=alice, bcc="eve@example.com",
                  msgid="<c@corpus.example>", content_type=c_type),
        "D": mail("Re: Lunch menu", "Count me in.\n", sender="Eve <eve@example.com>", to=dave,
                  msgid="<d@corpus.example>", refs="<c@corpus.example>"),
        "E": mail("Invoice 42", "Invoice attached as text.\n" + "Line item: widget.\n" * 150,
                  sender="frank@example.com", to=alice, cc=bob, headers=["X-Priority: 5"]),
        "F": mail("You won", "Claim now.\n", sender="Spammer <win@prizes.example>", to=alice,
                  headers=["List-Id: Prizes <prizes.example>"]),
    }  # fmt: skip
    placement: dict[str, tuple[Sequence[str], Sequence[str]]] = {
        "A": (["inbox"], ["$seen"]),
        "B": (["inbox", "archive"], ["$seen", "$flagged"]),
        "C": (["archive"], ["$FLAGGED"]),  # keywords are case-insensitive (§4.1.1)
        "D": (["trash"], []),
        "E": (["inbox"], ["$seen"]),
        "F": (["junk"], []),
    }
    made = {}
    for day, (name, raw) in enumerate(messages.items(), start=1):
        boxes, keywords = placement[name]
        received = f"2023-01-0{day}T10:00:00Z"
        made[name] = acc.add(raw, received, boxes=boxes, keywords=keywords)
    sizes = {name: len(raw) for name, raw in messages.items()}
    assert sizes["E"] > sizes["C"] > max(sizes[n] for n in "ABDF"), sizes  # the design holds
    return made


def test_filter_mailbox_date_and_size_conditions(server: Server) -> None:
    """§4.4.1 inMailbox, inMailboxOtherThan (in at least one other), before (<), after (>=),
    minSize (>=), maxSize (<)."""
    acc = Account.fresh(server)
    made = filter_corpus(acc)
    box = acc.boxes
    got = acc.client.ok(
        "Email/get", {"accountId": acc.id, "ids": [made["C"]], "properties": ["size"]}
    )
    size_c = got["list"][0]["size"]
    cases: list[tuple[Any, str]] = [
        ({"inMailbox": box["inbox"]}, "ABE"),
        ({"inMailbox": box["archive"]}, "BC"),
        ({"inMailbox": box["trash"]}, "D"),
        ({"inMailbox": box["sent"]}, ""),
        ({"inMailboxOtherThan": [box["trash"], box["junk"]]}, "ABCE"),
        ({"inMailboxOtherThan": [box["inbox"]]}, "BCDF"),  # B is also in archive
        ({"inMailboxOtherThan": [box[r] for r in ("inbox", "archive", "trash", "junk")]}, ""),
        ({"inMailboxOtherThan": []}, "ABCDEF"),
        ({"after": "2023-01-03T10:00:00Z"}, "CDEF"),
        ({"after": "2023-01-03T10:00:01Z"}, "DEF"),
        ({"before": "2023-01-03T10:00:00Z"}, "AB"),
        ({"before": "2023-01-03T10:00:01Z"}, "ABC"),
        ({"after": "2023-01-02T10:00:00Z", "before": "2023-01-05T10:00:00Z"}, "BCD"),
        ({"minSize": size_c}, "CE"),
        ({"minSize": size_c + 1}, "E"),
        ({"maxSize": size_c}, "ABDF"),
        ({"maxSize": size_c + 1}, "ABCDF"),
        ({"minSize": 0}, "ABCDEF"),
        ({"maxSize": 0}, ""),
    ]
    check_filters(acc, made, cases)


def test_filter_keyword_and_thread_keyword_conditions(server: Server) -> None:
    """§4.4.1 hasKeyword, notKeyword and the thread conditions allInThreadHaveKeyword,
    someInThreadHaveKeyword, noneInThreadHaveKeyword; keywords match case-insensitively."""
    acc = Account.fresh(server)
    made = filter_corpus(acc)
    cases: list[tuple[Any, str]] = [
        ({"hasKeyword": "$flagged"}, "BC"),
        ({"hasKeyword": "$Flagged"}, "BC"),
        ({"hasKeyword": "$draft"}, ""),
        ({"notKeyword": "$seen"}, "CDF"),
        ({"notKeyword": "$SEEN"}, "CDF"),
        ({"notKeyword": "$draft"}, "ABCDEF"),
        ({"allInThreadHaveKeyword": "$seen"}, "ABE"),
        ({"allInThreadHaveKeyword": "$flagged"}, ""),  # A is not flagged, D is not
        ({"allInThreadHaveKeyword": "$Seen"}, "ABE"),
        ({"someInThreadHaveKeyword": "$flagged"}, "ABCD"),
        ({"someInThreadHaveKeyword": "$seen"}, "ABE"),
        ({"someInThreadHaveKeyword": "$FLAGGED"}, "ABCD"),
        ({"noneInThreadHaveKeyword": "$flagged"}, "EF"),
        ({"noneInThreadHaveKeyword": "$seen"}, "CDF"),
        ({"noneInThreadHaveKeyword": "$draft"}, "ABCDEF"),
    ]
    check_filters(acc, made, cases)


def test_filter_has_attachment(server: Server) -> None:
    """§4.4.1 hasAttachment: equal to the Email's hasAttachment (C has a PDF)."""
    acc = Account.fresh(server)
    made = filter_corpus(acc)
    check_filters(acc, made, [({"hasAttachment": True}, "C"), ({"hasAttachment": False}, "ABDEF")])


def test_filter_text_and_address_conditions(server: Server) -> None:
    """§4.4.1 text (From, To, Cc, Bcc, Subject, body), from, to, cc, bcc, subject, body: each
    looks only in its own field; an address matches by its words and display name."""
    acc = Account.fresh(server)
    made = filter_corpus(acc)
    cases: list[tuple[str, str, str]] = [
        ("text", "quarterly", "A B"),
        ("text", "numbers", "A"),
        ("text", "dave", "C D"),  # C from Dave, D to Dave
        ("text", "eve", "C D"),  # C bcc eve, D from Eve
        ("text", "carol", "A"),  # cc
        ("text", "lunch eve", "C D"),  # words from different fields
        ("text", "menu alice", "C"),
        ("from", "bob", "B"),
        ("from", "example.com", "A C D E"),
        ("from", "example.org", "B"),
        ("from", "Adams", "A"),  # the display name
        ("from", "alice", "A"),
        ("from", "dave@example.com", "C"),
        ("to", "alice", "B C E F"),
        ("to", "bob", "A"),  # E has bob in Cc only
        ("cc", "bob", "E"),
        ("cc", "carol", "A"),
        ("cc", "alice", ""),
        ("bcc", "eve", "C"),
        ("bcc", "dave", ""),
        ("subject", "lunch", "C D"),
        ("subject", "menu lunch", "C D"),
        ("subject", "report quarterly", "A B"),
        ("subject", "numbers", ""),  # a body word
        ("body", "numbers", "A"),
        ("body", "quarterly", ""),  # a subject word; A's body says "quarter"
        ("body", "attached", "C E"),
        ("body", "attached menu", "C"),
    ]
    check_searches(acc, made, cases)


def test_filter_header_condition(server: Server) -> None:
    """§4.4.1 header: [name] matches when the field is present (names case-insensitive);
    [name, value] when value is a case-insensitive substring of the field's value."""
    acc = Account.fresh(server)
    made = filter_corpus(acc)
    cases: list[tuple[Any, str]] = [
        ({"header": ["X-Priority"]}, "AE"),
        ({"header": ["x-priority"]}, "AE"),
        ({"header": ["Cc"]}, "AE"),
        ({"header": ["X-Absent"]}, ""),
        ({"header": ["X-Priority", "5"]}, "E"),
        ({"header": ["List-Id", "LISTS.EXAMPLE"]}, "B"),
        ({"header": ["List-Id", "example"]}, "BF"),
        ({"header": ["List-Id", "ists.exa"]}, "B"),  # a substring, not a word
        ({"header": ["List-Id", "nowhere"]}, ""),
        ({"header": ["subject", "REPORT"]}, "AB"),
    ]
    check_filters(acc, made, cases)


def test_filter_operators_and_compound_conditions(server: Server) -> None:
    """RFC 8620 §5.5 FilterOperator AND / OR / NOT (none of), nested; §4.4.1 a condition with
    several properties is their AND; an empty condition matches everything."""
    acc = Account.fresh(server)
    made = filter_corpus(acc)
    box = acc.boxes

    def op(operator: str, *conditions: Filter) -> Filter:
        return {"operator": operator, "conditions": list(conditions)}

    cases: list[tuple[Any, str]] = [
        (None, "ABCDEF"),
        ({}, "ABCDEF"),
        (op("AND", {"inMailbox": box["inbox"]}, {"hasKeyword": "$flagged"}), "B"),
        (op("OR", {"inMailbox": box["trash"]}, {"inMailbox": box["junk"]}), "DF"),
        (op("NOT", {"inMailbox": box["inbox"]}, {"hasKeyword": "$flagged"}), "DF"),
        (op("NOT", {"inMailbox": box["inbox"]}), "CDF"),
        (
            op(
                "AND",
                op("OR", {"inMailbox": box["trash"]}, {"hasKeyword": "$flagged"}),
                op("NOT", {"inMailbox": box["archive"]}),
            ),
            "D",
        ),
        (
            op(
                "OR",
                op("AND", {"inMailbox": box["archive"]}, {"notKeyword": "$seen"}),
                op("NOT", op("OR", {"from": "example.com"}, {"from": "example.org"})),
            ),
            "CF",
        ),
        (op("AND"), "ABCDEF"),
        (op("OR"), ""),
        (op("NOT"), "ABCDEF"),
        (op("AND", {}), "ABCDEF"),
        ({"inMailbox": box["inbox"], "notKeyword": "$flagged"}, "AE"),
        ({"inMailbox": box["inbox"], "after": "2023-01-02T10:00:00Z"}, "BE"),
        ({"subject": "lunch", "hasKeyword": "$flagged"}, "C"),
    ]
    check_filters(acc, made, cases)


# -- full-text semantics (§4.4.1: server-defined; jmapd's choices) -------------------------------


def bodies(acc: Account, **texts: str) -> dict[str, str]:
    """One plain-text Email per keyword argument (name → body), received in that order."""
    return {
        name: acc.add(mail(f"Note {i}", text), at(i))
        for i, (name, text) in enumerate(texts.items())
    }


def test_text_matches_whole_words_and_the_last_word_as_prefix(server: Server) -> None:
    """Words match whole; only the last word of the query, unquoted, also as a prefix; all
    words must be present, in any order."""
    acc = Account.fresh(server)
    made = bodies(acc, P1="hello world, the business plan", P2="a bus timetable for the world")
    cases: list[tuple[str, str, str]] = [
        ("body", "hello", "P1"),
        ("body", "hel", "P1"),
        ("body", "hel world", ""),  # "hel" is not the last word: whole words only
        ("body", "world hel", "P1"),
        ("body", "bus", "P1 P2"),  # bus, and business by prefix
        ("body", "bus world", "P2"),
        ("body", '"bus"', "P2"),  # quoted: no prefix
        ("body", "usiness", ""),  # never inside a word
        ("body", "plan business", "P1"),
        ("body", "world timetable", "P2"),
        ("body", "timetable world hello", ""),  # every word must be there
        ("text", "bus Note", "P2"),  # the subject and the body together
    ]
    check_searches(acc, made, cases)


def test_text_is_case_and_diacritics_insensitive(server: Server) -> None:
    """Unicode case folding ("ÉCOLE" finds "école") and no diacritics ("ecole" finds
    "école", "Muller" finds "Müller"), both ways."""
    acc = Account.fresh(server)
    made = bodies(
        acc, Q1="Meet at the École with Herr Müller for a café crème.", Q2="ECOLE MULLER", Q3="x"
    )
    cases: list[tuple[str, str, str]] = [
        ("body", "école", "Q1 Q2"),
        ("body", "ÉCOLE", "Q1 Q2"),
        ("body", "ecole", "Q1 Q2"),
        ("body", "Muller", "Q1 Q2"),
        ("body", "müller", "Q1 Q2"),
        ("body", "MÜLLER école", "Q1 Q2"),
        ("body", "cafe creme", "Q1"),
        ("body", "CAFÉ", "Q1"),
        ("text", "herr", "Q1"),
    ]
    check_searches(acc, made, cases)


def test_text_phrases_and_escapes(server: Server) -> None:
    """Text in double or single quotes is a phrase (adjacent words, in order); \\ escapes
    ' " and \\ inside; an unbalanced quote makes the rest a phrase."""
    acc = Account.fresh(server)
    made = bodies(
        acc,
        R1="the quick brown fox jumps",
        R2="brown quick fox",
        R3='They say "cheese" now.',
        R4="cheese, they say, now",
        R5="path C:\\temp\\logs here",
    )
    cases: list[tuple[str, str, str]] = [
        ("body", '"quick brown"', "R1"),
        ("body", "'quick brown'", "R1"),
        ("body", '"brown quick"', "R2"),
        ("body", "quick brown", "R1 R2"),
        ("body", '"quick brown" fox', "R1"),
        ("body", 'fox "quick brown"', "R1"),
        ("body", '"qui"', ""),  # a phrase's words are whole words
        ("body", '"say \\"cheese\\" now"', "R3"),
        ("body", "'say \\'cheese\\' now'", "R3"),
        ("body", "'say \"cheese\" now'", "R3"),  # " needs no escape inside '…'
        ("body", '"temp\\\\logs"', "R5"),
        ("body", '"fox jumps', "R1"),  # unbalanced: the rest is a phrase
        ("body", 'quick "brown fox', "R1"),
        ("body", '"jumps fox', ""),
    ]
    check_searches(acc, made, cases)


def test_text_matches_words_of_addresses(server: Server) -> None:
    """§4.4.1 from/to: an address's local part and domain are words; the name counts too."""
    acc = Account.fresh(server)
    raw = mail("Hi", "x", sender="Joe Bloggs <joe@example.com>", to="Ann Other <ann@mail.example>")
    made = {"S1": acc.add(raw, at(1)), "S2": acc.add(mail("Hi", "x", sender=None, to=None), at(2))}
    cases: list[tuple[str, str, str]] = [
        ("from", "joe", "S1"),
        ("from", "example.com", "S1"),
        ("from", "example", "S1"),
        ("from", "joe@example.com", "S1"),
        ("from", "Bloggs", "S1"),
        ("from", "joe bloggs", "S1"),
        ("from", "example.org", ""),
        ("from", "ann", ""),
        ("to", "mail.example", "S1"),
        ("to", "other", "S1"),
        ("text", "bloggs ann", "S1"),
    ]
    check_searches(acc, made, cases)


def test_text_field_conditions_look_only_in_their_field(server: Server) -> None:
    """§4.4.1: text looks in From, To, Cc, Bcc, Subject and the body; from, to, cc, bcc,
    subject and body each only in theirs."""
    acc = Account.fresh(server)
    t = mail(
        "Sparrow sighting",
        "A walrus was seen.\n",
        sender="Falcon Jones <fj@example.net>",
        to="Tiger Smith <ts@example.net>",
        cc="Cobra <cb@example.net>",
        bcc="Badger <bd@example.net>",
    )
    u = mail("Animals", "falcon tiger cobra badger sparrow\n", sender="Someone <u@example.net>")
    made = {"T": acc.add(t, at(1)), "U": acc.add(u, at(2))}
    cases: list[tuple[str, str, str]] = [
        *[("text", word, "T U") for word in ("falcon", "tiger", "cobra", "badger", "sparrow")],
        ("text", "walrus", "T"),
        ("text", "walrus falcon", "T"),
        ("text", "sparrow walrus badger", "T"),
        ("from", "falcon", "T"),
        ("to", "tiger", "T"),
        ("cc", "cobra", "T"),
        ("bcc", "badger", "T"),
        ("subject", "sparrow", "T"),
        ("body", "walrus", "T"),
        ("body", "falcon", "U"),
        ("body", "sparrow", "U"),
        ("from", "tiger", ""),
        ("to", "cobra", ""),
        ("cc", "badger", ""),
        ("bcc", "falcon", ""),
        ("subject", "walrus", ""),
    ]
    check_searches(acc, made, cases)


# Words that are only HTML markup (tag and attribute names and values), in <head>, CSS or script.
MARKUP = [
    "div", "href", "span", "class", "style", "koala", "https", "okapi", "color", "blue", "lemur",
    "var", "giraffe", "html",
]  # fmt: skip


def test_body_search_reads_text_html_and_text_attachments(server: Server) -> None:
    """§4.4.1 body: text/plain parts, text/html as the text a reader sees (no tags, attribute
    names or values, head, CSS or script), text/* attachments; transfer encodings decoded."""
    acc = Account.fresh(server)
    alt_type, alt_body = multipart(
        "alternative",
        (["Content-Type: text/plain; charset=utf-8"], "plain penguin"),
        (["Content-Type: text/html; charset=utf-8"], "<p>hypertext <b>hippo</b></p>"),
    )
    page = (
        "<html><head><title>giraffe</title><style>p.okapi { color: red }</style></head>\n"
        '<body><div class="koala"><p>Meet the <a href="https://example.com/x">hippo</a>, a\n'
        'na&iuml;ve <span style="color:blue">animal</span>.</p></div>\n'
        "<script>var lemur = 1;</script></body></html>\n"
    )
    mixed_type, mixed_body = multipart(
        "mixed",
        (["Content-Type: text/plain; charset=utf-8"], "see the attachments"),
        (['Content-Type: text/plain; charset=utf-8; name="notes.txt"',
          'Content-Disposition: attachment; filename="notes.txt"'], "the wombat notes"),
        (['Content-Type: text/csv; name="data.csv"',
          'Content-Disposition: attachment; filename="data.csv"'], "animal,count\nnumbat,3"),
    )  # fmt: skip
    qp = ["Content-Transfer-Encoding: quoted-printable"]
    b64 = ["Content-Transfer-Encoding: base64"]
    made = {
        "H1": acc.add(mail("One", alt_body, content_type=alt_type), at(1)),
        "H2": acc.add(mail("Two", page, content_type="text/html; charset=utf-8"), at(2)),
        "H3": acc.add(mail("Three", mixed_body, content_type=mixed_type), at(3)),
        "H4": acc.add(mail("Four", "Un caf=C3=A9 na=C3=AFf.\n", headers=qp), at(4)),
        "H5": acc.add(
            mail("Five", base64.b64encode(b"The capybara swims.").decode(), headers=b64), at(5)
        ),
    }
    cases: list[tuple[str, str, str]] = [
        ("body", "penguin", "H1"),
        ("body", "hippo", "H1 H2"),
        ("body", "naive animal", "H2"),  # &iuml; is ï
        ("body", "meet", "H2"),
        *[("body", markup, "") for markup in MARKUP],
        ("body", "wombat", "H3"),
        ("body", "numbat", "H3"),  # text/csv is text/*
        ("body", "cafe", "H4"),
        ("body", "naïf", "H4"),
        ("body", "capybara", "H5"),
        ("body", "VGhl", ""),  # the base64, not the text
        ("text", "wombat", "H3"),
    ]
    check_searches(acc, made, cases)


def test_encoded_words_are_decoded_before_matching(server: Server) -> None:
    """§4.4.1: RFC 2047 encoded words in Subject and From are decoded before matching."""
    acc = Account.fresh(server)
    e1 = mail(
        "=?UTF-8?Q?R=C3=A9sum=C3=A9_for_the_job?=",
        "x",
        sender="=?ISO-8859-1?Q?J=F6rg_M=FCller?= <jm@example.net>",
    )
    e2 = mail(encoded_word("Überraschung Party"), "y")
    made = {"E1": acc.add(e1, at(1)), "E2": acc.add(e2, at(2))}
    cases: list[tuple[str, str, str]] = [
        ("subject", "resume", "E1"),
        ("subject", "résumé job", "E1"),
        ("subject", "utf", ""),
        ("subject", "C3", ""),
        ("subject", "uberraschung", "E2"),
        ("subject", "Überraschung party", "E2"),
        ("subject", "B", ""),
        ("text", "party", "E2"),
        ("from", "jörg", "E1"),
        ("from", "muller", "E1"),
        ("from", "ISO", ""),
    ]
    check_searches(acc, made, cases)


SYNTAX = [
    'foo AND "bar', "NEAR(a b)", "a*", "subject:x", "(", "'", "&|!:*<->", "foo OR baz",
    "NOT foo", "-foo", "+foo", "^foo", "foo:*", "a & b | !c", "{x}", "[x]", "x'y", "it's",
    '"', "\\", '""', "''", '"unterminated \\', "c++", "%_", "; DROP TABLE email; --", "*",
    "foo\\", "\\\"", "'\"'", "a <-> b", "a:* & b", "!!!", "col:foo", "foo^2", "@", "…",
]  # fmt: skip
NO_WORDS = ["!!!", "(", "'", '"', "&|!:*<->", "\\", '""', "''", "*", "-", ":", "...", "", "   "]


def test_search_syntax_of_fts_engines_never_errors(server: Server) -> None:
    """Characters that are syntax in SQLite FTS5 or PostgreSQL tsquery are just text: every
    query answers normally; one with no letters or digits matches no Email."""
    acc = Account.fresh(server)
    made = bodies(acc, Y1="foo and bar", Y2="foo bar near", Y3="nothing special, it's fine")
    everything = set(made.values())
    for text in SYNTAX:
        for condition in ("text", "subject", "body", "from"):
            name, out = acc.client.call(
                "Email/query", {"accountId": acc.id, "filter": {condition: text}}
            )
            assert name == "Email/query", (condition, text, out)
            assert set(out["ids"]) <= everything
        name, out = acc.client.call(
            "SearchSnippet/get",
            {"accountId": acc.id, "filter": {"text": text}, "emailIds": list(everything)},
        )
        assert name == "SearchSnippet/get", (text, out)
    cases: list[tuple[str, str, str]] = [
        ("body", 'foo AND "bar', "Y1"),  # "and" is a word; the unbalanced quote a phrase
        ("body", "foo OR baz", ""),
        ("body", "it's", "Y3"),
        *[("text", text, "") for text in NO_WORDS],
        *[("body", text, "") for text in NO_WORDS],
    ]
    check_searches(acc, made, cases)


def test_cjk_ideographs_are_words(server: Server) -> None:
    """Chinese and Japanese: each ideograph is a word, so "東京" is a two-word phrase."""
    acc = Account.fresh(server)
    made = bodies(acc, K1="私は東京タワーに行きました。", K2="京都と大阪", K3="我喜欢北京烤鸭")
    cases: list[tuple[str, str, str]] = [
        ("body", "東京", "K1"),
        ("body", "京", "K1 K2 K3"),  # 東京, 京都, 北京
        ("body", "京東", ""),
        ("body", "大阪 京都", "K2"),
        ("body", "北京", "K3"),
        ("body", "烤鸭", "K3"),
        ("text", "東京", "K1"),
    ]
    check_searches(acc, made, cases)


# -- §4.4.2 sorting ------------------------------------------------------------------------------

SORT_OPTIONS = [
    "receivedAt", "size", "from", "to", "subject", "sentAt",
    "hasKeyword", "allInThreadHaveKeyword", "someInThreadHaveKeyword",
]  # fmt: skip


def check_sorts(acc: Account, made: dict[str, str], cases: list[tuple[list[Any], str]]) -> None:
    """Each (sort, names in the expected order, space-separated), with its reverse: every
    comparator's isAscending flipped gives the reversed list (the values are all distinct)."""
    wrong = []
    for sort, expected in cases:
        flipped = [{**c, "isAscending": not c.get("isAscending", True)} for c in sort]
        for comparators, want in ((sort, expected.split()), (flipped, expected.split()[::-1])):
            got = names(made, acc.ids(sort=comparators))
            if got != want:
                wrong.append(f"{comparators}: got {got}, expected {want}")
    assert not wrong, "\n".join(wrong)


def test_sort_by_every_message_property(server: Server) -> None:
    """§4.4.2 receivedAt, size, from and to (name, else email, else ""), subject (the RFC 5256
    base subject), sentAt (as an instant), ascending and descending."""
    acc = Account.fresh(server)
    rows = [  # name, from, to, subject, Date, padding
        ("S0", '"Zed Last" <a@example.com>', "mia@example.com", "Re: Fwd: [list] Hello",
         "Fri, 01 Mar 2024 09:00:00 +0000", 400),
        ("S1", "bea@example.com", '"Xavier" <a@example.com>', "apple",
         "Fri, 01 Mar 2024 10:00:00 +0500", 50),
        ("S2", "carl <z@example.com>", "Bert <z@example.com>", "Fwd: Banana",
         "Fri, 01 Mar 2024 06:00:00 +0000", 900),
        ("S3", None, None, "[x] cherry", "Thu, 29 Feb 2024 23:00:00 -1100", 200),
    ]  # fmt: skip
    made, sizes = {}, {}
    for i, (name, sender, to, subject, date, pad) in enumerate(rows):
        raw = mail(subject, "x" * pad + "\n", sender=sender, to=to, date=date)
        made[name], sizes[name] = acc.add(raw, at(i)), len(raw)
    assert sizes["S1"] < sizes["S3"] < sizes["S0"] < sizes["S2"], sizes
    cases: list[tuple[list[Any], str]] = [
        ([{"property": "receivedAt"}], "S0 S1 S2 S3"),
        ([{"property": "size"}], "S1 S3 S0 S2"),
        ([{"property": "from"}], "S3 S1 S2 S0"),  # "", bea@…, carl, Zed
        ([{"property": "to"}], "S3 S2 S0 S1"),  # "", Bert, mia@…, Xavier
        ([{"property": "subject"}], "S1 S2 S3 S0"),  # apple, Banana, cherry, Hello
        ([{"property": "sentAt"}], "S1 S2 S0 S3"),  # 05:00Z, 06:00Z, 09:00Z, 10:00Z
    ]
    check_sorts(acc, made, cases)


def keyword_threads(acc: Account) -> dict[str, str]:
    """Three threads, received k0…k4 in this order of minutes:

    T1: k0 (1, $flagged), k1 (3, reply);  T2: k2 (2, $seen $flagged), k3 (5, reply, $seen);
    T3: k4 (4)."""
    k0 = mail("Plans", "a", msgid="<k0@sort.example>")
    k1 = mail("Re: Plans", "b", msgid="<k1@sort.example>", refs="<k0@sort.example>")
    k2 = mail("Budget", "c", msgid="<k2@sort.example>")
    k3 = mail("Re: Budget", "d", msgid="<k3@sort.example>", refs="<k2@sort.example>")
    k4 = mail("Alone", "e", msgid="<k4@sort.example>")
    made = {
        "k0": acc.add(k0, at(1), keywords=["$flagged"]),
        "k2": acc.add(k2, at(2), keywords=["$seen", "$flagged"]),
        "k1": acc.add(k1, at(3)),
        "k4": acc.add(k4, at(4)),
        "k3": acc.add(k3, at(5), keywords=["$seen"]),
    }
    threads = acc.client.ok(
        "Email/get", {"accountId": acc.id, "ids": list(made.values()), "properties": ["threadId"]}
    )["list"]
    thread = {e["id"]: e["threadId"] for e in threads}
    assert thread[made["k0"]] == thread[made["k1"]] != thread[made["k2"]] == thread[made["k3"]]
    return made


def test_sort_by_keywords(server: Server) -> None:
    """§4.4.2 hasKeyword, allInThreadHaveKeyword, someInThreadHaveKeyword with the
    Comparator's keyword (false before true ascending), ties broken by a second comparator."""
    acc = Account.fresh(server)
    made = keyword_threads(acc)
    received = {"property": "receivedAt"}

    def by(prop: str, keyword: str, ascending: bool = True) -> dict[str, Any]:
        return {"property": prop, "keyword": keyword, "isAscending": ascending}

    cases: list[tuple[list[Any], str]] = [
        ([by("hasKeyword", "$flagged"), received], "k1 k4 k3 k0 k2"),
        ([by("hasKeyword", "$Flagged"), received], "k1 k4 k3 k0 k2"),
        ([by("allInThreadHaveKeyword", "$seen"), received], "k0 k1 k4 k2 k3"),
        ([by("someInThreadHaveKeyword", "$flagged"), received], "k4 k0 k2 k1 k3"),
        ([by("someInThreadHaveKeyword", "$flagged", False), received], "k0 k2 k1 k3 k4"),
        ([by("hasKeyword", "$seen"), by("someInThreadHaveKeyword", "$flagged", False), received],
         "k0 k1 k4 k2 k3"),
    ]  # fmt: skip
    check_sorts(acc, made, cases)


def test_keyword_sorts_need_a_keyword(server: Server) -> None:
    """§4.4.2: hasKeyword, allInThreadHaveKeyword and someInThreadHaveKeyword Comparators
    MUST have a keyword property (else invalidArguments), and it must be a keyword."""
    acc = Account.fresh(server)
    for prop in SORT_OPTIONS[6:]:
        for extra in ({}, {"keyword": "bad keyword"}, {"keyword": 1}, {"keyword": None}):
            sort = [{"property": prop, **extra}]
            assert acc.error("Email/query", sort=sort) == "invalidArguments", sort


def test_sort_by_several_comparators(server: Server) -> None:
    """RFC 8620 §5.5: a later Comparator orders what the earlier ones leave equal."""
    acc = Account.fresh(server)
    made = {
        name: acc.add(mail(f"Mail {name}", "x", sender=sender), at(i))
        for i, (name, sender) in enumerate(
            [("m0", "Amy <amy@example.com>"), ("m1", "Bob <bob@example.com>"),
             ("m2", "amy <amy@example.org>"), ("m3", "Bob <bob@example.net>")]
        )
    }  # fmt: skip
    cases: list[tuple[list[Any], str]] = [
        ([{"property": "from"}, {"property": "receivedAt", "isAscending": False}], "m2 m0 m3 m1"),
        ([{"property": "from", "isAscending": False}, {"property": "receivedAt"}], "m1 m3 m0 m2"),
    ]
    check_sorts(acc, made, cases)


def test_sort_collations(server: Server) -> None:
    """RFC 8620 §5.5 collation: i;unicode-casemap (the default) puts "école" with the E's;
    i;ascii-casemap folds only a-z, so its UTF-8 octets sort after every ASCII letter. An
    unknown collation is unsupportedSort."""
    acc = Account.fresh(server)
    subjects = {"W0": "Fig", "W1": encoded_word("école"), "W2": "zebra", "W3": "apple"}
    made = {name: acc.add(mail(s, "x"), at(i)) for i, (name, s) in enumerate(subjects.items())}
    cases: list[tuple[list[Any], str]] = [
        ([{"property": "subject"}], "W3 W1 W0 W2"),
        ([{"property": "subject", "collation": "i;unicode-casemap"}], "W3 W1 W0 W2"),
        ([{"property": "subject", "collation": "i;ascii-casemap"}], "W3 W0 W2 W1"),
    ]
    check_sorts(acc, made, cases)
    sort = [{"property": "subject", "collation": "i;no-such-collation"}]
    assert acc.error("Email/query", sort=sort) == "unsupportedSort"


def test_sort_options_are_advertised(server: Server) -> None:
    """§1.3.1 emailQuerySortOptions lists exactly the sorts of §4.4.2."""
    acc = Account.fresh(server)
    capability = acc.client.session()["accounts"][acc.id]["accountCapabilities"][MAIL]
    assert sorted(capability["emailQuerySortOptions"]) == sorted(SORT_OPTIONS)


# -- §4.4.3 collapseThreads; RFC 8620 §5.5 windowing ---------------------------------------------


def collapse_corpus(acc: Account) -> dict[str, str]:
    """T1: a1 (1), a2 (4), a3 (6, archive); T2: b1 (2), b2 (5, $seen); T3: c1 (3)."""
    rows = [
        ("a1", "Plans", "<a1@c.example>", "", "inbox", []),
        ("b1", "Budget", "<b1@c.example>", "", "inbox", []),
        ("c1", "Party", "<c1@c.example>", "", "inbox", []),
        ("a2", "Re: Plans", "<a2@c.example>", "<a1@c.example>", "inbox", []),
        ("b2", "Re: Budget", "<b2@c.example>", "<b1@c.example>", "inbox", ["$seen"]),
        ("a3", "Re: Plans", "<a3@c.example>", "<a1@c.example> <a2@c.example>", "archive", []),
    ]
    return {
        name: acc.add(message(subject, msgid, refs=refs), at(i + 1), boxes=[box], keywords=kw)
        for i, (name, subject, msgid, refs, box, kw) in enumerate(rows)
    }


def test_collapse_threads(server: Server) -> None:
    """§4.4.3: after filtering and sorting, only the first Email of each Thread stays; the
    total counts Threads; windows and anchors apply to the collapsed list."""
    acc = Account.fresh(server)
    made = collapse_corpus(acc)
    inbox = {"inMailbox": acc.boxes["inbox"]}

    def collapsed(**args: Any) -> tuple[list[str], int]:
        out = acc.query(collapseThreads=True, calculateTotal=True, **args)
        return names(made, out["ids"]), out["total"]

    assert collapsed(sort=NEWEST_FIRST) == (["a3", "b2", "c1"], 3)
    assert collapsed(sort=OLDEST_FIRST) == (["a1", "b1", "c1"], 3)
    assert collapsed(filter=inbox, sort=NEWEST_FIRST) == (["b2", "a2", "c1"], 3)
    assert collapsed(filter={"notKeyword": "$seen"}, sort=NEWEST_FIRST) == (["a3", "c1", "b1"], 3)
    assert collapsed(filter={"inMailbox": acc.boxes["archive"]}, sort=OLDEST_FIRST) == (["a3"], 1)
    assert collapsed(sort=NEWEST_FIRST, position=1, limit=1) == (["b2"], 3)
    assert collapsed(sort=NEWEST_FIRST, anchor=made["b2"]) == (["b2", "c1"], 3)
    uncollapsed = acc.query(sort=NEWEST_FIRST, calculateTotal=True, collapseThreads=False)
    assert names(made, uncollapsed["ids"]) == ["a3", "b2", "a2", "c1", "b1", "a1"]
    assert uncollapsed["total"] == 6
    # a2 is not in the collapsed results: a3 stands for its thread.
    anchored = acc.error("Email/query", sort=NEWEST_FIRST, collapseThreads=True, anchor=made["a2"])
    assert anchored == "anchorNotFound"


def test_position_anchor_limit_and_total(server: Server) -> None:
    """RFC 8620 §5.5: position (negative from the end, clamped), anchor with anchorOffset
    (clamped; position then ignored), anchorNotFound, limit, calculateTotal,
    canCalculateChanges."""
    acc = Account.fresh(server)
    made = {f"e{i}": acc.add(message(f"m{i}", f"<e{i}@w.example>"), at(i)) for i in range(6)}
    flagged = acc.add(mail("flagged", "x"), at(10), keywords=["$flagged"])
    unflagged = {"notKeyword": "$flagged"}

    def window(**args: Any) -> tuple[list[str], int]:
        out = acc.query(filter=unflagged, sort=OLDEST_FIRST, **args)
        return names(made, out["ids"]), out["position"]

    e = [f"e{i}" for i in range(6)]
    assert window() == (e, 0)
    assert window(position=2, limit=2) == (e[2:4], 2)
    assert window(position=-2) == (e[4:], 4)
    assert window(position=-2, limit=1) == (e[4:5], 4)
    assert window(position=-10) == (e, 0)
    assert window(position=6)[0] == []
    assert window(position=60)[0] == []
    assert window(limit=0)[0] == []
    assert window(anchor=made["e3"]) == (e[3:], 3)
    assert window(anchor=made["e3"], anchorOffset=-2, limit=2) == (e[1:3], 1)
    assert window(anchor=made["e3"], anchorOffset=1) == (e[4:], 4)
    assert window(anchor=made["e1"], anchorOffset=-5) == (e, 0)
    assert window(anchor=made["e1"], position=4, limit=1) == (e[1:2], 1)
    assert window(anchor=made["e5"], anchorOffset=3)[0] == []
    assert window(position=3, anchorOffset=-2) == (e[3:], 3)  # no anchor: offset ignored
    for anchor in (flagged, "nosuchemail"):
        args = {"filter": unflagged, "sort": OLDEST_FIRST, "anchor": anchor}
        assert acc.error("Email/query", **args) == "anchorNotFound"
    out = acc.query(filter=unflagged, sort=OLDEST_FIRST, limit=2, calculateTotal=True)
    assert out["total"] == 6 and out["canCalculateChanges"] is True
    assert out["accountId"] == acc.id and isinstance(out["queryState"], str)
    assert "limit" not in out  # the server kept the client's limit
    assert "total" not in acc.query(filter=unflagged)
    assert acc.query(calculateTotal=True)["total"] == 7


def test_bad_query_arguments(server: Server) -> None:
    """RFC 8620 §5.5 errors: unsupportedFilter, unsupportedSort, and invalidArguments for
    values of the wrong type, a header with neither one nor two elements, a bad keyword, an
    unknown operator; the same on Email/queryChanges and SearchSnippet/get."""
    acc = Account.fresh(server)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"filter": {"noSuchProperty": 1}}, "unsupportedFilter"),
        ({"filter": {"operator": "OR", "conditions": [{"noSuchProperty": 1}]}},
         "unsupportedFilter"),
        ({"sort": [{"property": "noSuchProperty"}]}, "unsupportedSort"),
        ({"sort": [{"property": "subject", "collation": "i;nope"}]}, "unsupportedSort"),
        ({"filter": {"minSize": "x"}}, "invalidArguments"),
        ({"filter": {"maxSize": -1}}, "invalidArguments"),
        ({"filter": {"header": []}}, "invalidArguments"),
        ({"filter": {"header": ["a", "b", "c"]}}, "invalidArguments"),
        ({"filter": {"header": "Subject"}}, "invalidArguments"),
        ({"filter": {"header": ["Subject", 1]}}, "invalidArguments"),
        ({"filter": {"hasKeyword": "bad keyword"}}, "invalidArguments"),
        ({"filter": {"notKeyword": ""}}, "invalidArguments"),
        ({"filter": {"someInThreadHaveKeyword": "a(b"}}, "invalidArguments"),
        ({"filter": {"before": "yesterday"}}, "invalidArguments"),
        ({"filter": {"inMailbox": 5}}, "invalidArguments"),
        ({"filter": {"inMailboxOtherThan": "x"}}, "invalidArguments"),
        ({"filter": {"hasAttachment": "yes"}}, "invalidArguments"),
        ({"filter": {"text": 5}}, "invalidArguments"),
        ({"filter": {"from": None}}, "invalidArguments"),
        ({"filter": {"operator": "XOR", "conditions": []}}, "invalidArguments"),
        ({"filter": {"operator": "AND"}}, "invalidArguments"),
        ({"filter": {"operator": "AND", "conditions": {}}}, "invalidArguments"),
        ({"filter": {"operator": "NOT", "conditions": [{"minSize": "x"}]}}, "invalidArguments"),
        ({"filter": []}, "invalidArguments"),
        ({"sort": [{"isAscending": True}]}, "invalidArguments"),
        ({"limit": -1}, "invalidArguments"),
        ({"collapseThreads": "yes"}, "invalidArguments"),
    ]  # fmt: skip
    wrong = []
    for args, expected in cases:
        got = acc.error("Email/query", **args)
        if got != expected:
            wrong.append(f"{args}: {got}, expected {expected}")
    assert not wrong, "\n".join(wrong)
    since = acc.query()["queryState"]
    for args, expected in cases[:6]:
        assert acc.error("Email/queryChanges", sinceQueryState=since, **args) == expected, args
    assert acc.error("SearchSnippet/get", emailIds=[], filter={"noSuch": 1}) == "unsupportedFilter"


# -- §4.5 Email/queryChanges ----------------------------------------------------------------------

TOPICS = ["amber", "birch", "cedar", "delta", "ember", "fjord"]


def query_combinations(boxes: dict[str, str]) -> list[dict[str, Any]]:
    """Filter, sort and collapseThreads combinations whose results change in every way: by
    mutable keywords and mailboxes, by other Emails of the thread, by thread collapsing."""
    received = {"property": "receivedAt"}
    newest = {"property": "receivedAt", "isAscending": False}
    flagged_thread = {
        "property": "someInThreadHaveKeyword",
        "keyword": "$flagged",
        "isAscending": False,
    }
    return [
        {"filter": {"inMailbox": boxes["inbox"]}, "sort": [newest]},
        {"filter": {"inMailbox": boxes["inbox"]}, "sort": [newest], "collapseThreads": True},
        {"sort": [flagged_thread, newest], "collapseThreads": True},
        {"filter": {"someInThreadHaveKeyword": "$flagged"}, "sort": [received]},
        {"filter": {"operator": "NOT", "conditions": [{"hasKeyword": "$seen"}]},
         "sort": [{"property": "hasKeyword", "keyword": "$flagged", "isAscending": False},
                  received]},
        {"filter": {"allInThreadHaveKeyword": "$seen"}, "sort": [{"property": "subject"}, newest]},
        {"filter": {"operator": "OR", "conditions": [
            {"inMailbox": boxes["archive"]}, {"noneInThreadHaveKeyword": "$seen"}]},
         "sort": [{"property": "size"}, received], "collapseThreads": True},
        {"filter": {"subject": TOPICS[0]}, "sort": [newest], "collapseThreads": True},
    ]  # fmt: skip


def check_query_changes(acc: Account, args: dict[str, Any], old: dict[str, Any]) -> None:
    """§5.6: removing every id in `removed` from the old ids, then splicing in each of `added`
    in index order, gives exactly the ids of an Email/query now."""
    out = acc.client.ok(
        "Email/queryChanges",
        {"accountId": acc.id, "calculateTotal": True, "sinceQueryState": old["queryState"], **args},
    )
    new = acc.query(calculateTotal=True, **args)
    assert out["oldQueryState"] == old["queryState"]
    assert out["newQueryState"] == new["queryState"]
    assert out["total"] == new["total"] == len(new["ids"])
    assert len(set(out["removed"])) == len(out["removed"])
    assert apply_changes(old["ids"], out["removed"], out["added"], out["total"]) == new["ids"], args


def check_up_to_id(
    acc: Account, args: dict[str, Any], old: dict[str, Any], rng: random.Random
) -> None:
    """§5.6 upToId: a client that cached the old results only up to upToId and applies the
    changes has the new results right up to upToId's new index (all of it when upToId did not
    move), and wherever else it knows an id."""
    if not old["ids"]:
        return
    k = rng.randrange(len(old["ids"]))
    up_to = old["ids"][k]
    out = acc.client.ok(
        "Email/queryChanges",
        {
            "accountId": acc.id,
            "calculateTotal": True,
            "sinceQueryState": old["queryState"],
            "upToId": up_to,
            **args,
        },
    )
    new = acc.query(**args)["ids"]
    assert out["total"] == len(new)
    cache: Cache = [*old["ids"][: k + 1], *[None] * (len(old["ids"]) - k - 1)]
    got = apply_changes(cache, out["removed"], out["added"], out["total"])
    known = got.index(None) if None in got else len(got)
    if up_to in new:
        known = min(known, new.index(up_to) + 1)
        if up_to not in out["removed"]:
            assert known == new.index(up_to) + 1, (args, k, out)
    else:
        assert all(id is None or id == new[i] for i, id in enumerate(got)), (args, k, out)
    assert got[:known] == new[:known], (args, k, out)


class Mailroom:
    """The random Emails of a queryChanges run: live ids, conversations, a clock."""

    def __init__(self, acc: Account, rng: random.Random, seed: int) -> None:
        self.acc, self.rng, self.seed = acc, rng, seed
        self.live: list[str] = []
        self.conversations: list[list[str]] = []  # Message-IDs per topic, root first
        self.minutes = 0

    def add(self) -> None:
        """A new conversation (up to len(TOPICS)), or a reply in an existing one."""
        rng = self.rng
        if len(self.conversations) < len(TOPICS) and (not self.conversations or rng.random() < 0.4):
            topic, refs = len(self.conversations), ""
            self.conversations.append([])
            subject = f"Topic {TOPICS[topic]}"
        else:
            topic = rng.randrange(len(self.conversations))
            refs = " ".join(self.conversations[topic])
            subject = f"Re: Topic {TOPICS[topic]}"
        self.minutes += 1
        msgid = f"<{self.seed}.{self.minutes}@random.example>"
        raw = message(subject, msgid, refs=refs)
        boxes = rng.choice((["inbox"], ["inbox"], ["archive"], ["inbox", "archive"]))
        keywords = [k for k in ("$seen", "$flagged") if rng.random() < 0.4]
        self.live.append(self.acc.add(raw, at(self.minutes), boxes=boxes, keywords=keywords))
        self.conversations[topic].append(msgid)

    def change(self) -> None:
        """One random change: import, keyword toggle, move, or destroy."""
        rng = self.rng
        op = rng.choice(("add", "add", "keyword", "keyword", "keyword", "move", "move", "destroy"))
        if op == "add" or len(self.live) < 4:
            self.add()
            return
        target = rng.choice(self.live)
        if op == "keyword":
            patch: dict[str, Any] = {
                f"keywords/{rng.choice(('$seen', '$flagged'))}": rng.choice((True, None))
            }
        elif op == "move":
            roles = rng.choice((["inbox"], ["archive"], ["inbox", "archive"]))
            patch = {"mailboxIds": {self.acc.boxes[r]: True for r in roles}}
        else:
            self.acc.set(destroy=[target])
            self.live.remove(target)
            return
        self.acc.set(update={target: patch})


@pytest.mark.parametrize("seed", [4, 5, 8621])
def test_query_changes_random(server: Server, seed: int) -> None:
    """§4.5 with RFC 8620 §5.6, as a property: after random imports (replies too), keyword
    changes, moves and destroys, Email/queryChanges from an old queryState turns the old
    ids into exactly the new ones, for every filter/sort/collapseThreads combination."""
    rng = random.Random(seed)
    acc = Account.fresh(server)
    room = Mailroom(acc, rng, seed)
    for _ in range(20):
        room.add()
    queries = query_combinations(acc.boxes)
    start = [acc.query(**q) for q in queries]
    checkpoint = start
    for step in range(40):
        room.change()
        if step % 4 == 3:
            for q, old_start, old_checkpoint in zip(queries, start, checkpoint, strict=True):
                check_query_changes(acc, q, old_start)
                check_query_changes(acc, q, old_checkpoint)
                check_up_to_id(acc, q, old_start, rng)
            checkpoint = [acc.query(**q) for q in queries]


def test_query_changes_by_hand(server: Server) -> None:
    """§4.5: a reply and a keyword on another Email of a thread move the thread's
    representative under collapseThreads; removed and added say so."""
    acc = Account.fresh(server)
    made = collapse_corpus(acc)
    args: dict[str, Any] = {"sort": NEWEST_FIRST, "collapseThreads": True}
    old = acc.query(**args)
    assert names(made, old["ids"]) == ["a3", "b2", "c1"]
    made["b3"] = acc.add(
        message("Re: Budget", "<b3@c.example>", refs="<b1@c.example> <b2@c.example>"), at(9)
    )
    acc.set(destroy=[made["a3"]])
    out = acc.client.ok(
        "Email/queryChanges", {"accountId": acc.id, "sinceQueryState": old["queryState"], **args}
    )
    assert {"a3", "b2"} <= set(names(made, out["removed"]))
    assert [(a["index"], names(made, [a["id"]])[0]) for a in out["added"]][:2] == [
        (0, "b3"),
        (1, "a2"),
    ]
    check_query_changes(acc, args, old)
    flagged: dict[str, Any] = {
        "filter": {"someInThreadHaveKeyword": "$flagged"},
        "sort": OLDEST_FIRST,
    }
    old = acc.query(**flagged)
    assert old["ids"] == []
    acc.set(update={made["b1"]: {"keywords/$flagged": True}})
    check_query_changes(acc, flagged, old)
    assert names(made, acc.ids(**flagged)) == ["b1", "b2", "b3"]


@pytest.fixture
def forgetful(backend: str, tmp_path: Path) -> Iterator[Server]:
    """A server that forgets tombstones after a second, so old states become too old."""
    env = {"JMAPD_TOMBSTONE_TTL": "1", "JMAPD_HOUSEKEEPING_INTERVAL": "1"}
    srv = start_server(tmp_path, env=env)
    yield srv
    stop_server(srv)


def test_query_changes_cannot_calculate(forgetful: Server) -> None:
    """RFC 8620 §5.6 cannotCalculateChanges: for a queryState the server never gave, and for
    one older than the changes it still keeps."""
    acc = Account.fresh(forgetful)
    e1 = acc.add(message("one", "<old1@x.example>"), at(1))
    acc.add(message("two", "<old2@x.example>"), at(2))
    old = acc.query(sort=NEWEST_FIRST)["queryState"]
    for since in ("not-a-state", "", "-1", str(10**12)):
        assert acc.error("Email/queryChanges", sinceQueryState=since) == "cannotCalculateChanges"
    acc.set(destroy=[e1])
    deadline = time.monotonic() + 15
    while True:
        name, out = acc.client.call(
            "Email/queryChanges",
            {"accountId": acc.id, "sinceQueryState": old, "sort": NEWEST_FIRST},
        )
        if name == "error":
            assert out["type"] == "cannotCalculateChanges"
            break
        assert time.monotonic() < deadline, "the old queryState was still answered"
        time.sleep(0.2)
    current = acc.query(sort=NEWEST_FIRST)
    out = acc.client.ok(
        "Email/queryChanges",
        {"accountId": acc.id, "sort": NEWEST_FIRST, "sinceQueryState": current["queryState"]},
    )
    assert (out["removed"], out["added"]) == ([], [])


# -- §5 SearchSnippet/get ------------------------------------------------------------------------

ENTITY = re.compile(r"&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);")


def check_preview(preview: str, body: str, marked: Sequence[str]) -> None:
    """A §5 preview: at most 255 octets of UTF-8; &, <, > escaped; the `marked` words in
    <mark></mark>; otherwise a section of the body's text (its first and last words may be
    cut, and it may be framed by an ellipsis)."""
    assert len(preview.encode()) <= 255, preview
    for word in marked:
        assert f"<mark>{word}</mark>" in preview, (word, preview)
    unmarked = preview.replace("<mark>", "").replace("</mark>", "")
    assert "<" not in unmarked and ">" not in unmarked, preview
    assert "&" not in ENTITY.sub("", unmarked), preview
    words = html.unescape(unmarked).strip(" .…\n").split()
    assert " ".join(words[1:-1]) in " ".join(body.split()), preview


def snippet_map(out: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """emailId → (subject, preview) of a SearchSnippet/get response (any order)."""
    assert all(set(s) == {"emailId", "subject", "preview"} for s in out["list"]), out["list"]
    return {s["emailId"]: (s["subject"], s["preview"]) for s in out["list"]}


def test_snippet_subject_is_escaped_and_marked(server: Server) -> None:
    """§5: the subject HTML-escaped (& < >) with the matched words in <mark>; null when the
    filter's text does not match the subject."""
    acc = Account.fresh(server)
    greeting = acc.add(mail("Hello <World> & hello", "Nothing to see.\n"), at(1))
    lunch = acc.add(mail("Lunch", "Well, hello there.\n"), at(2))
    school = acc.add(mail(encoded_word("École & Café"), "x\n"), at(3))
    out = acc.snippets({"text": "hello"}, [greeting, lunch])
    assert out["accountId"] == acc.id and out["notFound"] is None
    got = snippet_map(out)
    assert set(got) == {greeting, lunch}
    assert got[greeting] == ("<mark>Hello</mark> &lt;World&gt; &amp; <mark>hello</mark>", None)
    assert got[lunch][0] is None
    check_preview(got[lunch][1], "Well, hello there.", ["hello"])
    got = snippet_map(acc.snippets({"text": "ecole"}, [school]))
    assert got[school] == ("<mark>École</mark> &amp; Café", None)
    got = snippet_map(acc.snippets({"subject": "world hello"}, [greeting]))
    assert got[greeting] == (
        "<mark>Hello</mark> &lt;<mark>World</mark>&gt; &amp; <mark>hello</mark>",
        None,
    )


def test_snippet_preview_is_a_short_marked_section_of_the_body(server: Server) -> None:
    """§5 preview: a section of the body text around a match (HTML converted to text), escaped
    and marked like the subject, at most 255 octets; null when the body does not match."""
    acc = Account.fresh(server)
    filler = "Le café était très bon, dit-il. " * 40
    body = filler + "Then <tags> & the needle appeared. " + filler
    long = acc.add(mail("Report", body), at(1))
    page = "<html><body><p>The <b>needle</b> &amp; <i>thread</i></p></body></html>"
    web = acc.add(mail("Page", page, content_type="text/html; charset=utf-8"), at(2))
    other = acc.add(mail("Needle in the subject", "hay only"), at(3))
    got = snippet_map(acc.snippets({"body": "needle"}, [long, web, other]))
    assert got[long][0] is None
    check_preview(got[long][1], body, ["needle"])
    assert got[web][0] is None
    check_preview(got[web][1], "The needle & thread", ["needle"])
    assert got[other] == (None, None)  # body terms are not looked for in the subject
    got = snippet_map(acc.snippets({"text": "needle"}, [other]))
    assert got[other] == ("<mark>Needle</mark> in the subject", None)


def test_snippet_terms_come_from_text_subject_and_body_conditions(server: Server) -> None:
    """§5: the subject is marked with the words of text and subject conditions, the preview
    with those of text and body conditions, anywhere in the filter but under NOT; no such
    words (or no filter) gives null for both."""
    acc = Account.fresh(server)
    body = "beta gamma alpha"
    email = acc.add(mail("alpha beta", body + "\n"), at(1))

    def snippet(filter: Filter | None) -> tuple[Any, Any]:
        return snippet_map(acc.snippets(filter, [email]))[email]

    def either(*conditions: Filter) -> Filter:
        return {"operator": "OR", "conditions": list(conditions)}

    assert snippet({"subject": "alpha"}) == ("<mark>alpha</mark> beta", None)
    assert snippet({"text": "beta"})[0] == "alpha <mark>beta</mark>"
    check_preview(snippet({"text": "beta"})[1], body, ["beta"])
    subject, preview = snippet({"body": "beta"})
    assert subject is None
    check_preview(preview, body, ["beta"])
    assert "<mark>alpha</mark>" not in preview
    subject, preview = snippet({"text": "gamma"})
    assert subject is None
    check_preview(preview, body, ["gamma"])
    subject, preview = snippet(either({"subject": "alpha"}, {"body": "beta"}))
    assert subject == "<mark>alpha</mark> beta"
    check_preview(preview, body, ["beta"])
    assert "<mark>alpha</mark>" not in preview
    negated = either({"text": "beta"}, {"operator": "NOT", "conditions": [{"text": "alpha"}]})
    subject, preview = snippet(negated)
    assert subject == "alpha <mark>beta</mark>"
    check_preview(preview, body, ["beta"])
    assert "<mark>alpha</mark>" not in preview
    for no_text in (None, {}, {"inMailbox": acc.boxes["inbox"]}, {"text": "zeta"}):
        assert snippet(no_text) == (None, None), no_text


def test_snippet_not_found_and_errors(server: Server) -> None:
    """§5.1: notFound lists unknown ids (null when all were found); more emailIds than
    maxObjectsInGet is requestTooLarge; an unknown account is accountNotFound."""
    acc = Account.fresh(server)
    email = acc.add(mail("Hello", "hello\n"), at(1))
    out = acc.snippets({"text": "hello"}, [email, "nosuchemail"])
    assert [s["emailId"] for s in out["list"]] == [email]
    assert out["notFound"] == ["nosuchemail"]
    assert acc.snippets({"text": "hello"}, [email])["notFound"] is None
    out = acc.snippets({"text": "hello"}, [])
    assert (out["list"], out["notFound"]) == ([], None)
    limit = acc.client.session()["capabilities"][CORE]["maxObjectsInGet"]
    too_many = [email] + [f"x{i}" for i in range(limit)]
    assert acc.error("SearchSnippet/get", filter=None, emailIds=too_many) == "requestTooLarge"
    name, error = acc.client.call(
        "SearchSnippet/get", {"accountId": "nosuchaccount", "filter": None, "emailIds": [email]}
    )
    assert (name, error["type"]) == ("error", "accountNotFound")
