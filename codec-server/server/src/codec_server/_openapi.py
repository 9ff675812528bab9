"""The OpenAPI document served at /openapi.json; the tests fuzz the server against it."""

from __future__ import annotations

from typing import Any

from ._settings import DEFAULT_MAX_BODY_BYTES

NAMESPACE_PATTERN = "^[A-Za-z0-9._-]{1,255}$"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _operation(operation: str, namespace_in_path: bool) -> dict[str, Any]:
    verb = "Decrypt" if operation == "decode" else "Encrypt"
    parameters: list[dict[str, Any]] = [
        {
            "name": "X-Namespace",
            "in": "header",
            # With the path form the header is optional (and must agree if sent).
            "required": not namespace_in_path,
            "description": "Temporal namespace; the UI and CLI send it on every request.",
            "schema": {"type": "string", "pattern": NAMESPACE_PATTERN},
        },
        {
            "name": "preserveStorageRefs",
            "in": "query",
            "required": False,
            "description": "Sent by the Temporal UI; accepted and ignored (no external storage here).",
            "schema": {"type": "boolean"},
        },
    ]
    if namespace_in_path:
        parameters.insert(
            0,
            {
                "name": "namespace",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": NAMESPACE_PATTERN},
            },
        )
    responses: dict[str, Any] = {
        "200": {
            "description": f"The payloads, {operation}d, in request order.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Payloads"}}},
        },
        "400": _error("Malformed JSON, wrong shape, bad base64, or a missing/disagreeing namespace."),
        "401": _error("No bearer token, or a token that is not valid (expired, wrong audience, unknown)."),
        "403": _error(
            "The token has no access to this namespace, lacks the encode role, or a payload is "
            "encrypted under a key that this namespace's histories do not hold."
        ),
        "413": _error("The request body, the payload count or the total decoded size is over the configured limit."),
        "415": _error("The body is not sent as Content-Type: application/json."),
        "421": _error("A Host name the server does not serve while callers need no token."),
        "422": _error(
            "A payload (named by its index) names an unknown key id, fails authentication "
            "(tampered), or the namespace has no active key (encode)."
        ),
        "503": _error("The OIDC issuer's signing keys cannot be fetched right now."),
    }
    return {
        "operationId": f"{operation}{'Namespaced' if namespace_in_path else ''}",
        "summary": f"{verb} Temporal payloads"
        + (" for the namespace in the path" if namespace_in_path else " for the X-Namespace namespace"),
        "tags": ["codec"],
        "security": [{"bearerAuth": []}],
        "parameters": parameters,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Payloads"}}},
        },
        "responses": responses,
    }


def openapi_document(max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Temporal codec server",
            "version": "1",
            "description": (
                "Remote payload codec for the Temporal UI and CLI (protobuf JSON of "
                "temporal.api.common.v1.Payloads). Encryption format: codec-server/SPEC.md. "
                f"Request bodies are limited to {max_body_bytes} bytes."
            ),
        },
        "paths": {
            "/decode": {"post": _operation("decode", False)},
            "/encode": {"post": _operation("encode", False)},
            "/{namespace}/decode": {"post": _operation("decode", True)},
            "/{namespace}/encode": {"post": _operation("encode", True)},
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Liveness and readiness",
                    "tags": ["ops"],
                    "responses": {
                        "200": {
                            "description": "Serving.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["status"],
                                        "properties": {
                                            "status": {"type": "string", "enum": ["ok"]},
                                            "keys": {"type": "integer"},
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics",
                    "tags": ["ops"],
                    "responses": {
                        "200": {
                            "description": "Prometheus text format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "tags": ["ops"],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.0 document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": _components(),
    }


def _components() -> dict[str, Any]:
    """The security scheme and the request and response bodies both operations share."""
    return {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "A static token (CODEC_SERVER_TOKENS_FILE) or a JWT from the configured OIDC issuer.",
            }
        },
        "schemas": {
            "Payloads": {
                "type": "object",
                "properties": {"payloads": {"type": "array", "items": {"$ref": "#/components/schemas/Payload"}}},
                "additionalProperties": False,
            },
            "Payload": {
                "type": "object",
                "properties": {
                    "metadata": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "format": "byte"},
                        "description": "Metadata values, base64.",
                    },
                    "data": {"type": "string", "format": "byte", "description": "Payload bytes, base64."},
                    "externalPayloads": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            # int64: protobuf JSON writes it as a string, and reads either form.
                            "properties": {
                                "sizeBytes": {
                                    "oneOf": [
                                        {"type": "string", "pattern": "^-?[0-9]{1,19}$"},
                                        {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
                                    ]
                                }
                            },
                            "additionalProperties": False,
                        },
                    },
                },
                "additionalProperties": False,
            },
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
                "additionalProperties": False,
            },
        },
    }
