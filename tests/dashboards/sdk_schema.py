"""Check a dashboard's JSON against the Grafana Foundation SDK's types.

The SDK's ``from_json`` builds typed objects but checks nothing: it skips
keys it does not know and stores values as they come. Two checks make it a
schema check. Encoding the objects again must give back every key and value
of the file, so no key is unknown to the types (a misspelt ``gridpos``
would vanish), and every attribute of every object must match its type
annotation: enums, literals, numbers, strings, lists and nested types.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from typing import Any

from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.runtime import UnknownDataquery, panelcfg_config
from grafana_foundation_sdk.models import dashboard as sdk_dashboard

SDK_MODULE = "grafana_foundation_sdk"
NONE_TYPE = type(None)

plugins.register_default_plugins()


def schema_errors(data: dict[str, Any]) -> list[str]:
    """Return what in a dashboard's JSON does not fit the SDK's types."""
    decoded = sdk_dashboard.Dashboard.from_json(data)
    encoded = json.loads(json.dumps(decoded, cls=JSONEncoder))
    errors = _lost(data, encoded, "$")
    _check_object(decoded, "$", errors)
    for index, panel in enumerate(decoded.panels or []):
        _check_panel_type(panel, f"$.panels[{index}]", errors)
    return errors


def _lost(original: Any, encoded: Any, path: str) -> list[str]:
    if isinstance(original, dict):
        if not isinstance(encoded, dict):
            return [f"{path}: an object became {encoded!r:.60}"]
        errors = []
        for key, value in original.items():
            if key not in encoded:
                errors.append(f"{path}.{key}: not a field of the SDK's type")
            else:
                errors.extend(_lost(value, encoded[key], f"{path}.{key}"))
        return errors
    if isinstance(original, list):
        if not isinstance(encoded, list) or len(encoded) != len(original):
            return [f"{path}: the list changed to {encoded!r:.60}"]
        errors = []
        for index, (item, again) in enumerate(zip(original, encoded, strict=True)):
            errors.extend(_lost(item, again, f"{path}[{index}]"))
        return errors
    if original != encoded or type(original) is not type(encoded):
        return [f"{path}: {original!r} became {encoded!r}"]
    return []


def _check_panel_type(panel: Any, path: str, errors: list[str]) -> None:
    if isinstance(panel, sdk_dashboard.RowPanel):
        for index, inner in enumerate(panel.panels or []):
            _check_panel_type(inner, f"{path}.panels[{index}]", errors)
    elif panelcfg_config(panel.type_val) is None:
        errors.append(f"{path}.type: {panel.type_val!r} is not a known panel type")


def _check_object(value: Any, path: str, errors: list[str]) -> None:
    if isinstance(value, UnknownDataquery):
        errors.append(f"{path}: a query of a data source type the SDK does not know")
        return
    for name, annotation in typing.get_type_hints(type(value)).items():
        if hasattr(value, name):
            _check(getattr(value, name), annotation, f"{path}.{name}", errors)


def _check(value: Any, annotation: Any, path: str, errors: list[str]) -> None:
    origin = typing.get_origin(annotation)
    if annotation in (typing.Any, object):
        if type(value).__module__.startswith(SDK_MODULE):
            _check_object(value, path, errors)
    elif origin in (typing.Union, types.UnionType):
        _check_union(value, typing.get_args(annotation), path, errors)
    elif origin is typing.Literal:
        if value not in typing.get_args(annotation):
            errors.append(
                f"{path}: {value!r} is not one of {typing.get_args(annotation)}"
            )
    elif origin is list:
        _check_list(value, typing.get_args(annotation)[0], path, errors)
    elif origin is dict:
        _check_dict(value, typing.get_args(annotation)[1], path, errors)
    elif isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        if not isinstance(value, annotation) and value not in {
            m.value for m in annotation
        }:
            errors.append(f"{path}: {value!r} is not a {annotation.__name__}")
    elif isinstance(annotation, type):
        _check_instance(value, annotation, path, errors)
    else:
        errors.append(f"{path}: no check for the annotation {annotation!r}")


def _check_union(
    value: Any, members: tuple[Any, ...], path: str, errors: list[str]
) -> None:
    if value is None and NONE_TYPE in members:
        return
    candidates = [member for member in members if member is not NONE_TYPE]
    outcomes = []
    for member in candidates:
        found: list[str] = []
        _check(value, member, path, found)
        if not found:
            return
        outcomes.append((member, found))
    # Report against the member the value is an instance of, if any, so the
    # message points inside it instead of at the whole union.
    for member, found in outcomes:
        if isinstance(member, type) and isinstance(value, member):
            errors.extend(found)
            return
    if len(outcomes) == 1:
        errors.extend(outcomes[0][1])
        return
    errors.append(f"{path}: {value!r:.60} fits none of {candidates}")


def _check_list(value: Any, item: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, list):
        errors.append(f"{path}: expected a list, got {value!r:.60}")
        return
    for index, element in enumerate(value):
        _check(element, item, f"{path}[{index}]", errors)


def _check_dict(value: Any, item: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object, got {value!r:.60}")
        return
    for key, element in value.items():
        _check(element, item, f"{path}.{key}", errors)


def _check_instance(value: Any, expected: type, path: str, errors: list[str]) -> None:
    if expected is float:
        fits = isinstance(value, int | float) and not isinstance(value, bool)
    elif expected is int:
        fits = isinstance(value, int) and not isinstance(value, bool)
    else:
        fits = isinstance(value, expected)
    if not fits:
        errors.append(f"{path}: {value!r:.60} is not a {expected.__name__}")
    elif expected.__module__.startswith(SDK_MODULE):
        _check_object(value, path, errors)
