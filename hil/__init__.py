"""Hardware in the loop: real boards and the virtual rack (see the HIL issue).

So far: `hil.psu`, the programmable power supplies (one entry point, `open_psu`), and
`hil.sim`, simulated instruments behind pseudo-terminals and loopback sockets. docs/hil.md
describes both.
"""
