"""`/metrics` in the Prometheus text format: requests by outcome, tokens, rounds, branches, time to answer.

Counters are updated when a request ends (`Metrics.finish`) or is turned away
(`Metrics.reject`); gauges (live requests, queued, live branches) and the
scheduler's round timings are read at scrape time.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, float("inf"))
PREFIX = "autotts_serve"


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.tokens = self.rounds = self.branches = self.seq_tokens = self.upstream_errors = 0
        self.latency = [0] * len(BUCKETS)
        self.latency_sum = 0.0
        self.latency_count = 0

    def reject(self, outcome: str) -> None:
        """A request turned away before it ran (401, 400, 413, 429)."""
        with self._lock:
            self.outcomes[outcome] += 1

    def finish(self, outcome: str, seconds: float, answer: Any = None, upstream_error: bool = False) -> None:
        with self._lock:
            self.outcomes[outcome] += 1
            self.upstream_errors += int(upstream_error)
            if answer is not None:
                r = answer.result
                self.tokens += r.tokens
                self.rounds += r.rounds
                self.branches += len(r.branch_tokens)
                self.seq_tokens += r.seq_tokens
            for i, edge in enumerate(BUCKETS):
                if seconds <= edge:
                    self.latency[i] += 1
            self.latency_sum += seconds
            self.latency_count += 1

    def render(self, gauges: dict[str, int], stats: Any) -> str:
        """The exposition text (counters, the time-to-answer histogram, gauges, round timings)."""
        p = PREFIX
        with self._lock:
            lines = [f"# TYPE {p}_requests_total counter"]
            lines += [f'{p}_requests_total{{outcome="{k}"}} {v}' for k, v in sorted(self.outcomes.items())]
            for name, value, doc in (("tokens", self.tokens, "tokens generated on all branches of answered requests"),
                                     ("sequential_tokens", self.seq_tokens,
                                      "critical-path tokens of answered requests"),
                                     ("rounds", self.rounds, "rounds of answered requests"),
                                     ("branches", self.branches, "branches opened by answered requests"),
                                     ("upstream_errors", self.upstream_errors, "requests failed by the upstream")):
                lines += [f"# HELP {p}_{name}_total {doc}", f"# TYPE {p}_{name}_total counter",
                          f"{p}_{name}_total {value}"]
            lines.append(f"# TYPE {p}_time_to_answer_seconds histogram")
            for edge, count in zip(BUCKETS, self.latency):
                le = "+Inf" if edge == float("inf") else f"{edge:g}"
                lines.append(f'{p}_time_to_answer_seconds_bucket{{le="{le}"}} {count}')
            lines += [f"{p}_time_to_answer_seconds_sum {self.latency_sum:.6f}",
                      f"{p}_time_to_answer_seconds_count {self.latency_count}"]
        for name, value in gauges.items():
            lines += [f"# TYPE {p}_{name} gauge", f"{p}_{name} {value}"]
        for name in ("rounds", "controller_calls"):
            lines += [f"# TYPE {p}_scheduler_{name}_total counter",
                      f"{p}_scheduler_{name}_total {getattr(stats, name)}"]
        for name in ("proxy_s", "upstream_s", "round_s"):
            metric = f"{p}_scheduler_{name[:-2]}_seconds_total"
            lines += [f"# TYPE {metric} counter", f"{metric} {getattr(stats, name):.6f}"]
        return "\n".join(lines) + "\n"
