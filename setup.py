from setuptools import Extension, setup

setup(ext_modules=[Extension("emu.engines._ucount", ["emu/engines/_ucount.c"])])
