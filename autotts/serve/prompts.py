"""Chat messages -> the prompt text the model reads, rendered with the served model's chat template.

With a local tokenizer (``--tokenizer DIR``) its chat template renders the
messages; without one, the upstream renders them with its own template (vLLM's
``/tokenize`` + ``/detokenize``). A tokenizer without a chat template falls
back to ``--prompt-template`` on the last user message, which is what
`autotts collect` and `autotts run` read, so replay and serving see the same text.
"""

from __future__ import annotations

import threading
from typing import Any

from autotts.errors import AutottsError
from autotts.executor.options import format_prompt


class ChatRenderer:
    def __init__(self, template: str, tokenizer: str | None = None, upstream: str | None = None,
                 model: str | None = None, api_key: str = "EMPTY", timeout: float = 30.0):
        self.template, self.upstream, self.model = template, upstream, model
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self.timeout = timeout
        self.tokenizer: Any = None
        self._lock = threading.Lock()
        if tokenizer:
            from transformers import AutoTokenizer

            try:
                self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)
            except (OSError, ValueError) as err:
                raise AutottsError(f"--tokenizer {tokenizer}: cannot load a tokenizer ({str(err).splitlines()[0]})") \
                    from None

    def completion(self, prompt: str) -> str:
        """A completions request's prompt: the prompt template applied, as in `autotts run`."""
        return format_prompt(self.template, prompt)

    def chat(self, messages: list[dict], question: str) -> str:
        if self.tokenizer is not None:
            if not getattr(self.tokenizer, "chat_template", None):
                return format_prompt(self.template, question)
            with self._lock:  # fast tokenizers are not thread-safe
                return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self._upstream_chat(messages)

    def prompt_tokens(self, prompt: str) -> int:
        """Prompt tokens for `usage` (0 without a local tokenizer: the upstream is not asked just for this)."""
        if self.tokenizer is None:
            return 0
        with self._lock:
            return len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def _upstream_chat(self, messages: list[dict]) -> str:
        import httpx

        root = (self.upstream or "").rstrip("/").removesuffix("/v1")
        try:
            ids = httpx.post(f"{root}/tokenize", headers=self._headers, timeout=self.timeout,
                             json={"model": self.model, "messages": messages, "add_generation_prompt": True,
                                   "add_special_tokens": False})
            ids.raise_for_status()
            text = httpx.post(f"{root}/detokenize", headers=self._headers, timeout=self.timeout,
                              json={"model": self.model, "tokens": ids.json()["tokens"]})
            text.raise_for_status()
            return text.json()["prompt"]
        except (httpx.HTTPError, KeyError, ValueError) as err:
            raise AutottsError(f"chat request: the upstream cannot render the chat template ({type(err).__name__}); "
                               "start the server with --tokenizer DIR of the served model") from None
