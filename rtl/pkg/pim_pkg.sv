// GENERATED FILE - DO NOT EDIT. Written by `make gen` (python -m pymodel.gen.sv_pkg)
// from pymodel.config (config 'aim-gddr6'), pymodel.isa and pymodel.timing;
// `make check-gen` fails when it is stale. Change the Python sources and run `make gen`.
//
// Refer to every item with the package scope (pim_pkg::NRcdMac): Yosys rejects `import`.
// Names: Python field names in UpperCamelCase (nRCD_MAC -> NRcdMac, nREFI -> NRefi,
// rows_per_bank -> NumRows ...); see pymodel/gen/sv_pkg.py for the exact mapping.
// Icarus 11 crashes on package-scoped struct types, casts to package enums and variables
// of package enum types: RTL that must run on Icarus uses vectors of the *Width params.

package pim_pkg;

  // ---- geometry and buffers (pymodel.config) -----------------------------------------------------
  localparam int NumBankGroups = 4;             // geometry.bank_groups
  localparam int BanksPerGroup = 4;             // geometry.banks_per_group
  localparam int NumBanks = 16;                 // bank_groups * banks_per_group
  localparam int NumRows = 16384;               // geometry.rows_per_bank
  localparam int NumCols = 64;                  // geometry.columns_per_row
  localparam int ColumnBytes = 32;              // geometry.column_bytes
  localparam int Lanes = 16;                    // bf16 lanes per column = MAC lanes per bank
  localparam int RowBytes = 2048;               // columns_per_row * column_bytes
  localparam int GbEntries = 64;                // buffers.gb_entries (one column each)
  localparam int ObufEntries = 8;               // buffers.obuf_entries (per bank)

  // ---- module, HUB and DPA sizes (pymodel.config) ------------------------------------------------
  localparam int NumChannels = 32;              // module.channels
  localparam int TckPs = 500;                   // module.tck_ps (command clock period)
  localparam int GprBytes = 524288;             // module.gpr_bytes
  localparam int MaxOpSize = 256;               // module.max_op_size
  localparam int MaxRequests = 64;              // dpa.max_requests
  localparam int MaxChunksPerRequest = 1024;    // dpa.max_chunks_per_request
  localparam int ChunkRows = 32;                // dpa.chunk_rows
  localparam int MaxBodyLen = 16;               // dpa.max_body_len
  localparam bit BlockingRdMacOn = 1'b1;        // sched.blocking_rd_mac

  // ---- timing in command-clock cycles (pymodel.config.Timing) ------------------------------------
  localparam int NRcdMac = 56;                  // timing.nRCD_MAC
  localparam int NRcdRd = 36;                   // timing.nRCD_RD
  localparam int NRcdWr = 28;                   // timing.nRCD_WR
  localparam int NRp = 32;                      // timing.nRP
  localparam int NRas = 54;                     // timing.nRAS
  localparam int NRc = 89;                      // timing.nRC
  localparam int NRtp = 12;                     // timing.nRTP
  localparam int NWr = 33;                      // timing.nWR
  localparam int NCl = 50;                      // timing.nCL
  localparam int NCwl = 6;                      // timing.nCWL
  localparam int NBl = 2;                       // timing.nBL
  localparam int NCcds = 2;                     // timing.nCCDS
  localparam int NCcdl = 2;                     // timing.nCCDL
  localparam int NRrds = 5;                     // timing.nRRDS
  localparam int NRrdl = 6;                     // timing.nRRDL
  localparam int NFaw = 28;                     // timing.nFAW
  localparam int NRfc = 210;                    // timing.nRFC
  localparam int NRefi = 3906;                  // timing.nREFI
  localparam int NClreg = 0;                    // timing.nCLREG
  localparam int NClgb = 1;                     // timing.nCLGB
  localparam int NCwlgb = 1;                    // timing.nCWLGB
  localparam int NCwlreg = 1;                   // timing.nCWLREG
  localparam int NModch = 32;                   // timing.nMODCH
  localparam int NWtrs = 9;                     // timing.nWTRS
  localparam int NWtrl = 11;                    // timing.nWTRL
  localparam int NWpre = 1;                     // timing.nWPRE
  localparam int NRtwPad = 3;                   // timing.nRTW_PAD
  localparam int MaxPostponedRefs = 8;          // timing.max_postponed_refs
  localparam bit RefreshOn = 1'b1;              // timing.refresh
  // timing.mode_switch = 'aim-register': see the register-access mode masks below.

  // ---- channel command word (pymodel.isa.CmdLayout), LSB first -----------------------------------
  // Every field sits at a fixed offset for every opcode; fields an opcode does not use must
  // be 0; a used field must be < its <Field>Limit (checked only where <Field>RangeCheck,
  // i.e. where the limit is not 2**<Field>Width).
  localparam int CmdWidth = 37;                 // bits of one command word
  localparam int OpcodeWidth = 4;
  localparam int OpcodeOffset = 0;
  localparam int BankWidth = 4;
  localparam int BankOffset = 4;
  localparam int BankLimit = 16;                // legal values of bank: 0 .. 15
  localparam bit BankRangeCheck = 1'b0;         // limit 16 == 2**4
  localparam int RowWidth = 14;
  localparam int RowOffset = 8;
  localparam int RowLimit = 16384;              // legal values of row: 0 .. 16383
  localparam bit RowRangeCheck = 1'b0;          // limit 16384 == 2**14
  localparam int ColWidth = 6;
  localparam int ColOffset = 22;
  localparam int ColLimit = 64;                 // legal values of col: 0 .. 63
  localparam bit ColRangeCheck = 1'b0;          // limit 64 == 2**6
  localparam int GbWidth = 6;
  localparam int GbOffset = 28;
  localparam int GbLimit = 64;                  // legal values of gb: 0 .. 63
  localparam bit GbRangeCheck = 1'b0;           // limit 64 == 2**6
  localparam int OutWidth = 3;
  localparam int OutOffset = 34;
  localparam int OutLimit = 8;                  // legal values of out: 0 .. 7
  localparam bit OutRangeCheck = 1'b0;          // limit 8 == 2**3
  localparam int NumCmdFields = 5;

  // Channel command opcodes (pymodel.isa.Op).
  typedef enum logic [OpcodeWidth-1:0] {
    OpNop = 0,
    OpAct = 1,
    OpAct16 = 2,
    OpPre = 3,
    OpPrea = 4,
    OpMac16 = 5,
    OpWrgb = 6,
    OpRdmac = 7,
    OpClrmac = 8,
    OpWr = 9,
    OpRd = 10,
    OpRef = 11,
    OpWrbias = 12,
    OpTmod = 13
  } op_e;
  localparam int NumOps = 14;

  localparam int CmdFieldWidth = 3;
  // Index of each command field (bit position in the op_fields() mask), in check order.
  typedef enum logic [CmdFieldWidth-1:0] {
    FieldBank = 0,
    FieldRow = 1,
    FieldCol = 2,
    FieldGb = 3,
    FieldOut = 4
  } cmd_field_e;

  localparam int CmdErrWidth = 2;
  // Why a command word is illegal (pymodel.isa.CmdErr; mirrors pymodel.isa.decode).
  typedef enum logic [CmdErrWidth-1:0] {
    CmdErrNone = 0,
    CmdErrOpcode = 1,
    CmdErrUnused = 2,
    CmdErrRange = 3
  } cmd_err_e;

  // A decoded command. Members are declared MSB first so that the packed struct has exactly
  // the bit layout of the command word: `cmd_t'(word)` slices every field.
  typedef struct packed {
    logic [OutWidth-1:0] out;
    logic [GbWidth-1:0] gb;
    logic [ColWidth-1:0] col;
    logic [RowWidth-1:0] row;
    logic [BankWidth-1:0] bank;
    op_e op;
  } cmd_t;

  // Fields each opcode uses (pymodel.isa.OP_FIELDS): bit cmd_field_e of the mask; 0 for an
  // unknown opcode. Plain-vector argument and literal case items: Icarus 11 cannot cast to
  // package enums, and Yosys does not resolve package names inside an inlined function.
  function automatic logic [4:0] op_fields(input logic [3:0] opcode);
    op_fields = 5'b0;
    case (opcode)
      4'd0: op_fields = 5'b00000;  // OpNop: no fields
      4'd1: op_fields = 5'b00011;  // OpAct: bank, row
      4'd2: op_fields = 5'b00010;  // OpAct16: row
      4'd3: op_fields = 5'b00001;  // OpPre: bank
      4'd4: op_fields = 5'b00000;  // OpPrea: no fields
      4'd5: op_fields = 5'b11100;  // OpMac16: col, gb, out
      4'd6: op_fields = 5'b01000;  // OpWrgb: gb
      4'd7: op_fields = 5'b10000;  // OpRdmac: out
      4'd8: op_fields = 5'b10000;  // OpClrmac: out
      4'd9: op_fields = 5'b00111;  // OpWr: bank, row, col
      4'd10: op_fields = 5'b00111;  // OpRd: bank, row, col
      4'd11: op_fields = 5'b00000;  // OpRef: no fields
      4'd12: op_fields = 5'b10000;  // OpWrbias: out
      4'd13: op_fields = 5'b00000;  // OpTmod: no fields
      default: op_fields = 5'b0;
    endcase
  endfunction

  // 1 when `opcode` is one of op_e (pymodel.isa.Op).
  function automatic logic op_known(input logic [3:0] opcode);
    case (opcode)
      4'd0,
      4'd1,
      4'd2,
      4'd3,
      4'd4,
      4'd5,
      4'd6,
      4'd7,
      4'd8,
      4'd9,
      4'd10,
      4'd11,
      4'd12,
      4'd13: op_known = 1'b1;
      default: op_known = 1'b0;
    endcase
  endfunction

  // ---- timing rules (pymodel.timing.RULES): minimum prev -> next distance, cycles ----------------
  // A latency may be <= 0 (the next command's data comes later anyway): no constraint.
  // Scopes: same bank | other bank, same bank group | other bank group | channel |
  // same GB entry | same OBuf entry.
  // nRCD_MAC: ACT -> MAC
  //   prev: ACT, ACT16 | next: MAC16
  //   scope: same bank
  localparam int RuleNRCDMAC = 56;
  // nRCD_RD: ACT -> RD
  //   prev: ACT, ACT16 | next: RD
  //   scope: same bank
  localparam int RuleNRCDRD = 36;
  // nRCD_WR: ACT -> WR
  //   prev: ACT, ACT16 | next: WR
  //   scope: same bank
  localparam int RuleNRCDWR = 28;
  // nRAS: ACT -> PRE
  //   prev: ACT, ACT16 | next: PRE, PREA
  //   scope: same bank
  localparam int RuleNRAS = 54;
  // nRP: PRE -> ACT/REF
  //   prev: PRE, PREA | next: ACT, ACT16, REF
  //   scope: same bank
  localparam int RuleNRP = 32;
  // nRP_PRE: PRE -> PRE, same bank
  //   prev: PRE, PREA | next: PRE, PREA
  //   scope: same bank
  localparam int RuleNRPPRE = 32;
  // nRC: ACT -> ACT, same bank
  //   prev: ACT, ACT16 | next: ACT, ACT16
  //   scope: same bank
  localparam int RuleNRC = 89;
  // nRC_REF: ACT -> REF (AiM: nRC)
  //   prev: ACT, ACT16 | next: REF
  //   scope: same bank
  localparam int RuleNRCREF = 89;
  // nRRDL: ACT -> ACT, other bank in the same bank group
  //   prev: ACT, ACT16 | next: ACT, ACT16
  //   scope: other bank, same bank group
  localparam int RuleNRRDL = 6;
  // nRRDS: ACT -> ACT, other bank group
  //   prev: ACT, ACT16 | next: ACT, ACT16
  //   scope: other bank group
  localparam int RuleNRRDS = 5;
  // nRTP: MAC/RD -> PRE (read to precharge)
  //   prev: MAC16, RD | next: PRE, PREA
  //   scope: same bank
  localparam int RuleNRTP = 12;
  // nWR: WR -> PRE: write recovery after the last data beat
  //   prev: WR | next: PRE, PREA
  //   scope: same bank
  localparam int RuleNWR = 41;
  // nWTRL: WR -> RD, other bank of the same bank group
  //   prev: WR | next: RD
  //   scope: other bank, same bank group
  localparam int RuleNWTRL = 19;
  // nWTRL_BANK: WR -> RD, same bank
  //   prev: WR | next: RD
  //   scope: same bank
  localparam int RuleNWTRLBANK = 19;
  // bus:reads: read bursts
  //   prev: RDMAC, RD | next: RDMAC, RD
  //   scope: channel
  localparam int RuleBusReads = 2;
  // bus:writes: write bursts
  //   prev: WRGB, WR, WRBIAS | next: WRGB, WR, WRBIAS
  //   scope: channel
  localparam int RuleBusWrites = 2;
  // nCCDS_RD: read column -> read column
  //   prev: MAC16, RDMAC, RD | next: MAC16, RDMAC, RD
  //   scope: channel
  localparam int RuleNCCDSRD = 2;
  // nCCDS_WR: write column -> write column
  //   prev: WRGB, WR, WRBIAS | next: WRGB, WR, WRBIAS
  //   scope: channel
  localparam int RuleNCCDSWR = 2;
  // nCCDL_MAC: read column -> MAC16/RDMAC (all-bank: every bank group)
  //   prev: MAC16, RDMAC, RD | next: MAC16, RDMAC
  //   scope: channel
  localparam int RuleNCCDLMAC = 2;
  // nCCDL_MAC_RD: MAC16/RDMAC -> RD (all-bank: every bank group)
  //   prev: MAC16, RDMAC | next: RD
  //   scope: channel
  localparam int RuleNCCDLMACRD = 2;
  // nCCDL_BIAS: WR/WRBIAS -> WRBIAS (all-bank: every bank group)
  //   prev: WR, WRBIAS | next: WRBIAS
  //   scope: channel
  localparam int RuleNCCDLBIAS = 2;
  // nCCDL_BIAS_WR: WRBIAS -> WR (all-bank: every bank group)
  //   prev: WRBIAS | next: WR
  //   scope: channel
  localparam int RuleNCCDLBIASWR = 2;
  // nCCDL_RD: RD -> RD, same bank group
  //   prev: RD | next: RD
  //   scope: other bank, same bank group
  localparam int RuleNCCDLRD = 2;
  // nCCDL_WR: WR -> WR, same bank group
  //   prev: WR | next: WR
  //   scope: other bank, same bank group
  localparam int RuleNCCDLWR = 2;
  // nRFC: REF blocks the channel
  //   prev: REF | next: ACT, ACT16, PRE, PREA, MAC16, WRGB, RDMAC, CLRMAC, WR, RD, REF, WRBIAS, TMOD
  //   scope: channel
  localparam int RuleNRFC = 210;
  // nMODCH: TMOD (mode switch) blocks the channel
  //   prev: TMOD | next: ACT, ACT16, PRE, PREA, MAC16, WRGB, RDMAC, CLRMAC, WR, RD, REF, WRBIAS, TMOD
  //   scope: channel
  localparam int RuleNMODCH = 32;
  // gb:WRGB->MAC16: GB entry written before a MAC reads it
  //   prev: WRGB | next: MAC16
  //   scope: same GB entry
  localparam int RuleGbWRGBToMAC16 = 3;
  // gb:MAC16->WRGB: MAC has read the GB entry before it is overwritten
  //   prev: MAC16 | next: WRGB
  //   scope: same GB entry
  localparam int RuleGbMAC16ToWRGB = 1;
  // out:MAC16->CLRMAC: accumulation finished before the entry is cleared or re-initialized
  //   prev: MAC16 | next: CLRMAC, WRBIAS
  //   scope: same OBuf entry
  localparam int RuleOutMAC16ToCLRMAC = 2;
  // out:RDMAC->CLRMAC: read-out finished before the entry changes
  //   prev: RDMAC | next: MAC16, CLRMAC, WRBIAS
  //   scope: same OBuf entry
  localparam int RuleOutRDMACToCLRMAC = 2;
  // out:WRBIAS->MAC16: initial value written before a MAC accumulates onto it
  //   prev: WRBIAS | next: MAC16
  //   scope: same OBuf entry
  localparam int RuleOutWRBIASToMAC16 = 3;
  // bus:RD->WR: read -> write turnaround: WR data after RD data + preamble
  //   prev: RD | next: WR
  //   scope: channel
  localparam int RuleBusRDToWR = 50;
  // bus:RD->WRGB: read -> write turnaround: WRGB data after RD data + preamble
  //   prev: RD | next: WRGB
  //   scope: channel
  localparam int RuleBusRDToWRGB = 55;
  // bus:RD->WRBIAS: read -> write turnaround: WRBIAS data after RD data + preamble
  //   prev: RD | next: WRBIAS
  //   scope: channel
  localparam int RuleBusRDToWRBIAS = 55;
  // bus:RDMAC->WR: read -> write turnaround: WR data after RDMAC data + preamble
  //   prev: RDMAC | next: WR
  //   scope: channel
  localparam int RuleBusRDMACToWR = 0;
  // bus:RDMAC->WRGB: read -> write turnaround: WRGB data after RDMAC data + preamble
  //   prev: RDMAC | next: WRGB
  //   scope: channel
  localparam int RuleBusRDMACToWRGB = 5;
  // bus:RDMAC->WRBIAS: read -> write turnaround: WRBIAS data after RDMAC data + preamble
  //   prev: RDMAC | next: WRBIAS
  //   scope: channel
  localparam int RuleBusRDMACToWRBIAS = 5;
  // bus:WR->RD: write -> read turnaround (nWTRS after the data)
  //   prev: WR | next: RD
  //   scope: channel
  localparam int RuleBusWRToRD = 17;
  // bus:WR->RDMAC: write -> read turnaround (nWTRL after the data)
  //   prev: WR | next: RDMAC
  //   scope: channel
  localparam int RuleBusWRToRDMAC = 19;
  // bus:WRGB->RD: write -> read turnaround (nWTRS after the data)
  //   prev: WRGB | next: RD
  //   scope: channel
  localparam int RuleBusWRGBToRD = 12;
  // bus:WRGB->RDMAC: write -> read turnaround (nWTRS after the data)
  //   prev: WRGB | next: RDMAC
  //   scope: channel
  localparam int RuleBusWRGBToRDMAC = 12;
  // bus:WRBIAS->RD: write -> read turnaround (nWTRL after the data)
  //   prev: WRBIAS | next: RD
  //   scope: channel
  localparam int RuleBusWRBIASToRD = 14;
  // bus:WRBIAS->RDMAC: write -> read turnaround (nWTRL after the data)
  //   prev: WRBIAS | next: RDMAC
  //   scope: channel
  localparam int RuleBusWRBIASToRDMAC = 14;
  // nFAW window (pymodel.timing, not pairwise): at most FawLimit ACT weights per NFaw.
  localparam int FawLimit = 4;
  localparam int FawWeightAct = 1;              // ACT counts as 1
  localparam int FawWeightAct16 = 4;            // ACT16 counts as 4

  // ---- HUB instruction word (pymodel.isa), LSB first: opcode, then the op's fields ---------------
  // op_size and body_len are stored minus one; stride is two's complement.
  localparam int InstWidth = 82;                // bits of one instruction word
  localparam int InstOpcodeWidth = 4;
  localparam int InstChMaskWidth = 32;
  localparam int InstOpSizeWidth = 8;
  localparam int InstGprWidth = 14;
  localparam int InstBankWidth = 4;
  localparam int InstGbWidth = 6;
  localparam int InstRowWidth = 14;
  localparam int InstColWidth = 6;
  localparam int InstOutWidth = 3;
  localparam int InstReqWidth = 6;
  localparam int InstBodyLenWidth = 4;
  localparam int InstFirstWidth = 14;
  localparam int InstCountWidth = 14;
  localparam int InstFieldWidth = 3;
  localparam int InstStrideWidth = 16;

  // HUB instruction opcodes (pymodel.isa.InstOp).
  typedef enum logic [InstOpcodeWidth-1:0] {
    InstWrInp = 0,
    InstMac = 1,
    InstRdOut = 2,
    InstDynLoop = 3,
    InstDynModi = 4,
    InstWrBank = 5,
    InstWrBias = 6,
    InstRdMac = 7,
    InstAppend = 8
  } inst_op_e;
  localparam int NumInstOps = 9;

  // Operand a DYN_MODI advances (pymodel.isa.ModiField).
  typedef enum logic [InstFieldWidth-1:0] {
    ModiRow = 0,
    ModiCol = 1,
    ModiGb = 2,
    ModiOut = 3,
    ModiGpr = 4
  } modi_field_e;

  // Bit offset of each operand inside its instruction word.
  localparam int InstWrInpChMaskOffset = 4;
  localparam int InstWrInpOpSizeOffset = 36;
  localparam int InstWrInpGprOffset = 44;
  localparam int InstWrInpGbOffset = 58;
  localparam int InstWrInpBits = 64;            // used bits of WR_INP; the rest are 0
  localparam int InstMacChMaskOffset = 4;
  localparam int InstMacOpSizeOffset = 36;
  localparam int InstMacGbOffset = 44;
  localparam int InstMacRowOffset = 50;
  localparam int InstMacColOffset = 64;
  localparam int InstMacOutOffset = 70;
  localparam int InstMacBits = 73;              // used bits of MAC; the rest are 0
  localparam int InstRdOutChMaskOffset = 4;
  localparam int InstRdOutOpSizeOffset = 36;
  localparam int InstRdOutGprOffset = 44;
  localparam int InstRdOutOutOffset = 58;
  localparam int InstRdOutBits = 61;            // used bits of RD_OUT; the rest are 0
  localparam int InstDynLoopReqOffset = 4;
  localparam int InstDynLoopBodyLenOffset = 10;
  localparam int InstDynLoopFirstOffset = 14;
  localparam int InstDynLoopCountOffset = 28;
  localparam int InstDynLoopBits = 42;          // used bits of DYN_LOOP; the rest are 0
  localparam int InstDynModiFieldOffset = 4;
  localparam int InstDynModiStrideOffset = 7;
  localparam int InstDynModiBits = 23;          // used bits of DYN_MODI; the rest are 0
  localparam int InstWrBankChMaskOffset = 4;
  localparam int InstWrBankOpSizeOffset = 36;
  localparam int InstWrBankGprOffset = 44;
  localparam int InstWrBankBankOffset = 58;
  localparam int InstWrBankRowOffset = 62;
  localparam int InstWrBankColOffset = 76;
  localparam int InstWrBankBits = 82;           // used bits of WR_BANK; the rest are 0
  localparam int InstWrBiasChMaskOffset = 4;
  localparam int InstWrBiasOpSizeOffset = 36;
  localparam int InstWrBiasGprOffset = 44;
  localparam int InstWrBiasOutOffset = 58;
  localparam int InstWrBiasBits = 61;           // used bits of WR_BIAS; the rest are 0
  localparam int InstRdMacChMaskOffset = 4;
  localparam int InstRdMacOpSizeOffset = 36;
  localparam int InstRdMacGprOffset = 44;
  localparam int InstRdMacOutOffset = 58;
  localparam int InstRdMacBits = 61;            // used bits of RD_MAC; the rest are 0
  localparam int InstAppendReqOffset = 4;
  localparam int InstAppendGprOffset = 10;
  localparam int InstAppendBits = 24;           // used bits of APPEND; the rest are 0

  // ---- command scheduler (rtl/sched; pymodel.golden.sched, pymodel.timing) -----------------------
  localparam int QueueDepth = 8;                // buffers.queue_depth (instructions per queue)
  localparam int SchedModeWidth = 2;
  localparam int SchedModeStatic = 0;           // pymodel.golden.sched.Mode.STATIC
  localparam int SchedModePingpong = 1;         // pymodel.golden.sched.Mode.PINGPONG
  localparam int SchedModeDcs = 2;              // pymodel.golden.sched.Mode.DCS
  localparam int SchedGbHalf = 32;              // PINGPONG: GB key = entry / SchedGbHalf
  localparam int SchedObufHalf = 4;             // PINGPONG: OBuf key = entry / SchedObufHalf
  localparam int SchedSinceMax = 210;           // largest latency a 'cycles since' counter must see
  localparam int SchedLatWidth = 8;             // bits of one latency entry / since counter
  localparam int SchedGbSinceMax = 3;           // largest SchedGbLat/SchedOutLat: gb counters
  localparam int SchedGbSinceWidth = 2;
  localparam int SchedOutSinceMax = 3;          // largest SchedGbLat/SchedOutLat: out counters
  localparam int SchedOutSinceWidth = 2;
  localparam int SchedNumBankClasses = 3;       // same bank, same group, other group
  // Latency tables, element [prev*NumOps + next] (SchedBankLat: *3 + class). Built from
  // pymodel.timing.RULES by pymodel.gen.sv_pkg.sched_latency_tables; 0 = no constraint.
  // since last prev anywhere on the channel
  localparam logic [1568-1:0] SchedChanLat = 1568'h20202020202020202020202020000002000e02000e02000000000000d2d2d2d2d2d2d2d2d2d2d2d2d2000037000232000237020c000000000002001102001302002900000000000000000000000000000000000000050002000002050200000000000002000c02000c020000000000000000000200000200020c0c00000000002000000000000020202020000000200000000000002000200000000059241c00000038363659590000005900000000003836005900000000000000000000000000000000;
  // single-bank prev -> single-bank next
  localparam logic [4704-1:0] SchedBankLat = 4704'h20000000000000000000000000000000000000000000c00000000000000000000000000000000000000131300020000000000000000000000000000000000002900000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002000000000002000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002400001c000000000000000000000000000000000036000000050659000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000;
  // same GB entry
  localparam logic [1568-1:0] SchedGbLat = 1568'h30000000000000000000000000100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000;
  // same OBuf entry
  localparam logic [1568-1:0] SchedOutLat = 1568'h30000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000020000000200000200000000000000000000000000000000000000000200000002000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000;
  // pymodel.timing.COMPLETION per op (STATIC waits this long after an instruction)
  localparam logic [112-1:0] SchedCompletion = 112'h3000008010203020000000000;

  // Timing rules one by one (pymodel.timing.RULES order; pymodel.timing.rule_parts) for the
  // assertion-only checker:
  // RuleLat[r] (0 = never binds), RulePrev/RuleNext[r] op masks (bit op), RuleScope[r] =
  // 0 same bank, 1 other bank, same bank group, 2 other bank group, 3 channel, 4 same GB entry, 5 same OBuf entry.
  localparam int NumRules = 43;
  localparam int RuleScopeWidth = 3;
  localparam int ScopeBank = 0;                 // RuleScope code: same bank
  localparam int ScopeBankGroup = 1;            // RuleScope code: other bank, same bank group
  localparam int ScopeOtherGroup = 2;           // RuleScope code: other bank group
  localparam int ScopeChannel = 3;              // RuleScope code: channel
  localparam int ScopeGbEntry = 4;              // RuleScope code: same GB entry
  localparam int ScopeOutEntry = 5;             // RuleScope code: same OBuf entry
  // latency per rule
  localparam logic [344-1:0] RuleLat = 344'he0e0c0c1311050500373732030202010320d2020202020202020202021313290c050659592020361c2438;
  // prev op mask per rule
  localparam logic [602-1:0] RulePrev = 602'h10004000040010020008000800200080100040010010000200020008004080008000800400400120002804a049004a049004800800200080042000180060018006006001800180060018006;
  // next op mask per rule
  localparam logic [602-1:0] RuleNext = 602'h8010000801000080100100001002004000040080002044811000100020fffbffe0800400080100010000a049004a049004801000400006001800180062000006006080600602001000020;
  // scope per rule
  localparam logic [129-1:0] RuleScope = 129'hdb6db6db76d91b25b6db6c1011000000;
  localparam logic [14-1:0] AllBankOps = 14'h834;  // commands that touch every bank
  localparam logic [14-1:0] SingleBankOps = 14'h60a;  // commands that touch their bank
  localparam logic [14-1:0] GbOps = 14'h60;  // commands with a GB entry
  localparam logic [14-1:0] OutOps = 14'h11a0;  // commands with an OBuf entry
  localparam int SchedRdHold = 3;               // STATIC: cycles from an RDMAC to the next command (sched.blocking_rd_mac; 0 = off)

  // Register-access mode (timing.mode_switch = 'aim-register', buffers.obuf_dual_port = false, pymodel.timing.mode_of):
  // bit op of ModeAnyOps = legal in either mode; of ModeRegOps = needs register mode.
  // A head whose command needs the other mode issues a TMOD in its place.
  localparam logic [14-1:0] ModeAnyOps = 14'h2801;
  localparam logic [14-1:0] ModeRegOps = 14'h11c0;
  localparam int SchedSeqWidth = 5;             // age tag of a queued instruction (wraps; compared modulo 2**SchedSeqWidth)

  // One queued instruction, decoded from the HUB word (op_size stored minus one). Only
  // WR_INP, MAC, RD_OUT, WR_BANK, WR_BIAS and RD_MAC reach the scheduler; unused operands
  // are 0.
  typedef struct packed {
    logic [InstOpcodeWidth-1:0] op;
    logic [InstOpSizeWidth-1:0] size_m1;
    logic [InstGprWidth-1:0] gpr;
    logic [InstBankWidth-1:0] bank;
    logic [InstGbWidth-1:0] gb;
    logic [InstRowWidth-1:0] row;
    logic [InstColWidth-1:0] col;
    logic [InstOutWidth-1:0] out;
  } sched_inst_t;
  localparam int SchedInstBits = 59;            // bits of sched_inst_t
  localparam int SchedRefWidth = 15;            // signed cycles until the next REF is due

  // ---- DPA controller (rtl/dpa; pymodel.golden.dpa) ----------------------------------------------
  localparam int DpaDHead = 128;                // head size of the KV layout
  localparam int DpaRowsPerBlock = 2;           // virtual rows per KV block (K row, V row)
  localparam int DpaBlockTokens = 128;          // tokens per KV block (one K row)
  localparam int DpaChunkTokens = 2048;         // tokens per chunk
  localparam int DpaChunksPerChannel = 512;     // rows_per_bank / chunk_rows
  localparam int DpaNumChunks = 16384;          // chunks in the module
  localparam int DpaMaxTokens = 2097152;        // max_chunks_per_request * chunk_tokens
  localparam int DpaMaxIters = 16384;           // KV blocks of a full request
  localparam int DpaChanWidth = 5;
  localparam int DpaIdxWidth = 9;               // chunk index within a channel
  localparam int DpaVchunkWidth = 10;           // virtual chunk number
  localparam int DpaNchunkWidth = 11;           // chunks held by one request
  localparam int DpaFreeWidth = 10;             // free chunks of a channel
  localparam int DpaTotalFreeWidth = 15;        // free chunks of the module
  localparam int DpaTokWidth = 22;              // a request length in tokens
  localparam int DpaIterWidth = 15;
  localparam int DpaArgWidth = 22;              // host argument: tokens or virtual row
  localparam int DpaHostOpWidth = 2;
  localparam int DpaHostOpen = 0;               // pymodel.golden.dpa.HostOp.OPEN
  localparam int DpaHostGrow = 1;               // pymodel.golden.dpa.HostOp.GROW
  localparam int DpaHostClose = 2;              // pymodel.golden.dpa.HostOp.CLOSE
  localparam int DpaHostTranslate = 3;          // pymodel.golden.dpa.HostOp.TRANSLATE
  localparam int DpaStatusWidth = 3;
  localparam int DpaStOk = 0;                   // pymodel.golden.dpa.DpaStatus.OK
  localparam int DpaStNoMemory = 1;             // pymodel.golden.dpa.DpaStatus.NO_MEMORY
  localparam int DpaStUnknownRequest = 2;       // pymodel.golden.dpa.DpaStatus.UNKNOWN_REQUEST
  localparam int DpaStAlreadyOpen = 3;          // pymodel.golden.dpa.DpaStatus.ALREADY_OPEN
  localparam int DpaStTooManyRequests = 4;      // pymodel.golden.dpa.DpaStatus.TOO_MANY_REQUESTS
  localparam int DpaStTooLong = 5;              // pymodel.golden.dpa.DpaStatus.TOO_LONG
  localparam int DpaStOutOfRange = 6;           // pymodel.golden.dpa.DpaStatus.OUT_OF_RANGE
  localparam int DpaStBadProgram = 7;           // pymodel.golden.dpa.DpaStatus.BAD_PROGRAM

endpackage : pim_pkg
