// sched_entry_rules: the timing rules of one per-entry latency table for sched_timing (the GB
// entries, pim_pkg::SchedGbLat, or the OBuf entries, pim_pkg::SchedOutLat): for each candidate,
// whether a rule from an earlier command on the candidate's entry is not met yet.
//
// PrevOps lists the ops that start a rule of Lat (element [prev * NumOps + next]). The table's
// latencies are at most SinceMax cycles, so "cycles since the last PrevOps[i] on entry e,
// saturating at SinceMax" needs only the commands of the last SinceMax - 1 cycles: the nearest
// that was PrevOps[i] on entry e gives j (1 .. SinceMax - 1), none gives SinceMax. (This
// replaces a saturating counter per entry and op: 2 x 64 GB and 4 x 8 OBuf.) Each (prev, next)
// latency is a constant: zero entries (most) make no logic, the others one compare.
//
// issue_*: the command issued this cycle (recorded at the clock edge); cand_*: this cycle's
// candidates, cand_is_i their one-hot opcode (an opcode without a bit is unconstrained).
// No streams.

`default_nettype none

module sched_entry_rules #(  // defaults: the GB-entry table
  parameter int unsigned NumCand    = 3,
  parameter int unsigned NumPrev    = 2,  // ops that start a rule of Lat
  parameter logic [NumPrev*pim_pkg::OpcodeWidth-1:0] PrevOps =  // [i]: the i-th of them
      {pim_pkg::OpMac16, pim_pkg::OpWrgb},
  parameter logic [pim_pkg::NumOps*pim_pkg::NumOps*pim_pkg::SchedLatWidth-1:0] Lat =
      pim_pkg::SchedGbLat,
  parameter int unsigned EntWidth   = pim_pkg::GbWidth,  // bits of an entry index
  parameter int unsigned SinceMax   = pim_pkg::SchedGbSinceMax,  // >= every latency from PrevOps
  parameter int unsigned SinceWidth = pim_pkg::SchedGbSinceWidth
) (
  input  logic                                    clk_i,
  input  logic                                    rst_ni,
  input  logic                                    issue_i,
  input  logic [pim_pkg::OpcodeWidth-1:0]         issue_op_i,
  input  logic [EntWidth-1:0]                     issue_ent_i,
  input  logic [NumCand-1:0][pim_pkg::NumOps-1:0] cand_is_i,
  input  logic [NumCand-1:0][EntWidth-1:0]        cand_ent_i,
  output logic [NumCand-1:0]                      short_o  // a rule of Lat is not met yet
);

  localparam int unsigned W    = pim_pkg::SchedLatWidth;
  localparam int unsigned OW   = pim_pkg::OpcodeWidth;
  localparam int unsigned NOps = pim_pkg::NumOps;
  localparam int unsigned H    = SinceMax - 1;
  localparam int unsigned HN   = (H > 0) ? H : 1;  // storage (unused when H = 0)
  typedef logic [W-1:0]      lat_t;
  typedef logic [NOps*W-1:0] row_t;  // latencies from one prev op, [next]

  // ---------------------------------------------------------------- history
  // [j - 1]: the command of j cycles ago was PrevOps[i] (bit i), on entry hist_ent_q[j - 1]
  logic [HN-1:0][NumPrev-1:0]  hist_op_q;
  logic [HN-1:0][EntWidth-1:0] hist_ent_q;
  logic [NumPrev-1:0]          issue_is;
  for (genvar i = 0; i < NumPrev; i++) begin : g_issue_is
    assign issue_is[i] = issue_i && issue_op_i == PrevOps[i * OW +: OW];
  end
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      hist_op_q  <= '0;  // out of reset no event was seen: every entry reads SinceMax
      hist_ent_q <= '0;
    end else begin
      hist_op_q[0]  <= issue_is;
      hist_ent_q[0] <= issue_ent_i;
      for (int j = 1; j < int'(HN); j++) begin
        hist_op_q[j]  <= hist_op_q[j-1];
        hist_ent_q[j] <= hist_ent_q[j-1];
      end
    end
  end

  // ---------------------------------------------------------------- cycles since, per candidate
  logic [NumCand-1:0][NumPrev-1:0][SinceWidth-1:0] since;  // since PrevOps[i] on c's entry
  always_comb begin
    for (int c = 0; c < int'(NumCand); c++) begin
      for (int i = 0; i < int'(NumPrev); i++) begin  // the nearest matching command wins
        since[c][i] = SinceWidth'(SinceMax);
        for (int j = int'(H); j >= 1; j--) begin
          if (hist_op_q[j-1][i] && hist_ent_q[j-1] == cand_ent_i[c]) since[c][i] = SinceWidth'(j);
        end
      end
    end
  end

  // ---------------------------------------------------------------- shortfalls
  // lacks[c][i][n]: the rule PrevOps[i] -> op n is not met yet for candidate c's entry
  logic [NumCand-1:0][NumPrev-1:0][NOps-1:0] lacks;
  for (genvar i = 0; i < NumPrev; i++) begin : g_prev
    localparam row_t Row = row_t'(Lat[int'(PrevOps[i * OW +: OW]) * NOps * W +: NOps * W]);
    for (genvar n = 0; n < NOps; n++) begin : g_n
      localparam lat_t L = Row[n * W +: W];
      for (genvar c = 0; c < NumCand; c++) begin : g_c
        if (L == '0) begin : g_free
          assign lacks[c][i][n] = 1'b0;
        end else begin : g_rule
          assign lacks[c][i][n] = W'(since[c][i]) < L;
        end
      end
    end
  end
  always_comb begin
    for (int c = 0; c < int'(NumCand); c++) begin
      short_o[c] = 1'b0;
      for (int i = 0; i < int'(NumPrev); i++) short_o[c] |= |(cand_is_i[c] & lacks[c][i]);
    end
  end

endmodule : sched_entry_rules

`default_nettype wire
