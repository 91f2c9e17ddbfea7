// roba: signed 8x8 -> 16-bit rounding-based approximate (RoBA) multiplier.
//
// Algorithm: R. Zendegani, M. Kamal, M. Bahadori, A. Afzali-Kusha, M. Pedram,
// "RoBA multiplier: A rounding-based approximate multiplier for high-speed yet
// energy-efficient digital signal processing", IEEE Trans. VLSI Systems 25(2),
// 2017.  Each magnitude is rounded to its nearest power of two, Ar = 2^p (a tie
// 3 * 2^(p-2) rounds up, which needs only the leading one and the bit below it).
// A * B = Ar*B + A*Br - Ar*Br + (A - Ar)(B - Br); RoBA drops the last term, so the
// product needs only shifts and one addition/subtraction.  Signed operands use
// sign-magnitude (|-128| = 128 = 8'h80); zero operands give 0.
// Departures from the paper: the paper's signed RoBA also works on magnitudes;
// here the sign-magnitude conversion is written out around the unsigned datapath
// and zero operands are forced to 0.  Otherwise as published.
// Parameters: none.
module roba (
    input  signed [7:0]  a,
    input  signed [7:0]  b,
    output signed [15:0] y
);
  // Position of the leading one of x (0 when x is 0 or 1).
  function [2:0] lead_one;
    input [7:0] x;
    lead_one = x[7] ? 3'd7 : x[6] ? 3'd6 : x[5] ? 3'd5 : x[4] ? 3'd4 :
               x[3] ? 3'd3 : x[2] ? 3'd2 : x[1] ? 3'd1 : 3'd0;
  endfunction

  wire       neg = a[7] ^ b[7];
  wire [7:0] ma  = a[7] ? -a : a;
  wire [7:0] mb  = b[7] ? -b : b;
  wire [2:0] ka  = lead_one(ma);
  wire [2:0] kb  = lead_one(mb);
  // Exponent of the nearest power of two: round up when the bit below the leading one is set.
  wire [3:0] pa  = ka + ((ka != 0) && ma[ka - 1]);
  wire [3:0] pb  = kb + ((kb != 0) && mb[kb - 1]);
  wire [4:0]  pab = pa + pb;
  wire [18:0] approx = ({11'd0, mb} << pa) + ({11'd0, ma} << pb) - (19'd1 << pab);
  wire [15:0] mag = (ma == 0 || mb == 0) ? 16'd0 : approx[15:0];
  assign y = neg ? -mag : mag;
endmodule
