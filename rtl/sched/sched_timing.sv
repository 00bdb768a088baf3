// sched_timing: DRAM/PIM timing state of the channel and the legality of candidate commands
// this cycle (pymodel.golden.channel.Channel.probe(cmd, now) == now).
//
// State ("cycles since" counters, rtl/common/since_counter, saturating at SchedSinceMax):
//   * per opcode, last issue anywhere on the channel        (pim_pkg::SchedChanLat)
//   * per bank, last ACT and last WR (single-bank commands) (pim_pkg::SchedBankLat, 3 classes)
//   * per GB entry, last WRGB and MAC16                     (pim_pkg::SchedGbLat)
//   * per OBuf entry, last MAC16, RDMAC, CLRMAC and WRBIAS  (pim_pkg::SchedOutLat)
//   (the per-entry counters saturate at their own table's largest latency, SchedGbSinceMax /
//   SchedOutSinceMax: every check against that table decides as with SchedSinceMax)
//   * the nFAW window: the last FawLimit activations (age + weight), trimmed like the model's deque
// A candidate is legal when every counter is >= the latency of the rule from that prev op to the
// candidate's op (the tables fold pymodel.timing.RULES by scope, see pymodel.gen.sv_pkg). The
// one-command-per-cycle rule holds by construction. A TMOD issued in place of a candidate is
// legal whenever the candidate is: its only rules (nRFC after REF, nMODCH after TMOD) bind every
// command alike. Refresh pull-in limits never bind (REF is
// only issued once due) and are not modeled.
//
// issue_*: the command chosen this cycle (updates the state at the clock edge). No streams.

`default_nettype none

module sched_timing #(
  parameter int unsigned NumCand = 3,
  parameter int unsigned PlantBug = 0  // tests only: 3 = the GB-entry rules are ignored
) (
  input  logic                                          clk_i,
  input  logic                                          rst_ni,
  // the command issued this cycle
  input  logic                                          issue_i,
  input  logic [pim_pkg::OpcodeWidth-1:0]               issue_op_i,
  input  logic [pim_pkg::BankWidth-1:0]                 issue_bank_i,
  input  logic [pim_pkg::GbWidth-1:0]                   issue_gb_i,
  input  logic [pim_pkg::OutWidth-1:0]                  issue_out_i,
  // candidates
  input  logic [NumCand-1:0][pim_pkg::OpcodeWidth-1:0]  cand_op_i,
  input  logic [NumCand-1:0][pim_pkg::BankWidth-1:0]    cand_bank_i,
  input  logic [NumCand-1:0][pim_pkg::GbWidth-1:0]      cand_gb_i,
  input  logic [NumCand-1:0][pim_pkg::OutWidth-1:0]     cand_out_i,
  output logic [NumCand-1:0]                            legal_o
);

  localparam int unsigned W      = pim_pkg::SchedLatWidth;
  localparam int unsigned NOps   = pim_pkg::NumOps;
  localparam int unsigned NCls   = pim_pkg::SchedNumBankClasses;
  localparam int unsigned NFaw   = pim_pkg::FawLimit;  // each activation weighs >= 1
  localparam int unsigned WWidth = $clog2(pim_pkg::FawLimit + 1) + 1;
  typedef logic [W-1:0] lat_t;

  // ---------------------------------------------------------------- latency tables
  // Row p of a table (latencies from prev op p to every next op, zero-padded to every opcode
  // value) is a constant of the generate block that checks it; the runtime opcode (and bank
  // class) selects within that row: one small mux per check. (Lookup functions looping over the
  // whole table were inlined at every call and made elaboration most of the synthesis time.)
  typedef logic [pim_pkg::OpcodeWidth-1:0] op_t;
  localparam int unsigned NOpc = 1 << pim_pkg::OpcodeWidth;
  typedef logic [NOpc*W-1:0] row_t;              // [next]
  typedef logic [NOpc*NCls*W-1:0] bank_row_t;    // [next * NCls + class]
  function automatic logic [WWidth-1:0] faw_weight(input logic [pim_pkg::OpcodeWidth-1:0] op);
    faw_weight = '0;
    if (op == pim_pkg::OpAct)   faw_weight = WWidth'(pim_pkg::FawWeightAct);
    if (op == pim_pkg::OpAct16) faw_weight = WWidth'(pim_pkg::FawWeightAct16);
  endfunction

  // Scope class of bank b for a command to cand_bank: 0 same bank, 1 same group, 2 other group.
  function automatic int bank_class(input logic [pim_pkg::BankWidth-1:0] cand_bank, input int b);
    if (32'(cand_bank) == b) begin
      bank_class = 0;
    end else if (32'(cand_bank) / pim_pkg::BanksPerGroup == b / pim_pkg::BanksPerGroup) begin
      bank_class = 1;
    end else begin
      bank_class = 2;
    end
  endfunction

  // Ops with per-bank / per-entry counters.
  localparam int unsigned NBankOps = 2;
  localparam int unsigned NGbOps   = 2;
  localparam int unsigned NOutOps  = 4;
  function automatic int bank_op(input int i);
    bank_op = (i == 0) ? int'(pim_pkg::OpAct) : int'(pim_pkg::OpWr);
  endfunction
  function automatic int gb_op(input int i);
    gb_op = (i == 0) ? int'(pim_pkg::OpWrgb) : int'(pim_pkg::OpMac16);
  endfunction
  function automatic int out_op(input int i);
    out_op = (i == 0) ? int'(pim_pkg::OpMac16) : (i == 1) ? int'(pim_pkg::OpRdmac)
           : (i == 2) ? int'(pim_pkg::OpClrmac) : int'(pim_pkg::OpWrbias);
  endfunction

  // ---------------------------------------------------------------- since counters
  lat_t [NOps-1:0]                                       since_chan;
  lat_t [NBankOps-1:0][pim_pkg::NumBanks-1:0]            since_bank;
  localparam int unsigned GbW  = pim_pkg::SchedGbSinceWidth;
  localparam int unsigned OutW = pim_pkg::SchedOutSinceWidth;
  logic [NGbOps-1:0][pim_pkg::GbEntries-1:0][GbW-1:0]    since_gb;
  logic [NOutOps-1:0][pim_pkg::ObufEntries-1:0][OutW-1:0] since_out;

  for (genvar p = 0; p < NOps; p++) begin : g_chan
    since_counter #(.Width(W), .Max(pim_pkg::SchedSinceMax)) u_cnt (
      .clk_i, .rst_ni,
      .event_i(issue_i && 32'(issue_op_i) == p),
      .count_o(since_chan[p])
    );
  end
  for (genvar i = 0; i < NBankOps; i++) begin : g_bank_op
    for (genvar b = 0; b < pim_pkg::NumBanks; b++) begin : g_bank
      since_counter #(.Width(W), .Max(pim_pkg::SchedSinceMax)) u_cnt (
        .clk_i, .rst_ni,
        .event_i(issue_i && 32'(issue_op_i) == bank_op(i) && 32'(issue_bank_i) == b),
        .count_o(since_bank[i][b])
      );
    end
  end
  for (genvar i = 0; i < NGbOps; i++) begin : g_gb_op
    for (genvar e = 0; e < pim_pkg::GbEntries; e++) begin : g_gb
      since_counter #(.Width(GbW), .Max(pim_pkg::SchedGbSinceMax)) u_cnt (
        .clk_i, .rst_ni,
        .event_i(issue_i && 32'(issue_op_i) == gb_op(i) && 32'(issue_gb_i) == e),
        .count_o(since_gb[i][e])
      );
    end
  end
  for (genvar i = 0; i < NOutOps; i++) begin : g_out_op
    for (genvar e = 0; e < pim_pkg::ObufEntries; e++) begin : g_out
      since_counter #(.Width(OutW), .Max(pim_pkg::SchedOutSinceMax)) u_cnt (
        .clk_i, .rst_ni,
        .event_i(issue_i && 32'(issue_op_i) == out_op(i) && 32'(issue_out_i) == e),
        .count_o(since_out[i][e])
      );
    end
  end

  // ---------------------------------------------------------------- nFAW window
  // Newest first. After an activation of weight w the window keeps the newest entries whose
  // cumulative weight is <= FawLimit (pymodel.golden.channel.Channel._record pops the oldest).
  lat_t [NFaw-1:0]              faw_age_q, faw_age_d;
  logic [NFaw-1:0][WWidth-1:0]  faw_w_q, faw_w_d;
  logic [NFaw-1:0]              faw_v_q, faw_v_d;
  logic [WWidth+2:0]            faw_cum [NFaw];  // cumulative weight of entries 0..i
  logic [WWidth-1:0]            issue_w;

  assign issue_w = issue_i ? faw_weight(issue_op_i) : '0;

  logic [WWidth+2:0] faw_acc;
  always_comb begin
    faw_acc = '0;
    for (int i = 0; i < int'(NFaw); i++) begin
      if (faw_v_q[i]) faw_acc = faw_acc + (WWidth + 3)'(faw_w_q[i]);
      faw_cum[i] = faw_acc;
    end
  end

  always_comb begin
    faw_age_d = faw_age_q;
    faw_w_d   = faw_w_q;
    faw_v_d   = faw_v_q;
    for (int i = 0; i < int'(NFaw); i++) begin
      if (faw_age_q[i] < lat_t'(pim_pkg::SchedSinceMax)) faw_age_d[i] = faw_age_q[i] + 1'b1;
    end
    if (issue_w != '0) begin
      faw_age_d[0] = lat_t'(1);
      faw_w_d[0]   = issue_w;
      faw_v_d[0]   = 1'b1;
      for (int i = 1; i < int'(NFaw); i++) begin
        faw_age_d[i] = (faw_age_q[i-1] < lat_t'(pim_pkg::SchedSinceMax)) ? faw_age_q[i-1] + 1'b1
                                                                         : faw_age_q[i-1];
        faw_w_d[i]   = faw_w_q[i-1];
        faw_v_d[i]   = faw_v_q[i-1]
                       && (32'(issue_w) + 32'(faw_cum[i-1]) <= pim_pkg::FawLimit);
      end
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      faw_age_q <= '0;
      faw_w_q   <= '0;
      faw_v_q   <= '0;
    end else begin
      faw_age_q <= faw_age_d;
      faw_w_q   <= faw_w_d;
      faw_v_q   <= faw_v_d;
    end
  end

  // ---------------------------------------------------------------- candidate legality
  // Flat per-candidate check vectors (module level: Yosys cannot size generate-local arrays).
  logic [NumCand-1:0][NOps-1:0]                      chan_ok;
  logic [NumCand-1:0][NBankOps*pim_pkg::NumBanks-1:0] bank_ok;
  logic [NumCand-1:0][NGbOps-1:0]                    gb_ok;
  logic [NumCand-1:0][NOutOps-1:0]                   out_ok;
  logic [NumCand-1:0][NFaw-1:0]                      faw_ok;

  for (genvar c = 0; c < NumCand; c++) begin : g_cand
    for (genvar p = 0; p < NOps; p++) begin : g_chan_ok
      localparam row_t Row = row_t'(pim_pkg::SchedChanLat[p * NOps * W +: NOps * W]);
      assign chan_ok[c][p] = since_chan[p] >= Row[32'(cand_op_i[c]) * W +: W];
    end
    for (genvar i = 0; i < NBankOps; i++) begin : g_bank_ok
      localparam bank_row_t Row = bank_row_t'(
          pim_pkg::SchedBankLat[bank_op(i) * NOps * NCls * W +: NOps * NCls * W]);
      for (genvar b = 0; b < pim_pkg::NumBanks; b++) begin : g_b
        assign bank_ok[c][i * pim_pkg::NumBanks + b] = since_bank[i][b]
            >= Row[(32'(cand_op_i[c]) * NCls + bank_class(cand_bank_i[c], b)) * W +: W];
      end
    end
    for (genvar i = 0; i < NGbOps; i++) begin : g_gb_ok
      localparam row_t Row = row_t'(pim_pkg::SchedGbLat[gb_op(i) * NOps * W +: NOps * W]);
      assign gb_ok[c][i] = W'(since_gb[i][cand_gb_i[c]]) >= Row[32'(cand_op_i[c]) * W +: W];
    end
    for (genvar i = 0; i < NOutOps; i++) begin : g_out_ok
      localparam row_t Row = row_t'(pim_pkg::SchedOutLat[out_op(i) * NOps * W +: NOps * W]);
      assign out_ok[c][i] = W'(since_out[i][cand_out_i[c]]) >= Row[32'(cand_op_i[c]) * W +: W];
    end
    for (genvar i = 0; i < NFaw; i++) begin : g_faw_ok
      assign faw_ok[c][i] = !faw_v_q[i]
                            || 32'(faw_cum[i]) + 32'(faw_weight(cand_op_i[c])) <= pim_pkg::FawLimit
                            || 32'(faw_age_q[i]) >= pim_pkg::NFaw;
    end

    assign legal_o[c] = (&chan_ok[c]) && (&bank_ok[c]) && ((&gb_ok[c]) || PlantBug == 3)
                        && (&out_ok[c]) && (&faw_ok[c]);
  end

endmodule : sched_timing

`default_nettype wire
