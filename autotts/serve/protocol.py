"""Request and response schemas of `autotts serve` (OpenAI shapes plus an ``autotts`` block), as pydantic models.

Requests are validated here and nowhere else; a schema error becomes a 400
naming the field (`schema_error`). Unknown OpenAI fields are accepted and
ignored, so clients that send them keep working.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class AutottsOptions(BaseModel):
    """Per-request knobs: ``extra_body={"autotts": {"beta": 0.8, "controller": "sc:4"}}``."""

    model_config = ConfigDict(extra="forbid")

    beta: float | None = Field(default=None, ge=0.0, le=1.0)
    controller: str | None = None
    shuffle_seed: int | None = Field(default=None, ge=0)
    timeout: float | None = Field(default=None, gt=0.0)


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    max_tokens: int | None = Field(default=None, gt=0)
    seed: int | None = Field(default=None, ge=0)
    n: int = Field(default=1, ge=1, le=1)
    stream: Literal[False] = False
    autotts: AutottsOptions = AutottsOptions()


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str


class ChatRequest(_Request):
    messages: list[Message] = Field(min_length=1)

    def question(self) -> str:
        """The text that seeds the branches: the last user message."""
        users = [m.content for m in self.messages if m.role == "user"]
        return users[-1] if users else self.messages[-1].content


class CompletionRequest(_Request):
    prompt: str | list[str]

    def question(self) -> str:
        if isinstance(self.prompt, list):
            if len(self.prompt) != 1:
                raise ValueError("prompt: expected one prompt (a string or a list of one string)")
            return self.prompt[0]
        return self.prompt


def schema_error(err: ValidationError) -> tuple[str, str]:
    """(field, one-line message) of the first validation error."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return loc, f"field '{loc}': {first.get('msg', 'invalid')}"


def error_body(message: str, kind: str, code: str | int | None = None, param: str | None = None) -> dict:
    """An OpenAI-style error object."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def autotts_block(answer: Any) -> dict:
    """What the request cost, by branch, and how it stopped."""
    r = answer.result
    return {"answer": r.answer, "rounds": r.rounds, "branches": len(r.branch_tokens),
            "tokens_by_branch": {str(j): t for j, t in r.branch_tokens.items()}, "tokens": r.tokens,
            "sequential_tokens": r.seq_tokens, "chosen_branch": answer.branch, "stopped_by": answer.stop_by,
            "controller": answer.controller, "beta": answer.beta, "trace_id": answer.trace_id}


def chat_response(answer: Any, model: str, prompt_tokens: int) -> dict:
    return {"id": f"chatcmpl-{answer.trace_id}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                                         "finish_reason": "stop", "logprobs": None}],
            "usage": usage(prompt_tokens, answer.result.tokens), "autotts": autotts_block(answer)}


def completion_response(answer: Any, model: str, prompt_tokens: int) -> dict:
    return {"id": f"cmpl-{answer.trace_id}", "object": "text_completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "text": answer.text, "finish_reason": "stop", "logprobs": None}],
            "usage": usage(prompt_tokens, answer.result.tokens), "autotts": autotts_block(answer)}
