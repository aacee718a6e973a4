"""The exported-controller artifact: write and load ``controller.pt`` + ``manifest.json``.

Below evaluate, discovery and executor, which all use it: discovery writes it,
`eval`/`report`/`trace` evaluate it in replay, the executor runs it live.
"""
