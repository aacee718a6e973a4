"""The HTTP side of `autotts serve`: FastAPI routes over a `Scheduler` (OpenAI shapes, errors, auth, limits).

Order of checks per request: API key (401, before anything else and before
any upstream call), body size (413), schema (400 naming the field), queue
(429); then the request waits for its answer until its deadline (504), and a
client that disconnects cancels it, which stops its branches.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError

from autotts.errors import AutottsError
from autotts.executor.backends.openai_backend import UpstreamError, UpstreamTimeout
from autotts.serve.metrics import Metrics
from autotts.serve.prompts import ChatRenderer
from autotts.serve.protocol import (ChatRequest, CompletionRequest, autotts_block, chat_response, completion_response,
                                    error_body, schema_error)
from autotts.serve.scheduler import Cancelled, DeadlineExceeded, Episode, QueueFull, Scheduler, Ticket

log = logging.getLogger("autotts.serve")


@dataclass
class ServeConfig:
    model: str                      # the name clients send and /v1/models lists
    default_controller: str         # key in the scheduler's controllers
    beta: float = 0.5
    seed: int = 0
    shuffle_seed: int = 0
    request_timeout: float = 600.0
    api_key: str | None = None
    max_body_bytes: int = 1 << 20
    traces_kept: int = 1024
    resolve_controller: Callable[[str], Callable[[float], Any]] | None = None  # per-request specs


class Traces:
    """The last `keep` requests' action traces, by trace id (GET /v1/traces/{id})."""

    def __init__(self, keep: int):
        self.keep, self._items = keep, OrderedDict()

    def add(self, trace_id: str, item: dict) -> None:
        self._items[trace_id] = item
        while len(self._items) > self.keep:
            self._items.popitem(last=False)

    def get(self, trace_id: str) -> dict | None:
        return self._items.get(trace_id)


def create_app(scheduler: Scheduler, renderer: ChatRenderer, config: ServeConfig, metrics: Metrics | None = None):
    metrics = metrics or Metrics()
    traces = Traces(config.traces_kept)
    started = {"at": time.time()}

    def finished(ticket: Ticket, answer: Any, err: BaseException | None) -> None:
        seconds = time.monotonic() - (ticket.deadline - ticket.episode.timeout_s)
        status, outcome, _ = _status(err)
        metrics.finish(outcome, seconds, answer, upstream_error=isinstance(err, UpstreamError))
        if answer is not None:
            traces.add(answer.trace_id, {"trace_id": answer.trace_id, "question": ticket.episode.question,
                                         "autotts": autotts_block(answer), "trace": answer.result.trace})
        log.info("request %s %s status=%d tokens=%s seconds=%.3f", ticket.id, outcome, status,
                 answer.result.tokens if answer else "-", seconds)

    scheduler.on_finish = finished

    @asynccontextmanager
    async def lifespan(app):
        scheduler.start()
        yield
        await asyncio.to_thread(scheduler.stop, True)  # SIGTERM: uvicorn stops accepting, in-flight ones drain

    app = FastAPI(title="autotts serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def fail(status: int, message: str, kind: str, outcome: str, param: str | None = None) -> JSONResponse:
        metrics.reject(outcome)
        return JSONResponse(error_body(message, kind, status, param), status_code=status)

    def authorised(request: Request) -> bool:
        if not config.api_key:
            return True
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        return hmac.compare_digest(token.encode(), config.api_key.encode())

    async def body(request: Request) -> bytes | None:
        """The body, or None past the size limit (checked on the header and on the bytes read)."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > config.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def answer(request: Request, schema: type, render: Callable[[Any], str], respond: Callable) -> Any:
        if not authorised(request):
            return fail(401, "missing or wrong API key (send Authorization: Bearer KEY)", "authentication_error",
                        "unauthorized")
        raw = await body(request)
        if raw is None:
            return fail(413, f"request body larger than {config.max_body_bytes} bytes", "invalid_request_error",
                        "too_large")
        try:
            req = schema.model_validate_json(raw or b"{}")
            question = req.question()
        except ValidationError as err:
            field, message = schema_error(err)
            return fail(400, message, "invalid_request_error", "bad_request", field)
        except ValueError as err:
            return fail(400, str(err), "invalid_request_error", "bad_request")
        if req.model != config.model:
            return fail(404, f"model '{req.model}': not served here (this server serves '{config.model}')",
                        "invalid_request_error", "bad_request", "model")
        opts = req.autotts
        try:
            controller = _controller(opts.controller, config, scheduler)
            prompt = await asyncio.to_thread(render, req)
            episode = Episode(question=question, prompt=prompt, controller=controller,
                              beta=config.beta if opts.beta is None else opts.beta,
                              seed=config.seed if req.seed is None else req.seed,
                              shuffle_seed=config.shuffle_seed if opts.shuffle_seed is None else opts.shuffle_seed,
                              max_tokens=req.max_tokens,
                              timeout_s=min(config.request_timeout, opts.timeout or config.request_timeout))
            ticket = scheduler.submit(episode)
        except QueueFull as err:
            return fail(429, str(err), "rate_limit_error", "queue_full")
        except AutottsError as err:
            return fail(400, str(err), "invalid_request_error", "bad_request", "autotts.controller")
        result = await _wait(request, ticket)
        if isinstance(result, BaseException):
            status, _, kind = _status(result)
            return JSONResponse(error_body(str(result), kind, status), status_code=status)
        tokens = await asyncio.to_thread(renderer.prompt_tokens, prompt)
        return respond(result, config.model, tokens)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        render = lambda req: renderer.chat([m.model_dump() for m in req.messages], req.question())  # noqa: E731
        return await answer(request, ChatRequest, render, chat_response)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await answer(request, CompletionRequest, lambda req: renderer.completion(req.question()),
                            completion_response)

    @app.get("/v1/models")
    async def models(request: Request):
        if not authorised(request):
            return fail(401, "missing or wrong API key", "authentication_error", "unauthorized")
        return {"object": "list", "data": [{"id": config.model, "object": "model", "created": int(started["at"]),
                                            "owned_by": "autotts"}]}

    @app.get("/v1/traces/{trace_id}")
    async def trace(trace_id: str, request: Request):
        if not authorised(request):
            return fail(401, "missing or wrong API key", "authentication_error", "unauthorized")
        item = traces.get(trace_id)
        if item is None:
            return JSONResponse(error_body(f"trace '{trace_id}': unknown (only the last {traces.keep} are kept)",
                                           "invalid_request_error", 404), status_code=404)
        return item

    @app.get("/health")
    async def health():
        return {"status": "ok", **scheduler.gauges()}

    @app.get("/metrics")
    async def metrics_text():
        return PlainTextResponse(metrics.render(scheduler.gauges(), scheduler.stats),
                                 media_type="text/plain; version=0.0.4")

    app.state.metrics, app.state.traces, app.state.scheduler, app.state.model = metrics, traces, scheduler, config.model
    return app


async def _wait(request: Any, ticket: Ticket) -> Any:
    """The answer or the error; polls for a disconnected client and enforces the deadline."""
    future = asyncio.wrap_future(ticket.future)
    while True:
        done, _ = await asyncio.wait({future}, timeout=0.05)
        if done:
            err = future.exception()
            return err if err is not None else future.result()
        if await request.is_disconnected():
            ticket.cancel()
            return Cancelled("the client disconnected; its branches were stopped")
        if time.monotonic() > ticket.deadline:
            ticket.cancel()  # the scheduler drops it before its next upstream call
            return DeadlineExceeded(f"no answer within the request's deadline of {ticket.episode.timeout_s:g}s")


def _status(err: BaseException | None) -> tuple[int, str, str]:
    """(HTTP status, metrics outcome, OpenAI error type) of how a request ended."""
    if err is None:
        return 200, "ok", ""
    if isinstance(err, (UpstreamTimeout, DeadlineExceeded)):
        return 504, "timeout", "timeout_error"
    if isinstance(err, UpstreamError):
        return 502, "upstream_error", "upstream_error"
    if isinstance(err, Cancelled):
        return 499, "cancelled", "cancelled"
    if isinstance(err, AutottsError):
        return 400, "bad_request", "invalid_request_error"
    return 500, "error", "server_error"


def _controller(spec: str | None, config: ServeConfig, scheduler: Scheduler) -> str:
    """The scheduler key of a request's controller: the served one, or a baseline spec (checked here)."""
    if spec is None or spec == "default" or spec == config.default_controller:
        return config.default_controller
    if spec not in scheduler.controllers:
        if Path(spec).exists() or config.resolve_controller is None:
            raise AutottsError(f"autotts.controller {spec!r}: only baselines (NAME:KNOB) or the served controller "
                               "may be chosen per request")
        scheduler.controllers[spec] = config.resolve_controller(spec)
    return spec
