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

  // Where each scheduler opcode keeps its op_size field and how many bits its fields use
  // ({offset, bits}, from the generated package); bits 0: not a scheduler instruction.
  function automatic logic [15:0] sched_layout(input logic [pim_pkg::InstOpcodeWidth-1:0] o);
    case (o)
      pim_pkg::InstWrInp:  sched_layout = {8'(pim_pkg::InstWrInpOpSizeOffset),  8'(pim_pkg::InstWrInpBits)};
      pim_pkg::InstMac:    sched_layout = {8'(pim_pkg::InstMacOpSizeOffset),    8'(pim_pkg::InstMacBits)};
      pim_pkg::InstRdOut:  sched_layout = {8'(pim_pkg::InstRdOutOpSizeOffset),  8'(pim_pkg::InstRdOutBits)};
      pim_pkg::InstWrBank: sched_layout = {8'(pim_pkg::InstWrBankOpSizeOffset), 8'(pim_pkg::InstWrBankBits)};
      pim_pkg::InstWrBias: sched_layout = {8'(pim_pkg::InstWrBiasOpSizeOffset), 8'(pim_pkg::InstWrBiasBits)};
      pim_pkg::InstRdMac:  sched_layout = {8'(pim_pkg::InstRdMacOpSizeOffset),  8'(pim_pkg::InstRdMacBits)};
      default:             sched_layout = '0;
    endcase
  endfunction

  logic [7:0] size_at, used_bits;
  logic       legal_word;  // a scheduler opcode, op_size 1, nothing above its own fields
  assign {size_at, used_bits} = sched_layout(op);
  assign legal_word = used_bits != 0
                      && inst_i[size_at +: pim_pkg::InstOpSizeWidth] == '0
                      && (inst_i >> used_bits) == '0;

  always_comb begin
    if (init_q) assume (!rst_ni);
    else assume (rst_ni);
    assume (32'(mode_i) <= pim_pkg::SchedModeDcs);
    if (inst_valid_i) assume (legal_word);
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
