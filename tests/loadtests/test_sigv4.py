"""The fans' SigV4 signer against botocore's reference implementation."""

from __future__ import annotations

import datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from loadtests.sigv4 import Signer

HEADERS = {
    "Host": "dynamodb.eu-west-1.amazonaws.com",
    "X-Amz-Target": "DynamoDB_20120810.GetItem",
    "Content-Type": "application/x-amz-json-1.0",
}


def botocore_headers(
    credentials: ReadOnlyCredentials, body: bytes, service: str, region: str, url: str
) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(HEADERS))
    SigV4Auth(credentials, service, region).add_auth(request)
    return dict(request.headers.items())


def epoch(stamp: str) -> float:
    moment = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ")
    return moment.replace(tzinfo=datetime.UTC).timestamp()


@pytest.mark.parametrize(
    ("token", "body"),
    [
        ("FwoGZXIvYXdzEJr//////////wEaDGNvZ25pdG8=", b'{"TableName": "queue"}'),
        (None, b'{"Key": {"fan_id": {"S": "eu-west-1:1a2b"}}}'),
        ("token  with   spaces", b""),
    ],
)
def test_signature_matches_botocore(token: str | None, body: bytes) -> None:
    credentials = ReadOnlyCredentials("ASIAEXAMPLE", "wJalr/K7MDENG+bPxRfi", token)
    url = "https://dynamodb.eu-west-1.amazonaws.com/"
    reference = botocore_headers(credentials, body, "dynamodb", "eu-west-1", url)
    signer = Signer("dynamodb", "eu-west-1")
    ours = signer.sign(body, HEADERS, credentials, epoch(reference["X-Amz-Date"]))
    assert ours["Authorization"] == reference["Authorization"]
    assert ours["X-Amz-Date"] == reference["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == reference.get("X-Amz-Security-Token")
    assert ours["Host"] == HEADERS["Host"]


def test_cached_key_is_per_secret_and_day() -> None:
    signer = Signer("dynamodb", "eu-west-1")
    first = ReadOnlyCredentials("AKIA1", "secret-one", None)
    second = ReadOnlyCredentials("AKIA2", "secret-two", None)
    one = signer.sign(b"{}", HEADERS, first, 1_800_000_000)
    two = signer.sign(b"{}", HEADERS, second, 1_800_000_000)
    next_day = signer.sign(b"{}", HEADERS, first, 1_800_000_000 + 86_400)
    assert one["Authorization"] != two["Authorization"]
    assert "/20270115/" in one["Authorization"]
    assert "/20270116/" in next_day["Authorization"]
    signer.forget("secret-one")
    again = signer.sign(b"{}", HEADERS, first, 1_800_000_000)
    assert again["Authorization"] == one["Authorization"]
