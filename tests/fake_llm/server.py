"""A loopback stand-in for the Anthropic Messages, OpenAI Responses and Gemini APIs.

Used by hand to drive the real agent CLIs (Claude Code, Codex, Gemini CLI) into the states
the detector profiles must recognise, without a network or an account (see
tests/screens/README.md). It streams server-sent events the way the real APIs do, and picks
its answer from the last user message, so a capture session is scripted by what is typed
into the agent:

- ``RUNCMD``: answer with a tool call that runs ``touch sentry-out.txt`` (Claude Code's
  ``Bash`` tool, Codex's ``exec_command`` asking for escalation, Gemini's
  ``run_shell_command``); once the tool result comes back, a short final answer.
  The agent asks permission first, which is the *waiting* screen.
- ``WRITEFILE`` (Claude Code): a ``Write`` tool call creating ``notes.md`` in the server's
  working directory (start the server in the agent's project directory).
- ``MARKER`` (Claude Code): a ``Bash`` call that echoes a long ``### SENTRY`` STATUS line, so
  the marker appears in the agent's tool output, behind its gutter and wrapped.
- ``SLOW``: stream a long answer slowly (about 40 s), which is the *busy* screen.
- ``FAIL``: answer with an API error, HTTP 500 (400 for Gemini, which retries a 500 for
  minutes): the agent's error screen after its retries.
- anything else: a one-line answer at once (the *idle*/finished screen).

Every request body is appended to ``$FAKE_LLM_LOG`` (default: none) for inspection.

Run: ``python tests/fake_llm/server.py PORT``. Binds 127.0.0.1 only; stops on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MARKER_LINE = (
    '### SENTRY {"type":"STATUS","stage":"code","ok":true,'
    '"msg":"all 42 tests pass; the coverage report is in htmlcov/index.html and the changelog '
    'entry was added under Unreleased"}'
)
HELLO_TEXT = "Hello from the fake model. Nothing to do."
DONE_TEXT = "Done: the file sentry-out.txt exists now."
SLOW_TEXT = " ".join(f"Step {i}: thinking about the problem carefully." for i in range(1, 41))


def _last_user_text(messages: list[Any]) -> tuple[str, bool]:
    """(text of the last user turn, whether that turn carries a tool result)."""
    for msg in reversed(messages):
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        kind = msg.get("type")
        if kind in ("function_call_output", "custom_tool_call_output"):
            return "", True
        if role != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return content, False
        texts: list[str] = []
        tool_result = False
        for part in content or []:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "tool_result":
                tool_result = True
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "\n".join(texts), tool_result
    return "", False


def _prompt_text(messages: list[Any]) -> str:
    """The last user turn that a person typed (not a tool result)."""
    for msg in reversed(messages):
        if not isinstance(msg, dict) or msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return content
        parts = [p for p in content or [] if isinstance(p, dict)]
        if any(p.get("type") == "tool_result" for p in parts):
            continue
        return "\n".join(p["text"] for p in parts if isinstance(p.get("text"), str))
    return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _body(self) -> dict[str, Any]:
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b"{}"
        log = os.environ.get("FAKE_LLM_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"{self.command} {self.path}\n{raw.decode(errors='replace')[:500000]}\n\n")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        return body if isinstance(body, dict) else {}

    def _json(self, code: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _sse_start(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True

    def _event(self, name: str, data: dict[str, Any]) -> None:
        self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"data": [], "object": "list"})
        else:
            self._json(200, {})

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        body = self._body()
        path = self.path.split("?")[0]
        if path.endswith("/messages/count_tokens"):
            self._json(200, {"input_tokens": 100})
        elif path.endswith("/messages"):
            self._anthropic(body)
        elif path.endswith("/responses"):
            self._openai(body)
        elif path.endswith(":countTokens"):
            self._json(200, {"totalTokens": 100})
        elif path.endswith(":streamGenerateContent") or path.endswith(":generateContent"):
            self._gemini(body, stream=path.endswith(":streamGenerateContent"))
        else:
            self._json(404, {"error": {"type": "not_found", "message": path}})

    # -- Anthropic Messages ---------------------------------------------------------------

    def _anthropic(self, body: dict[str, Any]) -> None:
        messages = body.get("messages") or []
        text, tool_result = _last_user_text(messages)
        first = _prompt_text(messages)
        tools = [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
        if "FAIL" in text:
            self._json(500, {"type": "error", "error": {"type": "api_error", "message": "boom"}})
            return
        blocks: list[dict[str, Any]]
        stop = "end_turn"
        delay = 0.0
        if "RUNCMD" in first and not tool_result and "Bash" in tools:
            blocks = [
                {"type": "text", "text": "I will create the file."},
                {
                    "type": "tool_use",
                    "id": f"toolu_{int(time.time() * 1000)}",
                    "name": "Bash",
                    "input": {"command": "touch sentry-out.txt", "description": "Create a file"},
                },
            ]
            stop = "tool_use"
        elif "MARKER" in first and not tool_result and "Bash" in tools:
            blocks = [
                {
                    "type": "tool_use",
                    "id": f"toolu_{int(time.time() * 1000)}",
                    "name": "Bash",
                    "input": {"command": f"echo '{MARKER_LINE}'", "description": "Report"},
                },
            ]
            stop = "tool_use"
        elif "WRITEFILE" in first and not tool_result and "Write" in tools:
            blocks = [
                {
                    "type": "tool_use",
                    "id": f"toolu_{int(time.time() * 1000)}",
                    "name": "Write",
                    "input": {"file_path": os.path.abspath("notes.md"), "content": "hello\n"},
                },
            ]
            stop = "tool_use"
        elif "SLOW" in text:
            blocks = [{"type": "text", "text": SLOW_TEXT}]
            delay = 1.0
        elif tool_result:
            blocks = [{"type": "text", "text": DONE_TEXT}]
        else:
            blocks = [{"type": "text", "text": HELLO_TEXT}]
        if not body.get("stream"):
            self._json(
                200,
                {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model", "fake"),
                    "content": blocks,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 10, "output_tokens": 10},
                },
            )
            return
        self._sse_start()
        self._event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model", "fake"),
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 10, "output_tokens": 1},
                },
            },
        )
        for i, block in enumerate(blocks):
            if block["type"] == "text":
                self._event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
                words = block["text"].split(" ")
                step = 6
                for j in range(0, len(words), step):
                    chunk = " ".join(words[j : j + step]) + " "
                    self._event(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "text_delta", "text": chunk},
                        },
                    )
                    if delay:
                        time.sleep(delay)
            else:
                start = dict(block, input={})
                self._event(
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": start},
                )
                self._event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {
                            "type": "input_json_delta",
                            "partial_json": json.dumps(block["input"]),
                        },
                    },
                )
            self._event("content_block_stop", {"type": "content_block_stop", "index": i})
        self._event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 20},
            },
        )
        self._event("message_stop", {"type": "message_stop"})

    # -- OpenAI Responses -------------------------------------------------------------------

    def _openai(self, body: dict[str, Any]) -> None:
        items = body.get("input") or []
        text, tool_result = _last_user_text(items)
        first = _prompt_text(items)
        tools = {
            t.get("name") or t.get("type") for t in body.get("tools") or [] if isinstance(t, dict)
        }
        if "FAIL" in text:
            self._json(500, {"error": {"type": "server_error", "message": "boom"}})
            return
        self._sse_start()
        rid = f"resp_{int(time.time() * 1000)}"
        self._event("response.created", {"type": "response.created", "response": {"id": rid}})
        out: list[dict[str, Any]] = []
        if "RUNCMD" in first and not tool_result:
            if "shell_command" in tools:
                name, args = "shell_command", {"command": "touch sentry-out.txt"}
            elif "exec_command" in tools:
                name, args = (
                    "exec_command",
                    {
                        "cmd": "touch sentry-out.txt",
                        # outside the sandbox, so Codex must ask first
                        "sandbox_permissions": "require_escalated",
                        "justification": "Create sentry-out.txt for the sentry test?",
                    },
                )
            else:
                name, args = "shell", {"command": ["bash", "-lc", "touch sentry-out.txt"]}
            out.append(
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": f"call_{rid}",
                    "name": name,
                    "arguments": json.dumps(args),
                }
            )
        else:
            if "SLOW" in text:
                words, delay = SLOW_TEXT.split(" "), 1.0
            elif tool_result:
                words, delay = DONE_TEXT.split(" "), 0.0
            else:
                words, delay = HELLO_TEXT.split(" "), 0.0
            for j in range(0, len(words), 6):
                chunk = " ".join(words[j : j + 6]) + " "
                self._event(
                    "response.output_text.delta",
                    {
                        "type": "response.output_text.delta",
                        "item_id": "msg_1",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": chunk,
                    },
                )
                if delay:
                    time.sleep(delay)
            out.append(
                {
                    "type": "message",
                    "id": "msg_1",
                    "role": "assistant",
                    "status": "completed",
                    "content": [
                        {"type": "output_text", "text": " ".join(words), "annotations": []}
                    ],
                }
            )
        for idx, item in enumerate(out):
            self._event(
                "response.output_item.done",
                {"type": "response.output_item.done", "output_index": idx, "item": item},
            )
        self._event(
            "response.completed",
            {
                "type": "response.completed",
                "response": {
                    "id": rid,
                    "usage": {
                        "input_tokens": 10,
                        "input_tokens_details": {"cached_tokens": 0},
                        "output_tokens": 10,
                        "output_tokens_details": {"reasoning_tokens": 0},
                        "total_tokens": 20,
                    },
                },
            },
        )

    # -- Gemini generateContent ------------------------------------------------------------

    def _gemini(self, body: dict[str, Any], stream: bool) -> None:
        contents = body.get("contents") or []
        text, tool_result = _gemini_prompt(contents)
        config = body.get("generationConfig") or body.get("config") or {}
        tools = {
            d.get("name")
            for t in body.get("tools") or []
            if isinstance(t, dict)
            for d in t.get("functionDeclarations") or []
            if isinstance(d, dict)
        }
        if not stream and (config.get("responseMimeType") == "application/json" or not tools):
            # the CLI's side questions (routing, next speaker) want JSON back
            answer = json.dumps(
                {"reasoning": "fake", "next_speaker": "user", "model_choice": "flash"}
            )
            parts: list[dict[str, Any]] = [{"text": answer}]
            self._json(
                200,
                {
                    "candidates": [
                        {
                            "content": {"role": "model", "parts": parts},
                            "finishReason": "STOP",
                            "index": 0,
                        }
                    ],
                    "usageMetadata": {
                        "promptTokenCount": 10,
                        "candidatesTokenCount": 10,
                        "totalTokenCount": 20,
                    },
                },
            )
            return
        if "FAIL" in text:
            # 400: Gemini CLI retries a 500 for minutes; a bad request fails at once
            error = {"code": 400, "message": "boom", "status": "INVALID_ARGUMENT"}
            self._json(400, {"error": error})
            return
        chunks: list[list[dict[str, Any]]]
        delay = 0.0
        if "RUNCMD" in text and not tool_result and "run_shell_command" in tools:
            chunks = [
                [
                    {
                        "functionCall": {
                            "name": "run_shell_command",
                            "args": {
                                "command": "touch sentry-out.txt",
                                "description": "Create a file",
                            },
                        }
                    }
                ]
            ]
        elif "SLOW" in text and not tool_result:
            words = SLOW_TEXT.split(" ")
            chunks = [[{"text": " ".join(words[j : j + 6]) + " "}] for j in range(0, len(words), 6)]
            delay = 1.0
        elif tool_result:
            chunks = [[{"text": DONE_TEXT}]]
        else:
            chunks = [[{"text": HELLO_TEXT}]]
        usage = {"promptTokenCount": 10, "candidatesTokenCount": 10, "totalTokenCount": 20}

        def payload(parts: list[dict[str, Any]], last: bool) -> dict[str, Any]:
            cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if last:
                cand["finishReason"] = "STOP"
            return {"candidates": [cand], "usageMetadata": usage, "modelVersion": "fake"}

        if not stream:
            self._json(200, payload([p for c in chunks for p in c], True))
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        for n, parts in enumerate(chunks):
            self.wfile.write(
                f"data: {json.dumps(payload(parts, n == len(chunks) - 1))}\r\n\r\n".encode()
            )
            self.wfile.flush()
            if delay:
                time.sleep(delay)


def _gemini_prompt(contents: list[Any]) -> tuple[str, bool]:
    """(the last text a person typed, whether the last turn is a function response)."""
    last_is_result = False
    for i, turn in enumerate(reversed(contents)):
        if not isinstance(turn, dict) or turn.get("role") != "user":
            continue
        parts = [p for p in turn.get("parts") or [] if isinstance(p, dict)]
        if any("functionResponse" in p for p in parts):
            last_is_result = last_is_result or i == 0
            continue
        text = "\n".join(p["text"] for p in parts if isinstance(p.get("text"), str))
        return text, last_is_result
    return "", last_is_result


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"fake-llm listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
