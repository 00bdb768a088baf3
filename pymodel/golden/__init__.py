"""The golden model: bf16 numbers, the channel (data and timing), reference controllers (in-order,
STATIC/PINGPONG/DCS schedulers), kernels, DPA and the decode pipeline the RTL must equal."""
