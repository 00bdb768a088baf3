"""PIM compiler: dialect round trip, passes, errors with locations, CLI, golden-model numerics,
and identical cycles for the compiled and the hand-built (pymodel.golden.kernels) streams."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from xdsl.printer import Printer

from pymodel.cli import main
from pymodel.compiler.execute import kernel_streams, run_attention, run_gemv
from pymodel.compiler.frontend import CompileError, context, parse_layer
from pymodel.compiler.layout import AttnShape
from pymodel.compiler.passes import MatchPass, PartitionPass
from pymodel.compiler.pipeline import Compiled, compile_layer
from pymodel.golden.bf16 import U16, from_bf16, random_bf16, to_bf16
from pymodel.golden.decode import EpuSoftmax, attention_error_bound, reference_attention
from pymodel.golden.dpa import qk_template, sv_template
from pymodel.golden.kernels import KernelError, QkKernel, SvKernel
from pymodel.golden.sched import Mode, run_kernel
from pymodel.isa import InstOp, decode_inst, encode_inst

EXAMPLES = Path(__file__).resolve().parents[1] / "pymodel" / "compiler" / "examples"
TINY = (EXAMPLES / "tiny.mlir").read_text()
TINY128 = (EXAMPLES / "tiny-d128.mlir").read_text()  # d_head 128: the DPA KV layout


def _print(op: object, generic: bool = False) -> str:
    s = io.StringIO()
    Printer(stream=s, print_generic_format=generic).print_op(op)  # type: ignore[arg-type]
    return s.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("memory", ["static", "dpa"])
def test_pim_ir_round_trips(memory: str) -> None:
    c = compile_layer(TINY128, "tiny.mlir", partition="tcp", memory=memory, batch=2)
    for generic in (False, True):
        text = _print(c.module, generic)
        again = parse_layer(text, "again.mlir")
        again.verify()
        assert _print(again) == _print(c.module)


def test_match_finds_kernels_and_gqa_group() -> None:
    m = parse_layer(TINY, "tiny.mlir")
    MatchPass().apply(context(), m)
    PartitionPass(tp=1, pp=1).apply(context(), m)
    text = _print(m)
    for role in ("q_proj", "k_proj", "v_proj", "o_proj", "ffn_gate", "ffn_up", "ffn_down"):
        assert f'sym_name = "{role}"' in text
    assert "pim.qk" in text and "pim.sv" in text and "pim.softmax" in text
    assert "group = 2" in text and text.count("pim.kv_write") == 2
    assert "stablehlo.dot_general" not in text


def test_partition_tp_and_pp() -> None:
    c = compile_layer(TINY, "t", modules=2, pp=1)
    assert sorted(c.programs) == [0, 1]
    assert {k["module"] for k in c.table["kernels"] if k["kind"] == "qk"} == {0, 1}
    c = compile_layer(TINY, "t", modules=2, pp=2, layer=1)  # tiny has 2 layers: stage 1
    assert sorted(c.programs) == [1]
    with pytest.raises(CompileError, match="not divisible by tp = 4"):
        compile_layer(TINY, "t", modules=4)


def test_dpa_program_size_constant_static_grows() -> None:
    sizes = {}
    for mem in ("static", "dpa"):
        for t in (128, 1024):
            c = compile_layer(TINY128, "t", memory=mem, context_tokens=t)
            sizes[mem, t] = len(c.programs[0])
    assert sizes["dpa", 128] == sizes["dpa", 1024]
    assert sizes["static", 1024] > sizes["static", 128]


def test_emitted_words_decode() -> None:
    c = compile_layer(TINY128, "t", memory="dpa")
    prog = c.programs[0]
    assert [decode_inst(encode_inst(i, c.cfg), c.cfg) for i in prog] == prog
    assert any(i.op is InstOp.DYN_LOOP for i in prog)


@pytest.mark.parametrize(
    "edit, message",
    [
        (("stablehlo.rsqrt", "stablehlo.cosine"), r"tiny.mlir:21:5: unsupported op"),
        (("tensor<128x2x16xbf16>", "tensor<128x2x17xbf16>"), r"tiny.mlir:\d+:\d+: "),
    ],
)
def test_bad_input_names_location(edit: tuple[str, str], message: str) -> None:
    with pytest.raises(CompileError, match=message):
        compile_layer(TINY.replace(*edit), "tiny.mlir")


def test_does_not_fit_device(tmp_path: Path) -> None:
    small = tmp_path / "small.toml"
    small.write_text("[geometry]\nrows_per_bank = 8\n[dpa]\nchunk_rows = 4\n")
    with pytest.raises(CompileError, match=r"tiny.mlir:\d+:\d+: .*rows"):
        compile_layer(TINY, "tiny.mlir", config=str(small), context_tokens=4096)


def test_cli_compile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = tmp_path / "tiny.mlir"
    layer.write_text(TINY128)
    out = tmp_path / "out"
    argv = ["compile", str(layer), "--memory", "dpa", "--partition", "hfp", "-o", str(out)]
    assert main(argv) == 0
    table = json.loads((out / "table.json").read_text())
    n = table["program"]["files"]["0"]["instructions"]
    assert (out / "module0.bin").stat().st_size == n * -(-table["program"]["inst_bits"] // 8)
    assert {"kernels", "buffers", "requests", "steps", "dpa"} <= table.keys()
    assert main(["compile", str(layer), "--emit", "pim"]) == 0
    assert "pim.program" in capsys.readouterr().out
    bad = tmp_path / "bad.mlir"
    bad.write_text(TINY128.replace("stablehlo.exponential", "stablehlo.erf"))
    assert main(["compile", str(bad), "-o", str(out)]) == 2
    assert "pimphony: error: " in capsys.readouterr().err


def test_compiled_streams_equal_hand_built_cycles() -> None:
    """Same instruction streams -> same cycles: compiled STATIC QK^T/SV vs
    pymodel.golden.kernels."""
    c = compile_layer(TINY, "t", partition="hfp", memory="static")
    streams = dict(kernel_streams(c, 0, 1))
    qk_info = next(k for k in c.table["kernels"] if k["kind"] == "qk")
    sv_info = next(k for k in c.table["kernels"] if k["kind"] == "sv")
    qk_kern = QkKernel(128, c.cfg, 16, 2, base_row=qk_info["base_row"], acc_init="clear")
    sv_kern = SvKernel(128, c.cfg, d_head=16, base_row=sv_info["base_row"], acc_init="clear")
    qk, sv = qk_kern.program(), sv_kern.program()
    assert streams[qk_info["name"]] == qk and streams[sv_info["name"]] == sv
    for mode in (Mode.STATIC, Mode.DCS):
        for mine, ref in ((streams[qk_info["name"]], qk), (streams[sv_info["name"]], sv)):
            a = run_kernel(c.cfg, mode, mine).stats.cycles
            assert a == run_kernel(c.cfg, mode, ref).stats.cycles > 0


# ---------------------------------------------------------------------------- numerics

U = 2.0**-8  # bf16 round-to-nearest: relative error <= 2^-8 (8 significant bits)
F = 2.0**-24  # float32 addition


def _attention_bound(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """float64 reference and a rigorous-by-construction error bound for the PIM attention.

    Scores: bf16 rounding of an fp32 tree sum: |ds| <= U|s| + (d/16 + 4) F sum|q||k|. Softmax of
    perturbed scores changes each p by a factor within exp(+-2 max|ds|/sqrt(d)); p is rounded to
    bf16 (U). SV: fp32 sums ((T/16 + 4) F), TCP partials rounded to bf16 (U) then the output
    (U). So |o - o64| <= eps * sum p|v| + U (|o64| + eps * sum p|v|)."""
    qf, kf, vf = (from_bf16(a).astype(np.float64) for a in (q, k, v))
    d, t = q.shape[-1], k.shape[0]
    s = np.einsum("kgd,tkd->kgt", qf, kf)
    mag = np.einsum("kgd,tkd->kgt", np.abs(qf), np.abs(kf))
    ds = (U * np.abs(s) + (d / 16 + 4) * F * mag)[..., :length].max() / np.sqrt(d)
    s = s / np.sqrt(d)
    s[..., length:] = -np.inf
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    o = np.einsum("kgt,tkd->kgd", p, vf)
    m = np.einsum("kgt,tkd->kgd", p, np.abs(vf))
    eps = (np.exp(2 * ds) * (1 + U) * (1 + 2.0**-20) - 1) + U + (t / 16 + 4) * F
    return o, eps * m + U * (np.abs(o) + eps * m)


def _check_attention(
    c: Compiled, q: np.ndarray, k: np.ndarray, v: np.ndarray, lengths: list[int]
) -> float:
    """Run one decode step (token length-1 appended by the compiled kernels) and check every
    request against the bound; returns the largest error seen."""
    o, _ = run_attention(c, q, k, v, lengths)
    worst = 0.0
    for b, n in enumerate(lengths):
        ref, bound = _attention_bound(q[b], k[b], v[b], n)
        err = np.abs(from_bf16(o[b]) - ref)
        assert (err <= bound).all(), (b, float((err / bound).max()))
        worst = max(worst, float(err.max()))
    return worst


@pytest.mark.parametrize("partition", ["hfp", "tcp"])
@pytest.mark.parametrize("memory", ["static", "dpa"])
def test_attention_matches_numpy_within_bound(partition: str, memory: str) -> None:
    """Batch 2, different lengths, each request's newest token appended by the compiled
    KV-append kernels (DPA: the dispatcher's APPEND after GROW)."""
    rng = np.random.default_rng(7)
    c = compile_layer(TINY128, "t", partition=partition, memory=memory, batch=2)
    q = random_bf16(rng, (2, 2, 2, 128))
    k = random_bf16(rng, (2, 128, 2, 128))
    v = random_bf16(rng, (2, 128, 2, 128))
    _check_attention(c, q, k, v, [77, 128])


@pytest.mark.slow
def test_dpa_attention_spans_chunks_and_channels() -> None:
    """A request of 2100 tokens holds two 2048-token chunks on two channels (TCP spreading):
    its blocks' scores and SV partial sums come from both and are combined by the EPU."""
    rng = np.random.default_rng(11)
    c = compile_layer(TINY128, "t", memory="dpa", context_tokens=2304, batch=2)
    q = random_bf16(rng, (2, 2, 2, 128))
    k = random_bf16(rng, (2, 2304, 2, 128))
    v = random_bf16(rng, (2, 2304, 2, 128))
    chans = (0, 1, 2, 31)
    streams = {ch: dict(kernel_streams(c, 0, ch, [2100, 300]))["qk.m0.b0.h0.q0"] for ch in chans}
    assert all(s[0].op is InstOp.WR_INP for s in streams.values())  # the query: broadcast
    macs = {ch: sum(i.op is InstOp.MAC for i in s) for ch, s in streams.items()}
    assert macs == {0: 16 * 8, 1: 1 * 8, 2: 0, 31: 0}  # id 0: chunk v on channel (0 + v) % 32
    _check_attention(c, q, k, v, [2100, 300])


@pytest.mark.slow
def test_kv_append_is_what_the_step_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The newest token dominates query 0 (its K = 8 q): the output follows its V only if the
    compiled KV append wrote it; with the append dropped the same check fails."""
    import pymodel.compiler.execute as ex

    rng = np.random.default_rng(5)
    q = random_bf16(rng, (1, 2, 2, 128))
    k = random_bf16(rng, (1, 128, 2, 128))
    v = random_bf16(rng, (1, 128, 2, 128))
    n = 77
    k[0, n - 1] = to_bf16(from_bf16(q[0, :, 0]) * 8)
    real = ex.expand_kernel

    def no_append(c: Compiled, kern: dict[str, object], *a: object) -> list[object]:
        return [] if kern["kind"] == "kv_append" else real(c, kern, *a)  # type: ignore[arg-type]

    for partition, memory in (("hfp", "static"), ("tcp", "static"), ("tcp", "dpa")):
        c = compile_layer(TINY128, "t", partition=partition, memory=memory)
        _check_attention(c, q, k, v, [n])
        monkeypatch.setattr(ex, "expand_kernel", no_append)
        with pytest.raises(AssertionError):
            _check_attention(c, q, k, v, [n])
        monkeypatch.setattr(ex, "expand_kernel", real)


def test_dpa_kernels_are_the_dpa_templates() -> None:
    """One DPA semantics: the compiled loops are pymodel.golden.dpa's templates, expanded by it."""
    c = compile_layer(TINY128, "t", memory="dpa", batch=2)
    by_name = {kk["name"]: kk for kk in c.table["kernels"]}
    win = {"first": 0, "count": 2046}  # one softmax segment: the GPR holds 2046 blocks' scores
    for name, tpl in (
        ("qk.m0.b1.h1.q0", qk_template(c.cfg, 3, **win)),
        ("sv.m0.b1.h1.q1", sv_template(c.cfg, 3, score_gpr=8, out_gpr=16376, **win)),
    ):
        p = by_name[name]["program"]
        assert c.programs[0][p["start"] : p["start"] + p["count"]] == tpl
    assert c.table["requests"][1]["modules"]["0"]["dpa_ids"] == [2, 3]
    assert c.table["dpa"]["reserve"]["0"] == [{"req": 63, "tokens": 32 * 2048}]
    assert c.table["dpa"]["max_tokens_per_request"] == 2046 * 128
    assert by_name["kv_append.m0.b1.h1"]["program"]["count"] == 1  # one APPEND per id and step


def test_dpa_segments_cover_a_million_tokens() -> None:
    """At a 1M-token context the DPA program holds ceil(8192 / 2046) = 5 segments per query
    head; a request of 1,048,576 tokens is accepted by the runtime, one more block is not."""
    c = compile_layer(TINY128, "t", memory="dpa", context_tokens=1 << 20)
    t = c.table["dpa"]
    assert (t["segments"], t["segment_blocks"]) == (5, 2046)
    assert t["max_tokens_per_request"] >= 1 << 20
    names = {kk["name"] for kk in c.table["kernels"]}
    assert {f"qk.m0.b0.h0.q0.s{s}" for s in range(5)} <= names
    assert "qk.m0.b0.h0.q0.s5" not in names


def test_dpa_rejects_a_head_size_the_layout_cannot_hold() -> None:
    with pytest.raises(CompileError, match=r"tiny.mlir:\d+:\d+: .*DPA \(d_head = 16\)"):
        compile_layer(TINY, "tiny.mlir", memory="dpa")


def _small(tmp_path: Path, text: str) -> str:
    cfg = tmp_path / "small.toml"
    cfg.write_text(text)
    return str(cfg)


#: 2 channels and a 192-entry GPR: one STATIC softmax segment of tiny-d128 is 1024 local tokens
#: (whole K rows of 128 tokens and V blocks of 1024; 2 queries x 2048/16 scores do not fit)
SMALL_GPR = "[module]\nchannels = 2\ngpr_bytes = 6144\n"


def _check_segmented(c: Compiled, q: U16, k: U16, v: U16, lengths: list[int]) -> float:
    """One decode step against float64 numpy within pymodel.golden.decode's segmented bound
    (the DPA path's): per query head, segments = those holding a real token, channels = the
    partial sums per segment (HFP 1, TCP the channels). Returns the worst error / bound."""
    o, _ = run_attention(c, q, k, v, lengths)
    qk = next(kk for kk in c.table["kernels"] if kk["kind"] == "qk")
    a = AttnShape(c.cfg, qk["kv_heads"], qk["group"], qk["d_head"], qk["tokens"], qk["layout"])
    span = a.segment_tokens * (a.channels if a.layout == "tcp" else 1)  # global tokens a segment
    chans = 1 if a.layout == "hfp" else a.used_channels
    worst = 0.0
    for b, n in enumerate(lengths):
        for h in range(q.shape[1]):
            for g in range(q.shape[2]):
                ref = reference_attention(q[b, h, g], k[b, :n, h], v[b, :n, h])
                bound = attention_error_bound(
                    q[b, h, g], k[b, :n, h], v[b, :n, h], -(-n // span), chans
                )
                err = np.abs(from_bf16(o[b, h, g]) - ref)
                worst = max(worst, float((err / bound).max()))
    return worst


@pytest.mark.slow
@pytest.mark.parametrize("partition", ["hfp", "tcp"])
def test_static_segmented_softmax_within_the_dpa_bound(
    partition: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STATIC attention over several softmax segments (a 192-entry GPR holds 1024 tokens' scores
    per channel): the EPU's running max/sum (EpuSoftmax, the DPA path's) gives outputs within the
    segmented bound; the newest token of request 0 is in its last segment and dominates query 0,
    so an EPU that does not rescale its accumulator (a planted bug) fails the bound."""
    import pymodel.compiler.execute as ex

    t = 4096 if partition == "tcp" else 3000
    c = compile_layer(
        TINY128,
        "t",
        partition=partition,
        config=_small(tmp_path, SMALL_GPR),
        context_tokens=t,
        batch=2,
    )
    qk = [kk for kk in c.table["kernels"] if kk["kind"] == "qk"]
    segs = qk[0]["static_segment"]["of"]
    assert segs == -(-qk[0]["local_tokens"] // 1024) >= 2
    assert len(qk) == 2 * segs * (1 if partition == "hfp" else 2)  # HFP: 1 round; TCP: per head
    rng = np.random.default_rng(3)
    q = random_bf16(rng, (2, 2, 2, 128))
    k = random_bf16(rng, (2, t, 2, 128))
    v = random_bf16(rng, (2, t, 2, 128))
    lengths = [t - 5, 1100]  # request 1 leaves the last segment(s) empty: zero weights
    k[0, lengths[0] - 1] = to_bf16(from_bf16(q[0, :, 0]) * 8)
    assert _check_segmented(c, q, k, v, lengths) <= 1

    class NoRescale(EpuSoftmax):
        def weights(self, scores: U16, padded: int) -> U16:
            acc = self.acc.copy()
            w = super().weights(scores, padded)
            self.acc = acc  # forgets exp(m_old - m)
            return w

    monkeypatch.setattr(ex, "EpuSoftmax", NoRescale)
    assert _check_segmented(c, q, k, v, lengths) > 1


@pytest.mark.slow
def test_hfp_static_64k_is_segmented() -> None:
    """LLM-7B-128K-GQA, HFP STATIC at 64K: the whole head's scores (4 x 4096 + 32 entries) do not
    fit the GPR; the compile splits them into segments of the most whole 1024-token units whose
    4-query scores fit below the GPR's last entry."""
    text = (EXAMPLES / "llm-7b-128k-gqa.mlir").read_text()
    c = compile_layer(text, "7b.mlir", partition="hfp", context_tokens=65536)
    seg = next(kk for kk in c.table["kernels"] if kk["kind"] == "qk")["static_segment"]
    entries = c.cfg.module.gpr_bytes // c.cfg.geometry.column_bytes
    per = (entries - 1 - 4 * 8) // 4 * 16 // 1024 * 1024  # group 4, d_head / 16 = 8 query entries
    assert (seg["of"], seg["tokens"]) == (-(-65536 // per), per)


def test_hfp_static_kv_channels_fill_exactly_at_one_million() -> None:
    """The geometry of HFP STATIC at 1M tokens (LLM-7B-128K-GQA and -72B on 8 modules: one KV
    head per KV channel, d_head 128): K takes T/16 slots, 8 per row; V T/1024 blocks x 8 dim
    slots; together every row of a bank, one more token does not fit."""
    cfg = compile_layer(TINY128, "t").cfg
    rows = cfg.geometry.rows_per_bank
    for group in (4, 8):
        a = AttnShape(cfg, 1, group, 128, 1 << 20, "hfp")
        assert a.kv_rows() == (1 << 20) // 16 // 8 + (1 << 20) // 1024 * 8 == rows
        assert (a.k_rows, a.v_rows) == (rows // 2, rows // 2)


def test_hfp_static_weights_move_off_the_kv_channels(tmp_path: Path) -> None:
    """When K+V and the weights do not fit one bank but K+V alone does, the GEMVs go to the
    channels holding no KV (and compute the same); past the KV channel's rows the compile is
    refused naming the most tokens that fit, computed from the geometry."""
    small = _small(tmp_path, "[geometry]\nrows_per_bank = 64\n")
    shared = compile_layer(TINY128, "t", partition="hfp", config=small, context_tokens=1024)
    cfg = shared.cfg
    weights = sum(r["rows"] for r in shared.table["buffers"]["0"] if r["kind"] == "weights")
    assert {kk.get("first_channel", 0) for kk in shared.table["kernels"]} == {0}

    def kv_rows(n: int) -> int:  # one KV head per channel (tiny-d128: 2 KV heads, group 2)
        try:
            return AttnShape(cfg, 2, 2, 128, n, "hfp").kv_rows()
        except KernelError:
            return 65

    fit = max(n for n in range(16, 64 * 1024, 16) if kv_rows(n) <= 64)
    assert kv_rows(fit) + weights > 64  # the weights cannot share the KV channels at ``fit``
    apart = compile_layer(TINY128, "t", partition="hfp", config=small, context_tokens=fit)
    gemvs = [kk for kk in apart.table["kernels"] if kk["kind"] == "gemv"]
    assert {kk["first_channel"] for kk in gemvs} == {2}  # KV heads 0, 1 on channels 0, 1
    assert all(kk["program"]["count"] for kk in gemvs)
    on = {ch: {n.split(".")[0] for n, _ in kernel_streams(apart, 0, ch)} for ch in (0, 1, 2, 17)}
    assert "q_proj" not in on[0] | on[1] and "qk" in on[0] & on[1]  # KV channels: attention only
    assert "q_proj" in on[2] & on[17] and "qk" not in on[2] | on[17]  # 16 weight channels: 2..17
    rng = np.random.default_rng(2)
    w = random_bf16(rng, (64, 512))
    x = random_bf16(rng, (64,))
    assert (run_gemv(apart, "q_proj", w, x) == run_gemv(shared, "q_proj", w, x)).all()
    with pytest.raises(
        CompileError, match=rf"t:\d+:\d+: HFP STATIC at T_max = {fit + 1}: .* at most {fit} tokens"
    ):
        compile_layer(TINY128, "t", partition="hfp", config=small, context_tokens=fit + 1)


GEMV_11008 = """"builtin.module"() ({
  "func.func"() <{function_type = (tensor<1x11008xbf16>, tensor<11008x64xbf16>) -> tensor<1x64xbf16>, sym_name = "main"}> ({
  ^bb0(%arg0: tensor<1x11008xbf16>, %arg1: tensor<11008x64xbf16>):
    %0 = "stablehlo.dot_general"(%arg0, %arg1) <{dot_dimension_numbers = #stablehlo.dot<lhs_contracting_dimensions = [1], rhs_contracting_dimensions = [0]>}> : (tensor<1x11008xbf16>, tensor<11008x64xbf16>) -> tensor<1x64xbf16>
    "func.return"(%0) : (tensor<1x64xbf16>) -> ()
  }) : () -> ()
}) : () -> ()
"""  # noqa: E501


def test_gemv_ragged_d_in_qwen_ffn_11008() -> None:
    """Qwen-7B's FFN (11008) compiles (ragged last input tile), and a d_in = 11008 GEMV matches
    numpy within U|y| + (d_in/16 + 4) F sum|x||w|."""
    qwen = (EXAMPLES / "llm-7b-128k-gqa.mlir").read_text().replace("14336", "11008")
    c = compile_layer(qwen, "qwen.mlir")
    down = next(k for k in c.table["kernels"] if k.get("op") == "ffn_down")
    assert down["d_in"] == 11008
    c = compile_layer(GEMV_11008, "gemv.mlir")
    rng = np.random.default_rng(1)
    x, w = random_bf16(rng, (11008,)), random_bf16(rng, (11008, 64))
    y = from_bf16(run_gemv(c, "ffn_up", w, x)).astype(np.float64)
    xf, wf = from_bf16(x).astype(np.float64), from_bf16(w).astype(np.float64)
    y64 = xf @ wf
    bound = U * np.abs(y64) + (11008 / 16 + 4) * F * (np.abs(xf) @ np.abs(wf))
    assert (np.abs(y - y64) <= bound).all()


def test_ffn_matches_numpy_within_bound() -> None:
    """FFN = down(silu(gate x) * up x): gate/up on PIM (bf16 out), SiLU*mul on the host in fp32
    rounded to bf16 (the next GEMV's input), down on PIM. Bound propagated per element."""
    rng = np.random.default_rng(3)
    c = compile_layer(TINY, "t", memory="static")
    x = random_bf16(rng, (64,))
    wg, wu, wd = (
        random_bf16(rng, (64, 128)),
        random_bf16(rng, (64, 128)),
        random_bf16(rng, (128, 64)),
    )
    g = from_bf16(run_gemv(c, "ffn_gate", wg, x)).astype(np.float64)
    u = from_bf16(run_gemv(c, "ffn_up", wu, x)).astype(np.float64)
    silu = g / (1 + np.exp(-g))
    from pymodel.golden.bf16 import to_bf16

    h = to_bf16((silu * u).astype(np.float32))
    y = from_bf16(run_gemv(c, "ffn_down", wd, h)).astype(np.float64)
    xf, wgf, wuf, wdf = (from_bf16(a).astype(np.float64) for a in (x, wg, wu, wd))
    g64, u64 = xf @ wgf, xf @ wuf
    eg = U * np.abs(g64) + 8 * F * (np.abs(xf) @ np.abs(wgf))
    eu = U * np.abs(u64) + 8 * F * (np.abs(xf) @ np.abs(wuf))
    s64 = g64 / (1 + np.exp(-g64))
    h64 = s64 * u64
    eh = (
        1.1 * eg * (np.abs(u64) + eu)
        + np.abs(s64) * eu
        + U * (np.abs(h64) + 1.1 * eg * (np.abs(u64) + eu) + np.abs(s64) * eu)
    )
    y64 = h64 @ wdf
    ey = np.abs(wdf.T) @ eh
    bound = ey + U * (np.abs(y64) + ey) + 12 * F * (np.abs(h64) + eh) @ np.abs(wdf)
    assert (np.abs(y - y64) <= bound).all()
