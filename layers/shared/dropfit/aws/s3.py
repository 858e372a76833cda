"""S3: read an upload exactly as it was announced, write formatted datasets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from dropfit.errors import InvalidUpload

# A missing key is 404 only to a caller with s3:ListBucket; the format function has none (least
# privilege), so S3 answers 403 for it. Reading incoming/* is granted, hence 403 means "not there".
_GONE = frozenset(
    {
        "NoSuchKey",
        "NoSuchVersion",
        "404",
        "400",
        "NotFound",
        "InvalidArgument",
        "403",
        "AccessDenied",
    }
)


@dataclass(frozen=True, slots=True)
class Upload:
    body: bytes
    metadata: dict[str, str]
    version_id: str | None


class Storage:
    def __init__(self, client: Any) -> None:
        self.client = client

    def resolve_key(self, bucket: str, key: str, version_id: str | None) -> str | None:
        """The object's real key, or None if it is gone.

        S3 notifications URL-encode keys ('my data.csv' arrives as 'my+data.csv'); try the key
        as given first, then decoded, so both encodings of an event work.
        """
        for candidate in dict.fromkeys((key, unquote_plus(key))):
            kwargs: dict[str, Any] = {"Bucket": bucket, "Key": candidate}
            if version_id and version_id != "null":
                kwargs["VersionId"] = version_id
            try:
                self.client.head_object(**kwargs)
            except ClientError as error:
                if error.response["Error"]["Code"] in _GONE:
                    continue
                raise
            return candidate
        return None

    def read_upload(self, bucket: str, key: str, version_id: str | None) -> Upload:
        """Read the announced version (never a later overwrite); gone objects are a user error."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id and version_id != "null":
            kwargs["VersionId"] = version_id
        try:
            response = self.client.get_object(**kwargs)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code in _GONE:
                raise InvalidUpload(
                    f"s3://{bucket}/{key} was deleted before it could be read; upload it again."
                ) from None
            raise
        return Upload(
            body=response["Body"].read(),
            metadata=dict(response.get("Metadata", {})),
            version_id=response.get("VersionId"),
        )

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> str:
        self.client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        return f"s3://{bucket}/{key}"
