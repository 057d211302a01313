"""Lambda entry point of the forwarder."""

from __future__ import annotations

from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    print("records", len(event.get("Records", [])))
    return {"batchItemFailures": []}
