# cortex-m4-mram: STM32L4-class Cortex-M4 with external MRAM, built with
# arm-none-eabi-gcc (Thumb-2, soft float, no C library).
cortex-m4-mram_CC      := arm-none-eabi-gcc
cortex-m4-mram_AS      := arm-none-eabi-gcc
cortex-m4-mram_LD      := arm-none-eabi-gcc
cortex-m4-mram_AR      := arm-none-eabi-ar
cortex-m4-mram_READELF := arm-none-eabi-readelf
cortex-m4-mram_ARCH    := -mcpu=cortex-m4 -mthumb -mfloat-abi=soft
cortex-m4-mram_CFLAGS  := -O2 -ffreestanding -fno-builtin -fno-tree-loop-distribute-patterns \
                          -ffunction-sections -fdata-sections -DBOARD_CORTEX_M4_MRAM=1 \
                          -DBOARD_NAME='"cortex-m4-mram"'
cortex-m4-mram_ASFLAGS := -DBOARD_CORTEX_M4_MRAM=1
cortex-m4-mram_LDFLAGS := -nostdlib -nostartfiles -Wl,--gc-sections -Wl,-n
cortex-m4-mram_LDLIBS  := -lgcc
# Memory map, "start-end" (end exclusive): every PT_LOAD segment must fit in one.
cortex-m4-mram_REGIONS := 0x08000000-0x08100000 0x20000000-0x20020000 0x60000000-0x60080000
