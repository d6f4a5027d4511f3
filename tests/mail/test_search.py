"""mail/search.py: index words, RFC 8621 §4.4.1 search strings, and §5 snippets."""

from __future__ import annotations

import random

import pytest

from jmapd.mail.search import (
    MAX_WORD,
    SNIPPET_OCTETS,
    Term,
    _spans,
    highlight,
    parse_query,
    snippet,
    words,
)
from jmapd.store.mailindex import FIELD_CODES, MAX_DOCUMENT, capped


def test_words_are_folded_and_without_diacritics() -> None:
    assert words("École MÜLLER straße ﬁne") == ["ecole", "muller", "strasse", "fine"]


def test_words_split_at_punctuation_and_addresses() -> None:
    assert words("joe@example.com, I'm 3.14 foo_bar") == [
        "joe", "example", "com", "i", "m", "3", "14", "foo", "bar",
    ]  # fmt: skip


def test_words_are_the_words_snippets_find() -> None:
    """`words` (the index's, with its ASCII shortcut) and `_spans` (the snippets') cut and fold
    alike: a search matches what a snippet marks. Random text of ASCII, accented, folding
    (ß, ligatures), CJK and Hangul characters and punctuation, with over-long words."""
    rng = random.Random(7)
    alphabet = "aZ09 _-.,'\n\tÉéüßﬁİ\u0131Σ\u03c3\u03c2東京タワー서울①²\u0301\u00a0"
    for n in range(2000):
        size = rng.choice([0, 1, 5, 40, 3 * MAX_WORD])
        text = "".join(rng.choice(alphabet) for _ in range(size))
        if n % 5 == 0:  # a word longer than MAX_WORD, and one twice as long
            text += " " + "Xé"[n % 10 // 5] * rng.choice([MAX_WORD + 1, 2 * MAX_WORD + 3])
        if n % 2:  # half of them ASCII only, the shortcut's case
            text = text.encode("ascii", "ignore").decode()
        assert words(text) == [word for _, _, word in _spans(text)], text


def test_every_ideograph_and_kana_is_a_word() -> None:
    assert words("東京タワー 서울") == ["東", "京", "タ", "ワ", "ー", "서울"]


def test_tokens_all_must_match_and_the_last_is_a_prefix() -> None:
    assert parse_query("  hello   wor ") == [Term(("hello",)), Term(("wor",), prefix=True)]


def test_a_prefix_has_at_least_three_characters() -> None:
    assert parse_query("hello wo") == [Term(("hello",)), Term(("wo",))]


@pytest.mark.parametrize("quote", ['"', "'"])
def test_quoted_text_is_a_phrase(quote: str) -> None:
    text = f"a {quote}Quick  Brown{quote} fox"
    assert parse_query(text) == [
        Term(("a",)), Term(("quick", "brown")), Term(("fox",), prefix=True),
    ]  # fmt: skip
    assert parse_query(f"{quote}quick brown{quote}") == [Term(("quick", "brown"))]


def test_backslash_escapes_quotes_inside_a_phrase() -> None:
    assert parse_query(r'"it\"s \\ here"') == [Term(("it", "s", "here"))]


def test_an_unclosed_quote_runs_to_the_end() -> None:
    assert parse_query('foo "bar baz') == [Term(("foo",)), Term(("bar", "baz"))]


def test_database_syntax_is_only_ever_words() -> None:
    terms = parse_query("NEAR(a b) a* subject:x ( ' &|!:*<->")
    assert terms == [
        Term(("near", "a")), Term(("b",)), Term(("a",)), Term(("subject", "x")),
    ]  # fmt: skip
    assert parse_query("!!! ()") == []


def test_highlight_escapes_and_marks_every_match() -> None:
    got = highlight("Hello <World> & hello", parse_query("hello"))
    assert got == "<mark>Hello</mark> &lt;World&gt; &amp; <mark>hello</mark>"
    assert highlight("Hello world", parse_query("wor")) == "Hello <mark>world</mark>"
    assert highlight("Hello world", parse_query("nothing")) is None


def test_highlight_marks_a_phrase_as_one() -> None:
    got = highlight("the quick brown fox, quick!", parse_query('"quick brown"'))
    assert got == "the <mark>quick brown</mark> fox, quick!"


def test_highlight_matches_without_diacritics() -> None:
    assert highlight("Café Müller", parse_query("cafe")) == "<mark>Café</mark> Müller"


def test_snippet_is_around_the_match_and_fits() -> None:
    text = "word " * 100 + "the zeppelin flies over Ünïcödé land " + "filler " * 100
    got = snippet(text, parse_query("zeppelin"))
    assert got is not None
    assert "the <mark>zeppelin</mark> flies over Ünïcödé land" in got
    assert len(got.encode()) <= SNIPPET_OCTETS
    assert snippet(text, parse_query("absent")) is None


def test_snippet_of_unspaced_text_fits() -> None:
    got = snippet("短い日本語の文章です。東京タワーに行きました。" * 20, parse_query("東京"))
    assert got is not None and got.startswith("短い日本語の文章です。<mark>東京</mark>")
    assert len(got.encode()) <= SNIPPET_OCTETS


def test_snippet_escapes_within_the_limit() -> None:
    got = snippet("<&>" * 200 + " needle", parse_query("needle"))
    assert got is not None and got.endswith("<mark>needle</mark>")
    assert len(got.encode()) <= SNIPPET_OCTETS


def test_snippet_finds_a_match_written_with_other_diacritics() -> None:
    got = snippet("The Zëppelin flies.", parse_query("zeppelin"))
    assert got == "The <mark>Zëppelin</mark> flies."


def test_snippet_skips_a_longer_word_that_is_not_a_match() -> None:
    got = snippet("zeppelins fly, and a zeppelin lands.", parse_query('"zeppelin"'))
    assert got == "zeppelins fly, and a <mark>zeppelin</mark> lands."


def test_a_document_is_capped_at_the_first_word_past_its_size() -> None:
    """Every word is kept while the words, as a PostgreSQL tsvector, fit in MAX_DOCUMENT
    octets (8, then per distinct word 4 + the field code + 1 + the word + 1 + 2 + 2); the
    first word past it and all after it are dropped."""
    fits = [f"w{i:016d}" for i in range((MAX_DOCUMENT - 8) // 28)]  # 28 octets each
    assert 8 + 28 * len(fits) == MAX_DOCUMENT
    assert capped({"body": fits}) == {**{key: [] for key in FIELD_CODES}, "body": fits}
    over = capped({"subject": ["x" * 17], "to": fits, "cc": ["late"], "body": ["later"]})
    assert over["subject"] == ["x" * 17]  # fields in order: subject, from, to, cc, bcc, body
    assert over["to"] == fits[:-1]
    assert over["cc"] == over["body"] == []
    assert (
        capped({"body": fits[:-1] + ["seen"] * 2})
        == {  # a repeat costs 2
            **{key: [] for key in FIELD_CODES},
            "body": fits[:-1] + ["seen"] * 2,
        }
    )
    small = {"subject": ["hello"], "from": ["ann"], "body": ["hello", "world"] * 500}
    assert capped(small) == {**{key: [] for key in FIELD_CODES}, **small}
