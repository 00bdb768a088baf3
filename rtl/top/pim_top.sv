// pim_top: the HUB datapath of one PIM module -- the DPA controller (dpa_ctrl) in front of one
// command scheduler (pim_sched) per channel. Behaviour of both blocks is unchanged; this module
// only routes the DPA's physical instructions to the schedulers by their ch_mask.
//
//   host cmd/resp <-> dpa_ctrl --out (valid/ready)--> router --inst[c]--> pim_sched[c] --> cmd bus c
//   HUB inst ------->                                   (ch_mask)          GPR port c, RDMAC ret. c
//
// Streams / ports:
//   * host_* / resp_*: dpa_ctrl's host command and response port, exposed unchanged.
//   * inst_valid_i / inst_ready_o / inst_i: HUB instruction words (pymodel.isa.encode_inst) into
//     dpa_ctrl (plain words pass through, DYN_LOOP bodies are expanded).
//   * Router: a physical word goes to every scheduler its ch_mask names (one-hot from a DYN_LOOP,
//     any mask from a plain word: broadcast). Scheduler c sees valid while the word is offered and
//     c is named and has not taken it yet; the word leaves dpa_ctrl (out_ready) in the cycle the
//     last named scheduler takes it, so a broadcast waits until every named scheduler accepted it
//     (each one in the first cycle it can, independently of the others). Mask bits of channels
//     >= NumCh set route_err_o (sticky) and are ignored; a word naming no channel is dropped.
//   * Per channel c (packed arrays, index c): the scheduler's command bus cmd_valid_o[c] /
//     cmd_o[c] / cmd_data_o[c], its RDMAC return rd_valid_i[c] / rd_data_i[c], its GPR read port
//     gpr_rd_en_o[c] / gpr_rd_addr_o[c] -> gpr_rd_data_i[c] (same cycle) and GPR write port
//     gpr_wr_en_o[c] / gpr_wr_addr_o[c] / gpr_wr_data_o[c]; sched_busy_o[c], sched_err_o[c].
//   * mode_i: scheduling mode of every scheduler (pim_pkg::SchedMode*; change only when idle).
// Stream rules (all streams): a transfer happens on a clock edge where valid && ready; valid never
// depends on ready; the payload is stable until accepted.
//
// NumCh <= pim_pkg::NumChannels; the benches use NumCh = pim_pkg::NumChannels (the DPA spreads
// chunks over pim_pkg::NumChannels channels, so with fewer schedulers some chunks are unreachable
// and their words set route_err_o). Sizes and timings come only from pim_pkg.
//
// lint-args: -GNumCh=2
// (make lint: at the package's 32 channels each lint pass elaborates 32 schedulers, ~2 min.)
//
// PlantBug (verification only, default 0): 1 = the router clears its "already taken" bits only
// after a broadcast word, so after a one-hot word the channel it named counts as done and misses
// the next word (the bench must notice; docs/debugging.md walks through finding it); 2 = the last
// channel's valid drops for one cycle after that channel stalled (the word is offered again, so
// nothing is lost: only a_sched_hold can notice).
//
// Assertions (`ifdef PIM_ASSERT, never synthesized): each scheduler's instruction stream holds
// valid and payload until taken (PlantBug=2 fires a_sched_hold); the taken bits stay inside the
// word's mask and are clear when a new word arrives (PlantBug=1 fires a_done_clear); a channel
// takes each word once; route_err_o is sticky; every command bus is quiet (cmd_data_o = 0) while
// cmd_valid_o is low.

`default_nettype none

module pim_top #(
  parameter int NumCh    = pim_pkg::NumChannels,
  parameter int PlantBug = 0
) (
  input  logic                                      clk_i,
  input  logic                                      rst_ni,
  input  logic [pim_pkg::SchedModeWidth-1:0]        mode_i,
  // DPA host commands and responses
  input  logic                                      host_valid_i,
  output logic                                      host_ready_o,
  input  logic [pim_pkg::DpaHostOpWidth-1:0]        host_op_i,
  input  logic [pim_pkg::InstReqWidth-1:0]          host_req_i,
  input  logic [pim_pkg::DpaArgWidth-1:0]           host_arg_i,
  output logic                                      resp_valid_o,
  input  logic                                      resp_ready_i,
  output logic [pim_pkg::DpaStatusWidth-1:0]        resp_status_o,
  output logic [pim_pkg::DpaChanWidth-1:0]          resp_chan_o,
  output logic [pim_pkg::RowWidth-1:0]              resp_row_o,
  // HUB instructions
  input  logic                                      inst_valid_i,
  output logic                                      inst_ready_o,
  input  logic [pim_pkg::InstWidth-1:0]             inst_i,
  // DPA status
  output logic                                      err_valid_o,
  output logic [pim_pkg::DpaStatusWidth-1:0]        err_code_o,
  output logic [pim_pkg::DpaTotalFreeWidth-1:0]     free_chunks_o,
  output logic                                      route_err_o,
  // per channel: command bus, RDMAC return, GPR ports, status
  output logic [NumCh-1:0]                          cmd_valid_o,
  output logic [NumCh-1:0][pim_pkg::CmdWidth-1:0]   cmd_o,
  output logic [NumCh-1:0][pim_pkg::ColumnBytes*8-1:0] cmd_data_o,
  input  logic [NumCh-1:0]                          rd_valid_i,
  input  logic [NumCh-1:0][pim_pkg::ColumnBytes*8-1:0] rd_data_i,
  output logic [NumCh-1:0]                          gpr_rd_en_o,
  output logic [NumCh-1:0][pim_pkg::InstGprWidth-1:0] gpr_rd_addr_o,
  input  logic [NumCh-1:0][pim_pkg::ColumnBytes*8-1:0] gpr_rd_data_i,
  output logic [NumCh-1:0]                          gpr_wr_en_o,
  output logic [NumCh-1:0][pim_pkg::InstGprWidth-1:0] gpr_wr_addr_o,
  output logic [NumCh-1:0][pim_pkg::ColumnBytes*8-1:0] gpr_wr_data_o,
  output logic [NumCh-1:0]                          sched_busy_o,
  output logic [NumCh-1:0]                          sched_err_o
);

  localparam int MaskW = pim_pkg::InstChMaskWidth;

  // ---------------------------------------------------------------- DPA controller
  logic                          dpa_valid, dpa_ready;
  logic [pim_pkg::InstWidth-1:0] dpa_out;

  dpa_ctrl u_dpa (
    .clk_i, .rst_ni,
    .host_valid_i, .host_ready_o, .host_op_i, .host_req_i, .host_arg_i,
    .resp_valid_o, .resp_ready_i, .resp_status_o, .resp_chan_o, .resp_row_o,
    .inst_valid_i, .inst_ready_o, .inst_i,
    .out_valid_o(dpa_valid), .out_ready_i(dpa_ready), .out_o(dpa_out),
    .err_valid_o, .err_code_o, .free_chunks_o
  );

  // ---------------------------------------------------------------- router
  // ch_mask sits at the same offset in every plain instruction (pymodel.isa.INST_FIELDS).
  logic [MaskW-1:0] mask_all;
  logic [NumCh-1:0] mask, sched_valid, sched_ready, taken, done_q;
  logic             stray;

  assign mask_all = dpa_out[pim_pkg::InstMacChMaskOffset +: MaskW];
  assign mask     = mask_all[NumCh-1:0];
  if (MaskW > NumCh) begin : g_stray
    assign stray = |mask_all[MaskW-1:NumCh];
  end else begin : g_no_stray
    assign stray = 1'b0;
  end

  logic [NumCh-1:0] plant_hide;  // PlantBug 2: the channels whose valid drops this cycle
  if (PlantBug == 2) begin : g_plant_hide
    logic last_stalled_q;
    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) last_stalled_q <= 1'b0;
      else last_stalled_q <= sched_valid[NumCh-1] && !sched_ready[NumCh-1];
    end
    assign plant_hide = {last_stalled_q, {(NumCh-1){1'b0}}};
  end else begin : g_no_plant_hide
    assign plant_hide = '0;
  end

  assign sched_valid = {NumCh{dpa_valid}} & mask & ~done_q & ~plant_hide;
  assign taken       = sched_valid & sched_ready;

  assign dpa_ready = dpa_valid && ((mask & ~(done_q | taken)) == '0);

  logic multi, clear_done;  // the word names several channels; forget the taken bits
  assign multi      = (mask & (mask - 1'b1)) != '0;
  assign clear_done = dpa_ready && ((PlantBug != 1) || multi);

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      done_q      <= '0;
      route_err_o <= 1'b0;
    end else begin
      if (clear_done) done_q <= '0;
      else            done_q <= done_q | taken;
      if (dpa_valid && stray) route_err_o <= 1'b1;
    end
  end

  // ---------------------------------------------------------------- one scheduler per channel
  for (genvar c = 0; c < NumCh; c++) begin : g_ch
    pim_sched u_sched (
      .clk_i, .rst_ni, .mode_i,
      .inst_valid_i(sched_valid[c]), .inst_ready_o(sched_ready[c]), .inst_i(dpa_out),
      .cmd_valid_o(cmd_valid_o[c]), .cmd_o(cmd_o[c]), .cmd_data_o(cmd_data_o[c]),
      .rd_valid_i(rd_valid_i[c]), .rd_data_i(rd_data_i[c]),
      .gpr_rd_en_o(gpr_rd_en_o[c]), .gpr_rd_addr_o(gpr_rd_addr_o[c]),
      .gpr_rd_data_i(gpr_rd_data_i[c]),
      .gpr_wr_en_o(gpr_wr_en_o[c]), .gpr_wr_addr_o(gpr_wr_addr_o[c]),
      .gpr_wr_data_o(gpr_wr_data_o[c]),
      .busy_o(sched_busy_o[c]), .err_o(sched_err_o[c])
    );
  end

`ifdef PIM_ASSERT
  logic past_ok_q;  // out of reset since the previous clock edge (enables the checks)
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) past_ok_q <= 1'b0;
    else past_ok_q <= 1'b1;
  end
  // The previous cycle's per-channel stalls, sampled as a whole vector: Verilator evaluates a
  // $past(...) inside a procedural loop with the loop variable at its first value, so
  // $past(sched_valid[c] && !sched_ready[c]) there was channel 0's stall for every c, and the
  // check fired on a word for channel 0 alone whenever channel 0 stalled (tb/top run_stall_burst).
  logic [NumCh-1:0] stalled_q;
  logic [pim_pkg::InstWidth-1:0] out_prev_q;
  always_ff @(posedge clk_i) begin
    stalled_q  <= sched_valid & ~sched_ready;
    out_prev_q <= dpa_out;
  end
  always_ff @(posedge clk_i) begin
    if (past_ok_q) begin
      for (int c = 0; c < NumCh; c++) begin
        if (stalled_q[c]) a_sched_hold: assert (sched_valid[c] && dpa_out == out_prev_q);
        if (!cmd_valid_o[c]) a_cmd_quiet: assert (cmd_data_o[c] == '0);
      end
      if (dpa_valid) a_done_in_mask: assert ((done_q & ~mask) == '0);
      if ($past(dpa_ready)) a_done_clear: assert (done_q == '0);
      a_take_once: assert ((taken & done_q) == '0);
      if ($past(route_err_o)) a_route_err_sticky: assert (route_err_o);
    end
  end
`endif

endmodule : pim_top

`default_nettype wire
