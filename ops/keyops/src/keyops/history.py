"""Every ``temporal.api.common.v1.Payload`` inside a history, found by walking the protobuf.

Walking the descriptors rather than listing known fields means a payload in a field added by a
future server version (or one nobody thought of: failure ``encoded_attributes``, Nexus operation
inputs and results, memo, headers, user metadata) is still found. The payloads yielded are the
message's own objects, so a caller may rewrite them in place (the exporter does).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import cast

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload

PAYLOAD_TYPE = Payload.DESCRIPTOR.full_name
_INDEX = re.compile(r"\[[^\]]*\]")
# The trace context header: both SDKs' tracing interceptors write it with the payload converter
# alone (headers skip the codec by default), so a traced workflow carries it in every language.
TRACE_CONTEXT_HEADER = "_tracer-data"
_PLAIN_BY_DESIGN = re.compile(
    r"search_attributes\.indexed_fields\[|marker_recorded_event_attributes\.details\[(patch-data|change-id|version)\]"
    rf"|header\.fields\[{TRACE_CONTEXT_HEADER}\]"
)


@dataclass(frozen=True)
class FoundPayload:
    path: str
    """Where it sits, e.g. ``events[4].activity_task_failed_event_attributes.failure.encoded_attributes``."""
    payload: Payload

    @property
    def location(self) -> str:
        """The path without indices and map keys: groups payloads by the kind of field they are in."""
        return _INDEX.sub("[]", self.path)

    @property
    def sdk_bookkeeping(self) -> bool:
        """The SDK's own local-activity marker record (sequence, attempt, activity id and type,
        times), written without the data converter. It holds the same facts every regular
        activity event shows in plain text; the local activity's result, in the same marker,
        is encrypted. Not user data, so neither a leak nor a key reference."""
        return "marker_recorded_event_attributes.details[data]" in self.path

    @property
    def plain_by_design(self) -> bool:
        """Plain text in every history, whatever the codec: the SDK's bookkeeping above, the
        markers of ``workflow.patched``/``GetVersion`` (a change id, not data), search attribute
        values, which the server must read to index them, and the OpenTelemetry trace context
        header of a traced workflow (trace and span ids). Ours hold only counts and ids, never
        customer text (docs/versioning.md, ops/metrics/README.md)."""
        return self.sdk_bookkeeping or _PLAIN_BY_DESIGN.search(self.path) is not None


def walk_payloads(root: Message | Iterable[Message], path: str = "") -> Iterator[FoundPayload]:
    """Every Payload in ``root`` (a History, a HistoryEvent, any message, or a list of them)."""
    if isinstance(root, Message):
        yield from _walk(root, path)
        return
    for i, message in enumerate(root):
        yield from _walk(message, f"{path}[{i}]")


def iter_payloads(history_or_event: Message | Iterable[Message]) -> Iterator[Payload]:
    for found in walk_payloads(history_or_event):
        yield found.payload


def _walk(message: Message, path: str) -> Iterator[FoundPayload]:
    if message.DESCRIPTOR.full_name == PAYLOAD_TYPE:
        # Matched by descriptor name, which the type checker cannot follow: the message is a Payload.
        yield FoundPayload(path, cast(Payload, message))
        return
    for fd, value in message.ListFields():
        message_type = fd.message_type
        if fd.type != FieldDescriptor.TYPE_MESSAGE or message_type is None:
            continue
        here = f"{path}.{fd.name}" if path else fd.name
        if message_type.GetOptions().map_entry:
            value_fd = message_type.fields_by_name["value"]
            if value_fd.type != FieldDescriptor.TYPE_MESSAGE:
                continue
            # Sorted so paths (and anything derived from them) are stable between runs.
            for key in sorted(value):
                yield from _walk(value[key], f"{here}[{key}]")
        elif fd.is_repeated:
            for i, item in enumerate(value):
                yield from _walk(item, f"{here}[{i}]")
        else:
            yield from _walk(value, here)
