// dpa_ctrl_fv: formal harness of dpa_ctrl (SymbiYosys, tools/formal.py, formal/proofs.toml).
//
// The environment: reset in the first cycle only, then any host command stream that obeys the
// stream rule (valid held, payload stable until ready) and any response backpressure. With
// HostOnly = 1 no instruction is ever offered (inst_valid_i = 0): the allocator proofs cover the
// host-command path, which is the only one that changes allocator state. Every property is an
// assertion inside dpa_ctrl (`ifdef PIM_ASSERT); tools/formal.py keeps the set a proof names.

`default_nettype none

module dpa_ctrl_fv #(
  parameter int PlantBug = 0,
  parameter int HostOnly = 1
) (
  input logic                                clk_i,
  input logic                                rst_ni,
  input logic                                host_valid_i,
  input logic [pim_pkg::DpaHostOpWidth-1:0]  host_op_i,
  input logic [pim_pkg::InstReqWidth-1:0]    host_req_i,
  input logic [pim_pkg::DpaArgWidth-1:0]     host_arg_i,
  input logic                                resp_ready_i,
  input logic                                inst_valid_i,
  input logic [pim_pkg::InstWidth-1:0]       inst_i,
  input logic                                out_ready_i
);

  logic host_ready, inst_ready, resp_valid, out_valid, err_valid;
  logic [pim_pkg::DpaStatusWidth-1:0] resp_status, err_code;
  logic [pim_pkg::DpaChanWidth-1:0] resp_chan;
  logic [pim_pkg::RowWidth-1:0] resp_row;
  logic [pim_pkg::InstWidth-1:0] out_word;
  logic [pim_pkg::DpaTotalFreeWidth-1:0] free_chunks;

  dpa_ctrl #(.PlantBug(PlantBug)) dut (
    .clk_i, .rst_ni,
    .host_valid_i, .host_ready_o(host_ready), .host_op_i, .host_req_i, .host_arg_i,
    .resp_valid_o(resp_valid), .resp_ready_i, .resp_status_o(resp_status),
    .resp_chan_o(resp_chan), .resp_row_o(resp_row),
    .inst_valid_i, .inst_ready_o(inst_ready), .inst_i,
    .out_valid_o(out_valid), .out_ready_i, .out_o(out_word),
    .err_valid_o(err_valid), .err_code_o(err_code), .free_chunks_o(free_chunks)
  );

  logic init_q = 1'b1;  // the first cycle (formal initial value)
  always_ff @(posedge clk_i) init_q <= 1'b0;

  always_comb begin
    if (init_q) assume (!rst_ni);
    else assume (rst_ni);
    if (HostOnly != 0) assume (!inst_valid_i);
  end

  always_ff @(posedge clk_i) begin
    if (!init_q && $past(rst_ni)) begin
      if ($past(host_valid_i && !host_ready))
        assume (host_valid_i && host_op_i == $past(host_op_i) && host_req_i == $past(host_req_i)
                && host_arg_i == $past(host_arg_i));
      if ($past(inst_valid_i && !inst_ready)) assume (inst_valid_i && inst_i == $past(inst_i));
    end
  end

endmodule : dpa_ctrl_fv

`default_nettype wire
