// pim_sched_fv: formal harness of pim_sched (SymbiYosys, tools/formal.py, formal/proofs.toml).
//
// The environment: reset in the first cycle only, then a scheduling mode held constant (any of
// STATIC / PINGPONG / DCS), any instruction stream that obeys the stream rule (valid held and the
// word stable until ready) and offers only scheduler instructions (WR_INP, MAC, RD_OUT, WR_BANK,
// WR_BIAS, RD_MAC) of op_size 1 with their unused bits 0 (so every operand is in range: the
// proof config's sizes are powers of two), any GPR data and any read-data returns. The properties
// are pim_sched's own assertions (`ifdef PIM_ASSERT): every command keeps every pairwise timing
// rule (sched_timing_check), the quiet bus, GPR reads exactly for the data commands, no
// redundant TMOD.

`default_nettype none

module pim_sched_fv #(
  parameter int PlantBug = 0
) (
  input logic                                clk_i,
  input logic                                rst_ni,
  input logic [pim_pkg::SchedModeWidth-1:0]  mode_i,
  input logic                                inst_valid_i,
  input logic [pim_pkg::InstWidth-1:0]       inst_i,
  input logic                                rd_valid_i,
  input logic [pim_pkg::ColumnBytes*8-1:0]   rd_data_i,
  input logic [pim_pkg::ColumnBytes*8-1:0]   gpr_rd_data_i
);

  logic inst_ready, cmd_valid, gpr_rd_en, gpr_wr_en, busy, err;
  logic [pim_pkg::CmdWidth-1:0]          cmd;
  logic [pim_pkg::ColumnBytes*8-1:0]     cmd_data, gpr_wr_data;
  logic [pim_pkg::InstGprWidth-1:0]      gpr_rd_addr, gpr_wr_addr;

  pim_sched #(.PlantBug(PlantBug)) dut (
    .clk_i, .rst_ni, .mode_i,
    .inst_valid_i, .inst_ready_o(inst_ready), .inst_i,
    .cmd_valid_o(cmd_valid), .cmd_o(cmd), .cmd_data_o(cmd_data),
    .rd_valid_i, .rd_data_i,
    .gpr_rd_en_o(gpr_rd_en), .gpr_rd_addr_o(gpr_rd_addr), .gpr_rd_data_i,
    .gpr_wr_en_o(gpr_wr_en), .gpr_wr_addr_o(gpr_wr_addr), .gpr_wr_data_o(gpr_wr_data),
    .busy_o(busy), .err_o(err)
  );

  logic init_q = 1'b1;  // the first cycle (formal initial value)
  always_ff @(posedge clk_i) init_q <= 1'b0;

  logic [pim_pkg::InstOpcodeWidth-1:0] op;
  assign op = inst_i[pim_pkg::InstOpcodeWidth-1:0];

  // op_size 1 and nothing above the opcode's own fields
  function automatic logic legal_word(input logic [pim_pkg::InstWidth-1:0] w,
                                      input logic [pim_pkg::InstOpcodeWidth-1:0] o);
    legal_word = 1'b0;
    case (o)
      pim_pkg::InstWrInp: legal_word = w[pim_pkg::InstWrInpOpSizeOffset +: pim_pkg::InstOpSizeWidth] == '0
                                       && (w >> pim_pkg::InstWrInpBits) == '0;
      pim_pkg::InstMac:   legal_word = w[pim_pkg::InstMacOpSizeOffset +: pim_pkg::InstOpSizeWidth] == '0
                                       && (w >> pim_pkg::InstMacBits) == '0;
      pim_pkg::InstRdOut: legal_word = w[pim_pkg::InstRdOutOpSizeOffset +: pim_pkg::InstOpSizeWidth] == '0
                                       && (w >> pim_pkg::InstRdOutBits) == '0;
      pim_pkg::InstWrBank: legal_word = w[pim_pkg::InstWrBankOpSizeOffset +: pim_pkg::InstOpSizeWidth] == '0
                                        && (w >> pim_pkg::InstWrBankBits) == '0;
      pim_pkg::InstWrBias: legal_word = w[pim_pkg::InstWrBiasOpSizeOffset +: pim_pkg::InstOpSizeWidth] == '0
                                        && (w >> pim_pkg::InstWrBiasBits) == '0;
      pim_pkg::InstRdMac: legal_word = w[pim_pkg::InstRdMacOpSizeOffset +: pim_pkg::InstOpSizeWidth] == '0
                                       && (w >> pim_pkg::InstRdMacBits) == '0;
      default: legal_word = 1'b0;
    endcase
  endfunction

  always_comb begin
    if (init_q) assume (!rst_ni);
    else assume (rst_ni);
    assume (32'(mode_i) <= pim_pkg::SchedModeDcs);
    if (inst_valid_i) assume (legal_word(inst_i, op));
  end

  always_ff @(posedge clk_i) begin
    if (!init_q) begin
      assume (mode_i == $past(mode_i));
      if ($past(rst_ni) && $past(inst_valid_i && !inst_ready))
        assume (inst_valid_i && inst_i == $past(inst_i));
    end
  end

  logic unused;
  assign unused = ^{cmd_data, gpr_rd_addr, gpr_wr_en, gpr_wr_addr, gpr_wr_data, busy, err};

endmodule : pim_sched_fv

`default_nettype wire
