// cmd_decoder_fv: formal harness of cmd_decoder against the ISA encoding (SymbiYosys,
// tools/formal.py, formal/proofs.toml).
//
// The environment: reset in the first cycle only, then any word stream that obeys the stream
// rule (valid held and the word stable until ready) and any consumer backpressure. The reference
// is cmd_spec::check (tools/cmd_spec.py: pymodel.isa.decode's verdict, per opcode, with the field
// positions of pymodel.isa.CmdLayout; it shares nothing with pim_pkg). The harness remembers the
// last word the decoder accepted; while the decoder offers a result:
//   a_dec_fields  every field of cmd_o is that word's field at the ISA's offset and width
//   a_dec_verdict illegal_o, err_o and err_field_o are the reference's verdict on that word
// and the output stream:
//   a_dec_valid   a result is offered exactly when a word was accepted and not yet taken
//   a_dec_ready   word_ready_o = !cmd_valid_o || cmd_ready_i (full throughput)
//   a_dec_hold    an offered result stays, unchanged, until it is taken

`default_nettype none

module cmd_decoder_fv #(
  parameter int PlantBug = 0
) (
  input logic                         clk_i,
  input logic                         rst_ni,
  input logic                         word_valid_i,
  input logic [pim_pkg::CmdWidth-1:0] word_i,
  input logic                         cmd_ready_i
);

  logic                               word_ready, cmd_valid, illegal;
  pim_pkg::cmd_t                      cmd;
  pim_pkg::cmd_err_e                  err;
  pim_pkg::cmd_field_e                err_field;

  cmd_decoder #(.PlantBug(PlantBug)) dut (
    .clk_i, .rst_ni,
    .word_valid_i, .word_ready_o(word_ready), .word_i,
    .cmd_valid_o(cmd_valid), .cmd_ready_i,
    .cmd_o(cmd), .illegal_o(illegal), .err_o(err), .err_field_o(err_field)
  );

  logic init_q = 1'b1;  // the first cycle (formal initial value)
  always_ff @(posedge clk_i) init_q <= 1'b0;

  always_comb begin
    if (init_q) assume (!rst_ni);
    else assume (rst_ni);
  end

  // ---------------------------------------------------------------- what was accepted
  logic                         pending_q;  // an accepted word whose result is not taken yet
  logic [cmd_spec::Width-1:0]   word_q;
  always_ff @(posedge clk_i) begin
    if (!rst_ni) begin
      pending_q <= 1'b0;
    end else if (word_valid_i && word_ready) begin
      pending_q <= 1'b1;
      word_q    <= word_i;
    end else if (cmd_ready_i) begin
      pending_q <= 1'b0;
    end
  end

  logic [pim_pkg::CmdErrWidth + pim_pkg::CmdFieldWidth-1:0] want;
  assign want = cmd_spec::check(word_q);

  function automatic logic [pim_pkg::CmdWidth-1:0] slice(input logic [pim_pkg::CmdWidth-1:0] w,
                                                         input int offset, input int bits);
    slice = (w >> offset) & ((pim_pkg::CmdWidth'(1) << bits) - 1'b1);
  endfunction

  logic fields_ok;
  assign fields_ok =
      slice(word_q, cmd_spec::OpcodeOffset, cmd_spec::OpcodeBits) == pim_pkg::CmdWidth'(cmd.op)
      && slice(word_q, cmd_spec::BankOffset, cmd_spec::BankBits) == pim_pkg::CmdWidth'(cmd.bank)
      && slice(word_q, cmd_spec::RowOffset, cmd_spec::RowBits) == pim_pkg::CmdWidth'(cmd.row)
      && slice(word_q, cmd_spec::ColOffset, cmd_spec::ColBits) == pim_pkg::CmdWidth'(cmd.col)
      && slice(word_q, cmd_spec::GbOffset, cmd_spec::GbBits) == pim_pkg::CmdWidth'(cmd.gb)
      && slice(word_q, cmd_spec::OutOffset, cmd_spec::OutBits) == pim_pkg::CmdWidth'(cmd.out);

  // labelled assertions in a clocked block (Yosys keeps the labels there): checked every cycle
  always_ff @(posedge clk_i) begin
    if (!init_q && rst_ni) begin
      a_dec_valid: assert (cmd_valid == pending_q);
      a_dec_ready: assert (word_ready == (!cmd_valid || cmd_ready_i));
      if (cmd_valid) begin
        a_dec_fields: assert (fields_ok);
        a_dec_verdict: assert ({err, err_field} == want
                               && illegal == (err != pim_pkg::CmdErrNone));
      end
    end
    if (!init_q && $past(rst_ni)) begin
      if ($past(word_valid_i && !word_ready))
        assume (word_valid_i && word_i == $past(word_i));
      if ($past(cmd_valid && !cmd_ready_i))
        a_dec_hold: assert (cmd_valid && cmd == $past(cmd) && err == $past(err)
                            && err_field == $past(err_field));
    end
  end

endmodule : cmd_decoder_fv

`default_nettype wire
