// bam: signed 8x8 -> 16-bit Broken-Array Multiplier on a Baugh-Wooley array.
//
// Algorithm: H. R. Mahdiani, A. Ahmadi, S. M. Fakhraie, C. Lucas, "Bio-inspired
// imprecise computational blocks for efficient VLSI implementation of soft-
// computing applications", IEEE Trans. Circuits and Systems I 57(4), 2010.
// The carry-save cells of an array multiplier are omitted below two break lines:
// the horizontal break level HBL removes the partial-product rows b_j with
// j < HBL, the vertical break level VBL removes every bit in columns i + j < VBL.
// The array is the signed Baugh-Wooley matrix (a_i & b_j, complemented when
// exactly one of i, j is 7, plus the constants 2^8 and 2^15); the sign row j = 7
// is never removed for HBL <= 7.
// Parameters: HBL (0..7), VBL (0..15).
module bam #(
    parameter HBL = 1,
    parameter VBL = 6
) (
    input  signed [7:0]  a,
    input  signed [7:0]  b,
    output signed [15:0] y
);
  localparam [15:0] OFFSET = 16'h8100;
  localparam [15:0] KEEP = 16'hFFFF << VBL;   // columns VBL and above

  // Baugh-Wooley rows, aligned to product columns: row j holds a_i & b_j at column
  // i + j; bit 7 of rows 0..6 and bits 0..6 of row 7 are complemented.
  wire [15:0] row [0:7];
  genvar j;
  generate
    for (j = 0; j < 8; j = j + 1) begin : bw_row
      wire [7:0] bits = ({8{b[j]}} & a) ^ ((j == 7) ? 8'h7F : 8'h80);
      assign row[j] = (j >= HBL) ? (({8'd0, bits} << j) & KEEP) : 16'd0;
    end
  endgenerate
  assign y = OFFSET + row[0] + row[1] + row[2] + row[3] + row[4] + row[5] + row[6] + row[7];
endmodule
