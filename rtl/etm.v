// etm: signed 8x8 -> 16-bit error-tolerant multiplier (ETM).
//
// Algorithm: K. Y. Kyaw, W. L. Goh, K. S. Yeo, "Low-power high-speed multiplier
// for error-tolerant application", IEEE EDSSC 2010.  Each magnitude is split into
// a high (multiplication) part of 8 - L bits and a low (non-multiplication) part
// of L bits.  If both high parts are zero, the low parts are multiplied exactly.
// Otherwise the high parts are multiplied exactly into the top of the product, and
// the low 2L result bits come from the non-multiplication part: scanning the low
// parts from their most significant bit down, the first position p where either
// operand has a 1 sets result bit p and every bit below it to 1 (result bits
// L .. 2L-1 stay 0), i.e. the cross terms are not computed.
// Signed operands use sign-magnitude (|-128| = 128 = 8'h80).
// Parameters: L (low-part width, 1..7).
module etm #(
    parameter L = 4
) (
    input  signed [7:0]  a,
    input  signed [7:0]  b,
    output signed [15:0] y
);
  localparam H = 8 - L;

  wire       neg = a[7] ^ b[7];
  wire [7:0] ma  = a[7] ? -a : a;
  wire [7:0] mb  = b[7] ? -b : b;
  wire [H-1:0] ha = ma[7:L];
  wire [H-1:0] hb = mb[7:L];
  wire [L-1:0] la = ma[L-1:0];
  wire [L-1:0] lb = mb[L-1:0];
  wire [L-1:0] seen = la | lb;
  // fill[p] = 1 when some operand has a 1 at position p or above (ones from the leading one down).
  wire [L-1:0] fill = seen | (seen >> 1) | (seen >> 2) | (seen >> 3) | (seen >> 4) | (seen >> 5) | (seen >> 6);
  wire        low_only = (ha == 0) && (hb == 0);
  wire [15:0] exact_low = la * lb;
  wire [2*H-1:0] hp = ha * hb;
  wire [15:0] high = {hp, {(2 * L) {1'b0}}};
  wire [15:0] mag = low_only ? exact_low : (high | {{(16 - L) {1'b0}}, fill});
  assign y = neg ? -mag : mag;
endmodule
