# bgfetch — `make run` starts the daemon, `make test` runs every test.
# Both first install the Debian packages the build and the tests need (as root),
# or print the apt-get line to run.

SWIFT      ?= swift
PREFIX     ?= /usr/local
DESTDIR    ?=
DEBIAN_PACKAGES = libdbus-1-dev libsqlite3-dev dbus-daemon dbus-bin dbus-broker systemd systemd-container libpam-systemd dbus-user-session libglib2.0-bin python3 python3-dbus python3-dbusmock python3-gi util-linux sqlite3

.PHONY: all deps build release run test bench stress install install-files uninstall clean man

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

# What is installed: bgfetchd and bgfetchctl only, with the Swift runtime
# linked in statically (so they run on a machine without Swift), in a build
# folder of their own. Needs the -dev packages (`make deps`), never installs any.
RELEASE = $(SWIFT) build -c release --static-swift-stdlib --scratch-path .build-release
release:
	$(RELEASE) --product bgfetchd
	$(RELEASE) --product bgfetchctl

run: build
	@scripts/run-daemon.sh "$$($(SWIFT) build --show-bin-path)/bgfetchd" $(ARGS)

# The integration suite runs twice: on dbus-daemon, then on dbus-broker. The
# broker pass needs root: dbus-broker-launch wants a journal socket under /run,
# which the tests make only in a mount namespace of their own (unshare -m).
BROKER_PASS = unshare -m --propagation private env BGFETCH_TEST_BUS=dbus-broker $(SWIFT) test --skip-build --filter IntegrationTests

# The real-systemd pass boots systemd as PID 1 in a systemd-nspawn container
# over a throw-away overlay of this machine's root and checks the installed
# tree there (RealSystemdTests); it needs root to mount and boot.
SYSTEMD_PASS = env BGFETCH_REAL_SYSTEMD=1 $(SWIFT) test --skip-build --filter RealSystemdTests

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) build --product generate-manual
	$(MAKE) release
	$(SWIFT) test --skip-build
	@if [ "$$(id -u)" = 0 ]; then \
	  echo '$(BROKER_PASS)'; $(BROKER_PASS); \
	  echo '$(SYSTEMD_PASS)'; $(SYSTEMD_PASS); \
	else \
	  echo "make test: the integration suite on dbus-broker and the real-systemd pass are skipped: they need root (a mount namespace of their own, an overlay and a container)"; \
	fi

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

# Installing. `make install` builds in release mode and lays out the tree under
# $(DESTDIR)$(PREFIX); `install-files` does only the copying, from BUILD_BIN.
BINDIR      = $(PREFIX)/bin
DATADIR     = $(PREFIX)/share
UNITDIR     = $(PREFIX)/lib/systemd/system
USERUNITDIR = $(PREFIX)/lib/systemd/user
SYSUSERSDIR = $(PREFIX)/lib/sysusers.d
SYSCONFDIR ?= /etc
DOCDIR      = $(DATADIR)/doc/bgfetch
MANDIR      = $(DATADIR)/man
# The system bus reads policy only from /usr/share/dbus-1/system.d and
# /etc/dbus-1/system.d: under any other PREFIX the policy goes to the latter.
POLICYDIR   = $(if $(filter /usr,$(PREFIX)),$(DATADIR)/dbus-1/system.d,$(SYSCONFDIR)/dbus-1/system.d)
SUBSTITUTE  = sed -e 's|@bindir@|$(BINDIR)|g' -e 's|@docdir@|$(DOCDIR)|g'
BUILD_BIN  ?= $(shell $(RELEASE) --show-bin-path 2>/dev/null)
INSTALLED = \
	$(BINDIR)/bgfetchd $(BINDIR)/bgfetchctl \
	$(DATADIR)/dbus-1/interfaces/org.bgfetch.BackgroundFetch1.xml \
	$(POLICYDIR)/org.bgfetch.BackgroundFetch1.conf \
	$(DATADIR)/dbus-1/system-services/org.bgfetch.BackgroundFetch1.service \
	$(DATADIR)/dbus-1/services/org.bgfetch.BackgroundFetch1.service \
	$(UNITDIR)/bgfetchd.service $(USERUNITDIR)/bgfetchd.service $(SYSUSERSDIR)/bgfetch.conf \
	$(DATADIR)/doc/bgfetch/README.md $(DATADIR)/doc/bgfetch/LICENSE \
	$(MANDIR)/man1/bgfetchctl.1 $(MANDIR)/man8/bgfetchd.8 $(MANDIR)/man5/bgfetchd.conf.5 \
	$(MANDIR)/man5/org.bgfetch.BackgroundFetch1.5 \
	$(DATADIR)/bash-completion/completions/bgfetchctl \
	$(DATADIR)/zsh/site-functions/_bgfetchctl \
	$(DATADIR)/fish/vendor_completions.d/bgfetchctl.fish

install: release
	$(MAKE) install-files BUILD_BIN="$(BUILD_BIN)"

install-files:
	install -D -m 0755 "$(BUILD_BIN)/bgfetchd" "$(DESTDIR)$(BINDIR)/bgfetchd"
	install -D -m 0755 "$(BUILD_BIN)/bgfetchctl" "$(DESTDIR)$(BINDIR)/bgfetchctl"
	install -D -m 0644 dbus/org.bgfetch.BackgroundFetch1.xml "$(DESTDIR)$(DATADIR)/dbus-1/interfaces/org.bgfetch.BackgroundFetch1.xml"
	install -D -m 0644 dbus/org.bgfetch.BackgroundFetch1.conf "$(DESTDIR)$(POLICYDIR)/org.bgfetch.BackgroundFetch1.conf"
	install -D -m 0644 dbus/system-services/org.bgfetch.BackgroundFetch1.service "$(DESTDIR)$(DATADIR)/dbus-1/system-services/org.bgfetch.BackgroundFetch1.service"
	install -d "$(DESTDIR)$(DATADIR)/dbus-1/services" "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(USERUNITDIR)"
	$(SUBSTITUTE) dbus/services/org.bgfetch.BackgroundFetch1.service > "$(DESTDIR)$(DATADIR)/dbus-1/services/org.bgfetch.BackgroundFetch1.service"
	$(SUBSTITUTE) systemd/bgfetchd.service > "$(DESTDIR)$(UNITDIR)/bgfetchd.service"
	$(SUBSTITUTE) systemd/user/bgfetchd.service > "$(DESTDIR)$(USERUNITDIR)/bgfetchd.service"
	# The commented defaults, as systemd installs its own *.conf; an edited one is kept.
	test -e "$(DESTDIR)$(SYSCONFDIR)/bgfetch/bgfetchd.conf" || install -D -m 0644 systemd/bgfetchd.conf "$(DESTDIR)$(SYSCONFDIR)/bgfetch/bgfetchd.conf"
	install -D -m 0644 systemd/bgfetch.sysusers "$(DESTDIR)$(SYSUSERSDIR)/bgfetch.conf"
	install -D -m 0644 README.md "$(DESTDIR)$(DOCDIR)/README.md"
	install -D -m 0644 LICENSE "$(DESTDIR)$(DOCDIR)/LICENSE"
	install -D -m 0644 man/bgfetchctl.1 "$(DESTDIR)$(MANDIR)/man1/bgfetchctl.1"
	install -D -m 0644 man/bgfetchd.8 "$(DESTDIR)$(MANDIR)/man8/bgfetchd.8"
	install -D -m 0644 man/bgfetchd.conf.5 "$(DESTDIR)$(MANDIR)/man5/bgfetchd.conf.5"
	install -D -m 0644 man/org.bgfetch.BackgroundFetch1.5 "$(DESTDIR)$(MANDIR)/man5/org.bgfetch.BackgroundFetch1.5"
	install -d "$(DESTDIR)$(DATADIR)/bash-completion/completions" "$(DESTDIR)$(DATADIR)/zsh/site-functions" "$(DESTDIR)$(DATADIR)/fish/vendor_completions.d"
	"$(BUILD_BIN)/bgfetchctl" --generate-completion-script bash > "$(DESTDIR)$(DATADIR)/bash-completion/completions/bgfetchctl"
	"$(BUILD_BIN)/bgfetchctl" --generate-completion-script zsh > "$(DESTDIR)$(DATADIR)/zsh/site-functions/_bgfetchctl"
	"$(BUILD_BIN)/bgfetchctl" --generate-completion-script fish > "$(DESTDIR)$(DATADIR)/fish/vendor_completions.d/bgfetchctl.fish"

uninstall:
	for f in $(INSTALLED); do rm -f "$(DESTDIR)$$f"; done
	-rmdir "$(DESTDIR)$(DOCDIR)" 2>/dev/null
	# The settings file goes only if nobody edited it.
	-cmp -s systemd/bgfetchd.conf "$(DESTDIR)$(SYSCONFDIR)/bgfetch/bgfetchd.conf" && rm -f "$(DESTDIR)$(SYSCONFDIR)/bgfetch/bgfetchd.conf"
	-rmdir "$(DESTDIR)$(SYSCONFDIR)/bgfetch" 2>/dev/null

clean:
	rm -rf .build

# The man pages: bgfetchd(8) and bgfetchctl(1) from the command lines
# (swift-argument-parser's generate-manual), bgfetchd.conf(5) from the
# commented settings file, org.bgfetch.BackgroundFetch1(5) from the interface
# XML. A test regenerates them and fails if a committed page differs.
MAN_DATE = 2026-12-03
man: build
	$(SWIFT) build --product generate-manual
	"$$($(SWIFT) build --show-bin-path)/generate-manual" "$$($(SWIFT) build --show-bin-path)/bgfetchd" --section 8 --date $(MAN_DATE) --output-directory man
	"$$($(SWIFT) build --show-bin-path)/generate-manual" "$$($(SWIFT) build --show-bin-path)/bgfetchctl" --section 1 --date $(MAN_DATE) --output-directory man
	python3 scripts/conf-man.py systemd/bgfetchd.conf $(MAN_DATE) > man/bgfetchd.conf.5
	python3 scripts/dbus-man.py dbus/org.bgfetch.BackgroundFetch1.xml $(MAN_DATE) > man/org.bgfetch.BackgroundFetch1.5
