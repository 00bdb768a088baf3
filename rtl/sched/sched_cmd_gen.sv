// sched_cmd_gen: the next channel command of one queue head (pymodel.golden.sched._next_command).
//
//   WR_INP n : WRGB gb+k                      (data GPR[gpr+k])
//   MAC n    : PREA if another row is open, ACT16 row if closed, else MAC16 col+k gb+k out
//   RD_OUT n : RDMAC out+k/2 (k even, data -> GPR[gpr+k/2]), CLRMAC out+k/2 (k odd)
//   WR_BIAS n: WRBIAS out+k                   (data GPR[gpr+k])
//   RD_MAC n : RDMAC out+k                    (data -> GPR[gpr+k])
//   WR_BANK n: PREA / ACT bank row unless bank has row open, else WR bank row col+k (GPR[gpr+k])
// k = issued_i, the head's issued sub-commands (row commands do not count). last_o: this command
// completes the instruction (it then leaves its queue). Purely combinational, no streams.
// Fields a command does not use are 0 (pymodel.isa.check_command).

`default_nettype none

module sched_cmd_gen (
  input  pim_pkg::sched_inst_t                 head_i,
  input  logic [pim_pkg::InstOpSizeWidth:0]    issued_i,
  // bank state: no row open / the same row open in all banks / one bank open
  input  logic                                 any_open_i,
  input  logic                                 all_open_i,
  input  logic                                 single_open_i,
  input  logic [pim_pkg::RowWidth-1:0]         open_row_i,
  input  logic [pim_pkg::BankWidth-1:0]        open_bank_i,
  // the command
  output logic [pim_pkg::OpcodeWidth-1:0]      op_o,
  output logic [pim_pkg::BankWidth-1:0]        bank_o,
  output logic [pim_pkg::RowWidth-1:0]         row_o,
  output logic [pim_pkg::ColWidth-1:0]         col_o,
  output logic [pim_pkg::GbWidth-1:0]          gb_o,
  output logic [pim_pkg::OutWidth-1:0]         out_o,
  output logic [pim_pkg::InstGprWidth-1:0]     gpr_o,      // GPR entry read (WRGB/WR) or written
  output logic                                 row_cmd_o,  // PREA/ACT/ACT16: issued stays
  output logic                                 last_o
);

  logic [pim_pkg::InstOpSizeWidth:0] size;   // op_size
  logic [pim_pkg::InstOpSizeWidth:0] half;   // k / 2
  logic                              mac_row_ok, bank_row_ok;

  assign size = {1'b0, head_i.size_m1} + 1'b1;
  assign half = issued_i >> 1;
  // One bank open counts as "all banks" only in a one-bank channel.
  assign mac_row_ok  = (all_open_i || (single_open_i && pim_pkg::NumBanks == 1))
                       && (open_row_i == head_i.row);
  assign bank_row_ok = (all_open_i || (single_open_i && open_bank_i == head_i.bank))
                       && (open_row_i == head_i.row);

  always_comb begin
    op_o      = pim_pkg::OpNop;
    bank_o    = '0;
    row_o     = '0;
    col_o     = '0;
    gb_o      = '0;
    out_o     = '0;
    gpr_o     = head_i.gpr + pim_pkg::InstGprWidth'(issued_i);
    row_cmd_o = 1'b0;
    last_o    = (issued_i == size - 1'b1);
    unique case (head_i.op)
      pim_pkg::InstWrInp: begin
        op_o = pim_pkg::OpWrgb;
        gb_o = head_i.gb + pim_pkg::GbWidth'(issued_i);
      end
      pim_pkg::InstRdOut: begin
        op_o   = issued_i[0] ? pim_pkg::OpClrmac : pim_pkg::OpRdmac;
        out_o  = head_i.out + pim_pkg::OutWidth'(half);
        gpr_o  = head_i.gpr + pim_pkg::InstGprWidth'(half);
        last_o = (issued_i == {size[pim_pkg::InstOpSizeWidth-1:0], 1'b0} - 1'b1);
      end
      pim_pkg::InstWrBias: begin
        op_o  = pim_pkg::OpWrbias;
        out_o = head_i.out + pim_pkg::OutWidth'(issued_i);
      end
      pim_pkg::InstRdMac: begin
        op_o  = pim_pkg::OpRdmac;
        out_o = head_i.out + pim_pkg::OutWidth'(issued_i);
      end
      pim_pkg::InstMac: begin
        if (!mac_row_ok) begin
          row_cmd_o = 1'b1;
          last_o    = 1'b0;
          if (any_open_i) begin
            op_o = pim_pkg::OpPrea;
          end else begin
            op_o  = pim_pkg::OpAct16;
            row_o = head_i.row;
          end
        end else begin
          op_o  = pim_pkg::OpMac16;
          col_o = head_i.col + pim_pkg::ColWidth'(issued_i);
          gb_o  = head_i.gb + pim_pkg::GbWidth'(issued_i);
          out_o = head_i.out;
        end
      end
      pim_pkg::InstWrBank: begin
        if (!bank_row_ok) begin
          row_cmd_o = 1'b1;
          last_o    = 1'b0;
          if (any_open_i) begin
            op_o = pim_pkg::OpPrea;
          end else begin
            op_o   = pim_pkg::OpAct;
            bank_o = head_i.bank;
            row_o  = head_i.row;
          end
        end else begin
          op_o   = pim_pkg::OpWr;
          bank_o = head_i.bank;
          row_o  = head_i.row;
          col_o  = head_i.col + pim_pkg::ColWidth'(issued_i);
        end
      end
      default: begin
        row_cmd_o = 1'b1;  // never reaches a queue (sched_intake drops it)
        last_o    = 1'b0;
      end
    endcase
  end

endmodule : sched_cmd_gen

`default_nettype wire
