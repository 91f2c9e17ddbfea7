// axhw hardware hand-off: RTL sources of the distinct multipliers of the chosen configuration.
// Paths are relative to this file's folder: run the tool from there (e.g. iverilog -c filelist.f),
// or pass -F filelist.f to tools that resolve paths against the file list.
// exact_u: module exact_u, sha256 96f9bf3bbc94ee0ad7d33ea61c8f2136ba8fddbd40459480b71ad445b6388d8a
// exact: module exact, sha256 d72be03278e3453f861b291a728e824fbc6d42e1304f5a2d0b31bfeb7039ce2a
// trunc_k6: module trunc #(CORR=0 K=6), sha256 4f3bd44529796f078e1a1137a59779991b45f70f44f530a61228ee17deef0f34
// bam_h2_v8: module bam #(HBL=2 VBL=8), sha256 676a748889b1820f8a91ef6f5acc0375b3b1f4385a230c295f782211073f9ce9
rtl/exact_u.v
rtl/exact.v
rtl/trunc.v
rtl/bam.v
