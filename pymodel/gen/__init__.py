"""Generators: the SystemVerilog package (``rtl/pkg``) and docs/timing.md from config/isa/timing."""
