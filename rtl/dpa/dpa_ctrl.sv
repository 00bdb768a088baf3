// dpa_ctrl: DPA (dynamic PIM access) controller -- paged KV memory, chunk allocator and DYN_LOOP
// expansion. Specification: pymodel/golden/dpa.py (module docstring); this module follows it bit for bit.
//
// Memories (dpa_ram, one read + one write port each):
//   table : MaxRequests x MaxChunksPerRequest entries of DpaIdxWidth bits (VA2PA: chunk index
//           within its channel; the channel of virtual chunk v of request r is (r + v) % channels)
//   stack : NumChannels x DpaChunksPerChannel entries (per-channel LIFO of freed chunk indices)
// Registers: per request open/length/chunk count, per channel stack top and `fresh` counter
// (never-used chunks, so no initialisation pass is needed), the loop body buffer.
//
// Host port: cmd (host_valid_i / host_ready_o / host_op_i, host_req_i, host_arg_i) in; response
// (resp_valid_o / resp_ready_i / resp_status_o, resp_chan_o, resp_row_o) out, one per command,
// in order. OPEN/GROW take one cycle per chunk (two when it comes from a stack), CLOSE and a
// rollback two cycles per chunk; TRANSLATE three cycles.
// Instruction port: inst (inst_valid_i / inst_ready_o / inst_i, pymodel.isa encoding) in;
// physical instructions (out_valid_o / out_ready_i / out_o) out. APPEND grows its request by one
// token (the GROW path, no host response) and emits the token's K word and its V column words at
// one per cycle (pymodel.golden.dpa.append_writes); a DYN_LOOP runs over its block window (first, count).
// Plain instructions pass through
// at one per cycle: the next instruction is taken in the cycle the previous pass-through word
// leaves (so inst_ready_o depends on out_ready_i and host_valid_i, never the other way round);
// a DYN_LOOP and its body are expanded. Instruction-path errors pulse err_valid_o for one cycle
// with err_code_o (no handshake). free_chunks_o: free chunks of the module.
// Ordering: one operation at a time. When idle (or a pass-through word is leaving), a host command
// wins over an instruction; no host command is accepted from a DYN_LOOP's acceptance until its
// expansion ends (so the loop sees one length). Stream rules: a transfer happens on a clock edge
// where valid && ready; valid never depends on ready; the payload is stable until accepted.
//
// PlantBug (verification only, default 0; each value must be caught -- tests/test_formal.py,
// tb/dpa_ctrl): 1 = popping a chunk from a free stack does not lower the stack top, so the chunk
// stays free and is handed out twice; 2 = TRANSLATE reads virtual chunk 0 of the request whatever
// the row; 3 = a rollback (NO_MEMORY) returns its chunks to the stacks without counting them free;
// 4 = a stalled output word is dropped (out_valid_o falls before out_ready_i); 5 = an expanded
// word also names channel 0 (its ch_mask is no longer one-hot).
//
// Assertions (`ifdef PIM_ASSERT; never synthesized): immediate assertions sampled at the clock
// edge, the SVA subset that Verilator (--assert), Yosys -formal and SymbiYosys all accept. Input
// stream rules are asserted too (the formal harness assumes them). The ownership checker keeps a
// shadow map of which (request, virtual chunk) owns every physical chunk, filled from the
// allocator's own hand-outs: a chunk is never handed out while owned, only owned chunks are freed
// (by the request and virtual chunk that own them), free + owned = all chunks in every channel,
// and every TRANSLATE answer and every expanded row lies in a chunk the request owns at that
// virtual chunk. docs/testing.md lists the assertions and the planted bugs that fire them.

`default_nettype none

module dpa_ctrl #(
  parameter int PlantBug = 0
) (
  input  logic                                clk_i,
  input  logic                                rst_ni,
  // host commands and responses
  input  logic                                host_valid_i,
  output logic                                host_ready_o,
  input  logic [pim_pkg::DpaHostOpWidth-1:0]  host_op_i,
  input  logic [pim_pkg::InstReqWidth-1:0]    host_req_i,
  input  logic [pim_pkg::DpaArgWidth-1:0]     host_arg_i,
  output logic                                resp_valid_o,
  input  logic                                resp_ready_i,
  output logic [pim_pkg::DpaStatusWidth-1:0]  resp_status_o,
  output logic [pim_pkg::DpaChanWidth-1:0]    resp_chan_o,
  output logic [pim_pkg::RowWidth-1:0]        resp_row_o,
  // HUB instructions in, physical instructions out
  input  logic                                inst_valid_i,
  output logic                                inst_ready_o,
  input  logic [pim_pkg::InstWidth-1:0]       inst_i,
  output logic                                out_valid_o,
  input  logic                                out_ready_i,
  output logic [pim_pkg::InstWidth-1:0]       out_o,
  // instruction-path errors and status
  output logic                                err_valid_o,
  output logic [pim_pkg::DpaStatusWidth-1:0]  err_code_o,
  output logic [pim_pkg::DpaTotalFreeWidth-1:0] free_chunks_o
);

  // ---------------------------------------------------------------- sizes
  localparam int NR = pim_pkg::MaxRequests;
  localparam int NC = pim_pkg::MaxChunksPerRequest;
  localparam int NCH = pim_pkg::NumChannels;
  localparam int CPC = pim_pkg::DpaChunksPerChannel;
  localparam int CR = pim_pkg::ChunkRows;
  localparam int BL = pim_pkg::MaxBodyLen;
  localparam int IW = pim_pkg::InstWidth;
  localparam int ReqW = pim_pkg::InstReqWidth;
  localparam int IdxW = pim_pkg::DpaIdxWidth;
  localparam int ChW = pim_pkg::DpaChanWidth;
  localparam int NchW = pim_pkg::DpaNchunkWidth;
  localparam int FreeW = pim_pkg::DpaFreeWidth;
  localparam int TokW = pim_pkg::DpaTokWidth;
  localparam int ItW = pim_pkg::DpaIterWidth;
  localparam int RowW = pim_pkg::RowWidth;
  localparam int TabDepth = NR * NC;
  localparam int StkDepth = NCH * CPC;
  localparam int TabAW = (TabDepth > 1) ? $clog2(TabDepth) : 1;
  localparam int StkAW = (StkDepth > 1) ? $clog2(StkDepth) : 1;
  localparam int BodyIdxW = (BL > 1) ? $clog2(BL) : 1;
  localparam int NumModi = 5;  // ROW, COL, GB, OUT, GPR (pim_pkg::modi_field_e)
  localparam int OpW = pim_pkg::InstOpcodeWidth;

  typedef enum logic [3:0] {
    SIdle, SCheck, SAlloc, SAllocWait, SFree, SFreeWait, STrWait, SResp,
    SLoad, SLStart, SExp, SExpWait, SOut, SApRd, SApRow, SApK
  } state_e;

  state_e state_q;

  // ---------------------------------------------------------------- state
  logic [NR-1:0]     open_q;
  logic [TokW-1:0]   len_q  [NR];
  logic [NchW-1:0]   nch_q  [NR];
  logic [FreeW-1:0]  top_q  [NCH];
  logic [FreeW-1:0]  fresh_q[NCH];
  logic [pim_pkg::DpaTotalFreeWidth-1:0] total_free_q;

  // current operation
  logic [pim_pkg::DpaHostOpWidth-1:0] op_q;
  logic [ReqW-1:0]   req_q;
  logic [pim_pkg::DpaArgWidth-1:0] arg_q;
  logic [TokW-1:0]   new_len_q;
  logic [NchW-1:0]   cur_q, stop_q;           // chunk walk: cur from/to stop
  logic [pim_pkg::DpaStatusWidth-1:0] status_q;
  logic              pass_q;                  // SOut holds a pass-through word
  // response
  logic [pim_pkg::DpaStatusWidth-1:0] rstat_q;
  logic [ChW-1:0]    rchan_q;
  logic [RowW-1:0]   rrow_q;
  // loop
  logic [IW-1:0]     body_q [BL];
  logic [BodyIdxW-1:0] blen_q, j_q;           // body_len - 1, word index
  logic              bad_q;
  logic [ItW-1:0]    k_q, iters_q;
  logic signed [31:0] off_q [NumModi];
  logic [31:0]       vrow_q;
  logic [IW-1:0]     pend_q;                  // instruction waiting for its translated row
  logic [IW-1:0]     out_q;
  logic [pim_pkg::InstFirstWidth-1:0] first_q, count_q;  // DYN_LOOP window
  logic [ItW-1:0]    base_q;                  // first block of the running loop
  // APPEND: the GROW runs with app_q set; then words ap_n_q = 0 (K), 1.. (V columns)
  localparam int HeadCols = pim_pkg::DpaDHead / pim_pkg::Lanes;
  localparam int DimSlots = pim_pkg::DpaDHead / pim_pkg::NumBanks;
  localparam int VCols = pim_pkg::DpaBlockTokens / pim_pkg::Lanes;
  localparam int ApWords = 1 + pim_pkg::NumBanks * DimSlots;
  localparam int ApW = $clog2(ApWords + 1);
  logic              app_q;
  logic [pim_pkg::InstGprWidth-1:0] app_gpr_q;
  logic [ApW-1:0]    ap_n_q;
  logic [RowW-1:0]   ap_row_q;                // physical K row (V row = +1)
  logic [ChW-1:0]    ap_ch_q;
  logic [31:0]       ap_i_q;                  // token index within its block
  logic              err_valid_q;
  logic [pim_pkg::DpaStatusWidth-1:0] err_code_q;

  // ---------------------------------------------------------------- memories
  logic              tab_we, tab_re, stk_we, stk_re;
  logic [TabAW-1:0]  tab_waddr, tab_raddr;
  logic [StkAW-1:0]  stk_waddr, stk_raddr;
  logic [IdxW-1:0]   tab_wdata, tab_rdata, stk_wdata, stk_rdata;

  dpa_ram #(.Depth(TabDepth), .Width(IdxW)) u_table (
    .clk_i, .we_i(tab_we), .waddr_i(tab_waddr), .wdata_i(tab_wdata),
    .re_i(tab_re), .raddr_i(tab_raddr), .rdata_o(tab_rdata)
  );
  dpa_ram #(.Depth(StkDepth), .Width(IdxW)) u_stack (
    .clk_i, .we_i(stk_we), .waddr_i(stk_waddr), .wdata_i(stk_wdata),
    .re_i(stk_re), .raddr_i(stk_raddr), .rdata_o(stk_rdata)
  );

  // ---------------------------------------------------------------- helpers
  function automatic logic [ChW-1:0] chan_of(input logic [31:0] req, input logic [31:0] v);
    chan_of = ChW'((req + v) % NCH);
  endfunction

  function automatic logic [TabAW-1:0] tab_addr(input logic [31:0] req, input logic [31:0] v);
    tab_addr = TabAW'(req * NC + v);
  endfunction

  function automatic logic [StkAW-1:0] stk_addr(input logic [31:0] ch, input logic [31:0] p);
    stk_addr = StkAW'(ch * CPC + p);
  endfunction

  // fields of the current request (req_q)
  logic        req_ok;        // id in range and open
  logic [31:0] req_len, cur_ch;
  logic [NchW-1:0] req_nch;
  assign req_ok  = (32'(req_q) < NR) && open_q[req_q];
  assign req_len = (32'(req_q) < NR) ? 32'(len_q[req_q]) : 32'd0;
  assign req_nch = (32'(req_q) < NR) ? nch_q[req_q] : '0;
  assign cur_ch  = 32'(chan_of(32'(req_q), 32'(cur_q)));

  logic [31:0] top_cur, fresh_cur, prev_ch;
  assign top_cur   = 32'(top_q[cur_ch]);
  assign fresh_cur = 32'(fresh_q[cur_ch]);
  assign prev_ch   = 32'(chan_of(32'(req_q), 32'(cur_q) - 32'd1));

  // body word j: opcode and operands at the per-op offsets
  logic [IW-1:0]  bw;
  logic [OpW-1:0] bop;
  assign bw  = body_q[j_q];
  assign bop = bw[OpW-1:0];

  logic [31:0] blk_ch;   // channel of iteration k's KV block (virtual row 2k)
  assign blk_ch = 32'(chan_of(32'(req_q),
                              ((32'(base_q) + 32'(k_q)) * pim_pkg::DpaRowsPerBlock) / CR));

  // Apply the offsets and the channel mask to a plain instruction word.
  function automatic logic [IW-1:0] modify(
      input logic [IW-1:0] w, input logic signed [31:0] o_col, input logic signed [31:0] o_gb,
      input logic signed [31:0] o_out, input logic signed [31:0] o_gpr);
    logic [IW-1:0] r;
    r = w;
    case (w[OpW-1:0])
      OpW'(pim_pkg::InstWrInp): begin
        r[pim_pkg::InstWrInpGprOffset +: pim_pkg::InstGprWidth] = pim_pkg::InstGprWidth'(
            32'(w[pim_pkg::InstWrInpGprOffset +: pim_pkg::InstGprWidth]) + o_gpr);
        r[pim_pkg::InstWrInpGbOffset +: pim_pkg::InstGbWidth] = pim_pkg::InstGbWidth'(
            32'(w[pim_pkg::InstWrInpGbOffset +: pim_pkg::InstGbWidth]) + o_gb);
      end
      OpW'(pim_pkg::InstMac): begin
        r[pim_pkg::InstMacGbOffset +: pim_pkg::InstGbWidth] = pim_pkg::InstGbWidth'(
            32'(w[pim_pkg::InstMacGbOffset +: pim_pkg::InstGbWidth]) + o_gb);
        r[pim_pkg::InstMacColOffset +: pim_pkg::InstColWidth] = pim_pkg::InstColWidth'(
            32'(w[pim_pkg::InstMacColOffset +: pim_pkg::InstColWidth]) + o_col);
        r[pim_pkg::InstMacOutOffset +: pim_pkg::InstOutWidth] = pim_pkg::InstOutWidth'(
            32'(w[pim_pkg::InstMacOutOffset +: pim_pkg::InstOutWidth]) + o_out);
      end
      OpW'(pim_pkg::InstRdOut): begin
        r[pim_pkg::InstRdOutGprOffset +: pim_pkg::InstGprWidth] = pim_pkg::InstGprWidth'(
            32'(w[pim_pkg::InstRdOutGprOffset +: pim_pkg::InstGprWidth]) + o_gpr);
        r[pim_pkg::InstRdOutOutOffset +: pim_pkg::InstOutWidth] = pim_pkg::InstOutWidth'(
            32'(w[pim_pkg::InstRdOutOutOffset +: pim_pkg::InstOutWidth]) + o_out);
      end
      default: begin  // WR_BANK
        r[pim_pkg::InstWrBankGprOffset +: pim_pkg::InstGprWidth] = pim_pkg::InstGprWidth'(
            32'(w[pim_pkg::InstWrBankGprOffset +: pim_pkg::InstGprWidth]) + o_gpr);
        r[pim_pkg::InstWrBankColOffset +: pim_pkg::InstColWidth] = pim_pkg::InstColWidth'(
            32'(w[pim_pkg::InstWrBankColOffset +: pim_pkg::InstColWidth]) + o_col);
      end
    endcase
    modify = r;
  endfunction

  function automatic logic has_row(input logic [OpW-1:0] op);
    has_row = (op == OpW'(pim_pkg::InstMac)) || (op == OpW'(pim_pkg::InstWrBank));
  endfunction

  function automatic logic [IW-1:0] set_row_mask(input logic [IW-1:0] w, input logic [RowW-1:0] row,
                                                 input logic [31:0] ch, input logic with_row);
    logic [IW-1:0] r;
    r = w;
    // ch_mask sits at the same offset in every plain instruction
    r[pim_pkg::InstMacChMaskOffset +: pim_pkg::InstChMaskWidth] =
        (pim_pkg::InstChMaskWidth'(1) << ch) | pim_pkg::InstChMaskWidth'(PlantBug == 5);
    if (with_row) begin
      if (w[OpW-1:0] == OpW'(pim_pkg::InstMac)) r[pim_pkg::InstMacRowOffset +: RowW] = row;
      else r[pim_pkg::InstWrBankRowOffset +: RowW] = row;
    end
    set_row_mask = r;
  endfunction

  // APPEND word n: 0 = the token's K (head_cols columns of bank i % banks), n >= 1 = the V
  // column of bank k = (n-1) / DimSlots, dim slot j = (n-1) % DimSlots (pymodel.golden.dpa.append_writes)
  function automatic logic [IW-1:0] ap_word(input logic [31:0] n);
    logic [IW-1:0] r;
    logic [31:0] m;
    r = '0;
    m = n - 1;
    r[OpW-1:0] = OpW'(pim_pkg::InstWrBank);
    r[pim_pkg::InstWrBankChMaskOffset +: pim_pkg::InstChMaskWidth] =
        (pim_pkg::InstChMaskWidth'(1) << ap_ch_q) | pim_pkg::InstChMaskWidth'(PlantBug == 5);
    if (n == 0) begin
      r[pim_pkg::InstWrBankOpSizeOffset +: pim_pkg::InstOpSizeWidth] =
          pim_pkg::InstOpSizeWidth'(HeadCols - 1);
      r[pim_pkg::InstWrBankGprOffset +: pim_pkg::InstGprWidth] = app_gpr_q;
      r[pim_pkg::InstWrBankBankOffset +: pim_pkg::InstBankWidth] =
          pim_pkg::InstBankWidth'(ap_i_q % pim_pkg::NumBanks);
      r[pim_pkg::InstWrBankRowOffset +: RowW] = ap_row_q;
      r[pim_pkg::InstWrBankColOffset +: pim_pkg::InstColWidth] =
          pim_pkg::InstColWidth'((ap_i_q / pim_pkg::NumBanks) * HeadCols);
    end else begin
      r[pim_pkg::InstWrBankGprOffset +: pim_pkg::InstGprWidth] =
          pim_pkg::InstGprWidth'(32'(app_gpr_q) + HeadCols + m);
      r[pim_pkg::InstWrBankBankOffset +: pim_pkg::InstBankWidth] =
          pim_pkg::InstBankWidth'(m / DimSlots);
      r[pim_pkg::InstWrBankRowOffset +: RowW] = ap_row_q + 1'b1;
      r[pim_pkg::InstWrBankColOffset +: pim_pkg::InstColWidth] =
          pim_pkg::InstColWidth'((m % DimSlots) * VCols + ap_i_q / pim_pkg::Lanes);
    end
    ap_word = r;
  endfunction

  // the newest token's block (APPEND, after the GROW): virtual K row 2b
  logic [31:0] ap_vrow;
  assign ap_vrow = ((req_len - 1) / pim_pkg::DpaBlockTokens) * pim_pkg::DpaRowsPerBlock;

  // operands of body word j after the current offsets
  logic [IW-1:0] bw_mod;
  logic [31:0]   bw_vrow;
  logic [31:0]   rows_used;
  assign bw_mod    = modify(bw, off_q[1], off_q[2], off_q[3], off_q[4]);
  logic [RowW-1:0] bw_row;
  assign bw_row    = (bop == OpW'(pim_pkg::InstMac)) ? bw[pim_pkg::InstMacRowOffset +: RowW]
                                                     : bw[pim_pkg::InstWrBankRowOffset +: RowW];
  assign bw_vrow   = 32'(bw_row) + off_q[0];
  assign rows_used = 32'(iters_q) * pim_pkg::DpaRowsPerBlock;

  // DYN_MODI of body word j: offset = stride * k (signed, 32 bits)
  logic signed [31:0] stride_s, k_s;
  assign stride_s = 32'($signed(bw[pim_pkg::InstDynModiStrideOffset +: pim_pkg::InstStrideWidth]));
  assign k_s      = $signed(32'(k_q));

  // iterations of the loop being started: its window (first_q, count_q) of the request's blocks
  logic [31:0] req_blocks, win_end, win_iters;
  assign req_blocks = (req_len + pim_pkg::DpaBlockTokens - 1) / pim_pkg::DpaBlockTokens;
  assign win_end = (count_q == '0 || 32'(first_q) + 32'(count_q) > req_blocks)
                   ? req_blocks : 32'(first_q) + 32'(count_q);
  assign win_iters = (win_end > 32'(first_q)) ? win_end - 32'(first_q) : 32'd0;

  logic last_j, last_k;
  assign last_j = (j_q == blen_q);
  assign last_k = (32'(k_q) + 1 == 32'(iters_q));

  // incoming word classification
  logic [OpW-1:0] in_op;
  logic in_plain, in_modi_bad;
  assign in_op = inst_i[OpW-1:0];
  assign in_plain = (in_op == OpW'(pim_pkg::InstWrInp)) || (in_op == OpW'(pim_pkg::InstMac)) ||
                    (in_op == OpW'(pim_pkg::InstRdOut)) || (in_op == OpW'(pim_pkg::InstWrBank));
  assign in_modi_bad = (in_op == OpW'(pim_pkg::InstDynModi)) &&
      (32'(inst_i[pim_pkg::InstDynModiFieldOffset +: pim_pkg::InstFieldWidth]) >= NumModi);

  // ---------------------------------------------------------------- handshakes
  // Instruction intake: when idle, or while a pass-through word leaves SOut (back-to-back plain
  // words at one per cycle); a waiting host command goes first in both cases.
  logic inst_intake, inst_take;
  assign inst_intake = ((state_q == SIdle) || ((state_q == SOut) && pass_q && out_ready_i))
                       && !host_valid_i;
  assign inst_take    = inst_intake && inst_valid_i;
  assign host_ready_o = (state_q == SIdle);
  assign inst_ready_o = inst_intake || (state_q == SLoad);
  assign resp_valid_o = (state_q == SResp) && !app_q;  // APPEND's GROW answers nobody
  assign out_valid_o  = (state_q == SOut);
  assign resp_status_o = rstat_q;
  assign resp_chan_o   = rchan_q;
  assign resp_row_o    = rrow_q;
  assign out_o         = out_q;
  assign err_valid_o   = err_valid_q;
  assign err_code_o    = err_code_q;
  assign free_chunks_o = total_free_q;

  // ---------------------------------------------------------------- control
  always_comb begin
    tab_we = 1'b0; tab_waddr = '0; tab_wdata = '0;
    tab_re = 1'b0; tab_raddr = '0;
    stk_we = 1'b0; stk_waddr = '0; stk_wdata = '0;
    stk_re = 1'b0; stk_raddr = '0;
    unique case (state_q)
      SAlloc: begin
        if (cur_q != stop_q && !(top_cur == 0 && fresh_cur == CPC)) begin
          if (top_cur != 0) begin
            stk_re = 1'b1;
            stk_raddr = stk_addr(cur_ch, top_cur - 1);
          end else begin
            tab_we = 1'b1;
            tab_waddr = tab_addr(32'(req_q), 32'(cur_q));
            tab_wdata = IdxW'(fresh_cur);
          end
        end
      end
      SAllocWait: begin
        tab_we = 1'b1;
        tab_waddr = tab_addr(32'(req_q), 32'(cur_q));
        tab_wdata = stk_rdata;
      end
      SFree: begin
        if (cur_q != stop_q) begin
          tab_re = 1'b1;
          tab_raddr = tab_addr(32'(req_q), 32'(cur_q) - 1);
        end
      end
      SFreeWait: begin
        stk_we = 1'b1;
        stk_waddr = stk_addr(prev_ch, 32'(top_q[prev_ch]));
        stk_wdata = tab_rdata;
      end
      SCheck: begin
        tab_re = 1'b1;  // TRANSLATE: harmless for the other commands
        tab_raddr = tab_addr(32'(req_q), (PlantBug == 2) ? 32'd0 : 32'(arg_q) / CR);
      end
      SExp: begin
        tab_re = 1'b1;
        tab_raddr = tab_addr(32'(req_q),
                             (bw_vrow + 32'(base_q) * pim_pkg::DpaRowsPerBlock) / CR);
      end
      SApRd: begin
        tab_re = 1'b1;
        tab_raddr = tab_addr(32'(req_q), ap_vrow / CR);
      end
      default: ;
    endcase
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q <= SIdle;
      open_q <= '0;
      for (int r = 0; r < NR; r++) begin
        len_q[r] <= '0;
        nch_q[r] <= '0;
      end
      for (int c = 0; c < NCH; c++) begin
        top_q[c] <= '0;
        fresh_q[c] <= '0;
      end
      total_free_q <= pim_pkg::DpaTotalFreeWidth'(pim_pkg::DpaNumChunks);
      op_q <= '0; req_q <= '0; arg_q <= '0; new_len_q <= '0;
      cur_q <= '0; stop_q <= '0; status_q <= '0; pass_q <= 1'b0;
      rstat_q <= '0; rchan_q <= '0; rrow_q <= '0;
      for (int i = 0; i < BL; i++) body_q[i] <= '0;
      blen_q <= '0; j_q <= '0; bad_q <= 1'b0; k_q <= '0; iters_q <= '0;
      for (int f = 0; f < NumModi; f++) off_q[f] <= '0;
      vrow_q <= '0; pend_q <= '0; out_q <= '0;
      first_q <= '0; count_q <= '0; base_q <= '0;
      app_q <= 1'b0; app_gpr_q <= '0; ap_n_q <= '0; ap_row_q <= '0; ap_ch_q <= '0; ap_i_q <= '0;
      err_valid_q <= 1'b0; err_code_q <= '0;
    end else begin
      err_valid_q <= 1'b0;
      unique case (state_q)
        // -------------------------------------------------------- intake
        SIdle: begin  // (instructions: see the intake after this case)
          if (host_valid_i) begin
            op_q <= host_op_i;
            req_q <= host_req_i;
            arg_q <= host_arg_i;
            state_q <= SCheck;
          end
        end
        // -------------------------------------------------------- host commands
        SCheck: begin
          rchan_q <= '0;
          rrow_q <= '0;
          state_q <= SResp;
          unique case (32'(op_q))
            pim_pkg::DpaHostOpen: begin
              if (32'(req_q) >= NR) rstat_q <= pim_pkg::DpaStatusWidth'(pim_pkg::DpaStTooManyRequests);
              else if (open_q[req_q]) rstat_q <= pim_pkg::DpaStatusWidth'(pim_pkg::DpaStAlreadyOpen);
              else if (32'(arg_q) > pim_pkg::DpaMaxTokens)
                rstat_q <= pim_pkg::DpaStatusWidth'(pim_pkg::DpaStTooLong);
              else begin
                new_len_q <= TokW'(arg_q);
                cur_q <= '0;
                stop_q <= NchW'((32'(arg_q) + pim_pkg::DpaChunkTokens - 1) / pim_pkg::DpaChunkTokens);
                state_q <= SAlloc;
              end
            end
            pim_pkg::DpaHostGrow: begin
              if (!req_ok) rstat_q <= pim_pkg::DpaStatusWidth'(pim_pkg::DpaStUnknownRequest);
              else if (req_len + 32'(arg_q) > pim_pkg::DpaMaxTokens)
                rstat_q <= pim_pkg::DpaStatusWidth'(pim_pkg::DpaStTooLong);
              else begin
                new_len_q <= TokW'(req_len + 32'(arg_q));
                cur_q <= req_nch;
                stop_q <= NchW'((req_len + 32'(arg_q) + pim_pkg::DpaChunkTokens - 1)
                                / pim_pkg::DpaChunkTokens);
                state_q <= SAlloc;
              end
            end
            pim_pkg::DpaHostClose: begin
              if (!req_ok) rstat_q <= pim_pkg::DpaStatusWidth'(pim_pkg::DpaStUnknownRequest);
              else begin
                cur_q <= req_nch;
                stop_q <= '0;
                status_q <= '0;
                state_q <= SFree;
              end
            end
            default: begin  // TRANSLATE
              if (!req_ok) rstat_q <= pim_pkg::DpaStatusWidth'(pim_pkg::DpaStUnknownRequest);
              else if (32'(arg_q) >= ((req_len + pim_pkg::DpaBlockTokens - 1)
                                      / pim_pkg::DpaBlockTokens) * pim_pkg::DpaRowsPerBlock)
                rstat_q <= pim_pkg::DpaStatusWidth'(pim_pkg::DpaStOutOfRange);
              else state_q <= STrWait;
            end
          endcase
        end
        STrWait: begin
          rstat_q <= pim_pkg::DpaStatusWidth'(pim_pkg::DpaStOk);
          rchan_q <= chan_of(32'(req_q), 32'(arg_q) / CR);
          rrow_q <= RowW'(32'(tab_rdata) * CR + 32'(arg_q) % CR);
          state_q <= SResp;
        end
        SAlloc: begin
          if (cur_q == stop_q) begin  // done: commit
            open_q[req_q] <= 1'b1;
            len_q[req_q] <= new_len_q;
            nch_q[req_q] <= cur_q;
            rstat_q <= pim_pkg::DpaStatusWidth'(pim_pkg::DpaStOk);
            state_q <= SResp;
          end else if (top_cur == 0 && fresh_cur == CPC) begin  // no memory: roll back
            stop_q <= (32'(op_q) == pim_pkg::DpaHostOpen) ? '0 : req_nch;
            status_q <= pim_pkg::DpaStatusWidth'(pim_pkg::DpaStNoMemory);
            state_q <= SFree;
          end else begin
            total_free_q <= total_free_q - 1'b1;
            if (top_cur != 0) begin
              if (PlantBug != 1) top_q[cur_ch] <= top_q[cur_ch] - 1'b1;
              state_q <= SAllocWait;
            end else begin
              fresh_q[cur_ch] <= fresh_q[cur_ch] + 1'b1;
              cur_q <= cur_q + 1'b1;
            end
          end
        end
        SAllocWait: begin
          cur_q <= cur_q + 1'b1;
          state_q <= SAlloc;
        end
        SFree: begin
          if (cur_q == stop_q) begin
            rstat_q <= status_q;
            if (status_q == '0) begin  // CLOSE done
              open_q[req_q] <= 1'b0;
              len_q[req_q] <= '0;
              nch_q[req_q] <= '0;
            end
            state_q <= SResp;
          end else begin
            state_q <= SFreeWait;
          end
        end
        SFreeWait: begin
          top_q[prev_ch] <= top_q[prev_ch] + 1'b1;
          if (PlantBug != 3 || status_q == '0) total_free_q <= total_free_q + 1'b1;
          cur_q <= cur_q - 1'b1;
          state_q <= SFree;
        end
        SResp: begin
          if (app_q) begin  // APPEND: its GROW failed (the error), or the writes follow
            if (rstat_q != pim_pkg::DpaStatusWidth'(pim_pkg::DpaStOk)) begin
              err_valid_q <= 1'b1;
              err_code_q <= rstat_q;
              app_q <= 1'b0;
              state_q <= SIdle;
            end else state_q <= SApRd;
          end else if (resp_ready_i) state_q <= SIdle;
        end
        SApRd: state_q <= SApRow;
        SApRow: begin
          ap_row_q <= RowW'(32'(tab_rdata) * CR + ap_vrow % CR);
          ap_ch_q <= chan_of(32'(req_q), ap_vrow / CR);
          ap_i_q <= (req_len - 1) % pim_pkg::DpaBlockTokens;
          ap_n_q <= '0;
          vrow_q <= ap_vrow;
          pass_q <= 1'b0;
          state_q <= SApK;
        end
        SApK: begin  // the K word, once its row and channel are registered
          out_q <= ap_word(32'd0);
          state_q <= SOut;
        end
        // -------------------------------------------------------- loops
        SLoad: begin
          if (inst_valid_i) begin
            body_q[j_q] <= inst_i;
            if (!(in_plain || in_op == OpW'(pim_pkg::InstDynModi)) || in_modi_bad) bad_q <= 1'b1;
            if (j_q == blen_q) state_q <= SLStart;
            else j_q <= j_q + 1'b1;
          end
        end
        SLStart: begin
          j_q <= '0;
          k_q <= '0;
          for (int f = 0; f < NumModi; f++) off_q[f] <= '0;
          iters_q <= ItW'(win_iters);
          base_q <= ItW'(first_q);
          if (bad_q || !req_ok) begin
            err_valid_q <= 1'b1;
            err_code_q <= bad_q ? pim_pkg::DpaStatusWidth'(pim_pkg::DpaStBadProgram)
                                : pim_pkg::DpaStatusWidth'(pim_pkg::DpaStUnknownRequest);
            state_q <= SIdle;
          end else if (win_iters == 0) begin  // empty request or window past its end
            state_q <= SIdle;
          end else begin
            state_q <= SExp;
          end
        end
        SExp: begin
          if (bop == OpW'(pim_pkg::InstDynModi)) begin
            off_q[bw[pim_pkg::InstDynModiFieldOffset +: pim_pkg::InstFieldWidth]] <=
                stride_s * k_s;
            // advance (a MODI is never the last word of a useful body, but may be)
            if (last_j) begin
              j_q <= '0;
              k_q <= k_q + 1'b1;
              for (int f = 0; f < NumModi; f++) off_q[f] <= '0;
              if (last_k) state_q <= SIdle;
            end else j_q <= j_q + 1'b1;
          end else if (has_row(bop)) begin
            if ($signed(bw_vrow) < 0 || bw_vrow >= rows_used) begin
              err_valid_q <= 1'b1;
              err_code_q <= pim_pkg::DpaStatusWidth'(pim_pkg::DpaStOutOfRange);
              state_q <= SIdle;
            end else begin
              vrow_q <= bw_vrow + 32'(base_q) * pim_pkg::DpaRowsPerBlock;
              pend_q <= bw_mod;
              state_q <= SExpWait;
            end
          end else begin
            out_q <= set_row_mask(bw_mod, '0, blk_ch, 1'b0);
            pass_q <= 1'b0;
            state_q <= SOut;
          end
        end
        SExpWait: begin
          out_q <= set_row_mask(pend_q, RowW'(32'(tab_rdata) * CR + vrow_q % CR),
                                32'(chan_of(32'(req_q), vrow_q / CR)), 1'b1);
          pass_q <= 1'b0;
          state_q <= SOut;
        end
        SOut: begin
          if (PlantBug == 4 && !out_ready_i && !pass_q && !app_q) state_q <= SExp;  // word lost
          if (app_q) begin
            if (out_ready_i) begin
              if (32'(ap_n_q) + 1 == ApWords) begin
                app_q <= 1'b0;
                state_q <= SIdle;
              end else begin
                ap_n_q <= ap_n_q + 1'b1;
                vrow_q <= ap_vrow + 1;
                out_q <= ap_word(32'(ap_n_q) + 1);
              end
            end
          end else if (out_ready_i) begin
            if (pass_q) state_q <= SIdle;
            else if (last_j) begin
              j_q <= '0;
              k_q <= k_q + 1'b1;
              for (int f = 0; f < NumModi; f++) off_q[f] <= '0;
              state_q <= last_k ? SIdle : SExp;
            end else begin
              j_q <= j_q + 1'b1;
              state_q <= SExp;
            end
          end
        end
        default: state_q <= SIdle;
      endcase
      // -------------------------------------------------------- instruction intake
      // (SIdle, or SOut while its pass-through word leaves; overrides the state set above)
      if (inst_take) begin
        if (in_plain) begin
          out_q <= inst_i;
          pass_q <= 1'b1;
          state_q <= SOut;
        end else if (in_op == OpW'(pim_pkg::InstAppend)) begin
          op_q <= pim_pkg::DpaHostOpWidth'(pim_pkg::DpaHostGrow);
          req_q <= inst_i[pim_pkg::InstAppendReqOffset +: ReqW];
          arg_q <= pim_pkg::DpaArgWidth'(1);
          app_gpr_q <= inst_i[pim_pkg::InstAppendGprOffset +: pim_pkg::InstGprWidth];
          app_q <= 1'b1;
          state_q <= SCheck;
        end else if (in_op == OpW'(pim_pkg::InstDynLoop)) begin
          req_q <= inst_i[pim_pkg::InstDynLoopReqOffset +: ReqW];
          blen_q <= inst_i[pim_pkg::InstDynLoopBodyLenOffset +: BodyIdxW];
          first_q <= inst_i[pim_pkg::InstDynLoopFirstOffset +: pim_pkg::InstFirstWidth];
          count_q <= inst_i[pim_pkg::InstDynLoopCountOffset +: pim_pkg::InstCountWidth];
          j_q <= '0;
          bad_q <= 1'b0;
          state_q <= SLoad;
        end else begin
          err_valid_q <= 1'b1;
          err_code_q <= pim_pkg::DpaStatusWidth'(pim_pkg::DpaStBadProgram);
          state_q <= SIdle;
        end
      end
    end
  end

  // ---------------------------------------------------------------- assertions
`ifdef PIM_ASSERT
  localparam int NumChunks = NCH * CPC;
  localparam int ChunkAW = (NumChunks > 1) ? $clog2(NumChunks) : 1;

  // past_ok_q: out of reset since the previous clock edge at least. It (not rst_ni, which would
  // be flopped both async and sync) enables every check; $past then never reaches into reset.
  logic past_ok_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) past_ok_q <= 1'b0;
    else past_ok_q <= 1'b1;
  end

  // --- stream protocol: valid held and payload stable until ready (inputs: the environment's
  // rule, assumed by the formal harness; outputs: this module's)
  always_ff @(posedge clk_i) begin
    if (past_ok_q) begin
      if ($past(host_valid_i && !host_ready_o))
        a_host_hold: assert (host_valid_i && host_op_i == $past(host_op_i)
                             && host_req_i == $past(host_req_i) && host_arg_i == $past(host_arg_i));
      if ($past(inst_valid_i && !inst_ready_o))
        a_inst_hold: assert (inst_valid_i && inst_i == $past(inst_i));
      if ($past(resp_valid_o && !resp_ready_i))
        a_resp_hold: assert (resp_valid_o && resp_status_o == $past(resp_status_o)
                             && resp_chan_o == $past(resp_chan_o)
                             && resp_row_o == $past(resp_row_o));
      if ($past(out_valid_o && !out_ready_i))
        a_out_hold: assert (out_valid_o && out_o == $past(out_o));
    end
  end

  // --- one operation at a time; an expanded word names exactly one channel
  always_ff @(posedge clk_i) begin
    if (past_ok_q) begin
      if (err_valid_o) a_err_code: assert (err_code_o != pim_pkg::DpaStatusWidth'(pim_pkg::DpaStOk));
      a_one_op: assert (!(host_valid_i && host_ready_o && inst_valid_i && inst_ready_o));
      a_resp_out_excl: assert (!(resp_valid_o && out_valid_o));
      if (out_valid_o && !pass_q)
        a_exp_onehot: assert ($onehot(out_o[pim_pkg::InstMacChMaskOffset +:
                                             pim_pkg::InstChMaskWidth]));
    end
  end

  // --- counter ranges
  logic [31:0] free_of [NCH];  // free chunks of channel c: stacked + never used
  always_comb begin
    for (int c = 0; c < NCH; c++) free_of[c] = 32'(top_q[c]) + CPC - 32'(fresh_q[c]);
  end
  // Per-channel / per-request checks are folded into one flag per assertion (one assertion per
  // name: Yosys rejects a labelled assertion inside a loop).
  logic fresh_ok, top_ok, nch_ok, len_ok, closed_ok, nch_len_ok;
  always_comb begin
    fresh_ok = 1'b1; top_ok = 1'b1;
    for (int c = 0; c < NCH; c++) begin
      fresh_ok &= (32'(fresh_q[c]) <= CPC);
      top_ok &= (top_q[c] <= fresh_q[c]);  // only used chunks are ever stacked
    end
    nch_ok = 1'b1; len_ok = 1'b1; closed_ok = 1'b1; nch_len_ok = 1'b1;
    for (int r = 0; r < NR; r++) begin
      nch_ok &= (32'(nch_q[r]) <= NC);
      len_ok &= (32'(len_q[r]) <= pim_pkg::DpaMaxTokens);
      closed_ok &= open_q[r] || (len_q[r] == '0 && nch_q[r] == '0);
      nch_len_ok &= (32'(nch_q[r]) == (32'(len_q[r]) + pim_pkg::DpaChunkTokens - 1)
                                      / pim_pkg::DpaChunkTokens);
    end
  end
  always_ff @(posedge clk_i) begin
    if (past_ok_q) begin
      a_total_free_range: assert (32'(total_free_q) <= NumChunks);
      a_body_idx_range: assert (j_q <= blen_q);
      a_fresh_range: assert (fresh_ok);
      a_top_range: assert (top_ok);
      a_nch_range: assert (nch_ok);
      a_len_range: assert (len_ok);
      a_closed_empty: assert (closed_ok);
      a_nch_of_len: assert (nch_len_ok);
    end
  end

  // --- DPA ownership: shadow map of the chunks handed out, filled from the allocator's choices
  logic                 own_q     [NumChunks];  // chunk ch * CPC + idx is owned
  logic [ReqW-1:0]      own_req_q [NumChunks];  // ... by this request
  logic [NchW-1:0]      own_v_q   [NumChunks];  // ... as this virtual chunk
  logic                 tr_q;              // SResp holds a TRANSLATE answer
  logic                 alloc_fresh, alloc_pop, free_one;
  logic [31:0]          alloc_ch, alloc_idx, free_idx;
  logic [ChunkAW-1:0]   alloc_at, free_at;
  assign alloc_fresh = (state_q == SAlloc) && tab_we;
  assign alloc_pop   = (state_q == SAllocWait);
  assign free_one    = (state_q == SFreeWait);
  assign alloc_ch    = cur_ch;
  assign alloc_idx   = alloc_pop ? 32'(stk_rdata) : fresh_cur;
  assign alloc_at    = ChunkAW'(alloc_ch * CPC + alloc_idx);
  assign free_idx    = 32'(tab_rdata);
  assign free_at     = ChunkAW'(prev_ch * CPC + free_idx);

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      for (int i = 0; i < NumChunks; i++) own_q[i] <= 1'b0;
      tr_q <= 1'b0;
    end else begin
      if (alloc_fresh || alloc_pop) begin
        own_q[alloc_at] <= 1'b1;
        own_req_q[alloc_at] <= req_q;
        own_v_q[alloc_at] <= cur_q;
      end
      if (free_one) own_q[free_at] <= 1'b0;
      if (state_q == STrWait) tr_q <= 1'b1;
      else if (state_q == SResp && resp_ready_i) tr_q <= 1'b0;
    end
  end

  logic [31:0] owned_in [NCH];   // owned chunks of channel c
  logic [31:0] owned_all;        // owned chunks of the module
  logic        chan_sum_ok;      // free + owned = all, in every channel
  logic        used_ok;          // an owned chunk is a used one (index below fresh)
  logic [31:0] held_sum;         // chunks the open requests hold (committed)
  always_comb begin
    owned_all = 0;
    for (int c = 0; c < NCH; c++) begin
      owned_in[c] = 0;
      for (int i = 0; i < CPC; i++) owned_in[c] += 32'(own_q[c * CPC + i]);
      owned_all += owned_in[c];
    end
    // (an allocation from a stack is owned one cycle after it is counted)
    chan_sum_ok = 1'b1;
    used_ok = 1'b1;
    for (int c = 0; c < NCH; c++) begin
      chan_sum_ok &= (free_of[c] + owned_in[c] + 32'(alloc_pop && alloc_ch == c) == CPC);
      for (int i = 0; i < CPC; i++) used_ok &= !own_q[c * CPC + i] || (i < 32'(fresh_q[c]));
    end
    held_sum = 0;
    for (int r = 0; r < NR; r++) held_sum += 32'(nch_q[r]);
  end

  // physical chunk of an answer / expanded word: channel and row -> chunk number
  logic [31:0] out_ch;
  always_comb begin
    out_ch = 0;
    for (int c = 0; c < NCH; c++)
      if (out_o[pim_pkg::InstMacChMaskOffset + c]) out_ch = c;
  end
  logic [RowW-1:0] out_row;
  assign out_row = (out_o[OpW-1:0] == OpW'(pim_pkg::InstMac)) ? out_o[pim_pkg::InstMacRowOffset +: RowW]
                                                              : out_o[pim_pkg::InstWrBankRowOffset +: RowW];
  logic [ChunkAW-1:0] tr_at, out_at;
  assign tr_at  = ChunkAW'(32'(rchan_q) * CPC + 32'(rrow_q) / CR);
  assign out_at = ChunkAW'(out_ch * CPC + 32'(out_row) / CR);

  always_ff @(posedge clk_i) begin
    if (past_ok_q) begin
      if (alloc_fresh || alloc_pop) begin
        a_alloc_unowned: assert (!own_q[alloc_at]);  // never owned twice
        a_alloc_idx_range: assert (alloc_idx < CPC);
      end
      if (free_one) begin
        a_free_owned: assert (own_q[free_at] && own_req_q[free_at] == req_q
                              && own_v_q[free_at] == cur_q - 1'b1);
      end
      a_free_plus_owned: assert (chan_sum_ok);
      a_owned_used: assert (used_ok);
      a_free_count: assert (32'(total_free_q) + 32'(alloc_pop) + owned_all == NumChunks);
      if (state_q == SIdle) a_owned_held: assert (owned_all == held_sum);
      if (resp_valid_o && tr_q) begin  // TRANSLATE returns what was allocated
        a_translate_chan: assert (rchan_q == chan_of(32'(req_q), 32'(arg_q) / CR));
        a_translate_row: assert (32'(rrow_q) % CR == 32'(arg_q) % CR);
        a_translate_owner: assert (own_q[tr_at] && own_req_q[tr_at] == req_q
                                   && 32'(own_v_q[tr_at]) == 32'(arg_q) / CR);
      end
      if (out_valid_o && !pass_q && has_row(out_o[OpW-1:0])) begin  // expanded rows likewise
        a_expand_row: assert (32'(out_row) % CR == vrow_q % CR);
        a_expand_owner: assert (own_q[out_at] && own_req_q[out_at] == req_q
                                && 32'(own_v_q[out_at]) == vrow_q / CR);
      end
    end
  end
`endif

endmodule : dpa_ctrl

`default_nettype wire
