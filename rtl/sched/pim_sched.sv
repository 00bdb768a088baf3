// pim_sched: the PIM command scheduler of one channel (STATIC / PINGPONG / DCS), cycle-exact to
// pymodel.golden.sched.Scheduler (the specification; see docs/sched.md).
//
//            inst stream                                   +--------------+
//   ------> sched_intake --push--> queue 0 (I/O)  --head--> sched_cmd_gen -+--> sched_dep_check
//                          \-----> queue 1 (comp) --head--> sched_cmd_gen -+--> sched_dep_check
//                                   (peek_fifo)                             |
//   sched_refresh (due) --> sched_issue <-- legal -- sched_timing <---------+ candidates
//                              |  command bus (registered), GPR read, RDMAC return FIFO
//
// Streams / ports:
//   * inst_valid_i / inst_ready_o / inst_i: HUB instruction words (pymodel.isa.encode_inst; WR_INP,
//     MAC, RD_OUT, WR_BANK, WR_BIAS, RD_MAC). Transfer on valid && ready at a clock edge; the upstream holds valid
//     and data until accepted and never waits for ready to raise valid. inst_ready_o depends on
//     the offered opcode (its queue must have a free slot) and registered state.
//   * cmd_valid_o / cmd_o / cmd_data_o: the channel command bus, at most one command per cycle,
//     registered, no backpressure. cmd_data_o carries WRGB/WR/WRBIAS write data (else 0).
//   * gpr_rd_en_o / gpr_rd_addr_o -> gpr_rd_data_i: GPR read port, data returned in the same
//     cycle (combinational read), registered into cmd_data_o.
//   * rd_valid_i / rd_data_i: RDMAC read data from the channel, in RDMAC order, any latency up to
//     RetDepth outstanding reads; written to the remembered GPR entry one cycle later through
//     gpr_wr_en_o / gpr_wr_addr_o / gpr_wr_data_o.
//   * mode_i: pim_pkg::SchedMode{Static,Pingpong,Dcs}; change it only while idle (busy_o = 0).
//   * busy_o: an instruction is queued or read data is outstanding. err_o (sticky): a DYN_* or
//     unknown instruction was offered, the return FIFO overflowed, or read data came unasked.
// Timing: an instruction accepted in cycle a can issue its first command in cycle a + 1 (decision
// cycle = pymodel.golden.sched cycle); that command is on the bus in cycle a + 2. Bus cycle = model
// cycle + 1.
//
// PlantBug (tests only, default 0): 1 = the dependency check ignores GB entries; 2 = TMOD does
// not flip the register-access mode (the mode tracking the bench must catch); 3 = the timing
// check ignores the GB-entry rules; 4 = the GPR is read without an issue; 5 = the data bus keeps
// the last GPR word on idle cycles.
//
// Assertions (`ifdef PIM_ASSERT, never synthesized): every command on the bus keeps every
// pairwise timing rule (sched_timing_check, an independent checker built from the rule list of
// pymodel.timing); a quiet bus carries no word and no data; the GPR is read exactly for the
// commands that carry write data; a TMOD is never followed by another TMOD before a command that
// needed it (the mode register follows the TMODs).

`default_nettype none

module pim_sched #(
  parameter int unsigned PlantBug = 0,
  parameter int unsigned RetDepth = 4
) (
  input  logic                               clk_i,
  input  logic                               rst_ni,
  input  logic [pim_pkg::SchedModeWidth-1:0] mode_i,
  // HUB instructions
  input  logic                               inst_valid_i,
  output logic                               inst_ready_o,
  input  logic [pim_pkg::InstWidth-1:0]      inst_i,
  // channel command bus
  output logic                               cmd_valid_o,
  output logic [pim_pkg::CmdWidth-1:0]       cmd_o,
  output logic [pim_pkg::ColumnBytes*8-1:0]  cmd_data_o,
  // RDMAC read data from the channel
  input  logic                               rd_valid_i,
  input  logic [pim_pkg::ColumnBytes*8-1:0]  rd_data_i,
  // GPR ports
  output logic                               gpr_rd_en_o,
  output logic [pim_pkg::InstGprWidth-1:0]   gpr_rd_addr_o,
  input  logic [pim_pkg::ColumnBytes*8-1:0]  gpr_rd_data_i,
  output logic                               gpr_wr_en_o,
  output logic [pim_pkg::InstGprWidth-1:0]   gpr_wr_addr_o,
  output logic [pim_pkg::ColumnBytes*8-1:0]  gpr_wr_data_o,
  // status
  output logic                               busy_o,
  output logic                               err_o
);

  localparam int unsigned SlotWidth = pim_pkg::SchedInstBits;
  localparam int unsigned Depth     = pim_pkg::QueueDepth;
  localparam int unsigned IdxWidth  = (Depth > 1) ? $clog2(Depth) : 1;
  localparam int unsigned CntWidth  = $clog2(Depth + 1);
  localparam int unsigned RetIdx    = (RetDepth > 1) ? $clog2(RetDepth) : 1;
  localparam int unsigned RetCnt    = $clog2(RetDepth + 1);

  // ---------------------------------------------------------------- intake and queues
  logic [1:0]                          full, empty, push, pop;
  pim_pkg::sched_inst_t                entry;
  logic                                illegal;
  logic [1:0][SlotWidth-1:0]           head_slot;
  logic [1:0][IdxWidth-1:0]            head_idx, tail_idx;
  logic [1:0][Depth-1:0][SlotWidth-1:0] slots;
  logic [1:0][Depth-1:0]               slot_valid;
  logic [1:0][CntWidth-1:0]            count;

  sched_intake u_intake (
    .mode_i,
    .inst_valid_i, .inst_ready_o, .inst_i,
    .full_i(full), .push_o(push), .entry_o(entry), .illegal_o(illegal)
  );

  for (genvar q = 0; q < 2; q++) begin : g_queue
    peek_fifo #(.Width(SlotWidth), .Depth(Depth)) u_queue (
      .clk_i, .rst_ni,
      .push_i(push[q]), .data_i(entry), .pop_i(pop[q]),
      .full_o(full[q]), .empty_o(empty[q]), .count_o(count[q]),
      .head_o(head_slot[q]), .head_idx_o(head_idx[q]), .tail_idx_o(tail_idx[q]),
      .slots_o(slots[q]), .slot_valid_o(slot_valid[q])
    );
  end

  // ---------------------------------------------------------------- age: n_older
  // n_older_q[q][slot]: how many instructions of the other queue are older than this one. Set at
  // intake to the other queue's occupancy (intake is in order), decremented when it pops; the
  // older ones are always the other queue's first n_older entries.
  logic [1:0][Depth-1:0][CntWidth-1:0] n_older_q;
  logic [1:0][CntWidth-1:0]            head_n_older;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      n_older_q <= '0;
    end else begin
      for (int q = 0; q < 2; q++) begin
        for (int j = 0; j < int'(Depth); j++) begin
          if (push[q] && 32'(tail_idx[q]) == j) begin
            n_older_q[q][j] <= count[1-q] - CntWidth'(pop[1-q]);
          end else if (pop[1-q] && n_older_q[q][j] != '0) begin
            n_older_q[q][j] <= n_older_q[q][j] - 1'b1;
          end
        end
      end
    end
  end

  // ---------------------------------------------------------------- head commands
  logic [1:0][pim_pkg::InstOpSizeWidth:0] issued;
  logic                                   any_open, all_open, single_open;
  logic [pim_pkg::RowWidth-1:0]           open_row;
  logic [pim_pkg::BankWidth-1:0]          open_bank;
  logic [1:0][pim_pkg::OpcodeWidth-1:0]   op;
  logic [1:0][pim_pkg::BankWidth-1:0]     bank;
  logic [1:0][pim_pkg::RowWidth-1:0]      row;
  logic [1:0][pim_pkg::ColWidth-1:0]      col;
  logic [1:0][pim_pkg::GbWidth-1:0]       gb;
  logic [1:0][pim_pkg::OutWidth-1:0]      out;
  logic [1:0][pim_pkg::InstGprWidth-1:0]  gpr;
  logic [1:0]                             row_cmd, last, blocked;

  for (genvar q = 0; q < 2; q++) begin : g_head
    logic has_gb, has_out;
    assign head_n_older[q] = n_older_q[q][head_idx[q]];

    sched_cmd_gen u_cmd_gen (
      .head_i(pim_pkg::sched_inst_t'(head_slot[q])),
      .issued_i(issued[q]),
      .any_open_i(any_open), .all_open_i(all_open), .single_open_i(single_open),
      .open_row_i(open_row), .open_bank_i(open_bank),
      .op_o(op[q]), .bank_o(bank[q]), .row_o(row[q]), .col_o(col[q]), .gb_o(gb[q]),
      .out_o(out[q]), .gpr_o(gpr[q]), .row_cmd_o(row_cmd[q]), .last_o(last[q])
    );

    assign has_gb  = (op[q] == pim_pkg::OpWrgb) || (op[q] == pim_pkg::OpMac16);
    assign has_out = (op[q] == pim_pkg::OpMac16) || (op[q] == pim_pkg::OpRdmac)
                     || (op[q] == pim_pkg::OpClrmac) || (op[q] == pim_pkg::OpWrbias);

    sched_dep_check #(.PlantBug(PlantBug)) u_dep (
      .mode_i,
      .has_gb_i(has_gb), .gb_i(gb[q]), .has_out_i(has_out), .out_i(out[q]),
      .n_older_i(head_n_older[q]),
      .slots_i(slots[1-q]), .slot_valid_i(slot_valid[1-q]), .head_idx_i(head_idx[1-q]),
      .head_issued_i(issued[1-q]),
      .blocked_o(blocked[q])
    );
  end

  // ---------------------------------------------------------------- timing, refresh, issue
  logic [2:0]                          legal;
  logic                                ref_due;
  logic [pim_pkg::OpcodeWidth-1:0]     ref_op;
  logic                                issue;
  logic [pim_pkg::OpcodeWidth-1:0]     issue_op;
  logic [pim_pkg::BankWidth-1:0]       issue_bank;
  logic [pim_pkg::GbWidth-1:0]         issue_gb;
  logic [pim_pkg::OutWidth-1:0]        issue_out;
  logic                                rdmac;
  logic [pim_pkg::InstGprWidth-1:0]    rdmac_gpr;

  sched_timing #(.NumCand(3), .PlantBug(PlantBug)) u_timing (
    .clk_i, .rst_ni,
    .issue_i(issue), .issue_op_i(issue_op), .issue_bank_i(issue_bank), .issue_gb_i(issue_gb),
    .issue_out_i(issue_out),
    .cand_op_i({ref_op, op[1], op[0]}),
    .cand_bank_i({pim_pkg::BankWidth'(0), bank[1], bank[0]}),
    .cand_gb_i({pim_pkg::GbWidth'(0), gb[1], gb[0]}),
    .cand_out_i({pim_pkg::OutWidth'(0), out[1], out[0]}),
    .legal_o(legal)
  );

  sched_refresh u_refresh (
    .clk_i, .rst_ni,
    .ref_i(issue && issue_op == pim_pkg::OpRef),
    .due_o(ref_due)
  );

  sched_issue #(.PlantBug(PlantBug)) u_issue (
    .clk_i, .rst_ni, .mode_i,
    .head_valid_i(~empty), .head0_older_i(head_n_older[1] != '0),
    .op_i(op), .bank_i(bank), .row_i(row), .col_i(col), .gb_i(gb), .out_i(out), .gpr_i(gpr),
    .row_cmd_i(row_cmd), .last_i(last), .blocked_i(blocked),
    .legal_i(legal), .ref_due_i(ref_due), .ref_op_o(ref_op),
    .issued_o(issued), .pop_o(pop),
    .any_open_o(any_open), .all_open_o(all_open), .single_open_o(single_open),
    .open_row_o(open_row), .open_bank_o(open_bank),
    .issue_o(issue), .issue_op_o(issue_op), .issue_bank_o(issue_bank), .issue_gb_o(issue_gb),
    .issue_out_o(issue_out), .rdmac_o(rdmac), .rdmac_gpr_o(rdmac_gpr),
    .gpr_rd_en_o, .gpr_rd_addr_o, .gpr_rd_data_i,
    .cmd_valid_o, .cmd_o, .cmd_data_o
  );

  // ---------------------------------------------------------------- RDMAC return path
  logic                              ret_full, ret_empty;
  logic [pim_pkg::InstGprWidth-1:0]  ret_gpr;
  logic                              wr_en_q;
  logic [pim_pkg::InstGprWidth-1:0]  wr_addr_q;
  logic [pim_pkg::ColumnBytes*8-1:0] wr_data_q;
  logic                              err_q;
  logic [RetCnt-1:0]                 unused_ret_count;
  logic [RetIdx-1:0]                 unused_ret_idx, unused_ret_tail;
  logic [RetDepth-1:0][pim_pkg::InstGprWidth-1:0] unused_ret_slots;
  logic [RetDepth-1:0]               unused_ret_valid;
  peek_fifo #(.Width(pim_pkg::InstGprWidth), .Depth(RetDepth)) u_ret (
    .clk_i, .rst_ni,
    .push_i(rdmac), .data_i(rdmac_gpr), .pop_i(rd_valid_i && !ret_empty),
    .full_o(ret_full), .empty_o(ret_empty), .count_o(unused_ret_count),
    .head_o(ret_gpr), .head_idx_o(unused_ret_idx), .tail_idx_o(unused_ret_tail),
    .slots_o(unused_ret_slots), .slot_valid_o(unused_ret_valid)
  );

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      wr_en_q   <= 1'b0;
      wr_addr_q <= '0;
      wr_data_q <= '0;
      err_q     <= 1'b0;
    end else begin
      wr_en_q   <= rd_valid_i && !ret_empty;
      wr_addr_q <= ret_gpr;
      wr_data_q <= rd_data_i;
      if (illegal || (rd_valid_i && ret_empty) || (rdmac && ret_full && !rd_valid_i)) begin
        err_q <= 1'b1;
      end
    end
  end

  assign gpr_wr_en_o   = wr_en_q;
  assign gpr_wr_addr_o = wr_addr_q;
  assign gpr_wr_data_o = wr_data_q;
  assign busy_o        = !(&empty) || !ret_empty;
  assign err_o         = err_q;

  // ---------------------------------------------------------------- assertions
`ifdef PIM_ASSERT
  logic past_ok_q;  // out of reset since the previous clock edge (enables the checks)
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) past_ok_q <= 1'b0;
    else past_ok_q <= 1'b1;
  end

  logic                                  timing_bad;
  logic [$clog2(pim_pkg::NumRules)-1:0]  timing_rule;
  sched_timing_check u_check (
    .clk_i, .rst_ni, .valid_i(cmd_valid_o), .cmd_i(cmd_o),
    .violation_o(timing_bad), .rule_o(timing_rule)
  );

  logic [pim_pkg::OpcodeWidth-1:0] bus_op;
  logic                            bus_data_op, tmod_pending_q;
  assign bus_op      = cmd_o[pim_pkg::OpcodeOffset +: pim_pkg::OpcodeWidth];
  assign bus_data_op = cmd_valid_o && (bus_op == pim_pkg::OpWrgb || bus_op == pim_pkg::OpWr
                                       || bus_op == pim_pkg::OpWrbias);
  // tmod_pending_q: the last command decided was a TMOD (a REF in between is neutral). A second
  // TMOD is needed only when a refresh comes due meanwhile (its PREA may need the other mode).
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) tmod_pending_q <= 1'b0;
    else if (issue && issue_op != pim_pkg::OpRef) tmod_pending_q <= issue_op == pim_pkg::OpTmod;
  end

  always_ff @(posedge clk_i) begin
    if (past_ok_q) begin
      a_timing_safe: assert (!(cmd_valid_o && timing_bad));
      a_quiet_bus: assert (cmd_valid_o || (cmd_o == '0 && cmd_data_o == '0));
      a_gpr_read_for_data: assert ($past(gpr_rd_en_o) == bus_data_op);
      if (issue && issue_op == pim_pkg::OpTmod && !ref_due) a_tmod_needed: assert (!tmod_pending_q);
    end
  end
`endif

endmodule : pim_sched

`default_nettype wire
