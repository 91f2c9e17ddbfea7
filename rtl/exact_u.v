// exact_u: UNSIGNED 8x8 -> 16-bit exact multiplier, behavioural.
//
// Algorithm: the Verilog `*` operator on unsigned operands.  It exists to
// exercise axhw's sign-magnitude path: the library uses an unsigned design M as
// lut[a][b] = sign(a*b) * M(|a|, |b|), and |-128| = 128 = 8'h80 fits an unsigned
// operand, so this design must reproduce the exact signed table for all pairs.
// Departures: not a published design; yosys maps `*` to its own array.
// Parameters: none.
module exact_u (
    input  [7:0]  a,
    input  [7:0]  b,
    output [15:0] y
);
  assign y = a * b;
endmodule
