"""The forwarder's settings and its deployment package."""

from __future__ import annotations

import io
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from system import embedded
from system.clients import make_client
from system.errors import ForwarderConfigError
from system.forwarder.config import (
    ForwarderConfig,
    config_table_name,
    read_config,
)
from system.package import build_forwarder_zip
from system.stack import StackResources

FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:boxoffice-forwarder"
PATTERN = "boxoffice-{environment}-config"


def test_config_table_from_environment() -> None:
    environ = {
        "BOXOFFICE_CONFIG_TABLE": "boxoffice-local-config",
        "BOXOFFICE_CONFIG_TABLE_PATTERN": PATTERN,
    }

    assert config_table_name(environ, FUNCTION_ARN) == "boxoffice-local-config"


def test_config_table_from_alias() -> None:
    environ = {"BOXOFFICE_CONFIG_TABLE_PATTERN": PATTERN}

    name = config_table_name(environ, f"{FUNCTION_ARN}:staging")

    assert name == "boxoffice-staging-config"


@pytest.mark.parametrize(
    "arn",
    [FUNCTION_ARN, f"{FUNCTION_ARN}:$LATEST", f"{FUNCTION_ARN}:42"],
    ids=["unqualified", "latest", "version"],
)
def test_config_table_needs_alias(arn: str) -> None:
    environ = {"BOXOFFICE_CONFIG_TABLE_PATTERN": PATTERN}

    with pytest.raises(ForwarderConfigError, match="names no alias"):
        config_table_name(environ, arn)


def test_config_table_unset() -> None:
    with pytest.raises(ForwarderConfigError, match="BOXOFFICE_CONFIG_TABLE"):
        config_table_name({}, f"{FUNCTION_ARN}:production")


def test_config_values_missing() -> None:
    values = {"queue_table": "queue", "sales_table": "", "work_queue_url": 3}

    with pytest.raises(ForwarderConfigError) as raised:
        ForwarderConfig.from_values(values, "config")

    message = str(raised.value)
    assert "sales_table, work_queue_url, dead_letter_queue_url" in message
    assert "queue_table," not in message


def test_config_read_from_stack(
    bare_stack: embedded.EmbeddedState, bare_resources: StackResources
) -> None:
    dynamodb = make_client(bare_stack.settings, "dynamodb")

    config = read_config(dynamodb, bare_resources.config_table)

    assert config == ForwarderConfig(
        queue_table=bare_resources.queue_table,
        sales_table=bare_resources.sales_table,
        work_queue_url=bare_resources.work_queue_url,
        dead_letter_queue_url=bare_resources.dead_letter_queue_url,
    )


def test_config_table_missing(bare_stack: embedded.EmbeddedState) -> None:
    dynamodb = make_client(bare_stack.settings, "dynamodb")

    with pytest.raises(ForwarderConfigError, match="does not exist"):
        read_config(dynamodb, "boxoffice-no-such-config")


def test_package_imports_handler_alone(tmp_path: Path) -> None:
    # Without site processing, the editable install's import hook is absent,
    # so every project module must come from the zip, as on AWS.
    with zipfile.ZipFile(io.BytesIO(build_forwarder_zip())) as archive:
        archive.extractall(tmp_path)
    code = (
        "import sys; "
        f"sys.path[:0] = [{str(tmp_path)!r}]; "
        f"sys.path.append({sysconfig.get_paths()['purelib']!r}); "
        "import system.forwarder.handler as handler; "
        "print(handler.__file__)"
    )

    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1"},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(tmp_path))
