// sched_dep_check: may a head's command issue, given the *older* instructions of the other queue?
// (pymodel.golden.sched.Scheduler._blocked; the DCS dependency table.)
//
// A command touching GB entry g and/or OBuf entry o is blocked while an older instruction of the
// other queue still has an unissued command touching g / o. Pending keys per queued instruction
// (k = its issued sub-commands, 0 unless it is that queue's head):
//   WR_INP: GB [gb+k, gb+n-1]   MAC: GB [gb+k, gb+n-1] and OBuf out   RD_OUT: OBuf [out+k/2, out+n-1]
//   WR_BIAS, RD_MAC: OBuf [out+k, out+n-1]   WR_BANK: none.
// DCS compares entries; PINGPONG compares halves (key = entry / SchedGbHalf or SchedObufHalf, so a
// contiguous range maps to a contiguous key range); STATIC never blocks. In hardware this is one
// range comparator pair per slot of the other queue (QueueDepth of them), ANDed with "older":
// intake is in order, so the other queue's entries older than this head are a prefix of it, of
// length n_older_i (pim_sched keeps that count per queued instruction). Combinational.
//
// PlantBug = 1 (tests only) ignores GB keys: the planted bug the bench must catch.

`default_nettype none

module sched_dep_check #(
  parameter int unsigned PlantBug = 0,
  localparam int unsigned SlotWidth = pim_pkg::SchedInstBits,
  localparam int unsigned IdxWidth  = (pim_pkg::QueueDepth > 1) ? $clog2(pim_pkg::QueueDepth) : 1,
  localparam int unsigned CntWidth  = $clog2(pim_pkg::QueueDepth + 1)
) (
  input  logic [pim_pkg::SchedModeWidth-1:0]              mode_i,
  input  logic                                            has_gb_i,
  input  logic [pim_pkg::GbWidth-1:0]                     gb_i,
  input  logic                                            has_out_i,
  input  logic [pim_pkg::OutWidth-1:0]                    out_i,
  input  logic [CntWidth-1:0]                             n_older_i,  // older in other q
  // the other queue
  input  logic [pim_pkg::QueueDepth-1:0][SlotWidth-1:0]   slots_i,
  input  logic [pim_pkg::QueueDepth-1:0]                  slot_valid_i,
  input  logic [IdxWidth-1:0]                             head_idx_i,
  input  logic [pim_pkg::InstOpSizeWidth:0]               head_issued_i,
  output logic                                            blocked_o
);

  logic pingpong, enabled;
  assign pingpong = (32'(mode_i) == pim_pkg::SchedModePingpong);
  assign enabled  = (32'(mode_i) != pim_pkg::SchedModeStatic);

  // Narrow arithmetic: an entry + an offset below 2 * 2**width; keys by constant division.
  localparam int unsigned GW = pim_pkg::GbWidth + 1;
  localparam int unsigned OW = pim_pkg::OutWidth + 1;
  localparam int unsigned KW = pim_pkg::InstOpSizeWidth + 2;
  typedef logic [GW-1:0] gkey_t;
  typedef logic [OW-1:0] okey_t;

  function automatic gkey_t gb_key(input gkey_t v, input logic pp);
    gb_key = pp ? v / GW'(pim_pkg::SchedGbHalf) : v;
  endfunction

  function automatic okey_t out_key(input okey_t v, input logic pp);
    out_key = pp ? v / OW'(pim_pkg::SchedObufHalf) : v;
  endfunction

  logic [pim_pkg::QueueDepth-1:0] hit;

  for (genvar i = 0; i < pim_pkg::QueueDepth; i++) begin : g_slot
    pim_pkg::sched_inst_t              inst;
    logic [IdxWidth:0]                 distance;  // FIFO position in the other queue
    logic                              older, gb_hit, out_hit, rd_out, per_out;
    logic [KW-1:0]                     k;
    gkey_t                             gb_lo, gb_hi, cand_gb;
    okey_t                             out_lo, out_hi, cand_out;

    assign inst     = pim_pkg::sched_inst_t'(slots_i[i][pim_pkg::SchedInstBits-1:0]);
    assign distance = (i >= 32'(head_idx_i))
                      ? (IdxWidth + 1)'(i) - {1'b0, head_idx_i}
                      : (IdxWidth + 1)'(i + pim_pkg::QueueDepth) - {1'b0, head_idx_i};
    // The instructions of the other queue older than this head are its first n_older_i entries.
    assign older    = 32'(distance) < 32'(n_older_i);
    assign rd_out   = (inst.op == pim_pkg::InstRdOut);
    assign per_out  = (inst.op == pim_pkg::InstWrBias) || (inst.op == pim_pkg::InstRdMac);
    assign k        = (32'(head_idx_i) == i) ? KW'(head_issued_i) : '0;
    // Pending ranges never leave the buffer (pymodel.isa.check_instruction), so the sums fit.
    assign gb_lo    = gb_key(GW'(inst.gb) + GW'(k), pingpong);
    assign gb_hi    = gb_key(GW'(inst.gb) + GW'(inst.size_m1), pingpong);
    assign cand_gb  = gb_key(GW'(gb_i), pingpong);
    assign out_lo   = out_key(OW'(inst.out) + (rd_out ? OW'(k >> 1) : per_out ? OW'(k) : '0),
                              pingpong);
    assign out_hi   = out_key(OW'(inst.out) + ((rd_out || per_out) ? OW'(inst.size_m1) : '0),
                              pingpong);
    assign cand_out = out_key(OW'(out_i), pingpong);
    assign gb_hit   = has_gb_i && (PlantBug != 1)
                      && (inst.op == pim_pkg::InstWrInp || inst.op == pim_pkg::InstMac)
                      && gb_lo <= cand_gb && cand_gb <= gb_hi;
    assign out_hit  = has_out_i && (rd_out || per_out || inst.op == pim_pkg::InstMac)
                      && out_lo <= cand_out && cand_out <= out_hi;
    assign hit[i]   = slot_valid_i[i] && older && (gb_hit || out_hit);

    logic unused_fields;  // operands that touch no buffer entry
    assign unused_fields = ^{inst.gpr, inst.bank, inst.row, inst.col};
  end

  assign blocked_o = enabled && (|hit);

endmodule : sched_dep_check

`default_nettype wire
