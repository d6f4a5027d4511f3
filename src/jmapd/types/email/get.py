"""Email/get (RFC 8621 §4.2): from the stored summary; the blob is read only for bodyValues."""

from __future__ import annotations

from typing import Any

from ...protocol.engine.args import parse_args, request_too_large
from ...protocol.engine.get import GET_ARGS
from ...protocol.errors import MethodError
from ...protocol.registry import REGISTRY, Context
from ..mailbox import MAIL
from .store import StoredMessage
from .view import BODY, BODY_ARGS, BODY_PART, CONVENIENCE, GET_DEFAULT, View, checked

METADATA = ("blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt")


@REGISTRY.method("Email/get", MAIL)
def email_get(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    a = parse_args(args, GET_ARGS | BODY_ARGS, ctx.resolve_creation_id)
    view = View.from_args(a, GET_DEFAULT)
    if "id" not in view.properties:
        view.properties.insert(0, "id")  # RFC 8620 §5.1: always returned
    ids = None if a["ids"] is None else list(dict.fromkeys(a["ids"]))
    request_too_large(len(ids or ()), ctx.config.max_objects_in_get, "ids")
    with ctx.read(a["accountId"]) as txn:
        state = txn.state("Email")
        records = txn.get("Email", ids)
    request_too_large(len(records), ctx.config.max_objects_in_get, "Emails")
    found = []
    bodies = view.fetch_text or view.fetch_html or view.fetch_all  # read in one go
    raws = ctx.blobs.read_many([r["blobId"] for r in records.values()]) if bodies else {}
    for id in ids if ids is not None else sorted(records):
        record = records.get(id)
        if record is None:
            continue
        message = StoredMessage(record["summary"], record["blobId"], ctx.blobs,
                                raws.get(record["blobId"]))  # fmt: skip
        metadata = {"id": id, **{k: record[k] for k in METADATA}}
        found.append(view.email(message, metadata, message.part_blob))
    return {
        "accountId": a["accountId"],
        "state": str(state),
        "list": found,
        "notFound": [id for id in ids if id not in records] if ids is not None else [],
    }


# -- an update that sends Email/get's properties back (RFC 8620 §5.3) ------------------------------

KNOWN = (*METADATA, "id", *CONVENIENCE, *BODY)
PART_LISTS = ("bodyStructure", "textBody", "htmlBody", "attachments")


def shown_properties(ctx: Context, record: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The named properties as Email/get shows them, at their fullest: every body part
    property, every body value whole. Names Email/get does not know are left out."""
    known = []
    for name in names:
        try:
            checked([name], (), KNOWN)
        except MethodError:
            continue
        known.append(name)
    view = View(known, list(BODY_PART), False, False, True, 0)
    message = StoredMessage(record["summary"], record["blobId"], ctx.blobs)
    metadata = {"id": record["id"], **{k: record[k] for k in METADATA}}
    return view.email(message, metadata, message.part_blob)


def same_property(name: str, given: Any, current: Any) -> bool:
    """Whether a value sent back is the one Email/get gives: body parts as fetched with any
    bodyProperties (a part with fewer properties), body values as fetched with any fetch
    arguments (fewer parts, or cut at maxBodyValueBytes)."""
    if name in PART_LISTS:
        return _covers(current, given)
    if name == "bodyValues":
        return isinstance(given, dict) and all(
            part_id in current and _same_body_value(value, current[part_id])
            for part_id, value in given.items()
        )
    return bool(given == current)


def _covers(current: Any, given: Any) -> bool:
    """`given` is `current` with some object properties left out."""
    if isinstance(given, dict):
        return isinstance(current, dict) and all(
            k in current and _covers(current[k], v) for k, v in given.items()
        )
    if isinstance(given, list):
        return (
            isinstance(current, list)
            and len(given) == len(current)
            and all(_covers(c, g) for c, g in zip(current, given, strict=True))
        )
    return bool(given == current)


def _same_body_value(given: Any, whole: dict[str, Any]) -> bool:
    if not isinstance(given, dict) or not isinstance(given.get("value"), str):
        return False
    if given.get("isEncodingProblem", False) != whole["isEncodingProblem"]:
        return False
    if given.get("isTruncated", False):
        return bool(whole["value"].startswith(given["value"]))
    return bool(given["value"] == whole["value"])
