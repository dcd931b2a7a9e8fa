"""Registers servicers so that an undecodable request is INVALID_ARGUMENT and a database
failure UNAVAILABLE, never an unhandled error.

grpcio's generated registration decodes with `Message.FromString` and, when that fails, logs
an unhandled error and answers UNKNOWN. Every service goes through `add_service` instead,
built from the proto's own service descriptor, so no servicer needs to know.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

UNDECODABLE_DETAILS = "the request could not be decoded as the expected message"


class _Undecodable:
    """Stands in for a request that did not decode."""


UNDECODABLE = _Undecodable()


def _parser(message_class: type[Message]) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except DecodeError:
            return UNDECODABLE

    return parse


class UndecodableRequestError(Exception):
    """Raised from the request stream; the method's own task refuses the call with it, since
    the servicer may read its requests in a task of its own."""


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if request is UNDECODABLE:
            raise UndecodableRequestError(UNDECODABLE_DETAILS)
        yield request


STORE_FAILED = "the collector's database failed; try again shortly"


def _wrap(behaviour: Any, client_streaming: bool, server_streaming: bool) -> Any:
    if client_streaming and server_streaming:

        async def stream_stream(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            try:
                async for reply in behaviour(_checked(requests), context):
                    yield reply
            except UndecodableRequestError:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, UNDECODABLE_DETAILS)
            except SQLAlchemyError as exc:
                await _store_failed(context, exc)

        return stream_stream
    if client_streaming:

        async def stream_unary(requests: AsyncIterator[Any], context: Any) -> Any:
            try:
                return await behaviour(_checked(requests), context)
            except UndecodableRequestError:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, UNDECODABLE_DETAILS)
            except SQLAlchemyError as exc:
                await _store_failed(context, exc)

        return stream_unary
    if server_streaming:

        async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            if request is UNDECODABLE:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, UNDECODABLE_DETAILS)
            try:
                async for reply in behaviour(request, context):
                    yield reply
            except SQLAlchemyError as exc:
                await _store_failed(context, exc)

        return unary_stream

    async def unary_unary(request: Any, context: Any) -> Any:
        if request is UNDECODABLE:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, UNDECODABLE_DETAILS)
        try:
            return await behaviour(request, context)
        except SQLAlchemyError as exc:
            await _store_failed(context, exc)

    return unary_unary


async def _store_failed(context: Any, exc: SQLAlchemyError) -> None:
    """A database failure is the collector's, not the caller's: UNAVAILABLE, so agents retry."""
    log.warning("store failed: %s", exc)
    await context.abort(grpc.StatusCode.UNAVAILABLE, STORE_FAILED)


_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def add_service(server: grpc.aio.Server, service: ServiceDescriptor, servicer: object) -> None:
    """Serve every method of `service` from `servicer`, refusing undecodable requests."""
    handlers = {}
    for method in service.methods:
        shape = (method.client_streaming, method.server_streaming)
        handlers[method.name] = _FACTORIES[shape](
            _wrap(getattr(servicer, method.name), *shape),
            request_deserializer=_parser(message_factory.GetMessageClass(method.input_type)),
            response_serializer=message_factory.GetMessageClass(
                method.output_type
            ).SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
