"""`make bench`: Tocsin's gateway beside the bare `websockets` server (the limit) and a minimal
Starlette relay (the floor), on loopback, each server pinned to core 0 and the load to core 1.

`python -m bench` (short profile), `python -m bench --full`, `python -m bench --self-check`.
"""
