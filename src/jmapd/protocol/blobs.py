"""Reading blobs as a user may (RFC 8620 §6).

A blob is either stored (content-addressed bytes an account references) or derived: made from
another blob by a data type, like each body part of a message, which is decoded from the
stored message when it is read rather than stored again. A derived blob may be read by whoever
may read the blob it comes from, so its id needs no reference of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from ..store.base import BlobStore, Transaction

Extract = Callable[[bytes], "bytes | None"]
# A blob id → the id of the blob it is derived from and how, or None if it is not derived.
Deriver = Callable[[str], "tuple[str, Extract] | None"]

DERIVERS: list[Deriver] = []
MAX_DEPTH = 8  # a part of a message attached to a message attached to …


def derived_from(blob_id: str) -> tuple[str, Extract] | None:
    for derive in DERIVERS:
        found = derive(blob_id)
        if found is not None:
            return found
    return None


def read_blob(
    blobs: BlobStore, txn: Transaction, blob_id: str, user_id: str, depth: int = 0
) -> bytes | None:
    """The bytes of a blob the user may read in the transaction's account, or None."""
    derived = derived_from(blob_id)
    if derived is None:
        if txn.blob_size(blob_id, user_id) is None:
            return None
        return blobs.read(blob_id)
    if depth >= MAX_DEPTH:
        return None
    parent, extract = derived
    data = read_blob(blobs, txn, parent, user_id, depth + 1)
    return None if data is None else extract(data)


def stored_blob(blobs: BlobStore, blob_id: str, data: bytes) -> str:
    """The id of a stored blob with these bytes: the blob's own, or for a derived blob the
    bytes stored in their own right (to be referenced where a stored blob is needed)."""
    return blobs.put(data) if derived_from(blob_id) is not None else blob_id
