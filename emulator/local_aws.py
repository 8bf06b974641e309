"""Local AWS for the demo and the benchmarks: moto in server mode on 127.0.0.1, and the control plane's
queues and table created from the deployment template.

The dial queue, its dead-letter queue and the calls table are read from ``deploy/merge-template.json`` (the
CloudFormation resources ``DialDeadLetterQueue``, ``DialQueue`` and ``CallsTable``) and their properties
translated into ``CreateQueue`` / ``CreateTable`` arguments, so the local resources cannot drift from the
deployed ones. A property this module does not know how to translate is an error, not a silent omission.

boto3 finds the local endpoints through its standard ``AWS_ENDPOINT_URL_<SERVICE>`` variables
(``aws_environment``), exactly as the handlers would find real ones, and the handlers' own Powertools output
can be sent elsewhere while a narrative is printed (``handler_output_to``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TextIO

from moto.server import ThreadedMotoServer

from chalicelib import clients
from chalicelib import observability as obs

__all__ = [
    "FAKE_CREDENTIALS",
    "LOCAL_ACCOUNT",
    "LOCAL_REGION",
    "TEMPLATE_PATH",
    "LocalResources",
    "MotoServer",
    "TemplateError",
    "aws_environment",
    "create_resources",
    "handler_output_to",
    "load_template",
    "patched_environ",
    "queue_arguments",
    "resolve",
    "table_arguments",
]

TEMPLATE_PATH: Final = Path(__file__).resolve().parent.parent / "deploy" / "merge-template.json"
LOCAL_REGION: Final = "us-east-1"
LOCAL_ACCOUNT: Final = "123456789012"  # moto's default account id
FAKE_CREDENTIALS: Final = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

# CloudFormation SQS property -> CreateQueue attribute (values are sent as strings).
_QUEUE_ATTRIBUTES: Final = {
    "SqsManagedSseEnabled": "SqsManagedSseEnabled",
    "VisibilityTimeout": "VisibilityTimeout",
    "MessageRetentionPeriod": "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "DelaySeconds": "DelaySeconds",
    "MaximumMessageSize": "MaximumMessageSize",
    "RedrivePolicy": "RedrivePolicy",
}
# CloudFormation DynamoDB properties that CreateTable takes under the same name and shape.
_TABLE_SAME_NAME: Final = (
    "TableName",
    "BillingMode",
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "DeletionProtectionEnabled",
    "Tags",
)
# Properties applied after creation (UpdateTimeToLive / UpdateContinuousBackups) or translated by hand.
_TABLE_LATER: Final = frozenset(
    {"TimeToLiveSpecification", "PointInTimeRecoverySpecification", "SSESpecification"}
)


class TemplateError(ValueError):
    """The deployment template has something this translation does not understand; extend it here."""


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    template = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateError(f"{path.name} is not a CloudFormation template with Resources")
    return template


def resolve(value: Any, *, template: Mapping[str, Any], stage: str, arns: Mapping[str, str]) -> Any:
    """Evaluate the intrinsic functions the resources use: Ref Stage, Fn::Sub, Fn::GetAtt Arn, Fn::If."""
    if isinstance(value, list):
        return [resolve(item, template=template, stage=stage, arns=arns) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref")):
        return {key: resolve(item, template=template, stage=stage, arns=arns) for key, item in value.items()}
    ((function, argument),) = value.items()
    if function == "Ref" and argument == "Stage":
        return stage
    if function == "Fn::Sub" and isinstance(argument, str):
        return argument.replace("${Stage}", stage).replace("${AWS::Region}", LOCAL_REGION)
    if function == "Fn::GetAtt" and isinstance(argument, list) and argument[1:] == ["Arn"]:
        if argument[0] not in arns:
            raise TemplateError(f"Fn::GetAtt {argument[0]}.Arn: that resource is not created (yet)")
        return arns[argument[0]]
    if function == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
        chosen = argument[1] if _condition(template, argument[0], stage) else argument[2]
        return resolve(chosen, template=template, stage=stage, arns=arns)
    raise TemplateError(f"intrinsic function {function} is not supported locally")


def _condition(template: Mapping[str, Any], name: str, stage: str) -> bool:
    spec = template.get("Conditions", {}).get(name)
    if isinstance(spec, dict) and list(spec) == ["Fn::Equals"]:
        left, right = (resolve(side, template=template, stage=stage, arns={}) for side in spec["Fn::Equals"])
        return bool(left == right)
    raise TemplateError(f"condition {name} is not a Fn::Equals this translation understands")


def queue_arguments(properties: Mapping[str, Any]) -> dict[str, Any]:
    """``AWS::SQS::Queue`` properties (intrinsics resolved) -> ``CreateQueue`` keyword arguments."""
    attributes: dict[str, str] = {}
    tags: dict[str, str] = {}
    for name, value in properties.items():
        if name == "QueueName":
            continue
        if name == "Tags":
            tags = {tag["Key"]: str(tag["Value"]) for tag in value}
        elif name in _QUEUE_ATTRIBUTES:
            attributes[_QUEUE_ATTRIBUTES[name]] = _attribute_text(value)
        else:
            raise TemplateError(f"SQS queue property {name} has no local translation")
    arguments: dict[str, Any] = {"QueueName": properties["QueueName"], "Attributes": attributes}
    if tags:
        arguments["tags"] = tags
    return arguments


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):  # RedrivePolicy: a JSON document whose numbers SQS expects as text
        return json.dumps({key: str(item) if isinstance(item, int) else item for key, item in value.items()})
    return str(value)


def table_arguments(properties: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``AWS::DynamoDB::Table`` properties -> (``CreateTable`` arguments, ``TimeToLiveSpecification``)."""
    unknown = set(properties) - set(_TABLE_SAME_NAME) - _TABLE_LATER
    if unknown:
        raise TemplateError(f"DynamoDB table properties {sorted(unknown)} have no local translation")
    arguments = {name: properties[name] for name in _TABLE_SAME_NAME if name in properties}
    sse = properties.get("SSESpecification")
    if sse is not None:  # CloudFormation says SSEEnabled where the API says Enabled
        arguments["SSESpecification"] = {
            ("Enabled" if key == "SSEEnabled" else key): item for key, item in sse.items()
        }
    ttl = properties.get("TimeToLiveSpecification")
    return arguments, dict(ttl) if ttl is not None else None


@dataclass(frozen=True, slots=True)
class LocalResources:
    queue_url: str
    dead_letter_queue_url: str
    table_name: str


def create_resources(sqs: Any, dynamodb: Any, *, stage: str, template: Mapping[str, Any]) -> LocalResources:
    """Create DialDeadLetterQueue, DialQueue and CallsTable as the template defines them."""
    resources = template["Resources"]
    arns: dict[str, str] = {}
    urls: dict[str, str] = {}
    for logical_id in ("DialDeadLetterQueue", "DialQueue"):
        properties = resolve(resources[logical_id]["Properties"], template=template, stage=stage, arns=arns)
        url = sqs.create_queue(**queue_arguments(properties))["QueueUrl"]
        reply = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        urls[logical_id] = url
        arns[logical_id] = reply["Attributes"]["QueueArn"]
    properties = resolve(resources["CallsTable"]["Properties"], template=template, stage=stage, arns=arns)
    create, ttl = table_arguments(properties)
    dynamodb.create_table(**create)
    if ttl is not None:
        dynamodb.update_time_to_live(TableName=create["TableName"], TimeToLiveSpecification=ttl)
    pitr = properties.get("PointInTimeRecoverySpecification")
    if pitr is not None:
        dynamodb.update_continuous_backups(
            TableName=create["TableName"], PointInTimeRecoverySpecification=pitr
        )
    return LocalResources(urls["DialQueue"], urls["DialDeadLetterQueue"], create["TableName"])


class MotoServer:
    """moto in server mode on 127.0.0.1 (a free port); ``url`` serves SQS, DynamoDB and EventBridge."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._url: str | None = None
        self._access_log = logging.getLogger("werkzeug")  # one line per request on stderr otherwise
        self._access_log_level = self._access_log.level

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("moto is not running; use MotoServer as a context manager")
        return self._url

    def __enter__(self) -> MotoServer:
        self._access_log.setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self._url = f"http://{host}:{port}"
        self.reset()  # moto keeps its state per process, not per server: start from nothing
        return self

    def reset(self) -> None:
        """Forget every queue, table and rule (moto's documented reset endpoint)."""
        url = self.url + "/moto-api/reset"  # always http://127.0.0.1:<port>, built above
        request = urllib.request.Request(url, method="POST")  # noqa: S310 - fixed loopback http URL
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - fixed loopback http URL
            pass

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.reset()
        self._url = None
        self._server.stop()
        # stop() ends serve_forever but leaves the listening socket open; close it so nothing leaks.
        wsgi = getattr(self._server, "_server", None)
        if wsgi is not None:
            wsgi.server_close()
        self._access_log.setLevel(self._access_log_level)


def aws_environment(moto_url: str, meetings_url: str) -> dict[str, str]:
    """Fake credentials, the region, and boto3's standard endpoint variables for the local services."""
    return {
        **FAKE_CREDENTIALS,
        "AWS_REGION": LOCAL_REGION,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_ENDPOINT_URL_SQS": moto_url,
        "AWS_ENDPOINT_URL_DYNAMODB": moto_url,
        "AWS_ENDPOINT_URL_EVENTBRIDGE": moto_url,
        "AWS_ENDPOINT_URL_CHIME_SDK_MEETINGS": meetings_url,
        # A developer's ~/.aws must not change where the local clients go.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in ``os.environ`` (and drop cached boto3 clients); restore both on exit."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    clients.reset_clients()
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        clients.reset_clients()


@contextlib.contextmanager
def handler_output_to(stream: TextIO) -> Iterator[None]:
    """Send the handlers' JSON logs (Powertools Logger) and EMF metric blobs (printed) to ``stream``."""
    handlers = [
        h for h in logging.getLogger(obs.logger.service).handlers if isinstance(h, logging.StreamHandler)
    ]
    previous = [handler.stream for handler in handlers]
    for handler in handlers:
        handler.setStream(stream)
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        for handler, old in zip(handlers, previous, strict=True):
            handler.setStream(old)
