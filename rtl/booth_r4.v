// booth_r4: signed 8x8 -> 16-bit radix-4 (modified) Booth multiplier, exact or broken.
//
// Algorithm: radix-4 Booth recoding (O. L. MacSorley, "High-speed arithmetic in
// binary computers", Proc. IRE 49(1), 1961): multiplier b is recoded into four
// digits d_j in {-2..2} from (b_{2j+1}, b_{2j}, b_{2j-1}), b_{-1} = 0, with
// one = b_{2j} ^ b_{2j-1}, two = the pattern 011 or 100, neg = b_{2j+1}.  Each
// partial product is the 9-bit two's complement of d_j * a, built bit by bit as
// ((one & a_i) | (two & a_{i-1})) ^ neg, sign-extended, shifted by 2j, with neg
// added at column 2j.  With VBL > 0 this is the Broken Booth Multiplier of
// F. Farshchi, M. S. Abrishami, S. M. Fakhraie, "New approximate multiplier for
// low power digital signal processing", CADS 2013: every partial-product bit
// (including the neg bits) in columns below the vertical break level VBL is
// omitted.  VBL = 0 is the exact structural Booth multiplier.
// Departures from the papers: none known for VBL = 0.  For VBL > 0 the neg bits
// below the break line are dropped with the rest of the matrix (axhw's reading of
// "every partial-product bit below VBL"); the rows keep their full sign extension.
// Parameters: VBL (0..15).
module booth_r4 #(
    parameter VBL = 0
) (
    input  signed [7:0]  a,
    input  signed [7:0]  b,
    output signed [15:0] y
);
  localparam [15:0] KEEP = 16'hFFFF << VBL;   // columns VBL and above

  wire [8:0]  b_ext = {b, 1'b0};              // b_{-1} = 0 appended
  wire [8:0]  a_ext = {a[7], a};              // a sign-extended to 9 bits
  wire [15:0] row [0:3];
  genvar j;
  generate
    for (j = 0; j < 4; j = j + 1) begin : booth_row
      wire [2:0]  digit = b_ext[2 * j + 2 : 2 * j];   // (b_{2j+1}, b_{2j}, b_{2j-1})
      wire        one = digit[1] ^ digit[0];
      wire        two = (~digit[2] & digit[1] & digit[0]) | (digit[2] & ~digit[1] & ~digit[0]);
      wire        neg = digit[2];
      wire [8:0]  pp = (({9{one}} & a_ext) | ({9{two}} & {a_ext[7:0], 1'b0})) ^ {9{neg}};
      wire [15:0] aligned = {{7{pp[8]}}, pp} << (2 * j);
      assign row[j] = (aligned & KEEP) + (({15'd0, neg} << (2 * j)) & KEEP);
    end
  endgenerate
  assign y = row[0] + row[1] + row[2] + row[3];
endmodule
