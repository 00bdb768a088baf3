// sched_issue: per-cycle arbitration, issue bookkeeping and the registered command bus.
//
// Each cycle at most one command issues (pymodel.golden.sched "Arbitration"):
//   * refresh due  -> the refresh candidate (PREA while a row is open, then REF) if legal, nothing
//                     else;
//   * otherwise    -> the queue heads whose command is dependency-free (blocked_i = 0) are the
//                     candidates; if any of them needs no mode switch, only those are considered
//                     (mode affinity). Among the considered ones that are legal (legal_i) and, in
//                     STATIC, past the previous instruction's completion (first command) and any
//                     blocking RD_MAC hold, the older instruction (age tag) wins.
// A chosen command that needs the other register-access mode (pim_pkg::ModeAnyOps/ModeRegOps)
// is replaced by TMOD, which flips mode_q and does not advance the head. Issuing advances the
// head's sub-command count (row commands do not count), pops the queue on its last command,
// updates the bank state, the STATIC completion barrier and the RD_MAC hold.
//
// Command bus (registered; bus cycle = decision cycle + 1): cmd_valid_o, cmd_o (pymodel.isa.encode
// word), cmd_data_o (WRGB/WR write data, read from the GPR in the decision cycle through
// gpr_rd_en_o / gpr_rd_addr_o / gpr_rd_data_i, same-cycle; also WRBIAS). The bus has no
// backpressure.
// rdmac_o / rdmac_gpr_o: an RDMAC issues this cycle and its data goes to GPR entry rdmac_gpr_o.

`default_nettype none

module sched_issue #(
  // tests only: 2 = TMOD does not flip the mode register; 4 = the GPR is read in every cycle
  // with a data command at a head, issued or not; 5 = the data register keeps the GPR word
  parameter int unsigned PlantBug = 0
) (
  input  logic                                        clk_i,
  input  logic                                        rst_ni,
  input  logic [pim_pkg::SchedModeWidth-1:0]          mode_i,
  // queue heads (0 = I/O or the STATIC queue, 1 = compute)
  input  logic [1:0]                                  head_valid_i,
  input  logic                                        head0_older_i,  // when both valid
  input  logic [1:0][pim_pkg::OpcodeWidth-1:0]        op_i,
  input  logic [1:0][pim_pkg::BankWidth-1:0]          bank_i,
  input  logic [1:0][pim_pkg::RowWidth-1:0]           row_i,
  input  logic [1:0][pim_pkg::ColWidth-1:0]           col_i,
  input  logic [1:0][pim_pkg::GbWidth-1:0]            gb_i,
  input  logic [1:0][pim_pkg::OutWidth-1:0]           out_i,
  input  logic [1:0][pim_pkg::InstGprWidth-1:0]       gpr_i,
  input  logic [1:0]                                  row_cmd_i,
  input  logic [1:0]                                  last_i,
  input  logic [1:0]                                  blocked_i,
  // legality from sched_timing: [0], [1] queue heads, [2] refresh candidate
  input  logic [2:0]                                  legal_i,
  input  logic                                        ref_due_i,
  output logic [pim_pkg::OpcodeWidth-1:0]             ref_op_o,
  // bookkeeping
  output logic [1:0][pim_pkg::InstOpSizeWidth:0]      issued_o,
  output logic [1:0]                                  pop_o,
  output logic                                        any_open_o,
  output logic                                        all_open_o,
  output logic                                        single_open_o,
  output logic [pim_pkg::RowWidth-1:0]                open_row_o,
  output logic [pim_pkg::BankWidth-1:0]               open_bank_o,
  // the command chosen this cycle (to sched_timing / sched_refresh)
  output logic                                        issue_o,
  output logic [pim_pkg::OpcodeWidth-1:0]             issue_op_o,
  output logic [pim_pkg::BankWidth-1:0]               issue_bank_o,
  output logic [pim_pkg::GbWidth-1:0]                 issue_gb_o,
  output logic [pim_pkg::OutWidth-1:0]                issue_out_o,
  output logic                                        rdmac_o,
  output logic [pim_pkg::InstGprWidth-1:0]            rdmac_gpr_o,
  // GPR read port (write data of WRGB/WR)
  output logic                                        gpr_rd_en_o,
  output logic [pim_pkg::InstGprWidth-1:0]            gpr_rd_addr_o,
  input  logic [pim_pkg::ColumnBytes*8-1:0]           gpr_rd_data_i,
  // command bus
  output logic                                        cmd_valid_o,
  output logic [pim_pkg::CmdWidth-1:0]                cmd_o,
  output logic [pim_pkg::ColumnBytes*8-1:0]           cmd_data_o
);

  localparam int unsigned W = pim_pkg::SchedLatWidth;

  typedef enum logic [1:0] {
    BanksClosed = 2'd0,
    BanksAll    = 2'd1,
    BanksSingle = 2'd2
  } bank_state_e;

  bank_state_e                          bank_state_q, bank_state_d;
  logic [pim_pkg::RowWidth-1:0]         open_row_q, open_row_d;
  logic [pim_pkg::BankWidth-1:0]        open_bank_q, open_bank_d;
  logic [1:0][pim_pkg::InstOpSizeWidth:0] issued_q, issued_d;
  logic [W-1:0]                         barrier_q, barrier_d;
  logic [W-1:0]                         hold_q, hold_d;  // STATIC: cycles until an RDMAC returns
  logic                                 mode_q, mode_d;  // 1 = register-access mode
  logic                                 cmd_valid_q;
  logic [pim_pkg::CmdWidth-1:0]         cmd_q, cmd_d;
  logic [pim_pkg::ColumnBytes*8-1:0]    data_q;

  logic        is_static;
  logic [1:0]  ok, cur, switch;
  logic        ref_switch;
  logic        from_ref; // the refresh candidate issues
  logic        sel;      // queue that issues (when !from_ref)
  logic        tmod;     // the chosen command is replaced by TMOD

  // 1 when `op` needs the register-access mode other than mode_q.
  function automatic logic needs_switch(input logic [pim_pkg::OpcodeWidth-1:0] op,
                                        input logic mode);
    needs_switch = 1'b0;
    for (int n = 0; n < pim_pkg::NumOps; n++) begin
      if (32'(op) == n) begin
        needs_switch = !pim_pkg::ModeAnyOps[n] && (pim_pkg::ModeRegOps[n] != mode);
      end
    end
  endfunction

  assign is_static  = (32'(mode_i) == pim_pkg::SchedModeStatic);
  assign ref_op_o   = (bank_state_q != BanksClosed) ? pim_pkg::OpPrea : pim_pkg::OpRef;
  assign ref_switch = needs_switch(ref_op_o, mode_q);

  for (genvar q = 0; q < 2; q++) begin : g_ok
    assign switch[q] = needs_switch(op_i[q], mode_q);
    assign cur[q]    = head_valid_i[q] && !blocked_i[q] && !switch[q];
    assign ok[q]     = head_valid_i[q] && !blocked_i[q] && legal_i[q]
                       && (!is_static || ((issued_q[q] != '0 || barrier_q == '0)
                                          && hold_q == '0))
                       && (cur[q] || !(|cur));
  end

  always_comb begin
    from_ref = 1'b0;
    sel      = 1'b0;
    issue_o  = 1'b0;
    if (ref_due_i) begin
      from_ref = 1'b1;
      issue_o  = legal_i[2];
    end else if (ok[0] && ok[1]) begin
      sel     = !head0_older_i;
      issue_o = 1'b1;
    end else if (ok[0] || ok[1]) begin
      sel     = ok[1];
      issue_o = 1'b1;
    end
  end
  assign tmod = from_ref ? ref_switch : switch[sel];

  // ---------------------------------------------------------------- the chosen command
  always_comb begin
    issue_op_o   = tmod ? pim_pkg::OpTmod : from_ref ? ref_op_o : op_i[sel];
    issue_bank_o = (from_ref || tmod) ? '0 : bank_i[sel];
    issue_gb_o   = (from_ref || tmod) ? '0 : gb_i[sel];
    issue_out_o  = (from_ref || tmod) ? '0 : out_i[sel];
    cmd_d = '0;
    cmd_d[pim_pkg::OpcodeOffset +: pim_pkg::OpcodeWidth] = issue_op_o;
    cmd_d[pim_pkg::BankOffset +: pim_pkg::BankWidth]     = issue_bank_o;
    cmd_d[pim_pkg::RowOffset +: pim_pkg::RowWidth]       = (from_ref || tmod) ? '0 : row_i[sel];
    cmd_d[pim_pkg::ColOffset +: pim_pkg::ColWidth]       = (from_ref || tmod) ? '0 : col_i[sel];
    cmd_d[pim_pkg::GbOffset +: pim_pkg::GbWidth]         = issue_gb_o;
    cmd_d[pim_pkg::OutOffset +: pim_pkg::OutWidth]       = issue_out_o;
  end

  assign gpr_rd_en_o   = (issue_o || PlantBug == 4)
                         && (issue_op_o == pim_pkg::OpWrgb || issue_op_o == pim_pkg::OpWr
                             || issue_op_o == pim_pkg::OpWrbias);
  assign gpr_rd_addr_o = gpr_i[sel];
  assign rdmac_o       = issue_o && issue_op_o == pim_pkg::OpRdmac;
  assign rdmac_gpr_o   = gpr_i[sel];

  // ---------------------------------------------------------------- bookkeeping
  always_comb begin
    bank_state_d = bank_state_q;
    open_row_d   = open_row_q;
    open_bank_d  = open_bank_q;
    issued_d     = issued_q;
    pop_o        = '0;
    barrier_d    = (barrier_q != '0) ? barrier_q - 1'b1 : '0;
    hold_d       = (hold_q != '0) ? hold_q - 1'b1 : '0;
    mode_d       = mode_q;
    if (issue_o && issue_op_o == pim_pkg::OpTmod && PlantBug != 2) mode_d = !mode_q;
    if (issue_o && is_static && issue_op_o == pim_pkg::OpRdmac && pim_pkg::SchedRdHold != 0) begin
      hold_d = W'(pim_pkg::SchedRdHold - 1);
    end
    if (issue_o) begin
      unique case (issue_op_o)
        pim_pkg::OpAct16: begin
          bank_state_d = BanksAll;
          open_row_d   = row_i[sel];
        end
        pim_pkg::OpAct: begin
          bank_state_d = BanksSingle;
          open_row_d   = row_i[sel];
          open_bank_d  = bank_i[sel];
        end
        pim_pkg::OpPrea: bank_state_d = BanksClosed;
        default: ;
      endcase
      if (!from_ref && !tmod && !row_cmd_i[sel]) begin
        issued_d[sel] = issued_q[sel] + 1'b1;
        if (last_i[sel]) begin
          issued_d[sel] = '0;
          pop_o[sel]    = 1'b1;
          barrier_d     = completion(issue_op_o);
        end
      end
    end
  end

  // Cycles the STATIC barrier still holds after the last command of an instruction: the next
  // instruction may start COMPLETION cycles after it (counter 0 = open).
  function automatic logic [W-1:0] completion(input logic [pim_pkg::OpcodeWidth-1:0] op);
    logic [W-1:0] lat;
    lat = pim_pkg::SchedCompletion[32'(op) * W +: W];
    completion = (lat != '0) ? lat - 1'b1 : '0;
  endfunction

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      bank_state_q <= BanksClosed;
      open_row_q   <= '0;
      open_bank_q  <= '0;
      issued_q     <= '0;
      barrier_q    <= '0;
      hold_q       <= '0;
      mode_q       <= 1'b0;
      cmd_valid_q  <= 1'b0;
      cmd_q        <= '0;
      data_q       <= '0;
    end else begin
      bank_state_q <= bank_state_d;
      open_row_q   <= open_row_d;
      open_bank_q  <= open_bank_d;
      issued_q     <= issued_d;
      barrier_q    <= barrier_d;
      hold_q       <= hold_d;
      mode_q       <= mode_d;
      cmd_valid_q  <= issue_o;
      cmd_q        <= issue_o ? cmd_d : '0;
      data_q       <= (gpr_rd_en_o || PlantBug == 5) ? gpr_rd_data_i : '0;
    end
  end

  assign issued_o      = issued_q;
  assign any_open_o    = (bank_state_q != BanksClosed);
  assign all_open_o    = (bank_state_q == BanksAll);
  assign single_open_o = (bank_state_q == BanksSingle);
  assign open_row_o    = open_row_q;
  assign open_bank_o   = open_bank_q;
  assign cmd_valid_o   = cmd_valid_q;
  assign cmd_o         = cmd_q;
  assign cmd_data_o    = data_q;

endmodule : sched_issue

`default_nettype wire
