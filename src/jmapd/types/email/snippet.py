"""SearchSnippet/get (RFC 8621 §5): where an Email/query filter's text matches an Email's
subject and body, marked. The words that count are those of the text, subject and body
conditions outside any NOT (a NOT's words are by definition absent)."""

from __future__ import annotations

from typing import Any

from ...mail.search import Term, highlight, snippet
from ...protocol.engine.args import MISSING, parse_args, request_too_large
from ...protocol.registry import REGISTRY, Context
from ...protocol.values import ID_KIND, OBJECT, ListOf, Nullable
from ..mailbox import MAIL
from . import index
from .email import EMAIL
from .store import StoredMessage

SNIPPET_ARGS = {
    "accountId": (ID_KIND, MISSING),
    "filter": (Nullable(OBJECT), None),
    "emailIds": (ListOf(ID_KIND), MISSING),
}
SUBJECT_FIELDS = ("all", "subject")
BODY_FIELDS = ("all", "body")


def _terms(condition: Any, fields: tuple[str, ...]) -> list[Term]:
    """The words of a condition tree searched in these fields, outside any NOT."""
    if condition is None or condition[0] == "not":
        return []
    if condition[0] in ("and", "or"):
        return [t for sub in condition[1] for t in _terms(sub, fields)]
    if condition[0] == "words" and condition[1] in fields:
        return list(condition[2])
    return []


@REGISTRY.method("SearchSnippet/get", MAIL)
def search_snippet_get(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    a = parse_args(args, SNIPPET_ARGS, ctx.resolve_creation_id)
    condition = index.condition(EMAIL, a["filter"])  # checked like Email/query's
    ids = list(dict.fromkeys(a["emailIds"]))
    request_too_large(len(ids), ctx.config.max_objects_in_get, "emailIds")
    in_subject, in_body = _terms(condition, SUBJECT_FIELDS), _terms(condition, BODY_FIELDS)
    with ctx.read(a["accountId"]) as txn:
        records = txn.get("Email", ids)
    found = []
    raws = ctx.blobs.read_many([r["blobId"] for r in records.values()]) if in_body else {}
    for id in ids:
        record = records.get(id)
        if record is None:
            continue
        subject = record["summary"]["properties"]["subject"] or ""
        preview = None
        if in_body:  # the first part with a match (most often the first part)
            message = StoredMessage(record["summary"], record["blobId"], ctx.blobs,
                                    raws.get(record["blobId"]))  # fmt: skip
            texts = message.search_texts()
            preview = next(filter(None, (snippet(t, in_body) for t in texts)), None)
        found.append(
            {
                "emailId": id,
                "subject": highlight(subject, in_subject) if in_subject else None,
                "preview": preview,
            }
        )
    missing = [id for id in ids if id not in records]
    return {"accountId": a["accountId"], "list": found, "notFound": missing or None}
