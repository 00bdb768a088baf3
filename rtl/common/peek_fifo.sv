// peek_fifo: synchronous FIFO whose every slot can be read (for age/dependency checks).
//
// push_i writes data_i at the tail, pop_i removes the head; both in the same cycle are allowed
// (also when full: the pop frees the slot the push fills). The caller must not push when full_o
// (unless popping) nor pop when empty_o. Not a valid/ready stream on purpose: the owner already
// knows when a transfer happens and drives push_i/pop_i from its own handshakes.
//
// Peek: slots_o[i] is storage slot i, slot_valid_o[i] says whether it holds a live entry, and
// head_idx_o is the slot of the oldest entry (head_o = slots_o[head_idx_o]), tail_idx_o the slot
// the next push fills. Depth need not be a
// power of two.
//
// Assertions (`ifdef PIM_ASSERT): the caller's rules (no push when full unless popping, no pop
// when empty) and the pointer/count invariants (count <= Depth, tail = head + count mod Depth).

`default_nettype none

module peek_fifo #(
  parameter int unsigned Width = 8,
  parameter int unsigned Depth = 4,
  localparam int unsigned IdxWidth = (Depth > 1) ? $clog2(Depth) : 1,
  localparam int unsigned CntWidth = $clog2(Depth + 1)
) (
  input  logic                         clk_i,
  input  logic                         rst_ni,
  input  logic                         push_i,
  input  logic [Width-1:0]             data_i,
  input  logic                         pop_i,
  output logic                         full_o,
  output logic                         empty_o,
  output logic [CntWidth-1:0]          count_o,
  output logic [Width-1:0]             head_o,
  output logic [IdxWidth-1:0]          head_idx_o,
  output logic [IdxWidth-1:0]          tail_idx_o,
  output logic [Depth-1:0][Width-1:0]  slots_o,
  output logic [Depth-1:0]             slot_valid_o
);

  localparam logic [IdxWidth-1:0] LastIdx = IdxWidth'(Depth - 1);

  logic [Depth-1:0][Width-1:0] mem_q;
  logic [IdxWidth-1:0]         head_q, tail_q;
  logic [CntWidth-1:0]         count_q;

  function automatic logic [IdxWidth-1:0] incr(input logic [IdxWidth-1:0] idx);
    incr = (idx == LastIdx) ? '0 : idx + IdxWidth'(1);
  endfunction

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      mem_q   <= '0;
      head_q  <= '0;
      tail_q  <= '0;
      count_q <= '0;
    end else begin
      if (push_i) begin
        mem_q[tail_q] <= data_i;
        tail_q        <= incr(tail_q);
      end
      if (pop_i) begin
        head_q <= incr(head_q);
      end
      if (push_i && !pop_i) begin
        count_q <= count_q + CntWidth'(1);
      end else if (pop_i && !push_i) begin
        count_q <= count_q - CntWidth'(1);
      end
    end
  end

  // Slot i is live when its distance from the head (mod Depth) is below the count.
  logic [Depth-1:0][IdxWidth:0] distance;
  always_comb begin
    for (int unsigned i = 0; i < Depth; i++) begin
      if (IdxWidth'(i) >= head_q) begin
        distance[i] = (IdxWidth + 1)'(i) - {1'b0, head_q};
      end else begin
        distance[i] = (IdxWidth + 1)'(i + Depth) - {1'b0, head_q};
      end
      slot_valid_o[i] = (32'(distance[i]) < 32'(count_q));
    end
  end

  assign full_o     = (count_q == CntWidth'(Depth));
  assign empty_o    = (count_q == '0);
  assign count_o    = count_q;
  assign head_o     = mem_q[head_q];
  assign head_idx_o = head_q;
  assign tail_idx_o = tail_q;
  assign slots_o    = mem_q;

`ifdef PIM_ASSERT
  logic past_ok_q;  // out of reset since the previous clock edge (enables the checks)
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) past_ok_q <= 1'b0;
    else past_ok_q <= 1'b1;
  end
  always_ff @(posedge clk_i) begin
    if (past_ok_q) begin
      a_no_overflow: assert (!push_i || !full_o || pop_i);
      a_no_underflow: assert (!pop_i || !empty_o);
      a_count_range: assert (32'(count_q) <= Depth);
      a_ptr_range: assert (32'(head_q) < Depth && 32'(tail_q) < Depth);
      a_tail_pos: assert (32'(tail_q) == (32'(head_q) + 32'(count_q)) % Depth);
    end
  end
`endif

endmodule : peek_fifo

`default_nettype wire
