// array_u: UNSIGNED 8x8 -> 16-bit structural carry-save array multiplier, exact.
//
// Algorithm: the textbook unsigned array multiplier (e.g. I. Koren, "Computer
// Arithmetic Algorithms", 2nd ed., A K Peters 2002, ch. 6): partial products
// a_i & b_j at column i + j; the first row seeds a carry-save array, each further
// row is absorbed by one row of full adders (sum and majority equations on 16-bit
// vectors, carries moved one column left), and a final carry-propagate adder adds
// the last sum and carry vectors.  It is trunc_k*/bam_* without the approximations
// and without the Baugh-Wooley sign handling.
// Departures: none (exact).  axhw uses it in sign-magnitude form (the generated
// wrapper negates the operands and the product), which makes it the exact
// unsigned-core baseline for the sign-magnitude designs (drum, etm, kulkarni).
// Parameters: none.
module array_u (
    input  [7:0]  a,
    input  [7:0]  b,
    output [15:0] y
);
  // Carry-save array: sum/carry hold the state after absorbing rows 0..i.
  reg [15:0] sum, carry, row_i, majority;
  integer i;
  always @* begin
    sum = {8'd0, {8{b[0]}} & a};
    carry = 16'd0;
    for (i = 1; i < 8; i = i + 1) begin
      row_i = {8'd0, {8{b[i]}} & a} << i;
      majority = (sum & carry) | (sum & row_i) | (carry & row_i);
      sum = sum ^ carry ^ row_i;
      carry = {majority[14:0], 1'b0};
    end
  end
  // Final carry-propagate adder (no carry leaves column 15: 255 * 255 < 2^16).
  assign y = sum + carry;
endmodule
