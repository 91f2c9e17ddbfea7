// bw_array: signed 8x8 -> 16-bit structural Baugh-Wooley carry-save array multiplier.
//
// Algorithm: C. R. Baugh, B. A. Wooley, "A two's complement parallel array
// multiplication algorithm", IEEE Trans. Computers C-22(12), 1973.  The partial
// products a_i & b_j sit at column i + j; the ones with exactly one of i, j equal
// to 7 are complemented (NAND), and the constants 2^8 and 2^15 are added, so that
// the sum modulo 2^16 is the two's-complement product.  Structure: the first row
// and the constant vector seed a carry-save array; each further partial-product
// row is absorbed by one row of 16 full adders (written as the full-adder sum and
// majority equations on 16-bit vectors, carries moved one column left), and a
// final carry-propagate adder adds the last sum and carry vectors.  Exact.
// Departures: none (exact).
// Parameters: none.
module bw_array (
    input  signed [7:0]  a,
    input  signed [7:0]  b,
    output signed [15:0] y
);
  // Carry-save array.  Row i of partial products, aligned to the product columns, is
  // ({8{b[i]}} & a) with bit 7 (rows 0..6) or bits 0..6 (row 7) complemented, shifted
  // left by i.  sum/carry hold the state after absorbing rows 0..i: one row of 16 full
  // adders per row (sum = x ^ c ^ r, carry = majority(x, c, r) one column left).
  reg [15:0] sum, carry, row_i, majority;
  integer i;
  always @* begin
    sum = {8'd0, ({8{b[0]}} & a) ^ 8'h80};
    carry = 16'h8100;   // the Baugh-Wooley constants 2^8 + 2^15
    for (i = 1; i < 8; i = i + 1) begin
      row_i = {8'd0, ({8{b[i]}} & a) ^ ((i == 7) ? 8'h7F : 8'h80)} << i;
      majority = (sum & carry) | (sum & row_i) | (carry & row_i);
      sum = sum ^ carry ^ row_i;
      carry = {majority[14:0], 1'b0};
    end
  end
  // Final carry-propagate adder (the carry out of column 15 is dropped: arithmetic mod 2^16).
  assign y = sum + carry;
endmodule
