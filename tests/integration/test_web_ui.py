"""The Temporal Web UI, in a real headless Chromium, shows decoded payloads via the codec server."""

from __future__ import annotations

import uuid

from harness import client_for, page_showing, run_system_check
from support.browser import ARTIFACTS, chromium_or_skip

from devstack.stack import Stack


async def test_ui_shows_the_decoded_workflow_input(stack: Stack) -> None:
    chromium_or_skip()
    question = f"Can I return a keyboard bought {uuid.uuid4().hex[:6]}?"
    workflow_id = f"ui-decoded-{uuid.uuid4().hex[:8]}"
    client = await client_for(stack, "agents")
    await run_system_check(client, question, workflow_id)
    url = f"{stack.config.ui_url}/namespaces/agents/workflows/{workflow_id}"
    content, decode_calls = await page_showing(url, question, ARTIFACTS / "ui-decoded-input.png")
    assert question in content
    assert any(call.startswith(stack.config.codec_server_url) for call in decode_calls), decode_calls
    audit = (stack.config.log_dir / "codec-audit.jsonl").read_text()
    assert '"anonymous"' in audit  # the UI has no login on a dev server: audited as anonymous
