// etm: UNSIGNED 8x8 -> 16-bit error-tolerant multiplier (ETM).
//
// Paper: K. Y. Kyaw, W. L. Goh, K. S. Yeo, "Low-power high-speed multiplier for
// error-tolerant application", IEEE EDSSC 2010.  Each operand is split into a
// multiplication part (the 8 - L high bits) and a non-multiplication part (the L
// low bits).  When both high parts are zero the low parts are multiplied exactly
// (y = la * lb).  Otherwise the high parts are multiplied exactly into the top of
// the product, y[15:2L] = ha * hb, and the low 2L bits come from the
// non-multiplication part, which computes no product: scanning la | lb from its
// most significant bit down, result bit L + i is 1 from the first position i
// holding a 1 in either operand downwards, and the L bits below (L-1 .. 0) are
// all 1 as soon as either low part is non-zero.  The cross terms ha*lb, la*hb and
// la*lb are not computed.
// Departures from the paper: none in the unsigned core.  axhw uses it in
// sign-magnitude form (lut = sign(a*b) * M(|a|, |b|), |-128| = 128 = 8'h80); the
// sign handling forces a product by 0 to 0, where the paper's unsigned ETM gives
// the low fill pattern (the generated hardware wrapper adds that zero gate).
// Parameters: L (non-multiplication part width, 1..7).
module etm #(
    parameter L = 4
) (
    input  [7:0]  a,
    input  [7:0]  b,
    output [15:0] y
);
  localparam H = 8 - L;

  wire [H-1:0] ha = a[7:L];
  wire [H-1:0] hb = b[7:L];
  wire [L-1:0] la = a[L-1:0];
  wire [L-1:0] lb = b[L-1:0];
  wire [L-1:0] seen = la | lb;

  // fill[i] = 1 when la | lb has a 1 at position i or above (ones from the leading one down).
  reg  [L-1:0] fill;
  integer i;
  always @* begin
    fill[L-1] = seen[L-1];
    for (i = L - 2; i >= 0; i = i - 1)
      fill[i] = seen[i] | fill[i + 1];
  end

  wire         low_only  = (ha == 0) && (hb == 0);
  wire [15:0]  exact_low = la * lb;
  wire [2*H-1:0] hp = ha * hb;
  wire [15:0]  approx = {hp, fill, {L{fill[0]}}};
  assign y = low_only ? exact_low : approx;
endmodule
