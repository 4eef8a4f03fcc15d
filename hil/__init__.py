"""Hardware in the loop: real boards and the virtual rack (see the HIL issue). Empty for now."""
