// dpa_ram: simple dual-port memory, one synchronous write port and one synchronous read port
// (read data valid the cycle after re_i; undefined when the same word is written that cycle).
// No reset: users never read a word they have not written. Maps to an SRAM macro / block RAM.

`default_nettype none

module dpa_ram #(
  parameter int Depth = 16,
  parameter int Width = 8,
  localparam int AddrWidth = (Depth > 1) ? $clog2(Depth) : 1
) (
  input  logic                 clk_i,
  input  logic                 we_i,
  input  logic [AddrWidth-1:0] waddr_i,
  input  logic [Width-1:0]     wdata_i,
  input  logic                 re_i,
  input  logic [AddrWidth-1:0] raddr_i,
  output logic [Width-1:0]     rdata_o
);

  logic [Width-1:0] mem [Depth];

  always_ff @(posedge clk_i) begin
    if (we_i) mem[waddr_i] <= wdata_i;
    if (re_i) rdata_o <= mem[raddr_i];
  end

endmodule : dpa_ram

`default_nettype wire
