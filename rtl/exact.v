// exact: signed 8x8 -> 16-bit exact multiplier, behavioural.
//
// Algorithm: the Verilog `*` operator on two's-complement operands; synthesis
// chooses the array.  Reference design for every error metric in axhw.
// Departures: not a published design; yosys maps `*` to its own array.
// Parameters: none.
module exact (
    input  signed [7:0]  a,
    input  signed [7:0]  b,
    output signed [15:0] y
);
  assign y = a * b;
endmodule
