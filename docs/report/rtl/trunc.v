// trunc: signed 8x8 -> 16-bit column-truncated Baugh-Wooley multiplier.
//
// Algorithm: partial-product column truncation.  The Baugh-Wooley matrix of a
// signed 8x8 product has bits a_i & b_j at column i + j, complemented when exactly
// one of i, j is 7, plus the constants 2^8 and 2^15.  The K least significant
// columns are removed.  With CORR = 1 a constant correction is added, as in
// M. J. Schulte and E. E. Swartzlander, "Truncated multiplication with correction
// constant", VLSI Signal Processing VI, 1993: the expected value of the removed
// bits for uniform operands (P(bit) = 1/4, or 3/4 for complemented bits), rounded
// to a multiple of 2^K.  CORR = 0 is plain truncation (Y. C. Lim, "Single-precision
// multiplier with reduced circuit complexity for signal processing applications",
// IEEE Trans. Computers 41(10), 1992).
// Departures from the papers: Schulte and Swartzlander add the expected value
// of the removed bits plus a rounding term; here the constant is only that
// expected value for uniform operands, rounded to a multiple of 2^K, on the
// signed Baugh-Wooley matrix.
// Parameters: K (removed columns, 0..8), CORR (0 or 1).
module trunc #(
    parameter K    = 6,
    parameter CORR = 0
) (
    input  signed [7:0]  a,
    input  signed [7:0]  b,
    output signed [15:0] y
);
  // 4 x expected value of the removed bits, then rounded to a multiple of 2^k.
  function integer correction;
    input [31:0] k;
    integer i, j, quarter_sum;
    begin
      quarter_sum = 0;
      for (i = 0; i < 8; i = i + 1)
        for (j = 0; j < 8; j = j + 1)
          if (i + j < k)
            quarter_sum = quarter_sum + (((i == 7) ^ (j == 7)) ? 3 : 1) * (1 << (i + j));
      correction = ((quarter_sum + 2 * (1 << k)) / (4 * (1 << k))) * (1 << k);
    end
  endfunction

  localparam [15:0] OFFSET = 16'h8100 + (CORR ? correction(K) : 0);
  localparam [15:0] KEEP = 16'hFFFF << K;   // columns K and above

  // Baugh-Wooley rows, aligned to product columns: row j holds a_i & b_j at column
  // i + j; bit 7 of rows 0..6 and bits 0..6 of row 7 are complemented.
  wire [15:0] row [0:7];
  genvar j;
  generate
    for (j = 0; j < 8; j = j + 1) begin : bw_row
      wire [7:0] bits = ({8{b[j]}} & a) ^ ((j == 7) ? 8'h7F : 8'h80);
      assign row[j] = ({8'd0, bits} << j) & KEEP;
    end
  endgenerate
  assign y = OFFSET + row[0] + row[1] + row[2] + row[3] + row[4] + row[5] + row[6] + row[7];
endmodule
