"""A deterministic synthetic mail corpus for benchmarks.

`messages(n, seed)` yields n RFC 5322 messages (bytes, CRLF line ends) built with the stdlib
email package from a `random.Random(seed)`: the same (n, seed) gives the same bytes.

- senders from a pool of 500 names and addresses, about a fifth with non-ASCII display names
  (RFC 2047 encoded by the email package);
- subjects in English, German, French, Japanese and Chinese;
- about 30% replies: In-Reply-To and References to an earlier Message-ID, "Re: " subject;
- sizes from about 1 kB to a few hundred kB (log-normal, median about 4 kB): text/plain,
  multipart/alternative with an HTML part, about 10% multipart/mixed with a small binary
  attachment;
- Date headers increasing over two years (2023-01-01 to 2024-12-31) with some jitter;
- a rare marker word, MARKER ("zeppelin", in no word list), in the body text (so in the HTML
  part too, when there is one) of about 1% (MARKER_FRACTION) of the messages, for full-text
  search benchmarks: one lower-case word inserted between two words (or, in Japanese and
  Chinese text, two sentences) of the text. Whether and where a message has it comes from a
  random.Random of its own, seeded from `seed`, that draws twice for every message, so
  `marker_count(n, seed)` knows how many of the n messages have it without building them, and
  the rest of every message is as it was before the marker existed.

`dated_messages(n, seed)` yields the same messages as (raw, receivedAt) pairs, receivedAt
being the Date header as a UTC date, for importers that set receivedAt explicitly.
`python -m bench.corpus [N]` prints statistics of the first N messages.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

MARKER = "zeppelin"
MARKER_FRACTION = 0.01
START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=730)

FIRST = [
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Susan", "Richard", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Anna", "Peter", "Laura", "Paul", "Emma", "Mark", "Olivia", "Lukas", "Hannah", "Felix",
]  # fmt: skip
LAST = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson",
    "Anderson", "Taylor", "Moore", "Martin", "Lee", "Walker", "Hall", "Young", "King", "Wright",
]  # fmt: skip
FIRST_INTL = [
    "Jürgen", "Björn", "Zoë", "François", "Hélène", "Sébastien", "Łukasz", "Søren", "José",
    "Renée", "Ångström", "Dvořák", "Gül", "Çağla",
]  # fmt: skip
LAST_INTL = ["Müller", "Schäfer", "Lefèvre", "Gérard", "Øster", "Núñez", "Wałęsa", "Köhler"]
CJK_NAMES = [
    "山田 太郎", "佐藤 花子", "鈴木 一郎", "田中 美咲", "高橋 健", "王伟", "李娜", "张敏",
    "刘洋", "陈静", "杨帆", "黄磊",
]  # fmt: skip
DOMAINS = [
    "example.com", "example.org", "example.net", "mail.example.de", "example.fr",
    "example.co.jp", "example.cn", "lists.example.org", "corp.example.com",
]  # fmt: skip

SUBJECT_WORDS = {
    "en": [
        "meeting",
        "budget",
        "report",
        "quarterly",
        "review",
        "invoice",
        "project",
        "update",
        "schedule",
        "launch",
        "release",
        "draft",
        "contract",
        "proposal",
        "team",
        "offsite",
        "deadline",
        "question",
        "about",
        "the",
        "new",
        "plan",
        "for",
        "next",
        "week",
        "notes",
    ],
    "de": [
        "Besprechung",
        "Rechnung",
        "Bericht",
        "Angebot",
        "Termin",
        "für",
        "nächste",
        "Woche",
        "Änderung",
        "Vertrag",
        "Übersicht",
        "Frage",
        "zum",
        "Projekt",
        "Prüfung",
        "Größe",
    ],
    "fr": [
        "réunion",
        "facture",
        "rapport",
        "projet",
        "équipe",
        "prochaine",
        "semaine",
        "à",
        "propos",
        "du",
        "contrat",
        "délai",
        "mise",
        "à jour",
        "révision",
        "été",
        "budget",
    ],
    "ja": [
        "会議",
        "予定",
        "報告書",
        "確認",
        "お願い",
        "来週",
        "プロジェクト",
        "請求書",
        "更新",
        "資料",
        "打ち合わせ",
        "について",
        "のご案内",
        "変更",
    ],
    "zh": [
        "会议",
        "报告",
        "项目",
        "预算",
        "下周",
        "安排",
        "发票",
        "合同",
        "更新",
        "通知",
        "关于",
        "审核",
        "计划",
        "讨论",
    ],
}
LANGUAGES = ["en"] * 5 + ["de"] * 2 + ["fr"] * 2 + ["ja", "zh"]
BODY_WORDS = {
    "en": [
        "the",
        "of",
        "and",
        "to",
        "in",
        "is",
        "that",
        "for",
        "it",
        "as",
        "was",
        "with",
        "be",
        "by",
        "on",
        "not",
        "he",
        "this",
        "are",
        "or",
        "his",
        "from",
        "at",
        "which",
        "but",
        "have",
        "an",
        "they",
        "you",
        "were",
        "her",
        "she",
        "there",
        "been",
        "one",
        "all",
        "we",
        "their",
        "has",
        "would",
        "when",
        "if",
        "so",
        "no",
        "will",
        "can",
        "more",
        "about",
        "said",
        "what",
        "out",
        "up",
        "them",
        "into",
        "some",
        "could",
        "time",
    ],
    "de": [
        "der",
        "die",
        "und",
        "in",
        "den",
        "von",
        "zu",
        "das",
        "mit",
        "sich",
        "des",
        "auf",
        "für",
        "ist",
        "im",
        "dem",
        "nicht",
        "ein",
        "eine",
        "als",
        "auch",
        "es",
        "an",
        "werden",
        "aus",
        "er",
        "hat",
        "dass",
        "sie",
        "nach",
        "wird",
        "bei",
        "einer",
        "über",
        "so",
        "zum",
        "war",
        "haben",
    ],
    "fr": [
        "le",
        "de",
        "un",
        "être",
        "et",
        "à",
        "il",
        "avoir",
        "ne",
        "je",
        "son",
        "que",
        "se",
        "qui",
        "ce",
        "dans",
        "en",
        "du",
        "elle",
        "au",
        "pour",
        "pas",
        "que",
        "vous",
        "par",
        "sur",
        "faire",
        "plus",
        "dire",
        "me",
        "on",
        "mon",
        "lui",
        "nous",
        "comme",
        "mais",
        "pouvoir",
        "très",
        "déjà",
    ],
    "ja": [
        "これは",
        "テスト",
        "です",
        "会議",
        "の",
        "資料",
        "を",
        "確認",
        "して",
        "ください",
        "よろしく",
        "お願い",
        "します",
    ],
    "zh": [
        "我们",
        "的",
        "项目",
        "会议",
        "将",
        "在",
        "下周",
        "举行",
        "请",
        "确认",
        "您",
        "的",
        "时间",
        "谢谢",
    ],
}
ATTACHMENTS = [
    ("application", "pdf", "report.pdf"),
    ("image", "png", "chart.png"),
    ("application", "octet-stream", "data.bin"),
    ("application", "zip", "archive.zip"),
]


class _Sender:
    __slots__ = ("address", "lang")

    def __init__(self, address: Address, lang: str) -> None:
        self.address = address
        self.lang = lang


def _senders(rng: random.Random, count: int = 500) -> list[_Sender]:
    out = []
    for i in range(count):
        kind = rng.random()
        if kind < 0.10:
            name, lang = rng.choice(CJK_NAMES), rng.choice(["ja", "zh"])
        elif kind < 0.20:
            name = f"{rng.choice(FIRST_INTL)} {rng.choice(LAST_INTL + LAST)}"
            lang = rng.choice(["de", "fr"])
        else:
            name, lang = f"{rng.choice(FIRST)} {rng.choice(LAST)}", rng.choice(LANGUAGES)
        user = f"user{i}.{rng.choice(LAST).lower()}"
        out.append(_Sender(Address(name, user, rng.choice(DOMAINS)), lang))
    return out


def _subject(rng: random.Random, lang: str) -> str:
    words = SUBJECT_WORDS[lang]
    sep = "" if lang in ("ja", "zh") else " "
    text = sep.join(rng.choice(words) for _ in range(rng.randint(2, 7)))
    return text[:1].upper() + text[1:] + (f" #{rng.randint(1, 999)}" if rng.random() < 0.3 else "")


def _sentences(rng: random.Random) -> dict[str, list[str]]:
    """A pool of sentences per language, to build bodies of any size quickly."""
    pool = {}
    for lang, words in BODY_WORDS.items():
        sep, end = ("", "。") if lang in ("ja", "zh") else (" ", ".")
        sentences = []
        for _ in range(200):
            text = sep.join(rng.choice(words) for _ in range(rng.randint(5, 18)))
            sentences.append(text[:1].upper() + text[1:] + end)
        pool[lang] = sentences
    return pool


def _text(rng: random.Random, sentences: list[str], size: int) -> str:
    lines, total = [], 0
    while total < size:
        para = " ".join(rng.choice(sentences) for _ in range(rng.randint(2, 6)))
        lines.append(para)
        total += len(para.encode()) + 2
    return "\n\n".join(lines) + "\n"


def _size(rng: random.Random) -> int:
    """Body text size in bytes: log-normal around 3 kB, from 600 B to 300 kB."""
    return int(min(300_000, max(600, math.exp(rng.gauss(math.log(3000), 1.1)))))


def _marker_draws(n: int, seed: int) -> Iterator[float | None]:
    """For each of n messages: where in its text the marker goes (0 to 1), or None."""
    rng = random.Random(f"marker-{seed}")
    for _ in range(n):
        has, where = rng.random(), rng.random()
        yield where if has < MARKER_FRACTION else None


def marker_count(n: int, seed: int = 1) -> int:
    """How many of the n messages of dated_messages(n, seed) contain MARKER."""
    return sum(where is not None for where in _marker_draws(n, seed))


def _with_marker(text: str, where: float) -> str:
    words = text.split(" ")
    at = int(where * len(words))
    return " ".join([*words[:at], MARKER, *words[at:]])


def dated_messages(n: int, seed: int = 1) -> Iterator[tuple[bytes, str]]:
    """(raw message, receivedAt as UTC date) for n messages; see the module docstring."""
    rng = random.Random(seed)
    senders = _senders(rng)
    me = Address("Bench User", "bench", "localhost")
    pool = _sentences(rng)
    # Earlier messages a reply may answer: (Message-ID, References, root subject, sender).
    earlier: list[tuple[str, str, str, _Sender]] = []
    step = SPAN / max(n, 1)
    for i, marker_at in enumerate(_marker_draws(n, seed)):
        date = START + step * i + timedelta(seconds=rng.randint(0, 3600))
        msgid = f"<{i}.{rng.getrandbits(48):012x}@bench.example>"
        msg = EmailMessage(policy=SMTP)
        reply = earlier and rng.random() < 0.3
        if reply:
            # Mostly recent conversations, sometimes an old one.
            back = min(len(earlier), int(rng.expovariate(1 / 40)) + 1)
            parent_id, parent_refs, subject, parent_sender = earlier[-back]
            sender = rng.choice(senders) if rng.random() < 0.5 else parent_sender
            refs = (parent_refs + " " + parent_id).strip().split()[-10:]
            msg["Subject"] = "Re: " + subject
            msg["In-Reply-To"] = parent_id
            msg["References"] = " ".join(refs)
            references = " ".join(refs)
        else:
            sender = rng.choice(senders)
            subject = _subject(rng, sender.lang)
            msg["Subject"] = subject
            references = ""
        msg["From"] = sender.address
        to = [me] + [rng.choice(senders).address for _ in range(rng.choice([0, 0, 0, 1, 2]))]
        msg["To"] = to
        if rng.random() < 0.2:
            msg["Cc"] = rng.choice(senders).address
        msg["Date"] = format_datetime(date)
        msg["Message-ID"] = msgid
        lang = sender.lang if rng.random() < 0.8 else rng.choice(LANGUAGES)
        text = _text(rng, pool[lang], _size(rng))
        if marker_at is not None:
            text = _with_marker(text, marker_at)
        msg.set_content(text)
        if rng.random() < 0.5:
            paras = "".join(f"<p>{p}</p>\n" for p in text.split("\n\n"))
            msg.add_alternative(f"<html><body>\n{paras}</body></html>\n", subtype="html")
        if rng.random() < 0.1:
            maintype, subtype, filename = rng.choice(ATTACHMENTS)
            blob = rng.randbytes(rng.randint(2_000, 60_000))
            msg.add_attachment(blob, maintype=maintype, subtype=subtype, filename=filename)
        for part in msg.walk():  # the email package would draw boundaries from `random`
            if part.is_multipart():
                part.set_boundary(f"=_bench_{rng.getrandbits(64):016x}")
        earlier.append((msgid, references, subject, sender))
        yield msg.as_bytes(), date.strftime("%Y-%m-%dT%H:%M:%SZ")


def messages(n: int, seed: int = 1) -> Iterator[bytes]:
    """n raw RFC 5322 messages, deterministic for a given seed."""
    for raw, _ in dated_messages(n, seed):
        yield raw


if __name__ == "__main__":
    import sys
    import time

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    t = time.perf_counter()
    sizes = [len(m) for m in messages(count)]
    took = time.perf_counter() - t
    sizes.sort()
    print(
        f"{count} messages in {took:.1f}s ({count / took:.0f}/s): total {sum(sizes) / 1e6:.1f} MB,"
        f" median {sizes[len(sizes) // 2]} B, p99 {sizes[int(len(sizes) * 0.99)]} B,"
        f" max {sizes[-1]} B"
    )
