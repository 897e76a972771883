#!/bin/sh
# Runs bgfetchd on the session bus, or, where there is none, on a private bus
# that this script starts (and stops again when bgfetchd exits).
set -eu
daemon="$1"
shift || true

if [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ] && busctl --user status >/dev/null 2>&1; then
  echo "bgfetchd: serving the session bus at $DBUS_SESSION_BUS_ADDRESS"
  exec "$daemon" --session "$@"
fi

dir=$(mktemp -d /tmp/bgfetch-run.XXXXXX)
address="unix:path=$dir/bus"
# The system's own session-bus configuration, as a desktop session has it.
dbus-daemon --session --address="$address" --nofork --nosyslog &
bus_pid=$!
trap 'kill $bus_pid 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
while [ ! -S "$dir/bus" ]; do sleep 0.05; done
echo "No session bus here: bgfetchd serves a private one. From another terminal:"
echo "  export DBUS_SESSION_BUS_ADDRESS=$address"
echo "  busctl --user call org.bgfetch.BackgroundFetch1 /org/bgfetch/BackgroundFetch1 org.bgfetch.BackgroundFetch1 GetStatus"
DBUS_SESSION_BUS_ADDRESS="$address" "$daemon" --address "$address" --state-dir "${BGFETCH_STATE_DIR:-$HOME/.local/state/bgfetch}" "$@"
