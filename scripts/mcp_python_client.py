"""The official Python MCP SDK client (PyPI `mcp`) as an editor would use it, against the real
`pisama mcp` over stdio: initialize, list tools, resources and prompts, detect on a fixture,
propose and search brain records, read a resource and get a prompt.

Usage: python mcp_python_client.py PISAMA_BINARY WORKSPACE MODE   (MODE: auto or legacy)
Run by scripts/mcp-clients.sh in a venv it creates. Prints one line per check and exits 1 on
the first failed one.
"""

import asyncio
import sys

from mcp import Client, StdioServerParameters

EXPECTED_TOOLS = {
    "pisama_detect", "pisama_inspect", "pisama_detectors", "pisama_explain",
    "brain_search", "brain_get", "brain_context", "brain_list", "brain_propose", "brain_revise",
    "brain_link", "brain_transition", "brain_review", "brain_history", "brain_status", "brain_archive",
}


def check(ok: bool, what: str) -> None:
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        sys.exit(1)


async def main(binary: str, workspace: str, mode: str) -> None:
    params = StdioServerParameters(command=binary, args=["mcp", "--root", workspace], cwd=workspace)
    async with Client(params, mode=mode, read_timeout_seconds=60) as client:
        tools = await client.list_tools()
        names = {t.name for t in tools.tools}
        check(names == EXPECTED_TOOLS, f"[{mode}] tools/list names the 16 tools ({len(names)})")
        check(all(t.output_schema for t in tools.tools), f"[{mode}] every tool has an outputSchema")

        resources = await client.list_resources()
        uris = {str(r.uri) for r in resources.resources}
        check({"brain://index", "brain://pending", "brain://schema", "pisama://detectors"} <= uris,
              f"[{mode}] resources/list has the brain and detector resources")
        templates = await client.list_resource_templates()
        check(any(t.uri_template == "brain://record/{id}" for t in templates.resource_templates),
              f"[{mode}] resources/templates/list has brain://record/{{id}}")
        prompts = await client.list_prompts()
        pnames = {p.name for p in prompts.prompts}
        check({"brain_session_start", "pisama_triage"} <= pnames, f"[{mode}] prompts/list has the built-ins")

        detect = await client.call_tool("pisama_detect", {"path": "run.json"})
        sc = detect.structured_content or {}
        check(not detect.is_error and sc.get("traces", [{}])[0].get("verdict") == "fail",
              f"[{mode}] pisama_detect on the fixture: verdict fail")
        findings = sc["traces"][0]["findings"]
        check(any(f["detector"] == "tool-retry-storm" for f in findings),
              f"[{mode}] pisama_detect names tool-retry-storm")
        refused = await client.call_tool("pisama_detect", {"path": "../../etc/passwd"})
        check(refused.is_error, f"[{mode}] a path outside the roots is a tool error")

        title = f"Python client memory ({mode})"
        proposed = await client.call_tool("brain_propose", {
            "kind": "memory", "title": title, "body": "The Python SDK client proposed this.",
            "fields": {"memory_type": "fact"}})
        pid = (proposed.structured_content or {}).get("id")
        check(not proposed.is_error and pid is not None and proposed.structured_content["review"] == "proposed",
              f"[{mode}] brain_propose creates a proposed record")
        found = await client.call_tool("brain_search", {"query": "Python SDK", "review": ["proposed"]})
        hits = (found.structured_content or {}).get("hits", [])
        check(not found.is_error and any(h["id"] == pid for h in hits), f"[{mode}] brain_search finds it")
        approved_only = await client.call_tool("brain_search", {"query": "Python SDK"})
        check(not any(h["id"] == pid for h in approved_only.structured_content["hits"]),
              f"[{mode}] default brain_search (approved only) does not")
        review = await client.call_tool("brain_review", {"id": pid, "verdict": "approve"})
        check(review.structured_content.get("status") == "pending_human",
              f"[{mode}] brain_review from an agent is pending_human")

        index = await client.read_resource("brain://index")
        check(pid in index.contents[0].text, f"[{mode}] brain://index lists the new record")
        prompt = await client.get_prompt("brain_session_start", {"task": "refactor the loader"})
        check("brain_context" in prompt.messages[0].content.text, f"[{mode}] prompts/get brain_session_start")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
