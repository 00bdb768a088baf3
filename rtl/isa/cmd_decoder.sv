// cmd_decoder: decode one channel command word per cycle into pim_pkg::cmd_t, exactly as
// pymodel.isa.decode does, and flag illegal words.
//
// A word is illegal when (checked in this order, the first failure is reported):
//   1. its opcode is not one of pim_pkg::op_e                        -> err_o = CmdErrOpcode
//   2. for each field in pim_pkg::cmd_field_e order (bank, row, col, gb, out):
//      - the opcode does not use the field and it is nonzero         -> err_o = CmdErrUnused
//      - the opcode uses it and it is >= pim_pkg::<Field>Limit       -> err_o = CmdErrRange
//        (only possible where pim_pkg::<Field>RangeCheck: limit not a power of two)
//   err_field_o names the field for 2. (FieldBank for 1. and for legal words).
// cmd_o always carries the raw field slices (cmd_t has the command word's bit layout); it is
// meaningful only when illegal_o is 0.
//
// Streams: word (word_valid_i / word_ready_o / word_i) in, cmd (cmd_valid_o / cmd_ready_i /
// cmd_o, illegal_o, err_o, err_field_o) out. A transfer happens on a clock edge where valid &&
// ready. valid never depends on ready; once valid is high the payload stays stable until it is
// accepted. The output is a one-entry register: word_ready_o = !cmd_valid_o || cmd_ready_i, so a
// word is accepted every cycle while the consumer is ready (full throughput, one cycle latency).
//
// PlantBug (formal proof and tests only, default 0): 1 = a used field equal to its limit passes
// the range check; 2 = a nonzero unused `out` field is not flagged.
//
// Icarus 11 crashes on package-scoped struct types, on casts to package enums and on variables of
// package enum types (docs/toolchain.md), and Yosys rejects `import`. So the logic below uses
// plain vectors sized by the package, and only the output port types differ: pim_pkg::cmd_t /
// cmd_err_e / cmd_field_e normally, same-width vectors under Icarus (`__ICARUS__`). cmd_t has
// the bit layout of the command word, so the bits are identical either way.

`default_nettype none

module cmd_decoder #(
  parameter int unsigned PlantBug = 0
) (
  input  logic                                 clk_i,
  input  logic                                 rst_ni,
  // raw command words
  input  logic                                 word_valid_i,
  output logic                                 word_ready_o,
  input  logic [pim_pkg::CmdWidth-1:0]         word_i,
  // decoded commands; illegal_o, err_o and err_field_o are part of the payload
  output logic                                 cmd_valid_o,
  input  logic                                 cmd_ready_i,
`ifdef __ICARUS__
  output logic [pim_pkg::CmdWidth-1:0]         cmd_o,
  output logic                                 illegal_o,
  output logic [pim_pkg::CmdErrWidth-1:0]      err_o,
  output logic [pim_pkg::CmdFieldWidth-1:0]    err_field_o
`else
  output pim_pkg::cmd_t                        cmd_o,
  output logic                                 illegal_o,
  output pim_pkg::cmd_err_e                    err_o,
  output pim_pkg::cmd_field_e                  err_field_o
`endif
);

  // ---------------------------------------------------------------- combinational decode
  logic [pim_pkg::OpcodeWidth-1:0]    opcode;
  logic [pim_pkg::BankWidth-1:0]      bank;
  logic [pim_pkg::RowWidth-1:0]       row;
  logic [pim_pkg::ColWidth-1:0]       col;
  logic [pim_pkg::GbWidth-1:0]        gb;
  logic [pim_pkg::OutWidth-1:0]       out;
  logic                               op_ok;     // opcode is one of pim_pkg::op_e
  logic [pim_pkg::NumCmdFields-1:0]   used;      // fields the opcode uses (bit = cmd_field_e)
  logic [pim_pkg::NumCmdFields-1:0]   nonzero;   // field != 0
  logic [pim_pkg::NumCmdFields-1:0]   too_big;   // field >= its limit
  logic [pim_pkg::NumCmdFields-1:0]   bad;       // field makes the word illegal
  logic [pim_pkg::CmdErrWidth-1:0]    err_d;
  logic [pim_pkg::CmdFieldWidth-1:0]  err_field_d;

  assign opcode = word_i[pim_pkg::OpcodeOffset +: pim_pkg::OpcodeWidth];
  assign bank   = word_i[pim_pkg::BankOffset   +: pim_pkg::BankWidth];
  assign row    = word_i[pim_pkg::RowOffset    +: pim_pkg::RowWidth];
  assign col    = word_i[pim_pkg::ColOffset    +: pim_pkg::ColWidth];
  assign gb     = word_i[pim_pkg::GbOffset     +: pim_pkg::GbWidth];
  assign out    = word_i[pim_pkg::OutOffset    +: pim_pkg::OutWidth];

  assign op_ok = pim_pkg::op_known(opcode);
  assign used  = pim_pkg::op_fields(opcode);

  assign nonzero[pim_pkg::FieldBank] = |bank;
  assign nonzero[pim_pkg::FieldRow]  = |row;
  assign nonzero[pim_pkg::FieldCol]  = |col;
  assign nonzero[pim_pkg::FieldGb]   = |gb;
  assign nonzero[pim_pkg::FieldOut]  = |out;

  // Only compared where the limit is below 2**width (<Field>RangeCheck); constant 0 elsewhere.
  function automatic logic beyond(input logic check, input int value, input int limit);
    beyond = check && (PlantBug == 1 ? value > limit : value >= limit);
  endfunction
  assign too_big[pim_pkg::FieldBank] = beyond(pim_pkg::BankRangeCheck, 32'(bank), pim_pkg::BankLimit);
  assign too_big[pim_pkg::FieldRow]  = beyond(pim_pkg::RowRangeCheck,  32'(row),  pim_pkg::RowLimit);
  assign too_big[pim_pkg::FieldCol]  = beyond(pim_pkg::ColRangeCheck,  32'(col),  pim_pkg::ColLimit);
  assign too_big[pim_pkg::FieldGb]   = beyond(pim_pkg::GbRangeCheck,   32'(gb),   pim_pkg::GbLimit);
  assign too_big[pim_pkg::FieldOut]  = beyond(pim_pkg::OutRangeCheck,  32'(out),  pim_pkg::OutLimit);

  logic [pim_pkg::NumCmdFields-1:0] unflagged;  // PlantBug 2: unused fields let through
  assign unflagged = (PlantBug == 2) ? pim_pkg::NumCmdFields'(1) << pim_pkg::FieldOut : '0;
  assign bad = (used & too_big) | (~used & nonzero & ~unflagged);

  // The first failing check wins, in the order of pymodel.isa.check_command.
  always_comb begin
    err_d       = pim_pkg::CmdErrNone;
    err_field_d = pim_pkg::FieldBank;
    if (!op_ok) begin
      err_d = pim_pkg::CmdErrOpcode;
    end else if (bad[pim_pkg::FieldBank]) begin
      err_d       = used[pim_pkg::FieldBank] ? pim_pkg::CmdErrRange : pim_pkg::CmdErrUnused;
      err_field_d = pim_pkg::FieldBank;
    end else if (bad[pim_pkg::FieldRow]) begin
      err_d       = used[pim_pkg::FieldRow] ? pim_pkg::CmdErrRange : pim_pkg::CmdErrUnused;
      err_field_d = pim_pkg::FieldRow;
    end else if (bad[pim_pkg::FieldCol]) begin
      err_d       = used[pim_pkg::FieldCol] ? pim_pkg::CmdErrRange : pim_pkg::CmdErrUnused;
      err_field_d = pim_pkg::FieldCol;
    end else if (bad[pim_pkg::FieldGb]) begin
      err_d       = used[pim_pkg::FieldGb] ? pim_pkg::CmdErrRange : pim_pkg::CmdErrUnused;
      err_field_d = pim_pkg::FieldGb;
    end else if (bad[pim_pkg::FieldOut]) begin
      err_d       = used[pim_pkg::FieldOut] ? pim_pkg::CmdErrRange : pim_pkg::CmdErrUnused;
      err_field_d = pim_pkg::FieldOut;
    end
  end

  // ---------------------------------------------------------------- one-entry output register
  logic                               valid_q;
  logic [pim_pkg::CmdWidth-1:0]       cmd_q;
  logic [pim_pkg::CmdErrWidth-1:0]    err_q;
  logic [pim_pkg::CmdFieldWidth-1:0]  err_field_q;

  // ready may depend on the consumer's ready; valid (a register) never does.
  assign word_ready_o = !valid_q || cmd_ready_i;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      valid_q     <= 1'b0;
      cmd_q       <= '0;
      err_q       <= pim_pkg::CmdErrNone;
      err_field_q <= pim_pkg::FieldBank;
    end else if (word_valid_i && word_ready_o) begin
      valid_q     <= 1'b1;
      cmd_q       <= word_i;
      err_q       <= err_d;
      err_field_q <= err_field_d;
    end else if (cmd_ready_i) begin
      valid_q     <= 1'b0;
    end
  end

  assign cmd_valid_o = valid_q;
  assign illegal_o   = (err_q != pim_pkg::CmdErrNone);
`ifdef __ICARUS__
  assign cmd_o       = cmd_q;
  assign err_o       = err_q;
  assign err_field_o = err_field_q;
`else
  assign cmd_o       = pim_pkg::cmd_t'(cmd_q);
  assign err_o       = pim_pkg::cmd_err_e'(err_q);
  assign err_field_o = pim_pkg::cmd_field_e'(err_field_q);
`endif

endmodule : cmd_decoder

`default_nettype wire
