#!/usr/bin/env python3
"""Drives a Storefront host's MCP endpoint with the official MCP Python SDK (`mcp` 2.x) and prints what it saw as
one JSON object; `tests/it/mcp.rs` runs it and asserts on that report (and checks the REST API agrees).

Usage: mcp_client.py BASE_URL MODE [TOKEN] PRODUCT_ID IDEMPOTENCY_KEY
  MODE: `latest` (the SDK's default: `server/discover`, 2026-07-28) or `legacy` (pinned to 2025-11-25: `initialize`).
  TOKEN: a bearer access token, or `-` for none.

With a token it lists the tools, searches, adds PRODUCT_ID to the cart, checks out with IDEMPOTENCY_KEY and the
sandbox's `tok_success`, lists the orders and cancels the order. Without one it makes the same calls and records the
tool errors. Every step's result is recorded; nothing is asserted here.
"""
import asyncio
import json
import sys

import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client


def outcome(result):
    """What a tool call answered: its error flag and structured content (or text)."""
    text = " ".join(getattr(block, "text", "") for block in result.content or [])
    return {"is_error": bool(result.is_error), "structured": result.structured_content, "text": text}


async def call(client, name, arguments):
    try:
        return outcome(await client.call_tool(name, arguments))
    except MCPError as error:
        return {"protocol_error": error.code, "message": str(error)}


async def main(base_url, mode, token, product_id, key):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    report = {"mode": mode}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60.0, read=120.0)) as http:
        transport = streamable_http_client(f"{base_url}/mcp", http_client=http)
        async with Client(transport, mode="legacy" if mode == "legacy" else "auto") as client:
            report["protocol_version"] = str(client.protocol_version)
            info = client.server_info
            report["server_name"] = getattr(info, "name", None)
            tools = await client.list_tools()
            report["tools"] = sorted(tool.name for tool in tools.tools)
            report["search"] = await call(client, "search_products", {"q": "scenario", "limit": 5})
            report["get_product"] = await call(client, "get_product", {"id": product_id})
            report["add_to_cart"] = await call(client, "add_to_cart", {"product_id": product_id, "quantity": 2})
            report["bad_arguments"] = await call(client, "add_to_cart", {"product_id": product_id, "quantity": "two"})
            report["unknown_tool"] = await call(client, "no_such_tool", {})
            report["view_cart"] = await call(client, "view_cart", {})
            report["checkout"] = await call(client, "checkout", {"idempotency_key": key, "payment_token": "tok_success"})
            order_id = (report["checkout"].get("structured") or {}).get("id") if not report["checkout"].get("is_error") else None
            report["list_orders"] = await call(client, "list_orders", {"limit": 5})
            if order_id:
                report["get_order"] = await call(client, "get_order", {"id": order_id})
                report["cancel_order"] = await call(client, "cancel_order", {"id": order_id})
            else:
                report["cancel_order"] = await call(client, "cancel_order", {"id": "no-such-order"})
    print(json.dumps(report))


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    url, mode, token, product, key = sys.argv[1:]
    asyncio.run(main(url.rstrip("/"), mode, None if token == "-" else token, product, key))
