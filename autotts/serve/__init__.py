"""`autotts serve`: an OpenAI-compatible test-time-scaling proxy in front of a completions server.

protocol (request/response schemas), routes (HTTP), scheduler (rounds, no HTTP), metrics (Prometheus text).
Never imports training code.
"""
