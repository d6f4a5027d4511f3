"""Blob bytes in an S3-compatible object store (AWS S3, MinIO, Garage, …), with boto3, the
field's library: several nodes then share nothing but the database and the bucket.

An object's key is PREFIX/ab/<sha256>; its `written` metadata is when it was last put (an
upload of the same bytes refreshes it with a server-side copy), which housekeeping leaves
alone for blob_grace seconds. S3 has no rename to set an object aside while it checks its
references, so a writer makes sure, after its commit, that the blob it referenced is there
(BlobStore users call `ensure`): an upload racing the removal of the same bytes puts them
back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from .blobs import BLOB_ID, Ensuring, blob_id_for


class S3BlobStore(Ensuring):
    def __init__(
        self, bucket: str, prefix: str = "", endpoint_url: str = "", region: str = "",
        access_key: str = "", secret_key: str = "",
    ) -> None:  # fmt: skip
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ValueError("blob_store s3 needs boto3: pip install 'jmapd[s3]'") from None
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )

    def _key(self, blob_id: str) -> str:
        return f"{self.prefix}{blob_id[1:3]}/{blob_id[1:]}"

    def _head(self, blob_id: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = self.client.head_object(
                Bucket=self.bucket, Key=self._key(blob_id)
            )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head

    @staticmethod
    def _written(head: dict[str, Any]) -> float:
        metadata = head.get("Metadata") or {}
        try:
            return float(metadata["written"])
        except (KeyError, ValueError):
            return float(head["LastModified"].timestamp())

    def put(self, data: bytes) -> str:
        blob_id = blob_id_for(data)
        key, now = self._key(blob_id), f"{time.time():.3f}"
        if self._head(blob_id) is not None:
            self.client.copy_object(  # a fresh `written` keeps a removal away
                Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key},
                Metadata={"written": now}, MetadataDirective="REPLACE",
            )  # fmt: skip
        else:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data,
                                   Metadata={"written": now})  # fmt: skip
        return blob_id

    def read(self, blob_id: str) -> bytes | None:
        from botocore.exceptions import ClientError

        if not BLOB_ID.fullmatch(blob_id):
            return None
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=self._key(blob_id))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return bytes(found["Body"].read())

    def exists(self, blob_id: str) -> bool:
        return BLOB_ID.fullmatch(blob_id) is not None and self._head(blob_id) is not None

    def path(self, blob_id: str) -> str | None:
        return None

    def remove_unused(self, blob_id: str, referenced: Callable[[], bool], min_age: float) -> str:
        head = self._head(blob_id) if BLOB_ID.fullmatch(blob_id) else None
        if head is None:
            return "missing"
        if self._written(head) > time.time() - min_age:
            return "young"
        if referenced():
            return "referenced"
        self.client.delete_object(Bucket=self.bucket, Key=self._key(blob_id))
        return "removed"

    def blob_ids(self, stale_before: float) -> Iterator[tuple[str, float]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                blob_id = "B" + item["Key"].rsplit("/", 1)[-1]
                if BLOB_ID.fullmatch(blob_id):
                    yield blob_id, float(item["LastModified"].timestamp())
