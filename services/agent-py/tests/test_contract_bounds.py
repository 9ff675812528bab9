"""What the agent sends through Nexus fits the contracts' limits (``nexus_contracts``).

The agent cuts model-supplied text and batches to its own bounds before a request leaves a
workflow; a bound above the contract would turn into a BAD_REQUEST the model cannot fix. The
contract constants are themselves tied to the JSON Schemas by ``nexus/python/tests``, so a
limit lowered in a schema fails here too when the agent's bound no longer fits.
"""

from __future__ import annotations

import pytest

from agent.ingest.types import CHUNKS_PER_BATCH
from agent.support import toolbox
from agent.support.types import ConversationSettings
from nexus_contracts import business, retrieval


@pytest.mark.parametrize(
    "agent_bound,contract_limit",
    [
        (toolbox.MAX_QUERY_CHARS, retrieval.MAX_QUERY_LENGTH),
        (toolbox.MAX_REASON_CHARS, business.MAX_REASON_LENGTH),
        (toolbox.MAX_SUBJECT_CHARS, business.MAX_SUBJECT_LENGTH),
        (toolbox.MAX_BODY_CHARS, business.MAX_BODY_LENGTH),
        # IngestWorkflow sends one index request per batch of chunks.
        (CHUNKS_PER_BATCH, retrieval.MAX_INDEX_DOCUMENTS),
    ],
    ids=["query", "reason", "subject", "body", "index-batch"],
)
def test_agent_bounds_fit_the_contract(agent_bound: int, contract_limit: int) -> None:
    assert 1 <= agent_bound <= contract_limit


def test_default_search_asks_for_a_valid_top_k() -> None:
    assert retrieval.MIN_TOP_K <= ConversationSettings().search_top_k <= retrieval.MAX_TOP_K
