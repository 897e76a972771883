# bgfetch — `make run` starts the daemon, `make test` runs every test.
# Both first install the Debian packages the build and the tests need (as root),
# or print the apt-get line to run.

SWIFT      ?= swift
PREFIX     ?= /usr/local
DESTDIR    ?=
DEBIAN_PACKAGES = libdbus-1-dev libsqlite3-dev dbus-daemon dbus-bin systemd libglib2.0-bin python3 python3-dbus python3-gi

.PHONY: all deps build release run test bench stress clean

all: build

deps:
	@missing=""; \
	for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages; run:"; echo "  sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

run: build
	@scripts/run-daemon.sh "$$($(SWIFT) build --show-bin-path)/bgfetchd"

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Benchmarks against the bus's own floor (release build); figures are ratios from one run.
bench: deps
	$(SWIFT) build -c release --product bgfetchd
	$(SWIFT) build -c release --product bgfetch-bench
	"$$($(SWIFT) build -c release --show-bin-path)/bgfetch-bench" --bgfetchd "$$($(SWIFT) build -c release --show-bin-path)/bgfetchd"

# The long reliability suite (short versions of each part run in `make test`).
stress: deps
	$(SWIFT) build -c release --product bgfetchd
	$(SWIFT) build -c release --product bgfetch-stress
	"$$($(SWIFT) build -c release --show-bin-path)/bgfetch-stress" --bgfetchd "$$($(SWIFT) build -c release --show-bin-path)/bgfetchd" --full

clean:
	rm -rf .build
