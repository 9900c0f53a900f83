"""engines stage of the instancevg toolchain (see README.md in this folder)."""
