// kulkarni: UNSIGNED 8x8 -> 16-bit underdesigned multiplier from 2x2 blocks.
//
// Algorithm: P. Kulkarni, P. Gupta, M. Ercegovac, "Trading accuracy for power
// with an underdesigned multiplier architecture", 24th Int. Conf. on VLSI Design,
// 2011.  The 2x2 building block is exact except 3 x 3, which it returns as 7
// (binary 111) so that its output fits 3 bits.  4x4 and 8x8 multipliers are built
// recursively from four half-width products, added exactly:
// A*B = AH*BH << w + (AH*BL + AL*BH) << w/2 + AL*BL (w = width).
// Unsigned; axhw uses it in sign-magnitude form (|-128| = 128 = 8'h80).
// Departures from the paper: none in the unsigned core; the sign-magnitude use
// (product by 0 forced to 0 by the sign) is axhw's.
// Parameters: none.
module kulkarni_2x2 (
    input  [1:0] a,
    input  [1:0] b,
    output [2:0] y
);
  assign y[0] = a[0] & b[0];
  assign y[1] = (a[1] & b[0]) | (a[0] & b[1]);
  assign y[2] = a[1] & b[1];
endmodule

module kulkarni_4x4 (
    input  [3:0] a,
    input  [3:0] b,
    output [7:0] y
);
  wire [2:0] hh, hl, lh, ll;
  kulkarni_2x2 u_hh (.a(a[3:2]), .b(b[3:2]), .y(hh));
  kulkarni_2x2 u_hl (.a(a[3:2]), .b(b[1:0]), .y(hl));
  kulkarni_2x2 u_lh (.a(a[1:0]), .b(b[3:2]), .y(lh));
  kulkarni_2x2 u_ll (.a(a[1:0]), .b(b[1:0]), .y(ll));
  assign y = ({5'd0, hh} << 4) + (({5'd0, hl} + {5'd0, lh}) << 2) + {5'd0, ll};
endmodule

module kulkarni (
    input  [7:0]  a,
    input  [7:0]  b,
    output [15:0] y
);
  wire [7:0] hh, hl, lh, ll;
  kulkarni_4x4 u_hh (.a(a[7:4]), .b(b[7:4]), .y(hh));
  kulkarni_4x4 u_hl (.a(a[7:4]), .b(b[3:0]), .y(hl));
  kulkarni_4x4 u_lh (.a(a[3:0]), .b(b[7:4]), .y(lh));
  kulkarni_4x4 u_ll (.a(a[3:0]), .b(b[3:0]), .y(ll));
  assign y = ({8'd0, hh} << 8) + (({8'd0, hl} + {8'd0, lh}) << 4) + {8'd0, ll};
endmodule
