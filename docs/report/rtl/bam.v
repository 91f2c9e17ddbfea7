// bam: signed 8x8 -> 16-bit Broken-Array Multiplier on a Baugh-Wooley array.
//
// Paper: H. R. Mahdiani, A. Ahmadi, S. M. Fakhraie, C. Lucas, "Bio-inspired
// imprecise computational blocks for efficient VLSI implementation of soft-
// computing applications", IEEE Trans. Circuits and Systems I 57(4), 2010.
// The carry-save cells of an array multiplier are omitted below two break lines:
// the horizontal break level HBL removes the cells of the partial-product rows b_j
// with j < HBL, the vertical break level VBL removes the cells in columns
// i + j < VBL.  An omitted cell's partial product is taken as zero, so
//   y = a * b - sum over omitted cells (i, j) of w_ij a_i b_j 2^(i+j),
// with w_ij = -1 for the sign cells (exactly one of i, j equal to 7), else +1.
// The array here is the signed Baugh-Wooley matrix (a_i & b_j at column i + j,
// complemented when exactly one of i, j is 7, plus the constants 2^8 and 2^15).
// Departures from the paper: the paper breaks an array of plain a_i & b_j cells.
// On the signed array, the sign handling (the complement and the constants) is
// kept: an omitted sign cell outputs ~(0) = 1, a constant folded into the
// accumulation, exactly as if its a_i & b_j were zero (a * 0 = 0).  Removing the
// complemented bit as well would subtract 2^(7+j) from every product whenever row
// j is broken.
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

  // Baugh-Wooley rows, aligned to product columns: row j holds a_i & b_j at column
  // i + j; the sign cells (bit 7 of rows 0..6, bits 0..6 of row 7) are complemented.
  // Inside a break region the partial product is 0 (a sign cell then gives 1).
  wire [15:0] row [0:7];
  genvar i, j;
  generate
    for (j = 0; j < 8; j = j + 1) begin : bw_row
      wire [7:0] bits;
      for (i = 0; i < 8; i = i + 1) begin : bw_cell
        wire pp = (j < HBL || i + j < VBL) ? 1'b0 : (a[i] & b[j]);
        assign bits[i] = ((i == 7) != (j == 7)) ? ~pp : pp;
      end
      assign row[j] = {8'd0, bits} << j;
    end
  endgenerate
  assign y = OFFSET + row[0] + row[1] + row[2] + row[3] + row[4] + row[5] + row[6] + row[7];
endmodule
