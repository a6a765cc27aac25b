"""The programmable array: its contract (spec), RTL, generator, compiler, program files and timing."""
