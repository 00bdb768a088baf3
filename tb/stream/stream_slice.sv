// stream_slice: a one-entry valid/ready register slice, the fixture of the stream driver/monitor
// unit bench (tb/stream). in_ready_o = !out_valid_o || out_ready_i (full throughput); out_data_o
// is 0 while out_valid_o is low (a quiet bus).
//
// PlantBug (the bench's planted protocol violations, default 0): 1 = the input is always ready
// (a stalled word is overwritten: payload not stable); 2 = a stalled word is dropped after one
// stalled cycle (valid not held); 3 = the data register keeps the last word after its transfer
// (data without valid).

`default_nettype none

module stream_slice #(
  parameter int Width    = 16,
  parameter int PlantBug = 0
) (
  input  logic             clk_i,
  input  logic             rst_ni,
  input  logic             in_valid_i,
  output logic             in_ready_o,
  input  logic [Width-1:0] in_data_i,
  output logic             out_valid_o,
  input  logic             out_ready_i,
  output logic [Width-1:0] out_data_o
);

  logic             valid_q, stalled_q;
  logic [Width-1:0] data_q;

  assign in_ready_o  = (PlantBug == 1) || !valid_q || out_ready_i;
  assign out_valid_o = valid_q;
  assign out_data_o  = data_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      valid_q   <= 1'b0;
      stalled_q <= 1'b0;
      data_q    <= '0;
    end else begin
      stalled_q <= valid_q && !out_ready_i;
      if (in_valid_i && in_ready_o) begin
        valid_q <= 1'b1;
        data_q  <= in_data_i;
      end else if (out_ready_i || (PlantBug == 2 && stalled_q)) begin
        valid_q <= 1'b0;
        if (PlantBug != 3) data_q <= '0;
      end
    end
  end

endmodule

`default_nettype wire
