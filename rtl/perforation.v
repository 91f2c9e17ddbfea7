// perforation: signed 8x8 -> 16-bit partial-product perforation multiplier.
//
// Paper: G. Zervakis, K. Tsoumanis, S. Xydis, D. Soudris, K. Pekmestzi,
// "Design-efficient approximate multiplication circuits through partial product
// perforation", IEEE Trans. VLSI Systems 24(10), 2016.  M consecutive partial
// products, starting at row J, are not generated, which the paper defines as
// computing A * B' with B' = B whose bits b_J .. b_{J+M-1} are zero, so
// y = a * (b & ~mask) exactly and a * 0 = 0.
// Here the rows are those of the signed Baugh-Wooley matrix (a_i & b_j at column
// i + j, complemented when exactly one of i, j is 7, plus 2^8 and 2^15).  A
// perforated row j < 7 is the row of b_j = 0: its only non-zero bit is the
// complemented ~(a_7 & 0) = 1 at column 7 + j, a constant that synthesis folds
// into the accumulation, so the tree still has M variable rows fewer.
// Departures from the paper: the paper's examples perforate unsigned and Booth
// arrays; the Baugh-Wooley matrix and the constant above are axhw's signed
// reading of "b_j treated as zero".  The sign row j = 7 is never perforated
// (J + M <= 7).
// Parameters: J (first perforated row), M (number of perforated rows).
module perforation #(
    parameter J = 0,
    parameter M = 2
) (
    input  signed [7:0]  a,
    input  signed [7:0]  b,
    output signed [15:0] y
);
  localparam [15:0] OFFSET = 16'h8100;

  // Baugh-Wooley rows, aligned to product columns: row j holds a_i & b_j at column
  // i + j; bit 7 of rows 0..6 and bits 0..6 of row 7 are complemented.  A perforated
  // row is the same row with b_j = 0.
  wire [15:0] row [0:7];
  genvar j;
  generate
    for (j = 0; j < 8; j = j + 1) begin : bw_row
      wire       bit_j = (j >= J && j < J + M) ? 1'b0 : b[j];
      wire [7:0] bits = ({8{bit_j}} & a) ^ ((j == 7) ? 8'h7F : 8'h80);
      assign row[j] = {8'd0, bits} << j;
    end
  endgenerate
  assign y = OFFSET + row[0] + row[1] + row[2] + row[3] + row[4] + row[5] + row[6] + row[7];
endmodule
