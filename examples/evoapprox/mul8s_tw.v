// mul8s_tw: the Verilog twin of mul8s_tw.c (two's-complement product, two low bits dropped),
// on EvoApproxLib's plain port names A, B, O.
module mul8s_tw(A, B, O);
  input [7:0] A, B;
  output [15:0] O;
  wire signed [15:0] p = $signed(A) * $signed(B);
  assign O = p & 16'hFFFC;
endmodule
