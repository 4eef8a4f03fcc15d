# Two entry points do all set-up on a fresh Debian machine (as root):
#   make demo   build the firmware for both boards, run it through power failures, and run a
#               campaign on the DNN inference firmware (HTML report in build/reports/)
#   make test   run the test suite
# Toolchains (and chromium, which renders the campaign report in a test) come from
# apt-get; Python packages go into .venv.

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
BUILD  := $(CURDIR)/build
APT_PACKAGES := clang lld llvm gcc-arm-none-eabi libnewlib-arm-none-eabi mspdebug chromium gdb-multiarch

.PHONY: all demo test firmware bench toolchains venv clean

all: firmware

# -- set-up --------------------------------------------------------------------------
toolchains: $(BUILD)/.toolchains

$(BUILD)/.toolchains:
	@missing=""; \
	for t in clang ld.lld llvm-readelf llvm-dwarfdump arm-none-eabi-gcc mspdebug chromium gdb-multiarch; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if command -v arm-none-eabi-gcc >/dev/null && [ ! -f "$$(arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -print-file-name=libc.a)" ]; then missing="$$missing newlib"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "toolchains: missing:$$missing; installing $(APT_PACKAGES) with apt-get"; \
	  if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	    echo "toolchains: cannot install (need root and apt-get). Install these packages yourself:" >&2; \
	    echo "  sudo apt-get install $(APT_PACKAGES)" >&2; exit 1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null || exit 1; \
	fi
	@mkdir -p $(BUILD) && touch $@

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py emu/engines/_ucount.c
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@$(VPY) -m pip install -q --upgrade pip >/dev/null
	$(VPY) -m pip install -q -e '.[test]'
	@touch $@

# -- firmware ------------------------------------------------------------------------
firmware: toolchains venv
	@$(MAKE) --no-print-directory -C firmware BUILD=$(BUILD) PYTHON=$(abspath $(VPY))

# -- the two commands ------------------------------------------------------------------
demo: venv firmware
	@for board in msp430fr5994 cortex-m4-mram; do \
	  echo "== $$board: demo under continuous power"; \
	  $(VENV)/bin/emu run $(BUILD)/$$board/demo.elf --read result || exit 1; \
	  echo "== $$board: demo with six power failures (periods of 500, 300, 400, 300, 350, 450 instructions)"; \
	  $(VENV)/bin/emu run $(BUILD)/$$board/demo.elf --fail-after 500,300,400,300,350,450 --read result --read boot_count || exit 1; \
	  echo "== $$board: DNN inference (dnn_digits), 1000 power failures at random instructions"; \
	  $(VENV)/bin/emu campaign $(BUILD)/$$board/dnn_digits.elf --sample 1000 --seed 1 \
	    --results $(BUILD)/campaigns/$$board-dnn_digits.jsonl --report $(BUILD)/reports/$$board-dnn_digits || exit 1; \
	done

test: venv firmware
	$(VENV)/bin/pytest -q

bench: venv firmware
	$(VPY) bench/run.py

clean:
	rm -rf $(BUILD)
