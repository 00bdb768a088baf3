// sched_refresh: when the next all-bank REF is due (pymodel.golden.channel.Channel.refresh_due).
//
// REF number r (r = 1, 2, ...) is due from cycle r * NRefi on, counted from the first cycle after
// reset: a signed countdown `until_q` = (refs issued + 1) * NRefi - cycle. due_o = until_q <= 0.
// ref_i: a REF is issued this cycle. While due_o, pim_sched issues PREA (if a row is open) and REF
// as soon as they are legal and nothing else. Never due with timing.refresh = false. No streams.

`default_nettype none

module sched_refresh (
  input  logic clk_i,
  input  logic rst_ni,
  input  logic ref_i,
  output logic due_o
);

  localparam int unsigned W = pim_pkg::SchedRefWidth;

  logic signed [W-1:0] until_q, until_d;

  always_comb begin
    until_d = until_q - W'(1);
    if (ref_i) until_d = until_d + W'(pim_pkg::NRefi);
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      until_q <= W'(pim_pkg::NRefi);
    end else begin
      until_q <= until_d;
    end
  end

  assign due_o = pim_pkg::RefreshOn && (until_q <= 0);  // timing.refresh = false: never due

endmodule : sched_refresh

`default_nettype wire
