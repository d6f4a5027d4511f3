"""The Date form (RFC 8621 §4.1.2.6): RFC 5322 §3.3 and §4.3 date-times to RFC 3339."""

from __future__ import annotations

import pytest

from jmapd.mail.dates import parse_date


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Fri, 21 Nov 1997 09:55:06 -0600", "1997-11-21T09:55:06-06:00"),  # RFC 5322 A.1.1
        ("Tue, 1 Jul 2003 10:52:37 +0200", "2003-07-01T10:52:37+02:00"),  # A.1.2
        ("Thu, 13 Feb 1969 23:32:54 -0330", "1969-02-13T23:32:54-03:30"),  # A.1.3
        ("Mon, 24 Nov 1997 14:22:01 -0800", "1997-11-24T14:22:01-08:00"),
        (" Mon, 13 Oct 2014 14:12:00 +0000", "2014-10-13T14:12:00+00:00"),
        ("Mon, 13 Oct 2014 14:12:00 -0000", "2014-10-13T14:12:00-00:00"),  # unknown local time
        ("13 Oct 2014 14:12:00 +0100", "2014-10-13T14:12:00+01:00"),  # no day-of-week
        ("Mon, 13 Oct 2014 14:12 +0100", "2014-10-13T14:12:00+01:00"),  # no seconds
        ("Mon,13 Oct 2014 14:12:00 +0100", "2014-10-13T14:12:00+01:00"),
        ("Sun, 13 Oct 2014 14:12:00 +0100", "2014-10-13T14:12:00+01:00"),  # wrong weekday
        ("Mon, 13 OCT 2014 14:12:00 +0100", "2014-10-13T14:12:00+01:00"),
        ("Mon, 3 Oct 2014 04:02:01 +0100", "2014-10-03T04:02:01+01:00"),
        # RFC 5322 A.6.3 / §3.2.2: comments and folding anywhere
        (
            "Thu,\r\n      13\r\n        Feb\r\n          1969\r\n      23:32\r\n"
            "               -0330 (Newfoundland Time)",
            "1969-02-13T23:32:00-03:30",
        ),
        ("Fri, 21 Nov 1997 09(comment):   55  :  06 -0600", "1997-11-21T09:55:06-06:00"),
        # §4.3 obsolete years and zones
        ("21 Nov 97 09:55:06 GMT", "1997-11-21T09:55:06+00:00"),
        ("21 Nov 49 09:55:06 UT", "2049-11-21T09:55:06+00:00"),
        ("21 Nov 50 09:55:06 EST", "1950-11-21T09:55:06-05:00"),
        ("21 Nov 103 09:55:06 PDT", "2003-11-21T09:55:06-07:00"),
        ("21 Nov 2003 09:55:06 Z", "2003-11-21T09:55:06-00:00"),  # military zones: -0000
        ("21 Nov 2003 09:55:06 CEST", "2003-11-21T09:55:06-00:00"),  # unknown zone: -0000
        ("21 Nov 2003 09:55:06", "2003-11-21T09:55:06-00:00"),  # no zone: best effort
        ("21-Nov-2003 09:55:06 +0000", "2003-11-21T09:55:06+00:00"),
        ("29 Feb 2024 12:00:00 +0000", "2024-02-29T12:00:00+00:00"),
        ("31 Dec 2016 23:59:60 +0000", "2016-12-31T23:59:60+00:00"),  # leap second
    ],
)
def test_valid(value: str, expected: str) -> None:
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "yesterday",
        "29 Feb 2023 12:00:00 +0000",  # no such day
        "32 Jan 2020 12:00:00 +0000",
        "1 Foo 2020 12:00:00 +0000",
        "1 Jan 2020 24:00:00 +0000",
        "1 Jan 2020 12:60:00 +0000",
        "1 Jan 2020 12:00:61 +0000",
        "1 Jan 2020 12:00:00 +2400",
        "1 Jan 1899 12:00:00 +0000",  # §3.3: 1900 or later
        "Mon Oct 13 14:12:00 2014",  # asctime, not RFC 5322
        "2014-10-13T14:12:00Z",
    ],
)
def test_invalid(value: str) -> None:
    assert parse_date(value) is None
