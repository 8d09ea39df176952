"""A tiny OpenAI-compatible server for subprocess tests: a real HTTP server on 127.0.0.1, canned answers.

Replies are `echo: <last user message>`; a `FAIL` in the message answers 500; a `CUTONCE` in it makes the
first streamed answer to that message stop after two words with the connection dropped (later ones stream whole);
json_schema requests get a minimal object valid for the schema (tool choice `none`, route `clarify`).
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

app = FastAPI()
cut: set[str] = set()  # messages whose streamed answer was already cut off once


def _minimal(schema: dict[str, Any]) -> Any:
    props = schema.get("properties", {})
    out: dict[str, Any] = {}
    for name, spec in props.items():
        if name == "tool":
            out[name] = "none"
        elif name == "choice":
            out[name] = "clarify"
        elif spec.get("type") == "string":
            out[name] = "fake"
        elif spec.get("type") in ("number", "integer"):
            out[name] = 0
        elif spec.get("type") == "boolean":
            out[name] = False
        elif spec.get("type") == "array":
            out[name] = []
        else:
            out[name] = None
    return out


@app.get("/v1/models")
async def models() -> dict[str, Any]:
    return {"object": "list", "data": [{"id": "fake", "object": "model"}]}


@app.post("/v1/chat/completions", response_model=None)
async def chat(request: Request) -> Any:
    body = await request.json()
    user = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
    if isinstance(user, list):
        user = " ".join(p.get("text", "") for p in user)
    if "FAIL" in user:
        return JSONResponse({"error": {"message": "scripted failure", "type": "server_error"}}, status_code=500)
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        content = json.dumps(_minimal(fmt["json_schema"]["schema"]))
    else:
        content = f"echo: {user}"
    cid = f"chatcmpl-{uuid.uuid4().hex[:8]}"
    if body.get("stream"):

        def events() -> Any:
            words = content.split(" ")
            for n, word in enumerate(words):
                if n == 2 and "CUTONCE" in user and user not in cut:
                    cut.add(user)
                    raise ConnectionResetError("scripted cut: the stream stops here")
                piece = word + (" " if n < len(words) - 1 else "")
                chunk = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": "fake",
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": piece} if n == 0 else {"content": piece},
                            "finish_reason": None,
                        }
                    ],
                }
                yield f"data: {json.dumps(chunk)}\n\n"
            done = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": "fake",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
            yield f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
