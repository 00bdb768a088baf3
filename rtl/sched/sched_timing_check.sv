// sched_timing_check: an independent check that a command stream keeps every pairwise timing
// rule (assertion-only: pim_sched instantiates it under `ifdef PIM_ASSERT, never synthesized).
//
// It watches a command bus (valid_i, cmd_i: pymodel.isa.encode words) and rebuilds, from the
// bus alone, "cycles since" the last issue of every opcode: anywhere, per bank, per GB entry and
// per OBuf entry (saturating at SchedSinceMax = "long ago"). For the command on the bus it walks
// the rules one by one (pim_pkg::RuleLat/RulePrev/RuleNext/RuleScope, generated from
// pymodel.timing.RULES) with the channel model's scope resolution (pymodel.golden.channel.Channel):
//   channel scope, or a bank scope when the command is all-bank -> since the last prev anywhere;
//   a bank scope when the command is single-bank -> every bank in that relation to its bank;
//   GB / OBuf entry -> the command's entry (commands that have one).
// violation_o: the command on the bus is earlier than some rule allows; rule_o: the first such
// rule (index into pymodel.timing.RULES). It shares no logic with sched_timing, which decides
// from the folded tables (SchedChanLat, ...). nFAW and the refresh deadline are not pairwise and
// are not checked here. No streams.

`default_nettype none

module sched_timing_check (
  input  logic                              clk_i,
  input  logic                              rst_ni,
  input  logic                              valid_i,
  input  logic [pim_pkg::CmdWidth-1:0]      cmd_i,
  output logic                              violation_o,
  output logic [$clog2(pim_pkg::NumRules)-1:0] rule_o
);

  localparam int W  = pim_pkg::SchedLatWidth;
  localparam int NO = pim_pkg::NumOps;
  localparam int NB = pim_pkg::NumBanks;
  localparam int NG = pim_pkg::GbEntries;
  localparam int NU = pim_pkg::ObufEntries;
  localparam int NR = pim_pkg::NumRules;
  localparam int RW = $clog2(pim_pkg::NumRules);
  localparam int SW = pim_pkg::RuleScopeWidth;
  localparam logic [W-1:0] Long = W'(pim_pkg::SchedSinceMax);

  logic [pim_pkg::OpcodeWidth-1:0] op;
  logic [pim_pkg::BankWidth-1:0]   bank;
  logic [pim_pkg::GbWidth-1:0]     gb;
  logic [pim_pkg::OutWidth-1:0]    out;
  logic                            all_bank, one_bank, has_gb, has_out;

  assign op       = cmd_i[pim_pkg::OpcodeOffset +: pim_pkg::OpcodeWidth];
  assign bank     = cmd_i[pim_pkg::BankOffset +: pim_pkg::BankWidth];
  assign gb       = cmd_i[pim_pkg::GbOffset +: pim_pkg::GbWidth];
  assign out      = cmd_i[pim_pkg::OutOffset +: pim_pkg::OutWidth];
  assign all_bank = pim_pkg::AllBankOps[op];
  assign one_bank = pim_pkg::SingleBankOps[op];
  assign has_gb   = pim_pkg::GbOps[op];
  assign has_out  = pim_pkg::OutOps[op];

  logic unused_cmd;  // row and column: no rule depends on them
  assign unused_cmd = ^cmd_i;

  // ---------------------------------------------------------------- cycles since, from the bus
  logic [NO-1:0][W-1:0]         any_q;
  logic [NO-1:0][NB-1:0][W-1:0] bank_q;
  logic [NO-1:0][NG-1:0][W-1:0] gb_q;
  logic [NO-1:0][NU-1:0][W-1:0] out_q;
  logic [NO-1:0]                hit;

  for (genvar p = 0; p < NO; p++) begin : g_hit
    assign hit[p] = valid_i && 32'(op) == p;
  end

  function automatic logic [W-1:0] older(input logic [W-1:0] v);
    older = (v < Long) ? v + 1'b1 : v;
  endfunction

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      any_q  <= {NO{Long}};
      bank_q <= {(NO * NB){Long}};
      gb_q   <= {(NO * NG){Long}};
      out_q  <= {(NO * NU){Long}};
    end else begin
      for (int p = 0; p < NO; p++) begin
        any_q[p] <= hit[p] ? W'(1) : older(any_q[p]);
        for (int b = 0; b < NB; b++) begin
          bank_q[p][b] <= (hit[p] && (all_bank || (one_bank && 32'(bank) == b)))
                          ? W'(1) : older(bank_q[p][b]);
        end
        for (int e = 0; e < NG; e++) begin
          gb_q[p][e] <= (hit[p] && has_gb && 32'(gb) == e) ? W'(1) : older(gb_q[p][e]);
        end
        for (int e = 0; e < NU; e++) begin
          out_q[p][e] <= (hit[p] && has_out && 32'(out) == e) ? W'(1) : older(out_q[p][e]);
        end
      end
    end
  end

  // ---------------------------------------------------------------- the rules, one by one
  function automatic logic same_group(input int a, input int b);
    same_group = (a / pim_pkg::BanksPerGroup) == (b / pim_pkg::BanksPerGroup);
  endfunction

  logic [W-1:0]  lat;
  logic [SW-1:0] scope;
  logic          bad;
  int            sc;        // scope as a pim_pkg::Scope* code
  logic          bank_rel;  // a bank relation (same bank / same group / other group)
  always_comb begin
    violation_o = 1'b0;
    rule_o      = '0;
    lat         = '0;
    scope       = '0;
    sc          = 0;
    bank_rel    = 1'b0;
    bad         = 1'b0;
    for (int r = NR - 1; r >= 0; r--) begin
      lat      = pim_pkg::RuleLat[r * W +: W];
      scope    = pim_pkg::RuleScope[r * SW +: SW];
      sc       = 32'(scope);
      bank_rel = sc == pim_pkg::ScopeBank || sc == pim_pkg::ScopeBankGroup
                 || sc == pim_pkg::ScopeOtherGroup;
      bad      = 1'b0;
      if (valid_i && lat != '0 && pim_pkg::RuleNext[r * NO + 32'(op)]) begin
        for (int p = 0; p < NO; p++) begin
          if (pim_pkg::RulePrev[r * NO + p]) begin
            if (sc == pim_pkg::ScopeChannel || (all_bank && bank_rel)) begin
              bad |= any_q[p] < lat;
            end else if (sc == pim_pkg::ScopeGbEntry) begin
              bad |= has_gb && gb_q[p][gb] < lat;
            end else if (sc == pim_pkg::ScopeOutEntry) begin
              bad |= has_out && out_q[p][out] < lat;
            end else if (one_bank) begin
              for (int b = 0; b < NB; b++) begin
                if ((sc == pim_pkg::ScopeBank && b == 32'(bank))
                    || (sc == pim_pkg::ScopeBankGroup && b != 32'(bank)
                        && same_group(b, 32'(bank)))
                    || (sc == pim_pkg::ScopeOtherGroup && !same_group(b, 32'(bank)))) begin
                  bad |= bank_q[p][b] < lat;
                end
              end
            end
          end
        end
      end
      if (bad) begin
        violation_o = 1'b1;
        rule_o      = RW'(r);  // the loop runs downwards: the lowest violated rule wins
      end
    end
  end

endmodule : sched_timing_check

`default_nettype wire
