// axhw hardware hand-off: RTL sources of the distinct multipliers of the chosen configuration,
// the sign-magnitude wrappers of unsigned cores, and a top that instantiates each once.
// Paths are relative to this file's folder: run the tool from there (e.g. iverilog -c filelist.f),
// or pass -F filelist.f to tools that resolve paths against the file list.
// etm_l2: module etm #(L=2), sha256 573bccbbd4167a381c56dc0702f3e0acd6a29732fb4bad34f634a9793d2e0ccf
// etm_l2: unsigned core, used through the signed sign-magnitude wrapper axhw_sm_etm (costed with it): y = sign(a*b) * etm(|a|, |b|)
// bam_h2_v8: module bam #(HBL=2 VBL=8), sha256 585c5328186bca3927dd84be37365d06589e8053a09b3ba6cb2cdf32315ac269
// exact_u: module exact_u, sha256 4130a5280ba0d361b94b52e6bee318b02813d3e27a89705ec0cb62e40b730a37
// exact_u: unsigned core, used through the signed sign-magnitude wrapper axhw_sm_exact_u (costed with it): y = sign(a*b) * exact_u(|a|, |b|)
// trunc_k4: module trunc #(CORR=0 K=4), sha256 5a121d631c46005aaaa3b1de59c9ac9b9442086d4bc309ade669da69fa99b4dd
// top: axhw_handoff_top instantiates each multiplier once (iverilog -s axhw_handoff_top -c filelist.f)
rtl/etm.v
rtl/bam.v
rtl/exact_u.v
rtl/trunc.v
rtl/axhw_sm_etm.v
rtl/axhw_sm_exact_u.v
rtl/axhw_handoff_top.v
