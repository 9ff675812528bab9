"""``POST /v1/embeddings``: request validation and the OpenAI-shaped response.

Unlike chat completions, nothing here is simulated: the vectors come from the real
all-MiniLM-L6-v2 (see :mod:`modelserver.embedding`). Validation follows the real API's rules
that clients are likely to hit: ``input`` is a non-empty string or a list of 1 to 2048 non-empty
strings; token arrays are refused (their ids would be another tokenizer's); ``encoding_format``
is ``float`` or ``base64`` (the ``openai`` client asks for base64 unless told otherwise);
``dimensions`` can only be the model's own.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ._errors import invalid_request

MAX_INPUTS = 2048
"""The real API's limit on the number of inputs in one request."""

EncodingFormat = Literal["float", "base64"]


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    inputs: tuple[str, ...]
    encoding_format: EncodingFormat
    dimensions: int | None

    def fault_text(self) -> str:
        """What a fault rule's ``match`` is compared with (the chat side uses the latest user message)."""
        return "\n".join(self.inputs)


def parse_embedding_request(body: Any) -> EmbeddingRequest:
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")

    model = body.get("model")
    if model is None:
        raise invalid_request("You must provide a model parameter.", param="model")
    if not isinstance(model, str) or not model:
        raise invalid_request("'model' must be a non-empty string.", param="model")

    inputs = _parse_input(body.get("input"), present="input" in body)

    raw_format = body.get("encoding_format")
    encoding_format: EncodingFormat
    if raw_format in (None, "float"):
        encoding_format = "float"
    elif raw_format == "base64":
        encoding_format = "base64"
    else:
        raise invalid_request(
            f"'encoding_format' must be 'float' or 'base64'; got {raw_format!r}.", param="encoding_format"
        )

    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
        raise invalid_request("'dimensions' must be a positive integer.", param="dimensions")

    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise invalid_request("'user' must be a string.", param="user")

    return EmbeddingRequest(model=model, inputs=inputs, encoding_format=encoding_format, dimensions=dimensions)


def _parse_input(raw: Any, *, present: bool) -> tuple[str, ...]:
    if not present or raw is None:
        raise invalid_request("'input' is required: a string or a list of strings to embed.", param="input")
    if isinstance(raw, str):
        if raw == "":
            raise invalid_request("'input' cannot be an empty string.", param="input")
        return (raw,)
    if not isinstance(raw, list):
        raise invalid_request("'input' must be a string or a list of strings.", param="input")
    if not raw:
        raise invalid_request("'input' cannot be an empty list.", param="input")
    if len(raw) > MAX_INPUTS:
        raise invalid_request(
            f"'input' has {len(raw)} items; at most {MAX_INPUTS} inputs are allowed per request. "
            "Split the inputs into several requests.",
            param="input",
        )
    if all(isinstance(item, int) and not isinstance(item, bool) for item in raw) or any(
        isinstance(item, list) for item in raw
    ):
        raise invalid_request(
            "Token arrays are not supported by this server: its model has its own tokenizer, so "
            "send the text itself as a string or a list of strings.",
            param="input",
            code="token_input_not_supported",
        )
    for index, item in enumerate(raw):
        if not isinstance(item, str):
            raise invalid_request(
                f"'input[{index}]' must be a string; got {type(item).__name__}.", param=f"input[{index}]"
            )
        if item == "":
            raise invalid_request(f"'input[{index}]' cannot be an empty string.", param=f"input[{index}]")
    return tuple(raw)


def build_embedding_response(
    request: EmbeddingRequest, vectors: NDArray[np.float32], *, model: str, prompt_tokens: int
) -> dict[str, Any]:
    data = []
    for index, vector in enumerate(vectors):
        embedding: str | list[float]
        if request.encoding_format == "base64":
            # The real API's base64 is the little-endian float32 bytes of the vector.
            embedding = base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")
        else:
            # float32 values printed as float64 decimals: they convert back to the same float32.
            embedding = vector.tolist()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
