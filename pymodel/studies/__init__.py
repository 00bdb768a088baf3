"""Runs of the golden model behind single commands: kernel studies and the bench table, the GEMV
demo, AiM trace replay, decode steps and trace timelines."""
