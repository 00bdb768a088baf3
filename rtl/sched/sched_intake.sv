// sched_intake: decode HUB instructions and route them to the scheduler's two queues.
//
// Stream in: inst_valid_i / inst_ready_o / inst_i (pymodel.isa.encode_inst word). A transfer
// happens on a clock edge where valid && ready; the upstream keeps valid and the word stable until
// then and never waits for ready before raising valid. inst_ready_o depends on the opcode of the
// offered word (it tells whether *its* queue has a free slot) and on registered state only.
//
// Routing (pymodel.golden.sched): STATIC -> queue 0 only; PINGPONG/DCS -> WR_INP, RD_OUT, WR_BIAS,
// RD_MAC to queue 0 (I/O), MAC, WR_BANK to queue 1 (compute). push_o[q] is the transfer into queue q; entry_o is
// the decoded instruction.
// DYN_LOOP / DYN_MODI (and unknown opcodes) must be expanded upstream: they are accepted,
// dropped, and flagged on illegal_o (one cycle).

`default_nettype none

module sched_intake (
  input  logic [pim_pkg::SchedModeWidth-1:0] mode_i,
  // instruction stream
  input  logic                               inst_valid_i,
  output logic                               inst_ready_o,
  input  logic [pim_pkg::InstWidth-1:0]      inst_i,
  // queues
  input  logic [1:0]                         full_i,
  output logic [1:0]                         push_o,
  output pim_pkg::sched_inst_t               entry_o,
  output logic                               illegal_o
);

  logic [pim_pkg::InstOpcodeWidth-1:0] op;
  logic                                known;
  logic                                to_compute;
  logic                                target;

  assign op = inst_i[pim_pkg::InstOpcodeWidth-1:0];

  // ch_mask selects channels upstream (the HUB); one scheduler serves one channel.
  logic unused_ch_mask;
  assign unused_ch_mask = ^inst_i[pim_pkg::InstWrInpChMaskOffset +: pim_pkg::InstChMaskWidth];

  // ---------------------------------------------------------------- decode (per-op offsets)
  always_comb begin
    entry_o    = '0;
    entry_o.op = op;
    known      = 1'b1;
    to_compute = 1'b0;
    unique case (op)
      pim_pkg::InstWrInp: begin
        entry_o.size_m1 = inst_i[pim_pkg::InstWrInpOpSizeOffset +: pim_pkg::InstOpSizeWidth];
        entry_o.gpr     = inst_i[pim_pkg::InstWrInpGprOffset +: pim_pkg::InstGprWidth];
        entry_o.gb      = inst_i[pim_pkg::InstWrInpGbOffset +: pim_pkg::InstGbWidth];
      end
      pim_pkg::InstMac: begin
        entry_o.size_m1 = inst_i[pim_pkg::InstMacOpSizeOffset +: pim_pkg::InstOpSizeWidth];
        entry_o.gb      = inst_i[pim_pkg::InstMacGbOffset +: pim_pkg::InstGbWidth];
        entry_o.row     = inst_i[pim_pkg::InstMacRowOffset +: pim_pkg::InstRowWidth];
        entry_o.col     = inst_i[pim_pkg::InstMacColOffset +: pim_pkg::InstColWidth];
        entry_o.out     = inst_i[pim_pkg::InstMacOutOffset +: pim_pkg::InstOutWidth];
        to_compute      = 1'b1;
      end
      pim_pkg::InstRdOut: begin
        entry_o.size_m1 = inst_i[pim_pkg::InstRdOutOpSizeOffset +: pim_pkg::InstOpSizeWidth];
        entry_o.gpr     = inst_i[pim_pkg::InstRdOutGprOffset +: pim_pkg::InstGprWidth];
        entry_o.out     = inst_i[pim_pkg::InstRdOutOutOffset +: pim_pkg::InstOutWidth];
      end
      pim_pkg::InstWrBias: begin
        entry_o.size_m1 = inst_i[pim_pkg::InstWrBiasOpSizeOffset +: pim_pkg::InstOpSizeWidth];
        entry_o.gpr     = inst_i[pim_pkg::InstWrBiasGprOffset +: pim_pkg::InstGprWidth];
        entry_o.out     = inst_i[pim_pkg::InstWrBiasOutOffset +: pim_pkg::InstOutWidth];
      end
      pim_pkg::InstRdMac: begin
        entry_o.size_m1 = inst_i[pim_pkg::InstRdMacOpSizeOffset +: pim_pkg::InstOpSizeWidth];
        entry_o.gpr     = inst_i[pim_pkg::InstRdMacGprOffset +: pim_pkg::InstGprWidth];
        entry_o.out     = inst_i[pim_pkg::InstRdMacOutOffset +: pim_pkg::InstOutWidth];
      end
      pim_pkg::InstWrBank: begin
        entry_o.size_m1 = inst_i[pim_pkg::InstWrBankOpSizeOffset +: pim_pkg::InstOpSizeWidth];
        entry_o.gpr     = inst_i[pim_pkg::InstWrBankGprOffset +: pim_pkg::InstGprWidth];
        entry_o.bank    = inst_i[pim_pkg::InstWrBankBankOffset +: pim_pkg::InstBankWidth];
        entry_o.row     = inst_i[pim_pkg::InstWrBankRowOffset +: pim_pkg::InstRowWidth];
        entry_o.col     = inst_i[pim_pkg::InstWrBankColOffset +: pim_pkg::InstColWidth];
        to_compute      = 1'b1;
      end
      default: known = 1'b0;
    endcase
  end

  // ---------------------------------------------------------------- routing and handshake
  assign target       = to_compute && (32'(mode_i) != pim_pkg::SchedModeStatic);
  assign inst_ready_o = !known || !full_i[target];
  assign push_o[0]    = inst_valid_i && known && !full_i[target] && !target;
  assign push_o[1]    = inst_valid_i && known && !full_i[target] && target;
  assign illegal_o    = inst_valid_i && !known;

endmodule : sched_intake

`default_nettype wire
