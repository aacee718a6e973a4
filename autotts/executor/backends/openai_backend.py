"""An OpenAI-compatible completions server (vLLM, SGLang, TGI) as a backend.

Each branch is its prompt plus the text generated so far; extending it sends
one completions request per branch (concurrently) with ``max_tokens`` = the
budget and a seed derived from the branch seed and the request's index, so a
branch's text depends only on its own history, never on its batch. Token
counts come from the server's ``usage.completion_tokens``; a reply that ends
before its budget must say ``finish_reason = "stop"`` (EOS, which counts as a
token as in vLLM). Timeouts, connection errors and 5xx/429 replies are
retried with exponential backoff by the ``openai`` client; what is left
becomes one `AutottsError` line naming the server and the cause. Idle
connections expire before the server's keep-alive closes them (`_http_client`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from autotts.errors import AutottsError
from autotts.executor.backends.base import SEED_STRIDE, Branch, Sampling


class UpstreamError(AutottsError):
    """The server failed a request (connection, HTTP status, malformed reply): a server answers 502."""


class UpstreamTimeout(UpstreamError):
    """The server did not reply in time: a server answers 504."""


@dataclass
class _Text:
    text: str = ""
    calls: int = 0  # requests made so far: part of the next request's seed


@dataclass(frozen=True)
class _Reply:
    text: str
    tokens: int
    finish: str | None
    prompt_tokens: int | None


class OpenAIBackend:
    """Concurrent completions requests; see the module docstring for the contract with the server."""

    name = "openai"

    def __init__(self, model: str, base_url: str, api_key: str = "EMPTY", sampling: Sampling = Sampling(),
                 timeout: float = 120.0, retries: int = 3, concurrency: int = 16):
        import openai

        self.model, self.base_url, self.sampling = model, base_url.rstrip("/"), sampling
        self.timeout, self.retries = float(timeout), int(retries)
        self.client = openai.OpenAI(base_url=self.base_url, api_key=api_key, timeout=self.timeout,
                                    max_retries=self.retries, http_client=_http_client(concurrency))
        self.pool = ThreadPoolExecutor(max_workers=max(1, int(concurrency)))

    def open(self, prompt: str, seeds: Sequence[int]) -> list[Branch]:
        return [Branch(prompt=prompt, seed=int(s), state=_Text()) for s in seeds]

    def extend(self, branches: Sequence[Branch], budgets: Sequence[int]) -> None:
        work = [(b, n) for b, n in zip(branches, budgets) if n > 0 and not b.eos]
        replies = self._map(lambda bn: self._complete(bn[0].prompt + bn[0].state.text, bn[1], self.sampling,
                                                      _request_seed(bn[0])), work)
        for (b, n), reply in zip(work, replies):
            self._check_length(reply, n)
            b.state.text += reply.text
            b.state.calls += 1
            b.tokens += reply.tokens
            b.eos = reply.finish == "stop"

    def probe(self, branches: Sequence[Branch], cue: str, max_tokens: int,
              done: Callable[[str], bool] | None = None) -> list[str]:
        greedy = Sampling(temperature=0.0, top_p=1.0)
        replies = self._map(lambda b: self._complete(b.prompt + b.state.text + cue, max_tokens, greedy, None),
                            list(branches))
        return [r.text for r in replies]

    def text(self, branch: Branch) -> str:
        return branch.state.text

    def release(self, branches: Sequence[Branch]) -> None:
        pass  # the server holds no per-branch state

    def count_tokens(self, text: str) -> int:
        reply = self._complete(text, 1, Sampling(temperature=0.0), None)
        if reply.prompt_tokens is None:
            raise UpstreamError(f"{self.base_url}: malformed reply (no usage.prompt_tokens)")
        return reply.prompt_tokens

    # ---- requests -----------------------------------------------------------------------------

    def _map(self, fn: Callable[[Any], _Reply], items: list) -> list[_Reply]:
        return list(self.pool.map(fn, items))

    def _complete(self, prompt: str, max_tokens: int, sampling: Sampling, seed: int | None) -> _Reply:
        import openai

        kwargs: dict[str, Any] = {"model": self.model, "prompt": prompt, "max_tokens": int(max_tokens),
                                  "temperature": sampling.temperature, "top_p": sampling.top_p}
        if seed is not None:
            kwargs["seed"] = seed
        try:
            resp = self.client.completions.create(**kwargs)
        except openai.APITimeoutError:
            raise UpstreamTimeout(f"{self.base_url}: no reply within {self.timeout:g}s "
                               f"({self.retries + 1} attempts; raise --timeout or check the server)") from None
        except openai.APIConnectionError as err:
            raise UpstreamError(f"{self.base_url}: cannot connect ({_cause(err)}); is the server running?") from None
        except openai.APIStatusError as err:
            raise UpstreamError(f"{self.base_url}: HTTP {err.status_code} from the server "
                               f"({_short(err.message)})") from None
        except openai.APIError as err:  # e.g. a body that is not JSON
            raise UpstreamError(f"{self.base_url}: malformed reply ({_short(str(err))})") from None
        return self._parse(resp)

    def _parse(self, resp: Any) -> _Reply:
        """Validate the fields this backend relies on; anything else is a malformed reply."""
        choices = getattr(resp, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise UpstreamError(f"{self.base_url}: malformed reply (expected a non-empty 'choices' list, "
                               f"got {_short(repr(resp))})")
        choice = choices[0]
        text = getattr(choice, "text", None)
        finish = getattr(choice, "finish_reason", None)
        usage = getattr(resp, "usage", None)
        tokens = getattr(usage, "completion_tokens", None)
        if not isinstance(text, str):
            raise UpstreamError(f"{self.base_url}: malformed reply (choices[0].text is {_short(repr(text))})")
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
            raise UpstreamError(f"{self.base_url}: malformed reply (usage.completion_tokens is {_short(repr(tokens))}; "
                               "token accounting needs it)")
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        return _Reply(text, tokens, finish, prompt_tokens if isinstance(prompt_tokens, int) else None)

    def _check_length(self, reply: _Reply, budget: int) -> None:
        if reply.tokens > budget or (reply.tokens < budget and reply.finish != "stop"):
            raise UpstreamError(f"{self.base_url}: malformed reply ({reply.tokens} tokens with finish_reason "
                               f"{reply.finish!r} for max_tokens={budget}; expected {budget} tokens or 'stop')")


KEEPALIVE_EXPIRY_S = 2.0


def _http_client(concurrency: int) -> Any:
    """The openai client's pool, but idle connections dropped after 2 s: uvicorn (vLLM, `transformers serve`)
    closes them after 5 s, the client's default expiry, so a request could reuse a connection the server was
    closing ("Server disconnected without sending a response"); after a burst every pooled connection is
    equally old, so a retry could meet another stale one."""
    import httpx
    import openai

    return openai.DefaultHttpxClient(limits=httpx.Limits(max_connections=max(100, 2 * int(concurrency)),
                                                         max_keepalive_connections=max(16, int(concurrency)),
                                                         keepalive_expiry=KEEPALIVE_EXPIRY_S))


def _request_seed(branch: Branch) -> int:
    """Seed of the branch's next request: its own seed and how many requests it has made."""
    return (branch.seed * SEED_STRIDE + branch.state.calls) % (2**31 - 1)


def _cause(err: BaseException) -> str:
    root: BaseException = err
    while root.__cause__ is not None or root.__context__ is not None:
        root = root.__cause__ or root.__context__
    text = str(root) or type(root).__name__
    return _short(text)


def _short(text: str, limit: int = 120) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
