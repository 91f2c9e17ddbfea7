"""The bundled Verilog approximate-multiplier library and the generic cocotb bench.

This folder ships as package data (``axhw.rtl``); each ``*.v`` file holds one
signed or unsigned 8x8 multiplier with a header naming its algorithm and source.
"""
