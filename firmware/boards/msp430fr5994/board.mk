# msp430fr5994: TI MSP430FR5994 (MSP430X CPU), code built as plain MSP430
# (16-bit) instructions with clang; linked with ld.lld.
msp430fr5994_CC      := clang --target=msp430
msp430fr5994_AS      := clang --target=msp430
msp430fr5994_LD      := ld.lld
msp430fr5994_AR      := llvm-ar
msp430fr5994_READELF := llvm-readelf
msp430fr5994_ARCH    := -fintegrated-as
msp430fr5994_CFLAGS  := -O2 -ffreestanding -fno-builtin -ffunction-sections -fdata-sections \
                        -DBOARD_MSP430FR5994=1 -DBOARD_NAME='"msp430fr5994"'
msp430fr5994_ASFLAGS := -DBOARD_MSP430FR5994=1
msp430fr5994_LDFLAGS := --gc-sections --nmagic
msp430fr5994_LDLIBS  :=
# Memory map, "start-end" (end exclusive): every PT_LOAD segment must fit in one.
msp430fr5994_REGIONS := 0x1800-0x1A00 0x1C00-0x3C00 0x4000-0x10000 0x10000-0x44000
