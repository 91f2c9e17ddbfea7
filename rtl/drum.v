// drum: signed 8x8 -> 16-bit DRUM (Dynamic Range Unbiased Multiplier).
//
// Algorithm: S. Hashemi, R. I. Bahar, S. Reda, "DRUM: A Dynamic Range Unbiased
// Multiplier for Approximate Applications", ICCAD 2015.  Each operand magnitude
// is reduced to a K-bit segment starting at its leading one; the segment's lowest
// bit is forced to 1 (which makes the truncation error zero-mean), the two
// segments are multiplied exactly (K x K) and the product is shifted back by the
// number of dropped bits.  Magnitudes below 2^K are used unchanged (exact).
// Signed operands use sign-magnitude: |a| is an 8-bit unsigned value (|-128| =
// 128 = 8'h80), and the product takes the sign a[7] ^ b[7].
// Departures from the paper: the paper's DRUM is unsigned; the sign-magnitude
// conversion around it is axhw's.  Otherwise as published.
// Parameters: K (segment width, 2..7).
module drum #(
    parameter K = 4
) (
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
  wire [2:0] la  = lead_one(ma);
  wire [2:0] lb  = lead_one(mb);
  // Number of dropped low bits per operand: leading one position - (K - 1), or 0.
  wire [3:0] sa  = (la >= K) ? la - (K - 1) : 4'd0;
  wire [3:0] sb  = (lb >= K) ? lb - (K - 1) : 4'd0;
  wire [K-1:0] ta = (ma >> sa) | (sa != 0);
  wire [K-1:0] tb = (mb >> sb) | (sb != 0);
  wire [2*K-1:0] core = ta * tb;
  wire [3:0] sab = sa + sb;
  wire [15:0] mag = {{(16 - 2 * K) {1'b0}}, core} << sab;
  assign y = neg ? -mag : mag;
endmodule
