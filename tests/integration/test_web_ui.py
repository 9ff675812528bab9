"""The Temporal Web UI, in a real headless Chromium, shows decoded payloads via the codec server."""

from __future__ import annotations

import uuid

from harness import client_for
from support.browser import ARTIFACTS, CHROMIUM_ARGS, chromium_or_skip

from agent.queues import AGENT_TASK_QUEUE
from agent.workflows.system_check import SystemCheckInput, SystemCheckWorkflow
from devstack.stack import Stack


async def test_ui_shows_the_decoded_workflow_input(stack: Stack) -> None:
    chromium = chromium_or_skip()
    from playwright.async_api import async_playwright

    question = f"Can I return a keyboard bought {uuid.uuid4().hex[:6]}?"
    workflow_id = f"ui-decoded-{uuid.uuid4().hex[:8]}"
    client = await client_for(stack, "agents")
    await client.execute_workflow(
        SystemCheckWorkflow.run,
        SystemCheckInput(question=question, order_id="ORD-1006", refund_cents=100),
        id=workflow_id,
        task_queue=AGENT_TASK_QUEUE,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    url = f"{stack.config.ui_url}/namespaces/agents/workflows/{workflow_id}"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1800})
            decode_calls: list[str] = []
            page.on("request", lambda r: decode_calls.append(r.url) if "/decode" in r.url else None)
            await page.goto(url)
            # The UI keeps polling: wait for the content, never for network idle.
            await page.get_by_text(question).first.wait_for(timeout=60_000)
            await page.screenshot(path=str(ARTIFACTS / "ui-decoded-input.png"), full_page=True)
            content = await page.content()
        finally:
            await browser.close()
    assert question in content
    assert any(call.startswith(stack.config.codec_server_url) for call in decode_calls), decode_calls
    audit = (stack.config.log_dir / "codec-audit.jsonl").read_text()
    assert '"anonymous"' in audit  # the UI has no login on a dev server: audited as anonymous
