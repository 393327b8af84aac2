"""An S3-compatible object store (AWS S3, MinIO, Ceph RGW, GCS interoperability) over the
standard library: HTTP/1.1 keep-alive connections (``http.client``) and AWS Signature V4.

Not boto3: botocore pins ``python-dateutil<3`` while kubernetes 37 (a k8sco dependency)
needs ``>=3``, so the two cannot be installed together; and a node imports ``co.data`` at
every start, where botocore alone costs a few hundred milliseconds.

Settings (environment; in a cluster, the Job's env and, for the credentials, a Secret):

- ``K8SCO_S3_ENDPOINT``: ``https://host[:port]`` of the service; default AWS's regional one;
- ``K8SCO_S3_REGION`` (else ``AWS_REGION``, ``AWS_DEFAULT_REGION``, ``us-east-1``);
- ``K8SCO_S3_ADDRESSING``: ``path`` (default: ``endpoint/bucket/key``, what MinIO and Ceph
  need) or ``virtual`` (``bucket.endpoint/key``);
- ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, optional ``AWS_SESSION_TOKEN``.

Signing follows "Authenticating Requests: AWS Signature Version 4" (Amazon S3 API
reference): the payload is hashed (``x-amz-content-sha256``) rather than sent
``UNSIGNED-PAYLOAD``, which services only accept over TLS.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import http.client
import os
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

from k8sco.data.stores import check_name
from k8sco.errors import DataConfigError, DataError, DataNotFound

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_EMPTY_SHA = hashlib.sha256(b"").hexdigest()
_ATTEMPTS = 4  # a request is tried this many times on a dropped connection or a 5xx
_CHUNK = 1 << 20


@dataclass(frozen=True)
class S3Config:
    endpoint: str  # scheme://host[:port], no path
    region: str
    access_key: str
    secret_key: str
    session_token: str | None = None
    virtual_host: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> S3Config:
        region = (
            environ.get("K8SCO_S3_REGION")
            or environ.get("AWS_REGION")
            or environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )
        endpoint = environ.get("K8SCO_S3_ENDPOINT") or f"https://s3.{region}.amazonaws.com"
        parsed = urllib.parse.urlparse(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise DataConfigError(
                f"K8SCO_S3_ENDPOINT={endpoint!r} is not an http(s)://host[:port] address"
            )
        access = environ.get("AWS_ACCESS_KEY_ID", "")
        secret = environ.get("AWS_SECRET_ACCESS_KEY", "")
        if not access or not secret:
            raise DataConfigError(
                "the S3 data store needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (in a "
                "cluster: keys of the Secret named by the controller's K8SCO_DATA_SECRET)"
            )
        addressing = environ.get("K8SCO_S3_ADDRESSING", "path")
        if addressing not in ("path", "virtual"):
            raise DataConfigError(f"K8SCO_S3_ADDRESSING={addressing!r}: use 'path' or 'virtual'")
        return cls(
            endpoint=f"{parsed.scheme}://{parsed.netloc}",
            region=region,
            access_key=access,
            secret_key=secret,
            session_token=environ.get("AWS_SESSION_TOKEN") or None,
            virtual_host=addressing == "virtual",
        )


def _quote(text: str, safe: str = "/") -> str:
    return urllib.parse.quote(text, safe="-_.~" + safe)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sign(
    config: S3Config,
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_sha: str,
    now: datetime.datetime,
) -> dict[str, str]:
    """The headers of a request signed with AWS Signature V4 (``path`` already encoded).
    Pure: the clock is an argument."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    out = {k.lower(): v.strip() for k, v in headers.items()}
    out["host"] = host
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_sha
    if config.session_token:
        out["x-amz-security-token"] = config.session_token
    names = sorted(out)
    canonical_query = "&".join(f"{_quote(k, '')}={_quote(v, '')}" for k, v in sorted(query.items()))
    canonical = "\n".join(
        [
            method,
            path,
            canonical_query,
            "".join(f"{n}:{out[n]}\n" for n in names),
            ";".join(names),
            payload_sha,
        ]
    )
    scope = f"{day}/{config.region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + config.secret_key).encode(), day)
    for part in (config.region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={config.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return out


@dataclass(frozen=True)
class _Response:
    status: int
    headers: Mapping[str, str]
    body: bytes


class S3Store:
    """Objects under ``s3://bucket/prefix/``. Thread-safe: one connection per thread."""

    def __init__(self, config: S3Config, bucket: str, prefix: str) -> None:
        self.config, self.bucket = config, bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}"
        parsed = urllib.parse.urlparse(config.endpoint)
        self._https = parsed.scheme == "https"
        self._host = f"{bucket}.{parsed.netloc}" if config.virtual_host else parsed.netloc
        self._base = "" if config.virtual_host else "/" + _quote(bucket)
        self._local = threading.local()

    @classmethod
    def from_url(cls, url: str, environ: Mapping[str, str]) -> S3Store:
        rest = url[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise DataError(f"{url}: name a bucket, s3://bucket/prefix")
        return cls(S3Config.from_env(environ), bucket, prefix)

    # --- HTTP -----------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            host = self._host
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = kind(host, timeout=60)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def close(self) -> None:
        self._drop()

    def _request(
        self,
        method: str,
        key: str | None,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | IO[bytes] | None = None,
        payload_sha: str = _EMPTY_SHA,
        sink: IO[bytes] | None = None,
    ) -> _Response:
        path = self._base + ("/" + _quote(key) if key is not None else "/")
        query = dict(query or {})
        target = path + ("?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote))
        target = target.rstrip("?")
        start = body.tell() if body is not None and not isinstance(body, bytes) else 0
        last: Exception | None = None
        for attempt in range(_ATTEMPTS):
            if attempt:
                time.sleep(min(0.1 * 2**attempt, 2.0))
                if body is not None and not isinstance(body, bytes):
                    body.seek(start)
            signed = sign(
                self.config,
                method,
                self._host,
                path,
                query,
                headers or {},
                payload_sha,
                datetime.datetime.now(datetime.timezone.utc),
            )
            conn = self._connection()
            try:
                conn.request(method, target, body=body, headers=signed)
                resp = conn.getresponse()
                if sink is not None and resp.status in (200, 206):
                    while chunk := resp.read(_CHUNK):
                        sink.write(chunk)
                    data = b""
                else:
                    data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                # A keep-alive connection the server closed, a reset, a timeout: again, on a
                # new connection (every S3 request k8sco makes is idempotent).
                self._drop()
                last = exc
                continue
            if resp.status >= 500 and attempt + 1 < _ATTEMPTS:
                last = DataError(f"{resp.status} {resp.reason}")
                continue
            return _Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        raise DataError(
            f"the S3 endpoint {self.config.endpoint} did not answer {method} for "
            f"s3://{self.bucket}/{key or ''}: {last}; check K8SCO_S3_ENDPOINT and the network"
        ) from last

    def _fail(self, resp: _Response, name: str, what: str) -> DataError:
        code, message = _error_fields(resp.body)
        if resp.status == 404 and code in ("NoSuchKey", "", "NotFound"):
            return DataNotFound(f"no object {name!r} in {self.url}")
        if resp.status == 404 and code == "NoSuchBucket":
            return DataError(f"{self.url}: the bucket {self.bucket!r} does not exist; create it")
        hint = ""
        if resp.status == 403:
            hint = "; check the access key, its secret and the bucket policy"
        return DataError(
            f"S3 refused to {what} {name!r} in {self.url}: {resp.status} "
            f"{code or 'error'}{': ' + message if message else ''}{hint}"
        )

    # --- the Store operations ---------------------------------------------------------------

    def _key(self, name: str) -> str:
        return self.prefix + check_name(name)

    def gets(self, name: str, byte_range: tuple[int, int] | None = None) -> bytes:
        headers = {}
        if byte_range is not None:
            begin, end = byte_range
            if end == begin:
                self.size(name)  # an empty range of a missing object is still missing
                return b""
            headers["range"] = f"bytes={begin}-{end - 1}"
        resp = self._request("GET", self._key(name), headers=headers)
        if resp.status == 416:  # a range past the end: what a file's read gives
            self.size(name)
            return b""
        if resp.status not in (200, 206):
            raise self._fail(resp, name, "read")
        return resp.body

    def puts(self, name: str, data: bytes) -> None:
        sha = hashlib.sha256(data).hexdigest()
        resp = self._request(
            "PUT",
            self._key(name),
            headers={"content-length": str(len(data))},
            body=data,
            payload_sha=sha,
        )
        if resp.status != 200:
            raise self._fail(resp, name, "write")

    def get(self, name: str, file: str) -> None:
        tmp = f"{file}.k8sco-part"
        try:
            with open(tmp, "wb") as sink:
                resp = self._request("GET", self._key(name), sink=sink)
            if resp.status != 200:
                raise self._fail(resp, name, "read")
            os.replace(tmp, file)
        except DataError:  # DataNotFound is an OSError too: not a local write failure
            raise
        except OSError as exc:
            raise DataError(f"cannot write {file}: {exc.strerror}") from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put(self, name: str, file: str) -> None:
        try:
            with open(file, "rb") as f:
                digest = hashlib.sha256()
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
                length = f.tell()
                f.seek(0)
                # One PUT: up to 5 GiB, S3's limit for a single request.
                resp = self._request(
                    "PUT",
                    self._key(name),
                    headers={"content-length": str(length)},
                    body=f,
                    payload_sha=digest.hexdigest(),
                )
        except OSError as exc:
            raise DataError(f"cannot read {file}: {exc.strerror}") from exc
        if resp.status != 200:
            raise self._fail(resp, name, "write")

    def delete(self, name: str, recursive: bool = False) -> None:
        if recursive:
            keys = [self.prefix + k for k in self.list(check_name(name, allow_empty=True))]
            for i in range(0, len(keys), 1000):  # DeleteObjects takes up to 1000 keys
                self._delete_many(keys[i : i + 1000])
            return
        if not self.exists(name):  # S3 deletes a missing key without a word; a file does not
            raise DataNotFound(f"no object {name!r} in {self.url}")
        resp = self._request("DELETE", self._key(name))
        if resp.status not in (200, 204):
            raise self._fail(resp, name, "delete")

    def _delete_many(self, keys: list[str]) -> None:
        root = ET.Element("Delete")
        ET.SubElement(root, "Quiet").text = "true"
        for key in keys:
            ET.SubElement(ET.SubElement(root, "Object"), "Key").text = key
        body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        md5 = base64.b64encode(
            hashlib.md5(body).digest()
        ).decode()  # Content-MD5: DeleteObjects requires it
        resp = self._request(
            "POST",
            None,
            query={"delete": ""},
            headers={"content-md5": md5, "content-length": str(len(body))},
            body=body,
            payload_sha=hashlib.sha256(body).hexdigest(),
        )
        if resp.status != 200:
            raise self._fail(resp, keys[0], "delete")
        errors = ET.fromstring(resp.body).findall(f"{_NS}Error")
        if errors:
            first = errors[0]
            raise DataError(
                f"S3 refused to delete {len(errors)} object(s) in {self.url}, e.g. "
                f"{first.findtext(f'{_NS}Key')}: {first.findtext(f'{_NS}Code')}"
            )

    def _head(self, name: str) -> _Response:
        resp = self._request("HEAD", self._key(name))
        if resp.status not in (200, 404):
            raise self._fail(resp, name, "look up")
        return resp

    def exists(self, name: str) -> bool:
        return self._head(name).status == 200

    def size(self, name: str) -> int:
        resp = self._head(name)
        if resp.status == 404:
            raise DataNotFound(f"no object {name!r} in {self.url}")
        return int(resp.headers["content-length"])

    def list(self, prefix: str) -> list[str]:
        full = self.prefix + check_name(prefix, allow_empty=True)
        names: list[str] = []
        query = {"list-type": "2", "prefix": full}
        while True:
            resp = self._request("GET", None, query=query)
            if resp.status != 200:
                raise self._fail(resp, prefix, "list")
            doc = ET.fromstring(resp.body)
            for item in doc.findall(f"{_NS}Contents"):
                key = item.findtext(f"{_NS}Key") or ""
                names.append(key[len(self.prefix) :])
            token = doc.findtext(f"{_NS}NextContinuationToken")
            if doc.findtext(f"{_NS}IsTruncated") != "true" or not token:
                return sorted(names)
            query = {**query, "continuation-token": token}

    def object_url(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"

    def create_bucket(self) -> None:
        """Create the bucket (tests, benchmarks, a first setup); existing is fine."""
        resp = self._request("PUT", None)
        if resp.status not in (200, 409):
            raise self._fail(resp, self.bucket, "create bucket")


def _error_fields(body: bytes) -> tuple[str, str]:
    try:
        doc = ET.fromstring(body)
    except ET.ParseError:
        return "", ""
    return doc.findtext("Code") or "", doc.findtext("Message") or ""


__all__ = ["S3Config", "S3Store", "sign"]
