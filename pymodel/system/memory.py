"""KV capacity accounting with the DPA reference layout (:mod:`pymodel.dpa`).

A KV *stream* is one (request, layer, KV head): ``DpaLayout.token_bytes`` per token, stored in
chunks of ``DpaLayout.chunk_bytes`` (``cfg.chunk_bytes``, 1 MB = 2048 tokens on aim-gddr6).
STATIC reserves ``chunks_for(T_max)`` per stream at admission; DPA holds ``chunks_for(len)``
(lazy allocation, at most one partly filled chunk per stream).
"""

from __future__ import annotations

from pymodel.config import PimConfig
from pymodel.dpa import DpaLayout


def layout(cfg: PimConfig, d_head: int) -> DpaLayout:
    return DpaLayout.of(cfg, d_head)


def stream_bytes(lay: DpaLayout, tokens: int) -> int:
    """Bytes one stream of ``tokens`` tokens holds in chunks."""
    return lay.chunks_for(tokens) * lay.chunk_bytes


def request_bytes(
    lay: DpaLayout, policy: str, tokens: int, t_max: int, layers: int, kv_heads: int
) -> int:
    """KV bytes one request holds on the ``layers`` layers of a pipeline stage."""
    reserve = t_max if policy == "static" else tokens
    return layers * kv_heads * stream_bytes(lay, reserve)
