"""KV capacity accounting with the DPA reference layout (:mod:`pymodel.golden.dpa`).

A KV *stream* is one (request, layer, KV head), stored in chunks of ``DpaLayout.chunk_bytes``
(``cfg.chunk_bytes``, 1 MB = 2048 tokens on aim-gddr6 at d_head 128; a head size that does not
divide the row pads each KV block, see :class:`pymodel.golden.dpa.DpaLayout`). STATIC reserves
``chunks_for(T_max)`` per stream at admission; DPA holds ``chunks_for(len)`` (lazy allocation, at
most one partly filled chunk per stream). A sliding-window layer keeps its last ``window`` tokens
as a ring: STATIC reserves ``min(T_max, window)``, DPA holds the chunks the live window spans
(at most one more than the window needs, the partly expired oldest chunk).

``"rows"`` is NeuPIMs' allocator (casys-kaist/NeuPIMs ``KVCacheAlloc``: a FIFO of free DRAM rows
per channel, a row popped when a stream's tokens outgrow its rows): the same lazy accounting as
DPA with one KV block (a K row and a V row, ``block_tokens`` tokens) as the unit instead of a
chunk.
"""

from __future__ import annotations

from pymodel.config import PimConfig
from pymodel.golden.dpa import ROWS_PER_BLOCK, DpaConfigError, DpaLayout, qk_template, sv_template
from pymodel.system.errors import SystemSimError
from pymodel.system.models import ModelSpec


def layout(cfg: PimConfig, model: ModelSpec, dpa: bool) -> DpaLayout:
    """The KV layout of ``model``'s head size, or a clear error when the kernels (or, with
    ``dpa``, the DPA templates) cannot hold it."""
    what = "the QK^T/SV layouts"
    try:
        lay = DpaLayout.of(cfg, model.d_head)
        if dpa:
            what = "DPA memory"
            qk_template(cfg, 0, model.d_head)
            sv_template(cfg, 0, d_head=model.d_head)
    except DpaConfigError as exc:
        raise SystemSimError(
            f"model {model.name}: head_dim {model.d_head} unsupported by {what}: {exc}"
        ) from None
    return lay


MEMORY_POLICIES = ("static", "dpa", "rows")


def unit_tokens(lay: DpaLayout, policy: str) -> int:
    """Tokens of one allocation unit: a KV block (``rows``) or a chunk (``static``, ``dpa``)."""
    return lay.block_tokens if policy == "rows" else lay.chunk_tokens


def unit_bytes(lay: DpaLayout, policy: str) -> int:
    return ROWS_PER_BLOCK * lay.row_bytes if policy == "rows" else lay.chunk_bytes


def stream_chunks(lay: DpaLayout, policy: str, tokens: int, t_max: int, window: int = 0) -> int:
    """Allocation units one stream holds at length ``tokens`` (``window``: sliding-window
    layer)."""
    unit = unit_tokens(lay, policy)
    if policy == "static":
        return -(-(min(t_max, window) if window else t_max) // unit)
    if window and tokens > window:
        return min(-(-tokens // unit), -(-window // unit) + 1)
    return -(-tokens // unit)


def stage_layers(model: ModelSpec, layers_s: int) -> list[tuple[int, int]]:
    """(layers, window) of the fullest pipeline stage of ``layers_s`` layers: global layers
    first (they hold the most KV), local layers in proportion."""
    glob = model.layers - model.local_layers
    g = min(layers_s, -(-layers_s * glob // model.layers))
    out = [(g, 0)] if g else []
    if layers_s - g:
        out.append((layers_s - g, model.sliding_window))
    return out


def request_bytes(
    lay: DpaLayout, policy: str, tokens: int, t_max: int, model: ModelSpec, layers_s: int
) -> int:
    """KV bytes one request holds on the ``layers_s`` layers of a pipeline stage."""
    chunks = sum(
        n * stream_chunks(lay, policy, tokens, t_max, w) for n, w in stage_layers(model, layers_s)
    )
    return chunks * model.kv_heads * unit_bytes(lay, policy)
