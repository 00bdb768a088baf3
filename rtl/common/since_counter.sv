// since_counter: cycles since the last event, saturating at Max.
//
// event_i high in cycle t  ->  count_o = 1 in cycle t+1, 2 in t+2, ... , Max forever after.
// Out of reset the event lies infinitely far back: count_o = Max. A timing rule "next may issue
// L cycles after prev" is then simply `count_o >= L` (with Max >= every L checked against it).
// No streams: a plain state cell.
// Assertions (`ifdef PIM_ASSERT): Max fits in Width bits; count_o in 1..Max; 1 after an event.

`default_nettype none

module since_counter #(
  parameter int unsigned Width = 8,
  parameter int unsigned Max   = 255
) (
  input  logic             clk_i,
  input  logic             rst_ni,
  input  logic             event_i,
  output logic [Width-1:0] count_o
);

  localparam logic [Width-1:0] MaxVal = Width'(Max);

  logic [Width-1:0] count_q, count_d;

  always_comb begin
    count_d = count_q;
    if (event_i) begin
      count_d = Width'(1);
    end else if (count_q < MaxVal) begin
      count_d = count_q + Width'(1);
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      count_q <= MaxVal;
    end else begin
      count_q <= count_d;
    end
  end

  assign count_o = count_q;

`ifdef PIM_ASSERT
  logic past_ok_q;  // out of reset since the previous clock edge (enables the checks)
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) past_ok_q <= 1'b0;
    else past_ok_q <= 1'b1;
  end
  always_ff @(posedge clk_i) begin
    if (past_ok_q) begin
      a_max_fits: assert (64'(Max) < (64'(1) << Width));
      a_count_range: assert (count_q != '0 && 32'(count_q) <= Max);
      if ($past(event_i)) a_restart: assert (count_q == Width'(1));
    end
  end
`endif

endmodule : since_counter

`default_nettype wire
