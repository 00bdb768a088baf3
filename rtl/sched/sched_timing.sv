// sched_timing: DRAM/PIM timing state of the channel and the legality of candidate commands
// this cycle (pymodel.golden.channel.Channel.probe(cmd, now) == now).
//
// State:
//   * "cycles since" counters (rtl/common/since_counter, saturating at SchedSinceMax) per opcode,
//     last issue anywhere on the channel (pim_pkg::SchedChanLat), and per bank, last ACT and
//     last WR (single-bank commands; pim_pkg::SchedBankLat, 3 scope classes)
//   * per GB entry (last WRGB, MAC16; pim_pkg::SchedGbLat) and per OBuf entry (last MAC16,
//     RDMAC, CLRMAC, WRBIAS; pim_pkg::SchedOutLat), one sched_entry_rules each: those tables'
//     latencies are at most SchedGbSinceMax / SchedOutSinceMax (3 cycles), so a history of the
//     commands of the last Max - 1 cycles gives each entry's "cycles since" (saturated at Max)
//   * the nFAW window: the last FawLimit activations (age + weight), trimmed like the model's deque
// A candidate is legal when every counter is >= the latency of the rule from that prev op to the
// candidate's op (the tables fold pymodel.timing.RULES by scope, see pymodel.gen.sv_pkg); bank rules
// on the least counter of each scope class (same bank, rest of the group, other groups). The
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
  // Every (prev, next) latency is a constant, so each counter is compared once against each
  // constant of its row ("counter p has waited long enough for a next op n": *_wait below,
  // shared by all candidates), and a candidate picks its op's bits with a one-hot decode.
  // (Selecting a latency by the runtime opcode first made one wide constant shift per check
  // their const folding was most of the synthesis time.) An opcode value without a
  // row (no one-hot bit set) is unconstrained, as the zero padding of the tables made it before.
  typedef logic [NOps*W-1:0] row_t;              // latencies from one prev op, [next]
  typedef logic [NOps*NCls*W-1:0] bank_row_t;    // [next * NCls + class]
  function automatic logic [WWidth-1:0] faw_weight(input logic [pim_pkg::OpcodeWidth-1:0] op);
    faw_weight = '0;
    if (op == pim_pkg::OpAct)   faw_weight = WWidth'(pim_pkg::FawWeightAct);
    if (op == pim_pkg::OpAct16) faw_weight = WWidth'(pim_pkg::FawWeightAct16);
  endfunction

  // Ops with per-bank counters.
  localparam int unsigned NBankOps = 2;
  function automatic int bank_op(input int i);
    bank_op = (i == 0) ? int'(pim_pkg::OpAct) : int'(pim_pkg::OpWr);
  endfunction

  // ---------------------------------------------------------------- since counters
  // (the channel-wide counters are with their rules below: only ops that start a rule have one)
  lat_t [NBankOps-1:0][pim_pkg::NumBanks-1:0]            since_bank;

  for (genvar i = 0; i < NBankOps; i++) begin : g_bank_op
    for (genvar b = 0; b < pim_pkg::NumBanks; b++) begin : g_bank
      since_counter #(.Width(W), .Max(pim_pkg::SchedSinceMax)) u_cnt (
        .clk_i, .rst_ni,
        .event_i(issue_i && 32'(issue_op_i) == bank_op(i) && 32'(issue_bank_i) == b),
        .count_o(since_bank[i][b])
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

  // ---------------------------------------------------------------- per-candidate inputs
  localparam int unsigned NB  = pim_pkg::NumBanks;
  localparam int unsigned BPG = pim_pkg::BanksPerGroup;
  localparam int unsigned NG  = NB / BPG;
  localparam lat_t        Max = lat_t'(pim_pkg::SchedSinceMax);
  logic [NumCand-1:0][NOps-1:0]               cand_is;    // one-hot opcode
  // A bank rule binds per scope class of the other bank (0 same bank, 1 same group, 2 other
  // group): the candidate is legal for class k iff the least counter of the banks in that class
  // has waited the rule's latency (an empty class reads Max, which every latency is below).
  lat_t [NBankOps-1:0][NG-1:0]                group_min;  // least counter of each bank group
  lat_t [NumCand-1:0][NBankOps-1:0][NCls-1:0] cls_min;

  always_comb begin
    for (int i = 0; i < int'(NBankOps); i++) begin
      for (int g = 0; g < int'(NG); g++) begin
        group_min[i][g] = Max;
        for (int j = 0; j < int'(BPG); j++) begin
          if (since_bank[i][g * BPG + j] < group_min[i][g]) group_min[i][g] = since_bank[i][g * BPG + j];
        end
      end
    end
    for (int c = 0; c < int'(NumCand); c++) begin
      for (int n = 0; n < int'(NOps); n++) cand_is[c][n] = 32'(cand_op_i[c]) == n;
      for (int i = 0; i < int'(NBankOps); i++) begin
        cls_min[c][i] = {Max, Max, Max};
        for (int b = 0; b < int'(NB); b++) begin
          if (32'(cand_bank_i[c]) == b) begin
            cls_min[c][i][0] = since_bank[i][b];
          end else if (32'(cand_bank_i[c]) / BPG == b / BPG) begin
            if (since_bank[i][b] < cls_min[c][i][1]) cls_min[c][i][1] = since_bank[i][b];
          end
        end
        for (int g = 0; g < int'(NG); g++) begin
          if (32'(cand_bank_i[c]) / BPG != g && group_min[i][g] < cls_min[c][i][2]) begin
            cls_min[c][i][2] = group_min[i][g];
          end
        end
      end
    end
  end

  // ---------------------------------------------------------------- shortfalls
  // *_short[..][n]: a rule from that state to next op n is not met yet. Each (prev, next) latency
  // is a constant: zero entries (most) make no logic, the others one compare with a constant.
  logic [NOps-1:0][NOps-1:0]                              chan_short;  // [prev][next]
  logic [NumCand-1:0][NBankOps-1:0][NCls-1:0][NOps-1:0]   bank_short;
  for (genvar p = 0; p < NOps; p++) begin : g_chan_rule
    localparam row_t Row = row_t'(pim_pkg::SchedChanLat[p * NOps * W +: NOps * W]);
    if (Row == '0) begin : g_free
      assign chan_short[p] = '0;
    end else begin : g_rules
      lat_t since;  // cycles since the last op p anywhere on the channel
      since_counter #(.Width(W), .Max(pim_pkg::SchedSinceMax)) u_cnt (
        .clk_i, .rst_ni,
        .event_i(issue_i && 32'(issue_op_i) == p),
        .count_o(since)
      );
      for (genvar n = 0; n < NOps; n++) begin : g_n
        localparam lat_t L = Row[n * W +: W];
        if (L == '0) begin : g_free
          assign chan_short[p][n] = 1'b0;
        end else begin : g_rule
          assign chan_short[p][n] = since < L;
        end
      end
    end
  end
  for (genvar i = 0; i < NBankOps; i++) begin : g_bank_rule
    localparam bank_row_t Row = bank_row_t'(
        pim_pkg::SchedBankLat[bank_op(i) * NOps * NCls * W +: NOps * NCls * W]);
    for (genvar n = 0; n < NOps; n++) begin : g_n
      for (genvar k = 0; k < NCls; k++) begin : g_k
        localparam lat_t L = Row[(n * NCls + k) * W +: W];
        for (genvar c = 0; c < NumCand; c++) begin : g_c
          if (L == '0) begin : g_free
            assign bank_short[c][i][k][n] = 1'b0;
          end else begin : g_rule
            assign bank_short[c][i][k][n] = cls_min[c][i][k] < L;
          end
        end
      end
    end
  end
  // GB-entry and OBuf-entry rules: [c] a rule of that table is not met yet for candidate c
  typedef logic [pim_pkg::OpcodeWidth-1:0] op_t;
  logic [NumCand-1:0] gb_short, out_short;
  sched_entry_rules #(
    .NumCand(NumCand), .NumPrev(2), .PrevOps({op_t'(pim_pkg::OpMac16), op_t'(pim_pkg::OpWrgb)}),
    .Lat(pim_pkg::SchedGbLat), .EntWidth(pim_pkg::GbWidth),
    .SinceMax(pim_pkg::SchedGbSinceMax), .SinceWidth(pim_pkg::SchedGbSinceWidth)
  ) u_gb_rules (
    .clk_i, .rst_ni, .issue_i, .issue_op_i, .issue_ent_i(issue_gb_i),
    .cand_is_i(cand_is), .cand_ent_i(cand_gb_i), .short_o(gb_short)
  );
  sched_entry_rules #(
    .NumCand(NumCand), .NumPrev(4),
    .PrevOps({op_t'(pim_pkg::OpWrbias), op_t'(pim_pkg::OpClrmac), op_t'(pim_pkg::OpRdmac),
              op_t'(pim_pkg::OpMac16)}),
    .Lat(pim_pkg::SchedOutLat), .EntWidth(pim_pkg::OutWidth),
    .SinceMax(pim_pkg::SchedOutSinceMax), .SinceWidth(pim_pkg::SchedOutSinceWidth)
  ) u_out_rules (
    .clk_i, .rst_ni, .issue_i, .issue_op_i, .issue_ent_i(issue_out_i),
    .cand_is_i(cand_is), .cand_ent_i(cand_out_i), .short_o(out_short)
  );

  // ---------------------------------------------------------------- candidate legality
  // A candidate is illegal when a shortfall names its opcode (an opcode value without a table
  // row has no one-hot bit: unconstrained, as the tables' zero padding made it before).
  always_comb begin
    for (int c = 0; c < int'(NumCand); c++) begin
      logic bad, faw_bad;
      bad = out_short[c];
      faw_bad = 1'b0;
      for (int p = 0; p < int'(NOps); p++) bad |= |(cand_is[c] & chan_short[p]);
      for (int i = 0; i < int'(NBankOps); i++) begin
        for (int k = 0; k < int'(NCls); k++) bad |= |(cand_is[c] & bank_short[c][i][k]);
      end
      for (int i = 0; i < int'(NFaw); i++) begin
        if (faw_v_q[i] && 32'(faw_cum[i]) + 32'(faw_weight(cand_op_i[c])) > pim_pkg::FawLimit
            && 32'(faw_age_q[i]) < pim_pkg::NFaw) faw_bad = 1'b1;
      end
      legal_o[c] = !bad && (!gb_short[c] || PlantBug == 3) && !faw_bad;
    end
  end

endmodule : sched_timing

`default_nettype wire
