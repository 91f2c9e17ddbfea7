// booth_wallace: signed 8x8 -> 16-bit radix-4 Booth multiplier with a Wallace
// tree of carry-save adders, exact.
//
// Algorithm: radix-4 (modified) Booth recoding, O. L. MacSorley, "High-speed
// arithmetic in binary computers", Proc. IRE 49(1), 1961, with the partial
// products summed by a Wallace tree, C. S. Wallace, "A suggestion for a fast
// multiplier", IEEE Trans. Electronic Computers EC-13(1), 1964 -- the usual
// exact signed multiplier of a standard-cell datapath.
// Booth digits d_j in {-2..2} from (b_{2j+1}, b_{2j}, b_{2j-1}), b_{-1} = 0; each
// partial product is the 9-bit two's complement of d_j * a (one's complement plus
// a neg bit at column 2j).  Sign extension is replaced by a constant: a 9-bit row
// v equals (v ^ 2^8) - 2^8, so every row is stored with its sign bit inverted and
// -(2^8 + 2^10 + 2^12 + 2^14) = 0xAB00 (mod 2^16) is added once; the four neg
// bits (columns 0, 2, 4, 6) and that constant share one row.  The five rows go
// through a Wallace tree of 3:2 carry-save adders (three levels: 5 -> 4 -> 3 -> 2
// rows) and a final carry-propagate adder.
// Departures: none (exact).
// Parameters: none.
module booth_wallace (
    input  signed [7:0]  a,
    input  signed [7:0]  b,
    output signed [15:0] y
);
  wire [8:0] b_ext = {b, 1'b0};               // b_{-1} = 0 appended
  wire [8:0] a_ext = {a[7], a};               // a sign-extended to 9 bits

  // One 3:2 carry-save adder row: {carry, sum} vectors of u + v + w.
  function [31:0] csa;
    input [15:0] u, v, w;
    reg [15:0] s, c;
    begin
      s = u ^ v ^ w;
      c = (u & v) | (u & w) | (v & w);
      csa = {c[14:0], 1'b0, s};
    end
  endfunction

  wire [15:0] row [0:3];
  wire [3:0]  neg;
  genvar j;
  generate
    for (j = 0; j < 4; j = j + 1) begin : booth_row
      wire [2:0] digit = b_ext[2 * j + 2 : 2 * j];   // (b_{2j+1}, b_{2j}, b_{2j-1})
      wire       one = digit[1] ^ digit[0];
      wire       two = (~digit[2] & digit[1] & digit[0]) | (digit[2] & ~digit[1] & ~digit[0]);
      wire [8:0] pp = (({9{one}} & a_ext) | ({9{two}} & {a_ext[7:0], 1'b0})) ^ {9{digit[2]}};
      assign neg[j] = digit[2];
      assign row[j] = {7'd0, ~pp[8], pp[7:0]} << (2 * j);
    end
  endgenerate
  wire [15:0] fix = 16'hAB00 | {9'd0, neg[3], 1'b0, neg[2], 1'b0, neg[1], 1'b0, neg[0]};

  // Wallace tree: level 1 (5 -> 4 rows), level 2 (4 -> 3), level 3 (3 -> 2).
  wire [31:0] l1 = csa(row[0], row[1], row[2]);
  wire [31:0] l2 = csa(l1[15:0], l1[31:16], row[3]);
  wire [31:0] l3 = csa(l2[15:0], l2[31:16], fix);
  assign y = l3[15:0] + l3[31:16];
endmodule
