// comp42: signed 8x8 -> 16-bit multiplier with approximate 4:2 compressors.
//
// Algorithm: approximate 4:2 compressors in the first reduction stage, as studied
// by A. Momeni, J. Han, P. Montuschi, F. Lombardi, "Design and analysis of
// approximate compressors for multiplication", IEEE Trans. Computers 64(4), 2015,
// and S. Venkatachalam, S.-B. Ko, "Design of power and area efficient approximate
// multipliers", IEEE Trans. VLSI Systems 25(5), 2017.  The eight Baugh-Wooley
// partial-product rows (a_i & b_j at column i + j, complemented when exactly one
// of i, j is 7, constants 2^8 and 2^15) are reduced in a first stage by two rows of
// 4:2 compressors, one over rows 0-3 and one over rows 4-7, column by column.  In
// columns below C the compressor is the approximate one without carry-in/out:
//   carry = x1 x2 + x3 x4,   sum = (x1 ^ x2) + (x3 ^ x4) + x1 x2 x3 x4,
// which returns 2*carry + sum = x1+x2+x3+x4 except for {x1 x2, x3 x4} in
// {10, 01} x {10, 01} (returns 1, not 2) and 1111 (returns 3, not 4).  Columns C
// and above, and the final accumulation, are exact.
// Departures from the papers: the compressor equations above are one of the
// published approximate 4:2 cells, applied to the signed Baugh-Wooley matrix in
// a two-compressor first stage chosen by axhw; the papers' own Dadda trees and
// column choices are not reproduced cell for cell.
// Parameters: C (number of approximated low-order columns, 0..16).
module comp42 #(
    parameter C = 8
) (
    input  signed [7:0]  a,
    input  signed [7:0]  b,
    output signed [15:0] y
);
  localparam [15:0] APPROX = ~(16'hFFFF << C);   // columns below C

  // Baugh-Wooley rows, aligned to product columns (see bam.v / trunc.v).
  wire [15:0] row [0:7];
  genvar j;
  generate
    for (j = 0; j < 8; j = j + 1) begin : bw_row
      wire [7:0] bits = ({8{b[j]}} & a) ^ ((j == 7) ? 8'h7F : 8'h80);
      assign row[j] = {8'd0, bits} << j;
    end
  endgenerate

  // One row of compressors per group of four rows; every column is one compressor.
  wire [16:0] group_value [0:1];
  genvar g;
  generate
    for (g = 0; g < 2; g = g + 1) begin : compress_rows
      wire [15:0] x1 = row[4 * g];
      wire [15:0] x2 = row[4 * g + 1];
      wire [15:0] x3 = row[4 * g + 2];
      wire [15:0] x4 = row[4 * g + 3];
      wire [15:0] carry = ((x1 & x2) | (x3 & x4)) & APPROX;
      wire [15:0] sum   = ((x1 ^ x2) | (x3 ^ x4) | (x1 & x2 & x3 & x4)) & APPROX;
      wire [15:0] exact_cols = ~APPROX;
      assign group_value[g] = {1'b0, sum} + {carry, 1'b0}
                            + (x1 & exact_cols) + (x2 & exact_cols) + (x3 & exact_cols) + (x4 & exact_cols);
    end
  endgenerate
  assign y = 16'h8100 + group_value[0][15:0] + group_value[1][15:0];
endmodule
