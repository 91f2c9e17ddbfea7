// mitchell: signed 8x8 -> 16-bit Mitchell logarithmic multiplier.
//
// Algorithm: J. N. Mitchell, "Computer multiplication and division using binary
// logarithms", IRE Trans. Electronic Computers EC-11(4), 1962.  With N = 2^k (1 + x),
// log2 N ~ k + x (x in [0, 1) is the bits below the leading one).  The product is
// antilog(k1 + k2 + x1 + x2): 2^(k1+k2) (1 + x1 + x2) when x1 + x2 < 1, else
// 2^(k1+k2+1) (x1 + x2).  Fractions are 7-bit fixed point, which is exact for
// 8-bit magnitudes; the antilog result is truncated, so the error is never
// positive.  Signed operands use sign-magnitude (|-128| = 128 = 8'h80); zero
// operands give 0.
// Departures from the paper: Mitchell's method is unsigned; the sign-magnitude
// conversion and the zero check are axhw's.  The antilog is truncated, not rounded.
// Parameters: none.
module mitchell (
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
  // Mantissa fractions x = (m - 2^k) / 2^k as 7-bit fixed point.
  wire [6:0] fa  = ma << (3'd7 - ka);
  wire [6:0] fb  = mb << (3'd7 - kb);
  wire [7:0] fsum = fa + fb;                 // x1 + x2, 1.7 fixed point
  wire       carry = fsum[7];                // x1 + x2 >= 1
  wire [7:0] mant = carry ? fsum : {1'b1, fsum[6:0]};
  wire [4:0] expo = ka + kb + carry;
  wire [22:0] scaled = {15'd0, mant} << expo;
  wire [15:0] mag = (ma == 0 || mb == 0) ? 16'd0 : scaled[22:7];
  assign y = neg ? -mag : mag;
endmodule
