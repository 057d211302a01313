"""The forwarder's Lambda package: its dependencies, target runtime and cache."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from system.deploy import bundle


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    root = tmp_path_factory.mktemp("bundle-cache")
    return bundle.build_package(12, "0123456789abcdef", root=root)


def _names(package: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        return archive.namelist()


def _read(package: bytes, name: str) -> str:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        return archive.read(name).decode()


def test_package_holds_forwarder_and_powertools(package: bytes) -> None:
    names = _names(package)

    assert "system/forwarder/handler.py" in names
    assert "system/schema.py" in names
    assert "aws_lambda_powertools/__init__.py" in names
    assert "jmespath/__init__.py" in names


def test_package_leaves_out_runtime_modules(package: bytes) -> None:
    tops = {name.split("/", 1)[0] for name in _names(package)}

    assert "boto3" not in tops
    assert "botocore" not in tops
    assert "bin" not in tops
    assert not any("__pycache__" in name for name in _names(package))


def test_package_names_its_build(package: bytes) -> None:
    info = json.loads(_read(package, bundle.BUILD_INFO_FILE))

    assert info == {"build": 12, "commit": "0123456789abcdef"}


def test_dependencies_built_for_lambda_runtime(package: bytes) -> None:
    wheels = [name for name in _names(package) if name.endswith(".dist-info/WHEEL")]
    tags = [
        line.split(":", 1)[1].strip()
        for wheel in wheels
        for line in _read(package, wheel).splitlines()
        if line.startswith("Tag:")
    ]

    assert any(wheel.startswith("aws_lambda_powertools-") for wheel in wheels)
    assert tags
    for tag in tags:
        python, abi, platform = tag.split("-")
        assert python in ("py3", "cp312")
        assert abi in ("none", "abi3", "cp312")
        assert platform == "any" or (
            platform.startswith("manylinux") and platform.endswith("x86_64")
        )


def test_package_is_reproducible(tmp_path: Path) -> None:
    first = bundle.build_package(3, "abcdef1", root=tmp_path)
    again = bundle.build_package(3, "abcdef1", root=tmp_path)
    other = bundle.build_package(4, "abcdef1", root=tmp_path)

    assert first == again
    assert other != first


def test_dependencies_cached_by_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installs: list[tuple[str, ...]] = []

    def fake_install(requirements: tuple[str, ...], target: Path) -> None:
        # A stub replaces pip here, because the test is about when pip runs.
        installs.append(requirements)
        (target / "marker.py").write_text("")

    monkeypatch.setattr(bundle, "_pip_install", fake_install)

    first = bundle.dependencies_dir(("example==1.0",), tmp_path)
    again = bundle.dependencies_dir(("example==1.0",), tmp_path)
    other = bundle.dependencies_dir(("example==2.0",), tmp_path)

    assert installs == [("example==1.0",), ("example==2.0",)]
    assert again == first
    assert other != first
    assert (first / "marker.py").exists()
    assert sorted(path.name for path in first.parent.iterdir()) == sorted(
        [first.name, other.name]
    )
