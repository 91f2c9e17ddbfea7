// ilm_basic: signed 8x8 -> 16-bit basic block of the iterative logarithmic
// multiplier, without its error-correction term.
//
// Paper: Z. Babic, A. Avramovic, P. Bulic, "An iterative logarithmic multiplier",
// Microprocessors and Microsystems 35(1), 2011.  With N1 = 2^k1 + r1 and
// N2 = 2^k2 + r2 (r below the leading one), N1 N2 = 2^(k1+k2) + r1 2^k2 +
// r2 2^k1 + r1 r2.  The paper's basic block computes the first three terms with
// shifts and adds; its ILM then approximates the error term r1 r2 with further
// basic blocks (one or more correction iterations).
// Departures from the paper: this is the basic block alone, with no correction
// iteration, so r1 r2 is dropped and the error is never positive (the paper's
// one-iteration ILM would add the basic-block estimate of r1 r2).  Signed operands
// use sign-magnitude (|-128| = 128 = 8'h80); zero operands give 0.
// Parameters: none.
module ilm_basic (
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
  wire [7:0] ra  = ma ^ (8'd1 << ka);        // residue below the leading one
  wire [7:0] rb  = mb ^ (8'd1 << kb);
  wire [3:0]  kab = ka + kb;
  wire [15:0] approx = (16'd1 << kab) + ({8'd0, ra} << kb) + ({8'd0, rb} << ka);
  wire [15:0] mag = (ma == 0 || mb == 0) ? 16'd0 : approx;
  assign y = neg ? -mag : mag;
endmodule
